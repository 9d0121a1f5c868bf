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
//! [`sample`] samples names from a trained names model.
use crate::config::{CellKind, Checker, Options, Validate};
use crate::data::names::{self, NamesConfig};
use crate::data::text::{self, Chars, ReviewsConfig};
use crate::data::{Dataset, Example, Pad, Source, Split};
use crate::model::lm::Pick;
use crate::model::{LanguageModel, Model};
use crate::plot::{cell_color, cell_width, ColouredText, Figure, Panel, Series};
use crate::results::rows::{RowStatus, SplitName};
use crate::results::{checkpoint, rows, Meta, RunDir, Tag};
use crate::rng::Rng;
use crate::sample::{language_id, sample_name, sample_text};
use crate::stats::correlation;
use crate::sweep::{Cfg, Columns, Experiment, Finish, Trained};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Names,
    Reviews,
}

/// Both tasks' data; `task` says which one a run reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateData {
    pub task: Task,
    pub names: NamesConfig,
    pub reviews: ReviewsConfig,
}

impl Validate for GenerateData {
    fn validate(&self, c: &mut Checker) {
        c.nested("data", "data.reviews", &self.reviews);
    }
}

impl Source for GenerateData {
    fn load(&self, seed: u64) -> Result<Dataset> {
        match self.task {
            Task::Names => Ok(text::names_lm(&self.names, seed)?.0),
            Task::Reviews => self.reviews.load(seed),
        }
    }

