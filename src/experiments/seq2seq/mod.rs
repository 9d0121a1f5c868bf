//! Sequence to sequence with and without attention (many to many) — expected result: dates → ISO exact match
//! 0.998–1.000 with additive attention for every cell (RNN 0.636 without); reversing sentences of 61+ words, token
//! accuracy GRU 0.41 and LSTM 0.47 with attention against 0.13 / 0.17 without (`make seq2seq`); translating
//! held-out Bible books en → fr with a GRU, beam 5 (`make translate`): BLEU 12.97 ± 1.46 with attention (3 seeds),
//! 7.18 without; seed 0, > 50 words 14.92 vs 7.16 (see [`translate`]).
//!
//! Three tasks (the `task` axis): `dates`, human-written dates → ISO (the classic attention exercise), scored by
//! exact match; `reverse`, Brown sentences → their words reversed, scored by token accuracy by source length:
//! without attention everything the decoder knows of the source is one context vector, and long sources do not
//! fit in it (Bahdanau et al. 2015, Fig. 2); `translate`, real sentences, scored by BLEU by source length
//! ([`translate`]). Outputs: run folders (samples.txt or translations.txt, by_length.csv, attention.csv),
//! summary.csv and charts ([`tasks::charts`], [`translate::charts`]). [`predict`] answers an input of one's own.
pub mod predict;
pub mod tasks;
pub mod translate;

use crate::config::{Attention, Checker, DecoderKind, Validate};
use crate::data::parallel::TranslateConfig;
use crate::data::seq::{DatesConfig, ReverseConfig};
use crate::data::{Batch, Dataset, Source};
use crate::model::seq2seq::EOS;
use crate::model::{Model, Seq2Seq};
use crate::results::summary::{table, Column};
use crate::results::{Meta, Tag};
use crate::sweep::{Cfg, Columns, Experiment, Finish, Trained};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Dates,
    Reverse,
    Translate,
}

/// The tasks' data; `task` says which one a run reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seq2seqData {
    pub task: Task,
    pub dates: DatesConfig,
    pub reverse: ReverseConfig,
    /// Translation (`task: translate`); left out of the saved configs of the other tasks.
    #[serde(skip_serializing_if = "Seq2seqData::not_translating")]
    pub translate: TranslateConfig,
}

impl Seq2seqData {
    fn not_translating(t: &TranslateConfig) -> bool {
        *t == TranslateConfig::default()
    }
}

impl Validate for Seq2seqData {
    fn validate(&self, c: &mut Checker) {
        self.dates.validate(c);
        self.reverse.validate(c);
        self.translate.validate(c);
    }
}

impl Source for Seq2seqData {
    fn load(&self, seed: u64) -> Result<Dataset> {
        match self.task {
            Task::Dates => self.dates.load(seed),
            Task::Reverse => self.reverse.load(seed),
            Task::Translate => self.translate.load(seed),
        }
    }

    fn check(&self) -> Result<()> {
        match self.task {
            Task::Dates => Ok(()),
            Task::Reverse => self.reverse.check(),
            Task::Translate => self.translate.check(),
        }
    }
}

#[derive(Default)]
pub struct Seq2seq;

pub fn task_name(t: Task) -> &'static str {
    match t {
        Task::Dates => "dates",
        Task::Reverse => "reverse",
        Task::Translate => "translate",
    }
}

pub fn attention_name(a: Attention) -> &'static str {
    match a {
        Attention::None => "none",
        Attention::Additive => "additive",
        Attention::Dot => "dot",
    }
}

fn decoder_name(d: DecoderKind) -> &'static str {
    match d {
        DecoderKind::Bahdanau => "bahdanau",
        DecoderKind::Luong => "luong",
    }
}

/// The decoded ids of every row of the batch (up to the end id, exclusive) and, when attending, their weights;
/// at most `max_len` tokens each.
pub fn decode(m: &Seq2Seq, batch: &Batch, max_len: i64) -> Vec<(Vec<i64>, Option<tch::Tensor>)> {
    let b = batch.tokens.size()[0];
    if m.cfg.beam > 1 {
        return (0..b).map(|i| m.beam(batch, i, m.cfg.beam, max_len)).map(|(t, a)| (trim(t), a)).collect();
    }
    let (ids, alphas) = m.greedy(batch, max_len);
    (0..b)
        .map(|i| {
            let toks = trim(Vec::<i64>::try_from(ids.get(i)).unwrap_or_default());
            (toks, alphas.as_ref().map(|a| a.get(i)))
        })
        .collect()
}

