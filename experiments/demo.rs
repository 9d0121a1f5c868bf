//! Offline demo — expected result: the vanilla RNN solves L ≤ 100 but falls to 0.53 at L = 150 and to chance
//! (0.25) at L = 200, while GRU and LSTM stay at 1.000 up to L = 200.
//!
//! Task (no download): the class is the first token (4 classes), followed by noise tokens up to length L; the
//! model reads the whole sequence and answers at the last step. RNN, GRU and LSTM are trained for each L in
//! `sweep.lengths`; the gradient probe records ‖∂L/∂x_t‖ against distance at init and after training.
//!
//! Outputs in results/demo/: one run folder per (model, L, seed), summary.csv, and three charts:
//! accuracy_vs_length, training_curves, grad_vs_distance.
use anyhow::Result;
use clap::Parser;
use rnnlab::charts::{baseline, grad_series, metric_vs, training_curves};
use rnnlab::cli::Common;
use rnnlab::config::{CellKind, Checker, Experiment, SweepSection};
use rnnlab::data::synthetic::SyntheticConfig;
use rnnlab::experiment::{train_point, Hooks, Point};
use rnnlab::metrics::write_summary;
use rnnlab::plot::{Figure, Panel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const EXPERIMENT: &str = "demo";
const DEFAULT_CONFIG: &str = "configs/demo.yaml";

#[derive(Parser)]
#[command(about = "Offline demo: RNN vs GRU vs LSTM on a synthetic long-range task; writes results/demo/", long_about = None)]
struct Cli {
    #[command(flatten)]
    common: Common,
}

type DemoConfig = Experiment<SyntheticConfig, Sweep>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Sweep {
    cells: Vec<CellKind>,
    lengths: Vec<usize>,
    seeds: Vec<u64>,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep { cells: CellKind::ALL.to_vec(), lengths: vec![10, 50, 100, 200], seeds: vec![0] }
    }
}

impl SweepSection<SyntheticConfig> for Sweep {
    fn validate(&self, data: &SyntheticConfig, c: &mut Checker) {
        c.nonempty("sweep.cells", &self.cells);
        c.nonempty("sweep.lengths", &self.lengths);
        c.nonempty("sweep.seeds", &self.seeds);
        for &l in &self.lengths {
            c.check(l >= data.key_len, "sweep.lengths", l, "every length must be >= data.key_len");
        }
    }
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(run)
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let (cfg, device, root): (DemoConfig, _, _) = cli.common.start(DEFAULT_CONFIG)?;
    let mut metas = Vec::new();
    let mut failed = 0;
    for &length in &cfg.sweep.lengths {
        for &seed in &cfg.sweep.seeds {
            for &cell in &cfg.sweep.cells {
                // The exact config of this run: the sweep point written into the sections.
                let mut run_cfg = cfg.clone();
                run_cfg.data.length = length;
                run_cfg.model.cell = cell;
                run_cfg.train.seed = seed;
                run_cfg.sweep = Sweep { cells: vec![cell], lengths: vec![length], seeds: vec![seed] };
                let run = format!("{cell}-L{length}-s{seed}");
                let point = Point {
                    tags: BTreeMap::from([("seq_len".into(), length.to_string())]),
                    ..Point::new(&run_cfg, &root, EXPERIMENT, &run, device, cli.common.overwrite)?
                };
                match train_point(point, &mut || Ok(run_cfg.data.dataset(seed)), Hooks::default()) {
                    Ok(m) => metas.push(m),
                    Err(e) => {
                        // One failed run does not stop the sweep; it is marked failed in its folder.
                        eprintln!("error: {cell} L={length} seed={seed}: {e:#}");
                        failed += 1;
                    }
                }
            }
        }
    }
    let dir = root.join(EXPERIMENT);
    write_summary(
        &dir.join("summary.csv"),
        &metas,
        &["model", "seq_len"],
        &["test_acc", "test_loss", "val_acc", "best_epoch", "steps", "n_params", "train_s", "train_seq_per_s"],
    )?;
    charts(&root, &metas, &cfg)?;
    println!("{}", table(&metas));
    println!(
        "wrote {}/summary.csv and charts accuracy_vs_length, training_curves, grad_vs_distance (.png, .svg)",
        dir.display()
    );
    if failed > 0 {
        anyhow::bail!("{failed} run(s) failed; see their meta.yaml");
    }
    Ok(())
}

fn charts(root: &std::path::Path, metas: &[rnnlab::run::Meta], cfg: &DemoConfig) -> Result<()> {
    let dir = root.join(EXPERIMENT);
    let chance = 1.0 / cfg.data.classes as f64;
    let (x0, x1) = (*cfg.sweep.lengths.iter().min().unwrap() as f64, *cfg.sweep.lengths.iter().max().unwrap() as f64);
    let mut series = metric_vs(metas, "seq_len", "test_acc");
    series.push(baseline(&format!("chance ({:.0} %)", chance * 100.0), chance, x0, x1));
    let acc = Panel {
        x_label: "sequence length L (the class token is L − 1 steps before the readout)".into(),
        y_label: "test accuracy".into(),
        y_range: Some((0.0, 1.02)),
        series,
        ..Default::default()
    };
    Figure::new("Synthetic long-range task: test accuracy vs sequence length", vec![acc])
        .save(&dir.join("accuracy_vs_length"))?;
    let title = "Synthetic task: validation accuracy per epoch, one panel per sequence length";
    training_curves(root, metas, "seq_len", "L", "val", title)?.save(&dir.join("training_curves"))?;
    let longest: Vec<_> = metas.iter().filter(|m| m.tags.get("seq_len") == Some(&x1.to_string())).cloned().collect();
    if cfg.probe.enabled && !longest.is_empty() {
        let panel = |init: bool| -> Result<Panel> {
            Ok(Panel {
                title: if init { "at initialisation".into() } else { "after training".into() },
                x_label: "distance from the readout (steps)".into(),
                y_label: "mean ‖∂L/∂x_t‖ (log scale)".into(),
                log_y: true,
                series: grad_series(root, &longest, "dl_dx", init)?,
                ..Default::default()
            })
        };
        let title = format!("Gradient reaching input x_t vs distance from the readout (L = {x1})");
        Figure::new(title, vec![panel(true)?, panel(false)?]).save(&dir.join("grad_vs_distance"))?;
    }
    Ok(())
}

/// Test accuracy per model (rows) and length (columns), for the terminal.
fn table(metas: &[rnnlab::run::Meta]) -> String {
    let mut lengths: Vec<i64> = metas.iter().filter_map(|m| m.tags.get("seq_len")?.parse().ok()).collect();
    lengths.sort();
    lengths.dedup();
    let mut s = format!("{:<6}", "model");
    for l in &lengths {
        s += &format!("{:>9}", format!("L={l}"));
    }
    for cell in CellKind::ALL {
        s += &format!("\n{:<6}", cell.label());
        for l in &lengths {
            let accs: Vec<f64> = metas
                .iter()
                .filter(|m| {
                    m.tags.get("model").map(String::as_str) == Some(cell.name())
                        && m.tags.get("seq_len") == Some(&l.to_string())
                })
                .filter_map(|m| m.result.get("test_acc").copied())
                .collect();
            let (mean, _) = rnnlab::plot::mean_std(&accs);
            s += &format!("{:>9}", if accs.is_empty() { "-".into() } else { format!("{mean:.3}") });
        }
    }
    format!("test accuracy\n{s}")
}
