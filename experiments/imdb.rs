//! IMDB sentiment at one length — expected result: GRU 0.886 and LSTM 0.871 test accuracy on the first 400
//! tokens from raw text (no pretrained vectors); the vanilla RNN 0.640.
//!
//! RNN, GRU and LSTM (and the notes' variants: `2layer`, `bi`) on the official 25k/25k split, 10 % of the
//! training reviews held out for validation. Outputs in results/imdb/: run folders, summary.csv,
//! training_curves and test_accuracy charts.
use anyhow::{bail, Result};
use clap::Parser;
use rnnlab::charts::training_curves;
use rnnlab::cli::Common;
use rnnlab::config::{CellKind, Checker, Experiment, SweepSection};
use rnnlab::data::imdb::{self, ImdbConfig};
use rnnlab::data::Dataset;
use rnnlab::experiment::{train_point, Hooks, Point};
use rnnlab::metrics::write_summary;
use rnnlab::plot::{cell_color, mean_std, Bars};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

const EXPERIMENT: &str = "imdb";
const DEFAULT_CONFIG: &str = "configs/imdb.yaml";

#[derive(Parser)]
#[command(
    about = "IMDB sentiment with RNN, GRU and LSTM at one sequence length (plus 2-layer / bidirectional variants)"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
}

type ImdbExpConfig = Experiment<ImdbConfig, Runs>;

/// A model variant: the base config, or with 2 layers, or bidirectional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Variant {
    Base,
    #[serde(rename = "2layer")]
    TwoLayer,
    Bi,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Base => "base",
            Variant::TwoLayer => "2layer",
            Variant::Bi => "bi",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Runs {
    cells: Vec<CellKind>,
    seeds: Vec<u64>,
    variants: Vec<Variant>,
}

impl Default for Runs {
    fn default() -> Self {
        Runs { cells: CellKind::ALL.to_vec(), seeds: vec![0], variants: vec![Variant::Base] }
    }
}

impl SweepSection<ImdbConfig> for Runs {
    fn validate(&self, _: &ImdbConfig, c: &mut Checker) {
        c.nonempty("sweep.cells", &self.cells);
        c.nonempty("sweep.seeds", &self.seeds);
        c.nonempty("sweep.variants", &self.variants);
    }
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(run)
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let (cfg, device, root): (ImdbExpConfig, _, _) = cli.common.start(DEFAULT_CONFIG)?;
    let mut data: Option<Dataset> = None;
    let (mut metas, mut failed) = (Vec::new(), 0);
    for &variant in &cfg.sweep.variants {
        for &seed in &cfg.sweep.seeds {
            for &cell in &cfg.sweep.cells {
                let mut run_cfg = cfg.clone();
                run_cfg.model.cell = cell;
                run_cfg.train.seed = seed;
                match variant {
                    Variant::Base => {}
                    Variant::TwoLayer => run_cfg.model.layers = 2,
                    Variant::Bi => run_cfg.model.bidirectional = true,
                }
                run_cfg.sweep = Runs { cells: vec![cell], seeds: vec![seed], variants: vec![variant] };
                let run = format!("{cell}-{}-L{}-s{seed}", variant.name(), cfg.data.length);
                let point = Point {
                    tags: BTreeMap::from([
                        ("variant".into(), variant.name().into()),
                        ("seq_len".into(), cfg.data.length.to_string()),
                    ]),
                    ..Point::new(&run_cfg, &root, EXPERIMENT, &run, device, cli.common.overwrite)?
                };
                // Same data for every model of a seed; the corpus is read once (and cached on disk).
                let mut load = || -> Result<Dataset> {
                    if data.as_ref().is_none_or(|_| cfg.sweep.seeds.len() > 1) {
                        let t = Instant::now();
                        let cache = cfg.data.cache_dir.clone().unwrap_or_else(imdb::default_cache_dir);
                        let (enc, hit) = imdb::load_encoded(&cfg.data.path, Some(&cache))?;
                        let how = if hit { "from the cache" } else { "read and tokenised" };
                        eprintln!("IMDB: {} reviews {how} in {:.2} s", enc.docs.len(), t.elapsed().as_secs_f64());
                        data = Some(cfg.data.dataset(&enc, seed)?);
                    }
                    Ok(data.as_ref().unwrap().shallow_clone())
                };
                match train_point(point, &mut load, Hooks::default()) {
                    Ok(m) => metas.push(m),
                    Err(e) => {
                        eprintln!("error: {run}: {e:#}");
                        failed += 1;
                    }
                }
            }
        }
    }
    let dir = root.join(EXPERIMENT);
    let results = rnnlab::metrics::CLASSIFIER_RESULTS;
    write_summary(&dir.join("summary.csv"), &metas, &["model", "variant", "seq_len"], &results)?;
    let title = format!("IMDB, first {} tokens: validation accuracy per epoch", cfg.data.length);
    let mut fig = training_curves(&root, &metas, "seq_len", "L", "val", &title)?;
    for p in &mut fig.panels {
        p.y_range = Some((0.45, 1.0));
    }
    fig.save(&dir.join("training_curves"))?;
    // Test accuracy per model and variant.
    let variants: Vec<&str> = cfg.sweep.variants.iter().map(|v| v.name()).collect();
    let series = CellKind::ALL
        .iter()
        .filter(|c| cfg.sweep.cells.contains(c))
        .map(|&c| {
            let (m, s): (Vec<f64>, Vec<f64>) = variants
                .iter()
                .map(|v| {
                    let accs: Vec<f64> = metas
                        .iter()
                        .filter(|m| {
                            m.tags.get("model").map(String::as_str) == Some(c.name())
                                && m.tags.get("variant").map(String::as_str) == Some(v)
                        })
                        .filter_map(|m| m.result.get("test_acc").copied())
                        .collect();
                    mean_std(&accs)
                })
                .unzip();
            (c.label().to_string(), cell_color(c), m, s)
        })
        .collect();
    Bars {
        title: format!("IMDB test accuracy, first {} tokens ({} seed(s))", cfg.data.length, cfg.sweep.seeds.len()),
        y_label: "test accuracy".into(),
        categories: variants.iter().map(|v| v.to_string()).collect(),
        series,
        hlines: vec![(0.5, "chance (50 %)".into())],
        y_range: Some((0.4, 1.0)),
        log_y: false,
        size: (1000, 700),
    }
    .save(&dir.join("test_accuracy"))?;
    for m in &metas {
        println!(
            "{:<28} {:>8} test acc {:.4}",
            m.run,
            m.status.name(),
            m.result.get("test_acc").copied().unwrap_or(f64::NAN)
        );
    }
    if failed > 0 {
        bail!("{failed} run(s) failed; see their meta.yaml");
    }
    Ok(())
}