/// Tokens up to the end id.
fn trim(ids: Vec<i64>) -> Vec<i64> {
    ids.into_iter().take_while(|&t| t != EOS && t != 0).collect()
}

/// "GRU + additive attention", "LSTM, no attention".
pub fn label(m: &Meta) -> String {
    let cell = m.cell().map_or("?", |c| c.label());
    match m.tag("attention").as_str() {
        "none" => format!("{cell}, no attention"),
        a => format!("{cell} + {a} attention"),
    }
}

impl Experiment for Seq2seq {
    type Data = Seq2seqData;
    type Own = ();
    /// A translation run's vocabularies and test pairs (None for the other tasks).
    type PerRun = Option<translate::TranslateRun>;

    fn columns(&self) -> Columns {
        let results = [
            "bleu",
            "chrf",
            "bleu_le10",
            "bleu_11_20",
            "bleu_21_30",
            "bleu_31_40",
            "bleu_41_50",
            "bleu_gt50",
            "exact_match",
            "token_acc",
            "token_acc_longest",
            "val_loss",
            "test_loss",
            "best_epoch",
            "n_params",
            "n_test",
            "test_sources_in_train",
            "train_s",
            "train_seq_per_s",
        ];
        Columns { keys: vec!["task", "model", "attention"], results: results.to_vec() }
    }

    fn tags(&self, cfg: &Cfg<Self>) -> Vec<(String, Tag)> {
        let mut tags = vec![
            ("task".into(), Tag::from(task_name(cfg.data.task))),
            ("attention".into(), Tag::from(attention_name(cfg.model.attention))),
        ];
        if cfg.model.decoder != DecoderKind::default() {
            tags.push(("decoder".into(), Tag::from(decoder_name(cfg.model.decoder))));
        }
        tags
    }

    fn dataset(&self, cfg: &Cfg<Self>) -> Result<(Dataset, Self::PerRun)> {
        match cfg.data.task {
            Task::Translate => {
                let p = cfg.data.translate.parallel(cfg.train.seed)?;
                let run =
                    translate::TranslateRun { source: p.source, target: p.target, test: p.test, report: p.report };
                Ok((p.data, Some(run)))
            }
            _ => Ok((cfg.data.load(cfg.train.seed)?, None)),
        }
    }

    fn after(&self, cfg: &Cfg<Self>, t: Trained<Self::PerRun>) -> Result<()> {
        let Model::Seq2seq(m) = t.model else { bail!("seq2seq trains encoder-decoders: set model.kind: seq2seq") };
        match cfg.data.task {
            Task::Translate => translate::evaluate(m, cfg, t),
            _ => tasks::evaluate(m, cfg, t),
        }
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (root, dir, runs) = (f.root, &f.dir, f.runs);
        if runs.iter().any(|m| m.tag("task") == "translate") {
            translate::charts(root, dir, runs)?;
            let cols = [
                Column::new("BLEU", "bleu"),
                Column::new("chrF", "chrf"),
                Column::new("≤ 10 words", "bleu_le10"),
                Column::new("11–20", "bleu_11_20"),
                Column::new("21–30", "bleu_21_30"),
                Column::new("31–40", "bleu_31_40"),
                Column::new("41–50", "bleu_41_50"),
                Column::new("> 50", "bleu_gt50"),
            ];
            return Ok(table("translation, held-out books (BLEU by source length)", runs, &["attention", "model"], &cols)
                + "charts: bleu_vs_length, bleu, attention_<i>, training_curves; translations.txt in the run folders\n");
        }
        tasks::charts(root, dir, runs)?;
        let cols = [
            Column::new("exact match", "exact_match"),
            Column::new("token accuracy", "token_acc"),
            Column::new("longest sources", "token_acc_longest"),
        ];
        Ok(table("seq2seq, test set", runs, &["task", "attention", "model"], &cols)
            + "charts: exact_match, accuracy_vs_length, attention_<task>_<example>, training_curves\n")
    }
}
