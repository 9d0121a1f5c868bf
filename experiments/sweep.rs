//! IMDB sequence-length sweep — expected result: in `distance` mode the vanilla RNN is at chance (0.496) once 50
//! filler steps follow the review's first 50 tokens; with the default budget GRU and LSTM give out soon after
//! (GRU 0.61 ± 0.09 at L = 100) while the bag of words holds 0.744; in `truncate` mode GRU reaches 0.834 at
//! L = 1000, LSTM 0.799, RNN 0.630; `min_len` refuses L = 1000 (58 training reviews) and says so.
//!
//! Points: every (mode, L, seed, model) in the config, each its own run folder in results/sweep_imdb/, plus a
//! bag-of-words logistic regression on the same inputs as a reference. Finished runs are skipped on a rerun (a
//! killed sweep loses at most the run in flight); `--shard i/n` runs every n-th point (a cluster job array can
//! run the shards); `--merge-only` rebuilds sweep.csv and the charts from whatever run folders exist.
use anyhow::{bail, Result};
use clap::Parser;
use rnnlab::charts::metric_vs;
use rnnlab::cli::Common;
use rnnlab::config::{CellKind, Checker, Experiment, SweepSection};
use rnnlab::data::imdb::{self, ImdbConfig, Mode};
use rnnlab::data::Dataset;
use rnnlab::experiment::{train_point, Arch, Hooks, Point};
use rnnlab::metrics::write_summary;
use rnnlab::plot::{Figure, Panel, Series, BASELINE_GREY};
use rnnlab::run::{list_runs, Meta};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

const EXPERIMENT: &str = "sweep_imdb";
const DEFAULT_CONFIG: &str = "configs/imdb_sweep.yaml";

#[derive(Parser)]
#[command(about = "IMDB: accuracy of RNN, GRU and LSTM as reviews are cut to length L (three modes); resumable")]
struct Cli {
    #[command(flatten)]
    common: Common,
    /// Run only shard I of N (1-based): every N-th point starting at the I-th.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Train nothing: rebuild sweep.csv and the charts from the run folders present.
    #[arg(long)]
    merge_only: bool,
}

type SweepConfig = Experiment<ImdbConfig, Sweep>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Sweep {
    modes: Vec<Mode>,
    lengths: Vec<usize>,
    cells: Vec<CellKind>,
    seeds: Vec<u64>,
    /// Also train the bag-of-words reference at every point.
    baseline: bool,
    /// Learning rate of the bag-of-words model.
    baseline_lr: f64,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            modes: vec![Mode::Truncate, Mode::MinLen, Mode::Distance],
            lengths: vec![10, 20, 50, 100, 200, 500, 1000],
            cells: CellKind::ALL.to_vec(),
            seeds: vec![0, 1, 2],
            baseline: true,
            baseline_lr: 0.01,
        }
    }
}

impl SweepSection<ImdbConfig> for Sweep {
    fn validate(&self, _: &ImdbConfig, c: &mut Checker) {
        c.nonempty("sweep.modes", &self.modes);
        c.nonempty("sweep.lengths", &self.lengths);
        c.nonempty("sweep.seeds", &self.seeds);
        for &l in &self.lengths {
            c.positive("sweep.lengths", l);
        }
        c.check(self.baseline_lr > 0.0, "sweep.baseline_lr", self.baseline_lr, "must be > 0");
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Truncate => "truncate",
        Mode::MinLen => "min_len",
        Mode::Distance => "distance",
    }
}