    fn check(&self) -> Result<()> {
        match self.task {
            Task::Names => self.names.check(),
            Task::Reviews => self.reviews.check(),
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

/// What the hooks of one run keep.
#[derive(Default)]
pub struct GenerateRun {
    /// The training names of a names run (to measure novelty).
    train_names: Vec<String>,
    /// The samples written during training so far.
    log: String,
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
    type PerRun = GenerateRun;

    fn columns(&self) -> Columns {
        let results =
            ["val_ppl", "val_bpc", "test_ppl", "novel_frac", "language_match", "best_epoch", "n_params", "train_s"];
        Columns { keys: vec!["model", "task", "bptt"], results: results.to_vec() }
    }

    fn tags(&self, cfg: &Cfg<Self>) -> Vec<(String, Tag)> {
        match cfg.data.task {
            Task::Names => vec![("task".into(), Tag::from("names"))],
            Task::Reviews => {
                vec![("task".into(), Tag::from("reviews")), ("bptt".into(), Tag::from(cfg.data.reviews.bptt))]
            }
        }
    }

    fn dataset(&self, cfg: &Cfg<Self>) -> Result<(Dataset, GenerateRun)> {
        match cfg.data.task {
            Task::Names => {
                let (ds, train_names) = text::names_lm(&cfg.data.names, cfg.train.seed)?;
                Ok((ds, GenerateRun { train_names, log: String::new() }))
            }
            Task::Reviews => Ok((cfg.data.load(cfg.train.seed)?, GenerateRun::default())),
        }
    }

    fn during_every(&self, cfg: &Cfg<Self>) -> Option<usize> {
        Self::detail(cfg).then_some(cfg.own.sample_every)
    }

    /// Samples of the review model as it trains, into samples_during_training.txt.
    fn during(
        &self,
        cfg: &Cfg<Self>,
        state: &mut GenerateRun,
        model: &Model,
        step: usize,
        run: &mut RunDir,
    ) -> Result<()> {
        let mut rng = Rng::derived(cfg.train.seed, "sample");
        let text =
            sample_text(lm(model)?, "The movie ", 200, Pick::Sample { temperature: 0.8, top_k: None }, &mut rng)?;
        state.log += &format!("--- step {step} (temperature 0.8) ---\n{text}\n\n");
        run.write("samples_during_training.txt", state.log.as_bytes())
    }

    fn after(&self, cfg: &Cfg<Self>, t: Trained<GenerateRun>) -> Result<()> {
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
            Task::Names => names_samples(lm, &t.data.shape.classes, &t.state.train_names, cfg, t.run),
            Task::Reviews if Self::detail(cfg) => {
                let mut lines = String::new();
                for &temp in &s.temperatures {
                    let mut rng = Rng::derived(cfg.train.seed, "sample");
                    let how = Pick::Sample { temperature: temp, top_k: None };
                    let text = sample_text(lm, "The movie ", s.sample_chars, how, &mut rng)?;
                    lines += &format!("--- temperature {temp} ---\n{text}\n\n");
                }
                t.run.write("samples.txt", lines.as_bytes())?;
                let text = cfg.data.reviews.text(cfg.train.seed)?;
                activation_map(lm, &text.val, &t.run.path.join("activations"), cfg.model.cell)
            }
            Task::Reviews => Ok(()),
        }
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (root, dir, cfg, runs) = (f.root, &f.dir, f.cfg, f.runs);
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

/// Samples per language → samples.txt, the share of new names and (with a classifier) of the asked language.
fn names_samples(
    lm: &LanguageModel,
    classes: &[String],
    train: &[String],
    cfg: &Cfg<Generate>,
    run: &mut RunDir,
) -> Result<()> {
    let s = &cfg.own;
    let device = lm.rnn.weights[0][0].device();
    let known: HashSet<&String> = train.iter().collect();
    let classifier = match &s.classifier {
        Some(p) if p.join(checkpoint::WEIGHTS).exists() => Some(checkpoint::load(p, device)?),
        Some(p) => {
            crate::progress::say!(
                "sampling.classifier {}: no trained classifier there (run `make names`); language match skipped",
                p.display()
            );
            None
        }
        None => None,
    };
    let mut rng = Rng::derived(cfg.train.seed, "sample");
    let how = Pick::Sample { temperature: s.temperature, top_k: None };
    let (mut lines, mut novel, mut matched, mut total) = (String::new(), 0, 0, 0);
    for (lang, name) in classes.iter().enumerate() {
        let sampled: Vec<String> = (0..s.samples_per_language)
            .map(|_| sample_name(lm, lang as i64, "", how, &mut rng))
            .collect::<Result<_>>()?;
        novel += sampled.iter().filter(|n| !known.contains(n)).count();
        total += sampled.len();
        if let Some(c) = &classifier {
            let pred = classify(c, &sampled)?;
            matched += pred.iter().filter(|&&p| c.spec.shape.classes[p as usize] == *name).count();
        }
        lines += &format!("{name}: {}\n", sampled.join(", "));
    }
    run.write("samples.txt", lines.as_bytes())?;
    run.meta.result.insert("novel_frac".into(), novel as f64 / total.max(1) as f64);
    if classifier.is_some() {
        run.meta.result.insert("language_match".into(), matched as f64 / total.max(1) as f64);
    }
    Ok(())
}

/// The classifier's most likely class of each (non-empty) name.
fn classify(c: &checkpoint::Loaded, names_: &[String]) -> Result<Vec<i64>> {
    let Some(model) = c.model.classifier() else { bail!("{} holds no classifier", c.dir.display()) };
    let ex: Vec<Example> = names_
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| Ok(Example { tokens: names::encode(n)?, label: 0 }))
        .collect::<Result<_>>()?;
    if ex.is_empty() {
        return Ok(vec![]);
    }
    let device = model.rnn.weights[0][0].device();
    let split = Split::new("samples", &ex, Pad::Post).to_device(device);
    Ok(Vec::try_from(model.predict_proba(&split, 256).argmax(-1, false))?)
}

/// Hidden units over a review, coloured by activation: for each of three features (inside quotes, position in
/// the line, word boundary) the unit whose activation correlates most with it.
fn activation_map(lm: &LanguageModel, val_ids: &[i64], stem: &Path, cell: CellKind) -> Result<()> {
    // A stretch of validation text with quotes in it.
    let text: Vec<i64> = {
        let q = Chars::id('"').unwrap();
        let start = val_ids.iter().position(|&i| i == q).unwrap_or(0).saturating_sub(150);
        val_ids[start..(start + 600).min(val_ids.len())].to_vec()
    };
    let chars: Vec<char> = text.iter().map(|&i| Chars::char(i)).collect();
    let acts: Vec<Vec<f64>> = tch::no_grad(|| -> Result<Vec<Vec<f64>>> {
        let device = lm.rnn.weights[0][0].device();
        let x = lm.inputs(&Tensor::from_slice(&text).view([1, -1]).to_device(device), None);
        let (out, _) = lm.rnn.forward_state(&x, None, false);
        let out = out.get(0).to_kind(Kind::Double).to_device(Device::Cpu).tr().contiguous();
        Ok(Vec::<Vec<f64>>::try_from(out)?)
    })?;
    let mut quote = false;
    let mut col = 0f64;
    let (mut f_quote, mut f_col, mut f_space) = (vec![], vec![], vec![]);
    for &c in &chars {
        if c == '"' {
            quote = !quote;
        }
        col = if c == '\n' || c == '.' { 0.0 } else { col + 1.0 };
        f_quote.push(quote as u8 as f64);
        f_col.push(col);
        f_space.push((c == ' ') as u8 as f64);
    }
    let mut blocks = Vec::new();
    for (feature, f) in [
        ("inside quotes", &f_quote),
        ("characters since the last full stop or line break", &f_col),
        ("space (word boundary)", &f_space),
    ] {
        let (unit, r) = acts
            .iter()
            .enumerate()
            .map(|(u, a)| (u, correlation(a, f)))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap_or((0, 0.0));
        // Scaled by the unit's largest |activation| so that its whole range shows.
        let scale = acts[unit].iter().fold(1e-9f64, |m, v| m.max(v.abs()));
        let caption =
            format!("unit {unit}: correlation {r:+.2} with \"{feature}\" (red: +{scale:.2}, blue: −{scale:.2})");
        blocks.push((caption, chars.iter().copied().zip(acts[unit].iter().map(|v| v / scale)).collect()));
    }
    ColouredText {
        title: format!("{}: hidden units over a test review (trained character model)", cell.label()),
        blocks,
        width: 100,
    }
    .save(stem)
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

/// How [`sample`] picks letters.
pub struct SampleArgs<'a> {
    pub language: &'a str,
    pub start: &'a str,
    pub how: Pick,
    pub count: usize,
    pub seed: u64,
}

/// `generate sample`: names from a trained names model, one per line.
pub fn sample(run: &Path, a: &SampleArgs, device: Device) -> Result<String> {
    let loaded = checkpoint::load(run, device)?;
    let lm = lm(&loaded.model)?;
    let lang = language_id(&loaded.spec.shape.classes, a.language)?;
    let mut rng = Rng::derived(a.seed, "sample");
    let n = if a.how == Pick::Greedy { 1 } else { a.count };
    let mut out = String::new();
    for _ in 0..n {
        out += &sample_name(lm, lang, a.start, a.how, &mut rng)?;
        out.push('\n');
    }
    Ok(out)
}
