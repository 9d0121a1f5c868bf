//! Vanishing and exploding gradients — expected result: after training, ‖∂L/∂x_t‖ of the vanilla RNN falls by
//! ×0.835 per step of distance from the readout, GRU's by ×0.986 and LSTM's by ×0.926; without clipping, a
//! vanilla RNN with large recurrent weights never learns the task that it learns perfectly when clipped; a
//! forget-gate bias of 1 makes the LSTM's gradient at init reach much further back.
//!
//! Tasks (the `task` axis of the sweep): the synthetic long-range task (as the demo) and IMDB (first 200 tokens)
//! for each cell, with the gradient probe at init and every `probe.every` steps; `exploding`, a vanilla RNN with
//! large recurrent weights and SGD, clipped and not; `init`, the LSTM at initialisation (no training) with
//! different forget-gate biases. Outputs in results/vanishing/: run folders (grad_norms.csv, steps.csv),
//! decay_rates.csv, and charts grad_vs_distance_<task>, hidden_grad_vs_distance_<task>, heatmap_<task>_<model>,
//! decay_rates, exploding, forget_bias.
use crate::charts::grad_series;
use crate::config::{CellKind, Checker, Validate};
use crate::data::imdb::ImdbConfig;
use crate::data::synthetic::SyntheticConfig;
use crate::data::{Dataset, Source};
use crate::plot::{cell_color, Figure, Heatmap, Panel, Series, Table, BASELINE_GREY};
use crate::results::rows::{self, GradRow};
use crate::results::{read_config, Meta, Status};
use crate::stats::decay_fit;
use crate::sweep::{Cfg, Columns, Experiment, Finish};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which data section a run reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    #[default]
    Synthetic,
    Imdb,
}

/// Both data sources; `source` says which one a run reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VanishingData {
    pub source: Which,
    pub synthetic: SyntheticConfig,
    pub imdb: ImdbConfig,
}

impl Source for VanishingData {
    fn load(&self, seed: u64) -> Result<Dataset> {
        match self.source {
            Which::Synthetic => self.synthetic.load(seed),
            Which::Imdb => self.imdb.load(seed),
        }
    }

    fn check(&self) -> Result<()> {
        match self.source {
            Which::Synthetic => Ok(()),
            Which::Imdb => self.imdb.check(),
        }
    }
}

impl Validate for VanishingData {
    fn validate(&self, c: &mut Checker) {
        c.nested("data", "data.synthetic", &self.synthetic);
        c.nested("data", "data.imdb", &self.imdb);
    }
}

#[derive(Default)]
pub struct Vanishing;

impl Experiment for Vanishing {
    type Data = VanishingData;
    type Own = ();
    type PerRun = ();

    fn columns(&self) -> Columns {
        let results = vec!["test_acc", "val_acc", "best_epoch", "train_s", "probe_s"];
        Columns { keys: vec!["task", "model", "clip"], results }
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (root, dir, runs) = (f.root, &f.dir, f.runs);
        let mut decay = Vec::new();
        for task in ["synthetic", "imdb"] {
            let metas: Vec<Meta> = runs.iter().filter(|m| m.tag("task") == task).cloned().collect();
            if !metas.is_empty() {
                decay.extend(task_charts(root, dir, task, &metas)?);
            }
        }
        let mut text = String::new();
        if !decay.is_empty() {
            write_decay(dir, &decay)?;
            text += "‖∂L/∂x_t‖ shrinks by this factor per step of distance to the readout (R² of the fit)\n";
            text += &format!("{:<10} {:<6} {:>15} {:>15}\n", "task", "model", "at init", "trained");
            for r in decay.iter().filter(|r| r.quantity == "dl_dx" && r.when == "init") {
                let trained = decay
                    .iter()
                    .find(|t| t.task == r.task && t.model == r.model && t.quantity == "dl_dx" && t.when == "trained");
                let cell = |d: &DecayRow| format!("×{:.3} ({:.2})", d.factor_per_step, d.r2);
                let label = r.model.parse::<CellKind>().map_or(r.model.clone(), |c| c.label().to_string());
                text +=
                    &format!("{:<10} {:<6} {:>15} {:>15}\n", r.task, label, cell(r), trained.map_or("-".into(), cell));
            }
        }
        let exploding: Vec<&Meta> = runs.iter().filter(|m| m.tag("task") == "exploding").collect();
        if !exploding.is_empty() {
            exploding_chart(root, dir, &exploding)?;
        }
        let init: Vec<&Meta> = runs.iter().filter(|m| m.tag("task") == "init").collect();
        if !init.is_empty() {
            forget_bias_chart(root, dir, &init)?;
        }
        text += "charts: grad_vs_distance_<task>, hidden_grad_vs_distance_<task>, heatmap_<task>_<model>, decay_rates, exploding, forget_bias (.png, .svg)\n";
        Ok(text)
    }
}

