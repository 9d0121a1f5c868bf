//! Generation — expected result: conditional name models reach a validation perplexity of 6.32 (GRU) and 6.30
//! (LSTM) per character (vanilla RNN 7.48), 85–89 % of sampled names are new and 38–44 % are assigned the requested language
//! by the names classifier; a character model of IMDB reviews goes from noise to words during training.
//!
//! 1. `names` task, one-to-many: a character model conditioned on the language (fed at every step), with start
//!    and end symbols; RNN, GRU, LSTM compared by validation perplexity (natural log, per character) and bits per
//!    character; samples per language, the share of new names and of names the trained classifier
//!    (`sampling.classifier`, a `make names` run) assigns to the requested language.
//! 2. `reviews` task, synced many-to-many: a character model of IMDB reviews trained with truncated
//!    backpropagation through time; for the window `sampling.detail_bptt`, samples during training
//!    (samples_during_training.txt), samples at several temperatures and an activation map of hidden units;
//!    perplexity against the window.
//!
//! 3. `shakespeare` task ([`shakespeare`]): Karpathy's char-rnn on the complete works, whole works held out, with
//!    the learning curve against wall time, samples, interpretable cells and gate saturation (`make shakespeare`,
//!    one epoch: test nats/char GRU 1.563 (equal parameters) and 1.593 (256), LSTM 1.645, vanilla RNN 1.689 (equal
//!    parameters) and 1.746 (256)).
//!
//! [`commands`]: `generate sample` (names, or text from a start) and `generate score` (bits per character of a
//! text under a trained model).
pub mod commands;
mod names;
mod reviews;
pub mod shakespeare;

use crate::config::{Checker, Options, Validate};
use crate::data::names::NamesConfig;
use crate::data::shakespeare::ShakespeareConfig;
use crate::data::text::{self, Chars, ReviewsConfig};
use crate::data::{Dataset, Source};
use crate::model::lm::Pick;
use crate::model::{LanguageModel, Model};
use crate::plot::{cell_color, cell_width, Figure, Panel, Series};
use crate::results::rows::{RowStatus, SplitName};
use crate::results::{rows, Meta, RunDir, Tag};
use crate::rng::Rng;
use crate::sample::sample_text;
use crate::sweep::{Cfg, Columns, Experiment, Finish, Trained};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Names,
    Reviews,
    Shakespeare,
}

/// Both tasks' data; `task` says which one a run reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateData {
    pub task: Task,
    pub names: NamesConfig,
    pub reviews: ReviewsConfig,
    /// The Shakespeare task's texts; left out of the saved configs of the other tasks.
    #[serde(skip_serializing_if = "GenerateData::not_shakespeare")]
    pub shakespeare: ShakespeareConfig,
}

impl GenerateData {
    fn not_shakespeare(s: &ShakespeareConfig) -> bool {
        *s == ShakespeareConfig::default()
    }
}

impl Validate for GenerateData {
    fn validate(&self, c: &mut Checker) {
        c.nested("data", "data.reviews", &self.reviews);
        self.shakespeare.validate(c);
    }
}

impl Source for GenerateData {
    fn load(&self, seed: u64) -> Result<Dataset> {
        match self.task {
            Task::Names => Ok(text::names_lm(&self.names, seed)?.0),
            Task::Reviews => self.reviews.load(seed),
            Task::Shakespeare => self.shakespeare.load(seed),
        }
    }

    fn check(&self) -> Result<()> {
        match self.task {
            Task::Names => self.names.check(),
            Task::Reviews => self.reviews.check(),
            Task::Shakespeare => self.shakespeare.check(),
        }
    }
}

/// The `sampling` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sampling {
    /// Names sampled per language for novelty and language match.
    pub samples_per_language: usize,
    pub temperature: f64,
    /// A trained names classifier run (with model.safetensors) to check the language of samples; null skips.
    pub classifier: Option<PathBuf>,
    /// Review runs with this BPTT window also sample during training, at several temperatures, and draw the
    /// activation map.
    pub detail_bptt: usize,
    /// Steps between samples written during training.
    pub sample_every: usize,
    pub temperatures: Vec<f64>,
    pub sample_chars: usize,
    /// Shakespeare: characters of the held-out passage the cells and gates are read on.
    pub trace_chars: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            samples_per_language: 50,
            temperature: 0.8,
            classifier: None,
            detail_bptt: 100,
            sample_every: 100,
            temperatures: vec![0.2, 0.5, 0.8, 1.0, 1.3],
            sample_chars: 300,
            trace_chars: 4000,
        }
    }
}

impl Validate for Sampling {
    fn validate(&self, c: &mut Checker) {
        c.positive("sampling.temperature", self.temperature);
        for &t in &self.temperatures {
            c.positive("sampling.temperatures", t);
        }
    }
}