/// `i/n` → (i, n), 1 <= i <= n.
fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--shard {s}: expected I/N with 1 <= I <= N, e.g. --shard 2/4");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(run)
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let (cfg, device, root): (SweepConfig, _, _) = cli.common.start(DEFAULT_CONFIG)?;
    let shard = cli.shard.as_deref().map(parse_shard).transpose()?;
    if !cli.merge_only {
        run_points(&cfg, &root, device, shard, cli.common.overwrite)?;
    }
    let metas = list_runs(&root, EXPERIMENT)?;
    if metas.is_empty() {
        bail!("no runs under {}", root.join(EXPERIMENT).display());
    }
    let results = rnnlab::metrics::CLASSIFIER_RESULTS;
    write_summary(&root.join(EXPERIMENT).join("sweep.csv"), &metas, &["model", "mode", "seq_len"], &results)?;
    charts(&root, &metas, &cfg)?;
    println!(
        "wrote {}/sweep.csv and accuracy_vs_length_<mode> charts ({} runs)",
        root.join(EXPERIMENT).display(),
        metas.len()
    );
    Ok(())
}

fn run_points(
    cfg: &SweepConfig,
    root: &Path,
    device: tch::Device,
    shard: Option<(usize, usize)>,
    overwrite: bool,
) -> Result<()> {
    // Every point in a fixed order; a shard takes every n-th.
    let mut models: Vec<Option<CellKind>> = cfg.sweep.cells.iter().map(|&c| Some(c)).collect();
    if cfg.sweep.baseline {
        models.push(None);
    }
    let mut points = Vec::new();
    for &mode in &cfg.sweep.modes {
        for &l in &cfg.sweep.lengths {
            for &seed in &cfg.sweep.seeds {
                for &m in &models {
                    points.push((mode, l, seed, m));
                }
            }
        }
    }
    let total = points.len();
    if let Some((i, n)) = shard {
        points = points.into_iter().enumerate().filter(|(k, _)| k % n == i - 1).map(|p| p.1).collect();
        eprintln!("shard {i}/{n}: {} of {total} points", points.len());
    }
    let mut encoded: Option<imdb::Encoded> = None;
    let mut cached: Option<((Mode, usize, u64), Dataset)> = None;
    let mut failed = 0;
    for (k, &(mode, l, seed, m)) in points.iter().enumerate() {
        let mut run_cfg = cfg.clone();
        run_cfg.data.mode = mode;
        run_cfg.data.length = l;
        run_cfg.train.seed = seed;
        let model_name = m.map_or("bow", CellKind::name);
        if let Some(c) = m {
            run_cfg.model.cell = c;
        } else {
            run_cfg.train.lr = cfg.sweep.baseline_lr;
        }
        run_cfg.sweep = Sweep {
            modes: vec![mode],
            lengths: vec![l],
            seeds: vec![seed],
            cells: m.into_iter().collect(),
            baseline: m.is_none(),
            ..cfg.sweep.clone()
        };
        let run = format!("{}-L{l}-{model_name}-s{seed}", mode_name(mode));
        eprintln!("[{}/{}] {run}", k + 1, points.len());
        let point = Point {
            arch: if m.is_some() { Arch::Recurrent } else { Arch::BagOfWords { ignore: vec![imdb::FILLER] } },
            tags: BTreeMap::from([("mode".into(), mode_name(mode).into()), ("seq_len".into(), l.to_string())]),
            ..Point::new(&run_cfg, root, EXPERIMENT, &run, device, overwrite)?
        };
        let mut load = || -> Result<Dataset> {
            if encoded.is_none() {
                let t = Instant::now();
                let (enc, hit) = imdb::load_encoded(
                    &cfg.data.path,
                    Some(&cfg.data.cache_dir.clone().unwrap_or_else(imdb::default_cache_dir)),
                )?;
                eprintln!(
                    "IMDB: {} reviews {} in {:.2} s",
                    enc.docs.len(),
                    if hit { "from the cache" } else { "read and tokenised" },
                    t.elapsed().as_secs_f64()
                );
                encoded = Some(enc);
            }
            let key = (mode, l, seed);
            if cached.as_ref().is_none_or(|c| c.0 != key) {
                cached = None;
                let ds = run_cfg.data.dataset(encoded.as_ref().unwrap(), seed)?;
                cached = Some((key, ds));
            }
            Ok(cached.as_ref().unwrap().1.shallow_clone())
        };
        if let Err(e) = train_point(point, &mut load, Hooks::default()) {
            eprintln!("error: {run}: {e:#}");
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} run(s) failed; see their meta.yaml (a rerun retries them)");
    }
    Ok(())
}

