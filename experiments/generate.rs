//! Generation — expected result: conditional name models reach a validation perplexity of 6.3 per character
//! (GRU, LSTM; vanilla RNN 7.5), 84–89 % of sampled names are new and ~40 % are assigned the requested language
//! by the names classifier; a character model of IMDB reviews goes from noise to words during training.
//!
//! 1. Names, one-to-many: a character model conditioned on the language (fed at every step), with start and
//!    end symbols; RNN, GRU, LSTM compared by validation perplexity (natural log, per character) and bits per
//!    character; samples per language, the share of new names and of names the trained classifier
//!    (`names.classifier`, a `make names` run) assigns to the requested language.
//! 2. IMDB reviews, synced many-to-many: a character model trained with truncated backpropagation through
//!    time; samples during training (samples_during_training.txt), samples at several temperatures, an
//!    activation map of hidden units over a review, and perplexity against the BPTT window.
//!
//! `generate sample --run results/generate/names-lstm-s0 --language Russian --start Ro --temperature 0.8`
//! samples from a trained names model.
use anyhow::Result;
use clap::{Parser, Subcommand};
use rnnlab::charts::read_csv;
use rnnlab::cli::Common;
use rnnlab::config::{self, CellKind, Checker, ModelConfig, OutputConfig, Outputs, ProbeConfig, TrainConfig, Validate};
use rnnlab::data::imdb::read_reviews;
use rnnlab::data::names::{self, NamesConfig};
use rnnlab::data::text::{self, Chars};
use rnnlab::data::{Dataset, Example, Pad, Split};
use rnnlab::experiment::{train_point, Arch, Built, Hooks, Point};
use rnnlab::model::lm::Pick;
use rnnlab::model::{Classifier, LanguageModel};
use rnnlab::plot::{cell_color, ColouredText, Figure, Panel, Series};
use rnnlab::rng::Rng;
use rnnlab::run::{write_atomic, Meta, RunDir};
use rnnlab::sample::{language_id, sample_name, sample_text};
use rnnlab::train::{MetricRow, Outcome};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

const EXPERIMENT: &str = "generate";
const DEFAULT_CONFIG: &str = "configs/generate.yaml";