#[derive(Serialize)]
struct DecayRow {
    task: String,
    model: String,
    quantity: String,
    when: String,
    step: usize,
    slope_log10_per_step: f64,
    factor_per_step: f64,
    r2: f64,
    probe_share_of_train_time: f64,
}

fn task_charts(root: &Path, dir: &Path, task: &str, metas: &[Meta]) -> Result<Vec<DecayRow>> {
    let what = if task == "imdb" { "IMDB, first 200 tokens" } else { "synthetic long-range task" };
    for (quantity, stem, label) in
        [("dl_dx", "grad_vs_distance", "‖∂L/∂x_t‖"), ("dl_dh", "hidden_grad_vs_distance", "‖∂L/∂h_t‖")]
    {
        let panel = |init: bool| -> Result<Panel> {
            Ok(Panel {
                title: if init { "at initialisation".into() } else { "after training".into() },
                x_label: "distance from the readout (steps)".into(),
                y_label: format!("mean {label} (log scale)"),
                log_y: true,
                series: grad_series(root, metas, quantity, init)?,
                ..Default::default()
            })
        };
        let (a, b) = (panel(true)?, panel(false)?);
        if a.series.iter().all(|s| s.points.is_empty()) {
            continue;
        }
        Figure::new(format!("{what}: gradient {label} vs distance from the readout"), vec![a, b])
            .save(&dir.join(format!("{stem}_{task}")))?;
    }
    let mut rows = Vec::new();
    for m in metas {
        let model = m.tag("model");
        let grads: Vec<GradRow> = rows::grads(root, m)?;
        let steps: Vec<usize> = grads.iter().map(|r| r.step).collect::<BTreeSet<_>>().into_iter().collect();
        let last = *steps.last().unwrap_or(&0);
        for quantity in ["dl_dx", "dl_dh"] {
            for (when, step) in [("init", 0), ("trained", last)] {
                let pts: Vec<(i64, f64)> = grads
                    .iter()
                    .filter(|r| r.step == step && r.quantity == quantity)
                    .map(|r| (r.distance_to_readout, r.norm))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let (slope, r2) = decay_fit(&pts);
                let share = m.result.get("probe_s").copied().unwrap_or(f64::NAN)
                    / m.result.get("train_s").copied().unwrap_or(f64::NAN);
                rows.push(DecayRow {
                    task: task.into(),
                    model: model.clone(),
                    quantity: quantity.into(),
                    when: when.into(),
                    step,
                    slope_log10_per_step: slope,
                    factor_per_step: 10f64.powf(slope),
                    r2,
                    probe_share_of_train_time: share,
                });
            }
        }
        // Heatmap: probe step × distance, log colour.
        let dl: Vec<&GradRow> = grads.iter().filter(|r| r.quantity == "dl_dx").collect();
        let max_d = dl.iter().map(|r| r.distance_to_readout).max().unwrap_or(0) as usize;
        let values: Vec<Vec<f64>> = steps
            .iter()
            .map(|&s| {
                let mut row = vec![f64::NAN; max_d + 1];
                for r in dl.iter().filter(|r| r.step == s) {
                    row[r.distance_to_readout as usize] = r.norm;
                }
                row
            })
            .collect();
        let label = m.cell().map(|c| c.label()).unwrap_or("?");
        Heatmap {
            title: format!("{label}, {what}: ‖∂L/∂x_t‖ through training"),
            x_label: "distance from the readout (steps)".into(),
            y_label: "training step".into(),
            x_ticks: (0..=max_d).map(|d| d.to_string()).collect(),
            y_ticks: steps.iter().map(|s| s.to_string()).collect(),
            values,
            log: true,
            bar_label: "mean ‖∂L/∂x_t‖ (log scale; grey = 0)".into(),
            annotate: false,
            size: (1200, 750),
        }
        .save(&dir.join(format!("heatmap_{task}_{model}")))?;
    }
    Ok(rows)
}