impl Options for Sampling {
    const KEY: &'static str = "sampling";
}

#[derive(Default)]
pub struct Generate;

/// What the hooks of one run keep, by task.
#[derive(Debug)]
pub enum RunState {
    /// The training names (to measure novelty).
    Names(Vec<String>),
    /// The samples written during training so far.
    Reviews(String),
    Shakespeare(Box<shakespeare::ShakespeareRun>),
}

impl Generate {
    fn detail(cfg: &Cfg<Self>) -> bool {
        cfg.data.task == Task::Reviews && cfg.data.reviews.bptt == cfg.own.detail_bptt
    }
}

/// Perplexity and bits per character from a mean cross-entropy in nats.
fn ppl_bpc(loss: f64) -> (f64, f64) {
    (loss.exp(), loss / std::f64::consts::LN_2)
}

fn lm(model: &Model) -> Result<&LanguageModel> {
    match model {
        Model::Lm(m) => Ok(m),
        _ => bail!("generate trains language models: set model.kind: lm"),
    }
}

impl Experiment for Generate {
    type Data = GenerateData;
    type Own = Sampling;
    type PerRun = Option<RunState>;

    fn columns(&self) -> Columns {
        let results = [
            "val_ppl",
            "val_bpc",
            "test_ppl",
            "val_nats_per_char",
            "test_nats_per_char",
            "test_bits_per_char",
            "novel_frac",
            "language_match",
            "best_epoch",
            "steps",
            "n_params",
            "train_s",
            "train_seq_per_s",
        ];
        Columns { keys: vec!["model", "task", "bptt"], results: results.to_vec() }
    }

    fn tags(&self, cfg: &Cfg<Self>) -> Vec<(String, Tag)> {
        match cfg.data.task {
            Task::Names => vec![("task".into(), Tag::from("names"))],
            Task::Reviews => {
                vec![("task".into(), Tag::from("reviews")), ("bptt".into(), Tag::from(cfg.data.reviews.bptt))]
            }
            Task::Shakespeare => vec![("task".into(), Tag::from("shakespeare"))],
        }
    }

    fn dataset(&self, cfg: &Cfg<Self>) -> Result<(Dataset, Option<RunState>)> {
        match cfg.data.task {
            Task::Names => {
                let (ds, train_names) = text::names_lm(&cfg.data.names, cfg.train.seed)?;
                Ok((ds, Some(RunState::Names(train_names))))
            }
            Task::Reviews => Ok((cfg.data.load(cfg.train.seed)?, Some(RunState::Reviews(String::new())))),
            Task::Shakespeare => {
                let ds = cfg.data.shakespeare.load(cfg.train.seed)?;
                let texts = cfg.data.shakespeare.texts(cfg.train.seed)?;
                let val =
                    ds.val.as_ref().map(|v| v.shallow_clone()).ok_or_else(|| anyhow::anyhow!("no validation split"))?;
                Ok((ds, Some(RunState::Shakespeare(Box::new(shakespeare::ShakespeareRun::new(texts, val))))))
            }
        }
    }

    fn during_every(&self, cfg: &Cfg<Self>) -> Option<usize> {
        (Self::detail(cfg) || cfg.data.task == Task::Shakespeare).then_some(cfg.own.sample_every)
    }

    /// Samples of the review model as it trains, into samples_during_training.txt; the Shakespeare model's
    /// learning curve and samples.
    fn during(
        &self,
        cfg: &Cfg<Self>,
        state: &mut Option<RunState>,
        model: &Model,
        step: usize,
        run: &mut RunDir,
    ) -> Result<()> {
        match state {
            Some(RunState::Shakespeare(st)) => shakespeare::during(cfg, st, lm(model)?, step, run),
            Some(RunState::Reviews(log)) => {
                let mut rng = Rng::derived(cfg.train.seed, "sample");
                let how = Pick::Sample { temperature: 0.8, top_k: None };
                let text = sample_text(lm(model)?, &Chars, "The movie ", 200, how, &mut rng)?;
                *log += &format!("--- step {step} (temperature 0.8) ---\n{text}\n\n");
                run.write("samples_during_training.txt", log.as_bytes())
            }
            _ => Ok(()),
        }
    }