fn charts(root: &Path, metas: &[Meta], cfg: &SweepConfig) -> Result<()> {
    let dir = root.join(EXPERIMENT);
    for mode in [Mode::Truncate, Mode::MinLen, Mode::Distance] {
        let name = mode_name(mode);
        let ms: Vec<Meta> =
            metas.iter().filter(|m| m.tags.get("mode").map(String::as_str) == Some(name)).cloned().collect();
        let done: Vec<Meta> = ms.iter().filter(|m| m.result.contains_key("test_acc")).cloned().collect();
        if done.is_empty() {
            continue;
        }
        let mut series = metric_vs(&done, "seq_len", "test_acc");
        // The bag-of-words reference: mean over seeds at each L.
        let bow = rnnlab::metrics::aggregate(
            done.iter()
                .filter(|m| m.tags.get("model").map(String::as_str) == Some("bow"))
                .filter_map(|m| Some((m.tags.get("seq_len")?.parse::<i64>().ok()?, *m.result.get("test_acc")?))),
        );
        if !bow.is_empty() {
            let pts = bow.iter().map(|(l, v)| (*l as f64, v.0)).collect();
            series.push(
                Series::new("bag of words (same tokens)", rnnlab::plot::OTHER[0], pts).dashed().width(2).markers(),
            );
        }
        series.push(rnnlab::charts::baseline(
            "chance (50 %)",
            0.5,
            10.0,
            *cfg.sweep.lengths.iter().max().unwrap_or(&1000) as f64,
        ));
        let refused: Vec<String> = ms
            .iter()
            .filter(|m| {
                m.status == rnnlab::run::Status::Refused && m.tags.get("model").map(String::as_str) != Some("bow")
            })
            .filter_map(|m| m.tags.get("seq_len").cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let seeds = done.iter().map(|m| m.seed).collect::<std::collections::BTreeSet<_>>().len();
        let what = match mode {
            Mode::Truncate => "first L tokens of every review".to_string(),
            Mode::MinLen => "only reviews with >= L tokens".to_string(),
            Mode::Distance => format!("first {} tokens, then filler up to L", cfg.data.distance_k),
        };
        let note =
            if refused.is_empty() { String::new() } else { format!("; too few reviews at L = {}", refused.join(", ")) };
        let panel = Panel {
            title: format!("{what}{note}"),
            x_label: "sequence length L (tokens, log scale)".into(),
            y_label: "test accuracy".into(),
            log_x: true,
            y_range: Some((0.45, 1.0)),
            series,
            ..Default::default()
        };
        let title = format!("IMDB {name}: test accuracy vs L (mean ± std over {seeds} seed(s))");
        Figure::new(title, vec![panel]).save(&dir.join(format!("accuracy_vs_length_{name}")))?;
        // Training-set size behind each point (min_len shrinks it).
        if mode == Mode::MinLen {
            let n = rnnlab::metrics::aggregate(
                ms.iter()
                    .filter_map(|m| Some((m.tags.get("seq_len")?.parse::<i64>().ok()?, *m.result.get("n_train")?))),
            );
            let pts: Vec<(f64, f64)> = n.iter().map(|(l, v)| (*l as f64, v.0.max(1.0))).collect();
            let panel = Panel {
                title: format!("refused below data.min_examples = {}", cfg.data.min_examples),
                x_label: "sequence length L (tokens, log scale)".into(),
                y_label: "training reviews with >= L tokens (log scale)".into(),
                log_x: true,
                log_y: true,
                series: vec![Series::new("n_train", BASELINE_GREY, pts).markers()],
                ..Default::default()
            };
            Figure::new("IMDB min_len: training reviews available at each L", vec![panel])
                .save(&dir.join("min_len_counts"))?;
        }
    }
    Ok(())
}