fn write_decay(dir: &Path, rows: &[DecayRow]) -> Result<()> {
    crate::results::write_csv(&dir.join("decay_rates.csv"), rows)?;
    let table_rows = rows
        .iter()
        .filter(|r| r.quantity == "dl_dx")
        .map(|r| {
            let color = CellKind::parse(&r.model).ok().map(cell_color);
            let cells = vec![
                r.task.clone(),
                r.model.to_uppercase(),
                r.when.clone(),
                format!("{:+.4}", r.slope_log10_per_step),
                format!("×{:.3}", r.factor_per_step),
                format!("{:.2}", r.r2),
            ];
            (color, cells)
        })
        .collect();
    Table {
        title: "Decay of ‖∂L/∂x_t‖ with distance: least-squares slope of log10(norm)".into(),
        header: ["task", "model", "when", "slope / step", "factor / step", "R²"].map(String::from).to_vec(),
        rows: table_rows,
        note: "factor / step = 10^slope: the gradient is multiplied by this for every step further from the readout"
            .into(),
    }
    .save(&dir.join("decay_rates"))
}

/// The exploding pair: the loss and the gradient norm (before clipping) per step.
fn exploding_chart(root: &Path, dir: &Path, runs: &[&Meta]) -> Result<()> {
    // One row per clip setting (gradient norm | loss), one line per seed: all vanilla RNNs, so all red.
    let mut rows: BTreeMap<String, (Vec<Series>, Vec<Series>, usize, usize)> = BTreeMap::new();
    let mut what = String::new();
    for m in runs {
        let steps = rows::steps(root, m)?;
        let cfg: Cfg<Vanishing> = read_config(root, m)?;
        what = format!(
            "vanilla RNN, W_hh × {}, {:?} lr {}, L = {}",
            cfg.model.init.recurrent_gain, cfg.train.optimizer, cfg.train.lr, cfg.data.synthetic.length
        );
        let setting = match cfg.train.clip {
            Some(c) => format!("clipped at {c}"),
            None => "no clipping".to_string(),
        };
        let acc = m.result.get("val_acc").copied().unwrap_or(f64::NAN);
        let label = "vanilla RNN, one line per seed".to_string();
        let norm = steps.iter().filter(|s| s.grad_norm.is_finite()).map(|s| (s.step as f64, s.grad_norm)).collect();
        let loss = steps.iter().filter(|s| s.loss.is_finite()).map(|s| (s.step as f64, s.loss)).collect();
        let row = rows.entry(setting).or_default();
        let color = cell_color(CellKind::Rnn);
        row.0.push(Series::new(label.clone(), color, norm).width(1));
        row.1.push(Series::new(label, color, loss).width(1));
        row.2 += 1;
        row.3 += (m.status != Status::Diverged && acc > 0.95) as usize;
    }
    let mut panels = Vec::new();
    // "no clipping" first.
    for (setting, (norm, loss, n, learned)) in rows.into_iter().rev() {
        panels.push(Panel {
            title: format!("{setting}: gradient norm before clipping"),
            x_label: "training step".into(),
            y_label: "global ‖∂L/∂θ‖ (log scale)".into(),
            log_y: true,
            series: norm,
            ..Default::default()
        });
        panels.push(Panel {
            title: format!("{setting}: training loss ({learned} of {n} seeds reach validation accuracy > 0.95)"),
            x_label: "training step".into(),
            y_label: "cross-entropy".into(),
            series: loss,
            ..Default::default()
        });
    }
    let mut fig = Figure::new(format!("Exploding gradients: {what}, with and without clipping"), panels);
    fig.cols = 2;
    fig.size = (1400, 1000);
    fig.save(&dir.join("exploding"))
}

/// LSTM gradients at init (no training) with different forget-gate biases.
fn forget_bias_chart(root: &Path, dir: &Path, runs: &[&Meta]) -> Result<()> {
    let mut series = Vec::new();
    let mut length = 0;
    for (i, m) in runs.iter().enumerate() {
        let cfg: Cfg<Vanishing> = read_config(root, m)?;
        length = cfg.data.synthetic.length;
        let b = cfg.model.init.forget_bias.map_or("none (uniform)".to_string(), |b| b.to_string());
        let pts = rows::grads(root, m)?
            .iter()
            .filter(|r| r.quantity == "dl_dx")
            .map(|r| (r.distance_to_readout as f64, r.norm))
            .collect();
        let s = Series::new(format!("LSTM, forget-gate bias {b}"), cell_color(CellKind::Lstm), pts).width(2);
        series.push(match i {
            0 => s,
            1 => s.dashed(),
            _ => Series { color: BASELINE_GREY, ..s },
        });
    }
    let panel = Panel {
        x_label: "distance from the readout (steps)".into(),
        y_label: "mean ‖∂L/∂x_t‖ at init (log scale)".into(),
        log_y: true,
        series,
        ..Default::default()
    };
    let title = format!("LSTM at initialisation: forget-gate bias and the reach of the gradient (L = {length})");
    Figure::new(title, vec![panel]).save(&dir.join("forget_bias"))
}
