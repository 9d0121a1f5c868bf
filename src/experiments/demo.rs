//! Offline demo — expected result: the vanilla RNN solves L ≤ 100 but falls to 0.53 at L = 150 and to 0.251 at
//! L = 200 (chance 0.25), while GRU and LSTM stay at 1.000 up to L = 200.
//!
//! Task (no download): the class is the first token (4 classes), followed by noise tokens up to length L; the
//! model reads the whole sequence and answers at the last step. RNN, GRU and LSTM are trained for each L in the
//! sweep; the gradient probe records ‖∂L/∂x_t‖ against distance at init and after training.
//!
//! Outputs in results/demo/: one run folder per (model, L, seed), summary.csv, and three charts:
//! accuracy_vs_length, training_curves, grad_vs_distance.
use crate::charts::{baseline, grad_series, metric_vs, training_curves};
use crate::data::synthetic::SyntheticConfig;
use crate::plot::{Figure, Panel};
use crate::results::rows::SplitName;
use crate::results::summary::{table, Column};
use crate::results::{Meta, Tag};
use crate::sweep::{Cfg, Columns, Experiment, Finish};
use anyhow::Result;

#[derive(Default)]
pub struct Demo;

impl Experiment for Demo {
    type Data = SyntheticConfig;
    type Own = ();
    type PerRun = ();

    fn columns(&self) -> Columns {
        let results =
            ["test_acc", "test_loss", "val_acc", "best_epoch", "steps", "n_params", "train_s", "train_seq_per_s"];
        Columns { keys: vec!["model", "seq_len"], results: results.to_vec() }
    }

    fn tags(&self, cfg: &Cfg<Self>) -> Vec<(String, Tag)> {
        vec![("seq_len".into(), Tag::from(cfg.data.length))]
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (root, dir, cfg, runs) = (f.root, &f.dir, f.cfg, f.runs);
        let chance = 1.0 / cfg.data.classes as f64;
        let lengths: Vec<f64> = runs.iter().filter_map(|m| m.number("seq_len")).collect();
        let (x0, x1) = lengths.iter().fold((f64::INFINITY, 0f64), |(a, b), &l| (a.min(l), b.max(l)));
        let mut series = metric_vs(runs, "seq_len", "test_acc");
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
        training_curves(root, runs, "seq_len", "L", SplitName::Val, title)?.save(&dir.join("training_curves"))?;
        let longest: Vec<Meta> = runs.iter().filter(|m| m.number("seq_len") == Some(x1)).cloned().collect();
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
        let cols = Column::per_value(runs, "seq_len", "L", "test_acc");
        Ok(table("test accuracy", runs, &["model"], &cols)
            + "charts: accuracy_vs_length, training_curves, grad_vs_distance (.png, .svg)\n")
    }
}