#[derive(Parser)]
#[command(about = "Character-level generation: names per language, and IMDB review text with perplexity")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sample names from a trained names model (a run folder of this experiment).
    Sample {
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// One of the 18 languages of the training data.
        #[arg(long)]
        language: String,
        /// The first letters of every name.
        #[arg(long, default_value = "")]
        start: String,
        /// Softmax temperature (lower: more conservative).
        #[arg(long, default_value_t = 0.8)]
        temperature: f64,
        /// Sample only among the k most likely letters.
        #[arg(long)]
        top_k: Option<i64>,
        /// Always take the most likely letter (one name).
        #[arg(long)]
        greedy: bool,
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NamesSection {
    data: NamesConfig,
    model: ModelConfig,
    train: TrainConfig,
    /// Samples per language for novelty and language match.
    samples_per_language: usize,
    temperature: f64,
    /// A trained names classifier run (with model.safetensors) to check the language of samples; null skips.
    classifier: Option<PathBuf>,
}

impl Default for NamesSection {
    fn default() -> Self {
        NamesSection {
            data: NamesConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            samples_per_language: 50,
            temperature: 0.8,
            classifier: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ReviewsSection {
    enabled: bool,
    /// aclImdb archive or folder.
    path: PathBuf,
    /// Characters of training text (reviews of the training split, seeded order) and of validation text (test
    /// split).
    train_chars: usize,
    val_chars: usize,
    model: ModelConfig,
    /// batch_size = number of parallel streams.
    train: TrainConfig,
    /// Truncated BPTT window of the main runs.
    bptt: usize,
    /// Windows compared in the perplexity-vs-window sweep.
    bptt_windows: Vec<usize>,
    /// Steps between samples written during training.
    sample_every: usize,
    temperatures: Vec<f64>,
    sample_chars: usize,
}

impl Default for ReviewsSection {
    fn default() -> Self {
        ReviewsSection {
            enabled: true,
            path: PathBuf::from("data/aclImdb_v1.tar.gz"),
            train_chars: 2_000_000,
            val_chars: 200_000,
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            bptt: 100,
            bptt_windows: vec![10, 25, 50, 100],
            sample_every: 100,
            temperatures: vec![0.2, 0.5, 0.8, 1.0, 1.3],
            sample_chars: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GenerateConfig {
    cells: Vec<CellKind>,
    seed: u64,
    names: NamesSection,
    reviews: ReviewsSection,
    output: OutputConfig,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            cells: CellKind::ALL.to_vec(),
            seed: 0,
            names: NamesSection::default(),
            reviews: ReviewsSection::default(),
            output: OutputConfig::default(),
        }
    }
}

impl Outputs for GenerateConfig {
    fn output(&self) -> &OutputConfig {
        &self.output
    }
}

impl Validate for GenerateConfig {
    fn validate(&self, c: &mut Checker) {
        c.nonempty("cells", &self.cells);
        c.nested("names", &self.names.model);
        c.nested("names", &self.names.train);
        c.nested("reviews", &self.reviews.model);
        c.nested("reviews", &self.reviews.train);
        c.check(!self.names.model.bidirectional, "names.model.bidirectional", true, "must be false for generation");
        c.check(!self.reviews.model.bidirectional, "reviews.model.bidirectional", true, "must be false for generation");
        c.positive("names.temperature", self.names.temperature);
        c.positive("reviews.bptt", self.reviews.bptt);
        for &w in &self.reviews.bptt_windows {
            c.positive("reviews.bptt_windows", w);
        }
        c.check(!self.reviews.train.shuffle, "reviews.train.shuffle", true, "must be false: windows are read in order");
    }
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(run)
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Sample { run, language, start, temperature, top_k, greedy, count, seed }) = &cli.cmd {
        let device = cli.common.setup()?;
        let (lm, classes, _vs) = load_names_lm(run, device)?;
        let how = if *greedy { Pick::Greedy } else { Pick::Sample { temperature: *temperature, top_k: *top_k } };
        let mut rng = Rng::derived(*seed, "sample");
        let lang = language_id(&classes, language)?;
        for _ in 0..if *greedy { 1 } else { *count } {
            println!("{}", sample_name(&lm, lang, start, how, &mut rng)?);
        }
        return Ok(());
    }
    let (cfg, device, root): (GenerateConfig, _, _) = cli.common.start(DEFAULT_CONFIG)?;
    let dir = root.join(EXPERIMENT);
    let mut metas = Vec::new();
    for &cell in &cfg.cells {
        metas.push(names_run(&cfg, cell, &root, device, cli.common.overwrite)?);
    }
    if cfg.reviews.enabled {
        let reviews = read_reviews(&cfg.reviews.path)?;
        let train_text: Vec<&str> = reviews.iter().filter(|r| !r.test).map(|r| r.text.as_str()).collect();
        let val_text: Vec<&str> = reviews.iter().filter(|r| r.test).map(|r| r.text.as_str()).collect();
        let train_ids = text::review_text(&train_text, cfg.reviews.train_chars, cfg.seed);
        let val_ids = text::review_text(&val_text, cfg.reviews.val_chars, cfg.seed);
        let mut windows = vec![cfg.reviews.bptt];
        windows.extend(cfg.reviews.bptt_windows.iter().filter(|&&w| w != cfg.reviews.bptt));
        for &w in &windows {
            for &cell in &cfg.cells {
                let main = w == cfg.reviews.bptt;
                metas.push(reviews_run(
                    &cfg,
                    cell,
                    w,
                    main,
                    &train_ids,
                    &val_ids,
                    &root,
                    device,
                    cli.common.overwrite,
                )?);
            }
        }
    }
    let results =
        ["val_ppl", "val_bpc", "test_ppl", "novel_frac", "language_match", "best_epoch", "n_params", "train_s"];
    rnnlab::metrics::write_summary(&dir.join("summary.csv"), &metas, &["model", "task", "bptt"], &results)?;
    charts(&root, &metas)?;
    for m in &metas {
        let r = |k: &str| m.result.get(k).map_or("-".into(), |v| format!("{v:.3}"));
        println!(
            "{:<26} val ppl {:>7}  bpc {:>6}  novel {:>6}  language match {:>6}",
            m.run,
            r("val_ppl"),
            r("val_bpc"),
            r("novel_frac"),
            r("language_match")
        );
    }
    println!("wrote {} (summary.csv, samples, charts)", dir.display());
    Ok(())
}

/// Perplexity and bits per character from a mean cross-entropy in nats.
fn ppl_bpc(loss: f64) -> (f64, f64) {
    (loss.exp(), loss / std::f64::consts::LN_2)
}

fn load_names_lm(run: &Path, device: Device) -> Result<(LanguageModel, Vec<String>, nn::VarStore)> {
    let model: ModelConfig = rnnlab::checkpoint::config_section(run, "names.model")?;
    let classes = rnnlab::checkpoint::classes(run)?;
    let mut vs = nn::VarStore::new(device);
    let lm = LanguageModel::new(&vs.root(), &model, text::NAME_VOCAB, classes.len() as i64, false);
    rnnlab::checkpoint::load_weights(&mut vs, run)?;
    Ok((lm, classes, vs))
}

fn names_run(cfg: &GenerateConfig, cell: CellKind, root: &Path, device: Device, overwrite: bool) -> Result<Meta> {
    let s = &cfg.names;
    let mut run_cfg = cfg.clone();
    run_cfg.cells = vec![cell];
    run_cfg.reviews.enabled = false;
    let model = ModelConfig { cell, ..s.model.clone() };
    let train = TrainConfig { seed: cfg.seed, checkpoint: true, ..s.train.clone() };
    // Exactly what runs (`generate sample` reads names.model back).
    run_cfg.names.model = model.clone();
    run_cfg.names.train = train.clone();
    let yaml = config::to_yaml(&run_cfg)?;
    let point = Point {
        arch: Arch::LanguageModel { n_cond: 18, stateful: false },
        root: root.to_path_buf(),
        experiment: EXPERIMENT.into(),
        run: format!("names-{cell}-s{}", cfg.seed),
        config_yaml: yaml,
        model,
        train,
        probe: ProbeConfig::default(),
        tags: BTreeMap::from([("task".into(), "names".into())]),
        device,
        overwrite,
    };
    let train_names = RefCell::new(Vec::new());
    let mut load = || -> Result<Dataset> {
        let (ds, names) = text::names_lm(&s.data, cfg.seed)?;
        *train_names.borrow_mut() = names;
        Ok(ds)
    };
    let mut after = |m: &Built, ds: &Dataset, run: &mut RunDir, out: &Outcome| -> Result<()> {
        let Built::Lm(lm) = m else { return Ok(()) };
        run.write("classes.txt", (ds.classes.join("\n") + "\n").as_bytes())?;
        for split in ["val", "test"] {
            if let Some(&loss) = out.result.get(&format!("{split}_loss")) {
                let (ppl, bpc) = ppl_bpc(loss);
                run.meta.result.insert(format!("{split}_ppl"), ppl);
                run.meta.result.insert(format!("{split}_bpc"), bpc);
            }
        }
        let known: HashSet<String> = train_names.borrow().iter().cloned().collect();
        let classifier = match &s.classifier {
            Some(p) if p.join("model.safetensors").exists() => Some(load_classifier(p, device)?),
            Some(p) => {
                eprintln!(
                    "names.classifier {}: no trained classifier there (run `make names`); language match skipped",
                    p.display()
                );
                None
            }
            None => None,
        };
        let mut rng = Rng::derived(cfg.seed, "sample");
        let how = Pick::Sample { temperature: s.temperature, top_k: None };
        let (mut lines, mut novel, mut matched, mut total) = (String::new(), 0, 0, 0);
        for (lang, name) in ds.classes.iter().enumerate() {
            let sampled: Vec<String> = (0..s.samples_per_language)
                .map(|_| sample_name(lm, lang as i64, "", how, &mut rng))
                .collect::<Result<_>>()?;
            novel += sampled.iter().filter(|n| !known.contains(*n)).count();
            total += sampled.len();
            if let Some((c, classes)) = &classifier {
                let pred = classify(c, &sampled)?;
                matched += pred.iter().filter(|&&p| classes[p as usize] == *name).count();
            }
            lines += &format!("{name}: {}\n", sampled.join(", "));
        }
        run.write("samples.txt", lines.as_bytes())?;
        run.meta.result.insert("novel_frac".into(), novel as f64 / total.max(1) as f64);
        if classifier.is_some() {
            run.meta.result.insert("language_match".into(), matched as f64 / total.max(1) as f64);
        }
        Ok(())
    };
    train_point(point, &mut load, Hooks::after(&mut after))
}

fn load_classifier(run: &Path, device: Device) -> Result<(Classifier, Vec<String>)> {
    let model = rnnlab::checkpoint::model_config(run)?;
    let classes = rnnlab::checkpoint::classes(run)?;
    let mut vs = nn::VarStore::new(device);
    let c = Classifier::new(&vs.root(), &model, names::VOCAB, classes.len() as i64);
    rnnlab::checkpoint::load_weights(&mut vs, run)?;
    Ok((c, classes))
}

fn classify(c: &Classifier, names_: &[String]) -> Result<Vec<i64>> {
    let ex: Vec<Example> = names_
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| Ok(Example { tokens: names::encode(n)?, label: 0 }))
        .collect::<Result<_>>()?;
    if ex.is_empty() {
        return Ok(vec![]);
    }
    let device = c.rnn.weights[0][0].device();
    let split = Split::new("samples", &ex, Pad::Post).to_device(device);
    Ok(Vec::try_from(c.predict_proba(&split, 256).argmax(-1, false))?)
}

#[allow(clippy::too_many_arguments)]
fn reviews_run(
    cfg: &GenerateConfig,
    cell: CellKind,
    bptt: usize,
    main: bool,
    train_ids: &[i64],
    val_ids: &[i64],
    root: &Path,
    device: Device,
    overwrite: bool,
) -> Result<Meta> {
    let s = &cfg.reviews;
    let mut run_cfg = cfg.clone();
    run_cfg.cells = vec![cell];
    run_cfg.reviews.bptt = bptt;
    run_cfg.reviews.bptt_windows = vec![bptt];
    let model = ModelConfig { cell, ..s.model.clone() };
    let train = TrainConfig { seed: cfg.seed, shuffle: false, bucket: false, ..s.train.clone() };
    run_cfg.reviews.model = model.clone();
    run_cfg.reviews.train = train.clone();
    let name = format!("reviews-{cell}-bptt{bptt}-s{}", cfg.seed);
    let path = root.join(EXPERIMENT).join(&name);
    let point = Point {
        arch: Arch::LanguageModel { n_cond: 0, stateful: true },
        root: root.to_path_buf(),
        experiment: EXPERIMENT.into(),
        run: name,
        config_yaml: config::to_yaml(&run_cfg)?,
        model,
        train: train.clone(),
        probe: ProbeConfig::default(),
        tags: BTreeMap::from([("task".into(), "reviews".into()), ("bptt".into(), bptt.to_string())]),
        device,
        overwrite,
    };
    let streams = train.batch_size;
    let mut load = || -> Result<Dataset> {
        Ok(Dataset {
            train: text::stream_split("train", train_ids, streams, bptt)?,
            val: Some(text::stream_split("val", val_ids, streams, bptt)?),
            test: None,
            vocab: Chars::VOCAB,
            classes: vec![],
        })
    };
    let log = RefCell::new(String::new());
    let mut during = |m: &Built, step: usize| -> Result<()> {
        let Built::Lm(lm) = m else { return Ok(()) };
        let mut rng = Rng::derived(cfg.seed, "sample");
        let text = sample_text(lm, "The movie ", 200, Pick::Sample { temperature: 0.8, top_k: None }, &mut rng)?;
        log.borrow_mut().push_str(&format!("--- step {step} (temperature 0.8) ---\n{text}\n\n"));
        write_atomic(&path.join("samples_during_training.txt"), log.borrow().as_bytes())
    };
    let mut after = |m: &Built, _: &Dataset, run: &mut RunDir, out: &Outcome| -> Result<()> {
        let Built::Lm(lm) = m else { return Ok(()) };
        if let Some(&loss) = out.result.get("val_loss") {
            let (ppl, bpc) = ppl_bpc(loss);
            run.meta.result.insert("val_ppl".into(), ppl);
            run.meta.result.insert("val_bpc".into(), bpc);
        }
        if !main {
            return Ok(());
        }
        let mut lines = String::new();
        for &t in &s.temperatures {
            let mut rng = Rng::derived(cfg.seed, "sample");
            let text =
                sample_text(lm, "The movie ", s.sample_chars, Pick::Sample { temperature: t, top_k: None }, &mut rng)?;
            lines += &format!("--- temperature {t} ---\n{text}\n\n");
        }
        run.write("samples.txt", lines.as_bytes())?;
        activation_map(lm, val_ids, &run.path.join("activations"), cell)?;
        Ok(())
    };
    let hooks = if main {
        Hooks { after: Some(&mut after), during: Some(&mut during), every: s.sample_every }
    } else {
        Hooks::after(&mut after)
    };
    train_point(point, &mut load, hooks)
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
    let corr = |a: &[f64], b: &[f64]| -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        if va > 0.0 && vb > 0.0 {
            cov / (va * vb).sqrt()
        } else {
            0.0
        }
    };
    let mut blocks = Vec::new();
    for (feature, f) in [
        ("inside quotes", &f_quote),
        ("characters since the last full stop or line break", &f_col),
        ("space (word boundary)", &f_space),
    ] {
        let (unit, r) = acts
            .iter()
            .enumerate()
            .map(|(u, a)| (u, corr(a, f)))
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

fn charts(root: &Path, metas: &[Meta]) -> Result<()> {
    let dir = root.join(EXPERIMENT);
    for (task, title) in [("names", "Names (conditioned on language)"), ("reviews", "IMDB reviews, character level")] {
        let runs: Vec<&Meta> = metas.iter().filter(|m| m.tags.get("task").map(String::as_str) == Some(task)).collect();
        let main_bptt = runs.iter().filter_map(|m| m.tags.get("bptt")).next().cloned();
        let mut series = Vec::new();
        for m in runs.iter().filter(|m| m.tags.get("bptt") == main_bptt.as_ref()) {
            let Ok(cell) = CellKind::parse(m.tags.get("model").map(String::as_str).unwrap_or("")) else { continue };
            let rows: Vec<MetricRow> = read_csv(&dir.join(&m.run).join("metrics.csv"))?;
            let pts = rows
                .iter()
                .filter(|r| r.split == "val" && r.status == "ok")
                .map(|r| (r.epoch as f64, r.loss.exp()))
                .collect();
            series
                .push(Series::new(cell.label(), cell_color(cell), pts).markers().width(rnnlab::plot::cell_width(cell)));
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
        let t = match &main_bptt {
            Some(w) => format!("{title}: validation perplexity per epoch (BPTT window {w})"),
            None => format!("{title}: validation perplexity per epoch"),
        };
        Figure::new(t, vec![panel]).save(&dir.join(format!("{task}_val_perplexity")))?;
    }
    let reviews: Vec<Meta> =
        metas.iter().filter(|m| m.tags.get("task").map(String::as_str) == Some("reviews")).cloned().collect();
    if reviews.iter().filter_map(|m| m.tags.get("bptt")).collect::<HashSet<_>>().len() > 1 {
        let panel = Panel {
            x_label: "truncated BPTT window (characters, log scale)".into(),
            y_label: "validation perplexity per character".into(),
            log_x: true,
            series: rnnlab::charts::metric_vs(&reviews, "bptt", "val_ppl"),
            ..Default::default()
        };
        Figure::new("IMDB character model: validation perplexity vs BPTT window", vec![panel])
            .save(&dir.join("perplexity_vs_bptt"))?;
    }
    Ok(())
}