    fn after(&self, cfg: &Cfg<Self>, t: Trained<Option<RunState>>) -> Result<()> {
        if cfg.data.task == Task::Shakespeare {
            return shakespeare::after(cfg, t);
        }
        let lm = lm(t.model)?;
        for split in ["val", "test"] {
            if let Some(&loss) = t.outcome.result.get(&format!("{split}_loss")) {
                let (ppl, bpc) = ppl_bpc(loss);
                t.run.meta.result.insert(format!("{split}_ppl"), ppl);
                t.run.meta.result.insert(format!("{split}_bpc"), bpc);
            }
        }
        let s = &cfg.own;
        match cfg.data.task {
            Task::Names => {
                let train: &[String] = match t.state.as_ref() {
                    Some(RunState::Names(n)) => n,
                    _ => &[],
                };
                names::names_samples(lm, &t.data.shape.classes, train, cfg, t.run)
            }
            Task::Reviews if Self::detail(cfg) => {
                let mut lines = String::new();
                for &temp in &s.temperatures {
                    let mut rng = Rng::derived(cfg.train.seed, "sample");
                    let how = Pick::Sample { temperature: temp, top_k: None };
                    let text = sample_text(lm, &Chars, "The movie ", s.sample_chars, how, &mut rng)?;
                    lines += &format!("--- temperature {temp} ---\n{text}\n\n");
                }
                t.run.write("samples.txt", lines.as_bytes())?;
                let text = cfg.data.reviews.text(cfg.train.seed)?;
                reviews::activation_map(lm, &text.val, &t.run.path.join("activations"), cfg.model.cell)
            }
            Task::Reviews | Task::Shakespeare => Ok(()),
        }
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (root, dir, cfg, runs) = (f.root, &f.dir, f.cfg, f.runs);
        if runs.iter().any(|m| m.tag("task") == "shakespeare") {
            shakespeare::charts(root, dir, runs)?;
            let cols = [
                crate::results::summary::Column::new("test nats/char", "test_nats_per_char"),
                crate::results::summary::Column::new("test bits/char", "test_bits_per_char"),
                crate::results::summary::Column::new("val nats/char", "val_nats_per_char"),
                crate::results::summary::Column::new("parameters", "n_params"),
                crate::results::summary::Column::new("steps", "steps"),
            ];
            let table = crate::results::summary::table("Shakespeare, held-out works", runs, &["size", "model"], &cols);
            return Ok(table
                + "charts: loss_vs_time, test_loss, cell_line_position, cell_brackets, cell_speaker, gate_saturation; samples.txt\n");
        }
        charts(root, dir, runs, cfg.own.detail_bptt)?;
        let mut out = String::new();
        for m in runs {
            let r = |k: &str| m.result.get(k).map_or("-".into(), |v| format!("{v:.3}"));
            out += &format!(
                "{:<26} val ppl {:>7}  bpc {:>6}  novel {:>6}  language match {:>6}\n",
                m.run,
                r("val_ppl"),
                r("val_bpc"),
                r("novel_frac"),
                r("language_match")
            );
        }
        Ok(out
            + "charts: names_val_perplexity, reviews_val_perplexity, perplexity_vs_bptt; samples in the run folders\n")
    }
}

fn charts(root: &Path, dir: &Path, metas: &[Meta], detail_bptt: usize) -> Result<()> {
    for (task, title) in [("names", "Names (conditioned on language)"), ("reviews", "IMDB reviews, character level")] {
        let runs: Vec<&Meta> = metas
            .iter()
            .filter(|m| m.tag("task") == task && (task == "names" || m.tag("bptt") == detail_bptt.to_string()))
            .collect();
        let mut series = Vec::new();
        for m in &runs {
            let Some(cell) = m.cell() else { continue };
            let pts = rows::metrics(root, m)?
                .iter()
                .filter(|r| r.split == SplitName::Val && r.status == RowStatus::Ok)
                .map(|r| (r.epoch as f64, r.loss.exp()))
                .collect();
            series.push(Series::new(cell.label(), cell_color(cell), pts).markers().width(cell_width(cell)));
        }
        if series.is_empty() {
            continue;
        }
        let panel = Panel {
            x_label: "epoch".into(),
            y_label: "validation perplexity per character (e^loss, log scale)".into(),
            log_y: true,
            series,
            ..Default::default()
        };
        let t = if task == "reviews" {
            format!("{title}: validation perplexity per epoch (BPTT window {detail_bptt})")
        } else {
            format!("{title}: validation perplexity per epoch")
        };
        Figure::new(t, vec![panel]).save(&dir.join(format!("{task}_val_perplexity")))?;
    }
    let reviews: Vec<Meta> = metas.iter().filter(|m| m.tag("task") == "reviews").cloned().collect();
    if reviews.iter().map(|m| m.tag("bptt")).collect::<HashSet<_>>().len() > 1 {
        let panel = Panel {
            x_label: "truncated BPTT window (characters, log scale)".into(),
            y_label: "validation perplexity per character".into(),
            log_x: true,
            series: crate::charts::metric_vs(&reviews, "bptt", "val_ppl"),
            ..Default::default()
        };
        Figure::new("IMDB character model: validation perplexity vs BPTT window", vec![panel])
            .save(&dir.join("perplexity_vs_bptt"))?;
    }
    Ok(())
}
