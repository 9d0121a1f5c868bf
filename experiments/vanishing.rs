//! Vanishing and exploding gradients — expected result: after training, ‖∂L/∂x_t‖ of the vanilla RNN falls by
//! ×0.83 per step of distance from the readout, GRU's by ×0.99 and LSTM's by ×0.94–0.96; without clipping, a
//! vanilla RNN with large recurrent weights never learns the task that it learns perfectly when clipped; a
//! forget-gate bias of 1 makes the LSTM's gradient at init reach much further back.
//!
//! Tasks: the synthetic long-range task (as the demo) and IMDB (first 200 tokens). The gradient probe runs at
//! init and every `probe.every` steps. Outputs in results/vanishing/: run folders (grad_norms.csv,
//! steps.csv), decay_rates.csv, and charts grad_vs_distance_<task>, hidden_grad_vs_distance_<task>,
//! heatmap_<task>_<model>, decay_rates, exploding, forget_bias.
use anyhow::{bail, Result};
use clap::Parser;
use rnnlab::charts::{grad_series, read_csv};
use rnnlab::cli::Common;
use rnnlab::config::{
    self, CellKind, Checker, ModelConfig, OptimizerKind, OutputConfig, Outputs, ProbeConfig, TrainConfig, Validate,
};
use rnnlab::data::imdb::{self, ImdbConfig};
use rnnlab::data::synthetic::SyntheticConfig;
use rnnlab::data::Dataset;
use rnnlab::experiment::{train_point, Arch, Hooks, Point};
use rnnlab::model::Classifier;
use rnnlab::plot::{cell_color, Figure, Heatmap, Panel, Series, Table, BASELINE_GREY};
use rnnlab::probe::{decay_fit, GradRow, Probe};
use rnnlab::run::{Meta, Opened, RunDir, Status};
use rnnlab::train::StepRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const EXPERIMENT: &str = "vanishing";
const DEFAULT_CONFIG: &str = "configs/vanishing.yaml";

#[derive(Parser)]
#[command(about = "Vanishing/exploding gradients: per-timestep gradient norms of RNN, GRU and LSTM through training")]
struct Cli {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Task {
    Synthetic,
    Imdb,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Synthetic => "synthetic",
            Task::Imdb => "imdb",
        }
    }
}

/// Data, model and training of one task.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Section<D> {
    data: D,
    model: ModelConfig,
    train: TrainConfig,
}

/// The exploding-gradient pair: a vanilla RNN on the synthetic task with a large recurrent init and learning
/// rate, once clipped and once not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Exploding {
    enabled: bool,
    length: usize,
    recurrent_gain: f64,
    optimizer: OptimizerKind,
    lr: f64,
    clip: f64,
    epochs: usize,
}

impl Default for Exploding {
    fn default() -> Self {
        Exploding {
            enabled: true,
            length: 20,
            recurrent_gain: 3.0,
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            clip: 1.0,
            epochs: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct VanishingConfig {
    tasks: Vec<Task>,
    cells: Vec<CellKind>,
    seed: u64,
    probe: ProbeConfig,
    synthetic: Section<SyntheticConfig>,
    imdb: Section<ImdbConfig>,
    exploding: Exploding,
    /// LSTM forget-gate biases compared at init on the synthetic task.
    forget_biases: Vec<f64>,
    output: OutputConfig,
}

impl Default for VanishingConfig {
    fn default() -> Self {
        VanishingConfig {
            tasks: vec![Task::Synthetic, Task::Imdb],
            cells: CellKind::ALL.to_vec(),
            seed: 0,
            probe: ProbeConfig { enabled: true, every: 25, ..Default::default() },
            synthetic: Section::default(),
            imdb: Section::default(),
            exploding: Exploding::default(),
            forget_biases: vec![0.0, 1.0],
            output: OutputConfig::default(),
        }
    }
}

impl Outputs for VanishingConfig {
    fn output(&self) -> &OutputConfig {
        &self.output
    }
}

impl Validate for VanishingConfig {
    fn validate(&self, c: &mut Checker) {
        c.nonempty("cells", &self.cells);
        self.probe.validate(c);
        c.check(self.probe.enabled, "probe.enabled", self.probe.enabled, "must be true for this experiment");
        for (name, m, t) in
            [("synthetic", &self.synthetic.model, &self.synthetic.train), ("imdb", &self.imdb.model, &self.imdb.train)]
        {
            c.nested(name, m);
            c.nested(name, t);
        }
        c.nested("synthetic", &self.synthetic.data);
        c.nested("imdb", &self.imdb.data);
        c.positive("exploding.length", self.exploding.length);
        c.positive("exploding.lr", self.exploding.lr);
        c.positive("exploding.clip", self.exploding.clip);
        c.positive("exploding.epochs", self.exploding.epochs);
    }
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(run)
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let (cfg, device, root): (VanishingConfig, _, _) = cli.common.start(DEFAULT_CONFIG)?;
    let dir = root.join(EXPERIMENT);
    let mut failed = 0;
    let mut by_task: BTreeMap<&str, Vec<Meta>> = BTreeMap::new();
    let mut imdb_data: Option<Dataset> = None;
    for &task in &cfg.tasks {
        for &cell in &cfg.cells {
            let (model, train) = match task {
                Task::Synthetic => (&cfg.synthetic.model, &cfg.synthetic.train),
                Task::Imdb => (&cfg.imdb.model, &cfg.imdb.train),
            };
            let mut run_cfg = cfg.clone();
            run_cfg.tasks = vec![task];
            run_cfg.cells = vec![cell];
            let model = ModelConfig { cell, ..model.clone() };
            let train = TrainConfig { seed: cfg.seed, ..train.clone() };
            let point = Point {
                arch: Arch::Recurrent,
                root: root.clone(),
                experiment: EXPERIMENT.into(),
                run: format!("{}-{cell}-s{}", task.name(), cfg.seed),
                config_yaml: config::to_yaml(&run_cfg)?,
                model,
                train,
                probe: cfg.probe.clone(),
                tags: BTreeMap::from([("task".into(), task.name().into())]),
                device,
                overwrite: cli.common.overwrite,
            };
            let mut load = || -> Result<Dataset> {
                match task {
                    Task::Synthetic => Ok(cfg.synthetic.data.dataset(cfg.seed)),
                    Task::Imdb => {
                        if imdb_data.is_none() {
                            let cache = cfg.imdb.data.cache_dir.clone().unwrap_or_else(imdb::default_cache_dir);
                            let (enc, _) = imdb::load_encoded(&cfg.imdb.data.path, Some(&cache))?;
                            imdb_data = Some(cfg.imdb.data.dataset(&enc, cfg.seed)?);
                        }
                        Ok(imdb_data.as_ref().unwrap().shallow_clone())
                    }
                }
            };
            match train_point(point, &mut load, Hooks::default()) {
                Ok(m) => by_task.entry(task.name()).or_default().push(m),
                Err(e) => {
                    eprintln!("error: {} {cell}: {e:#}", task.name());
                    failed += 1;
                }
            }
        }
    }
    let mut decay_rows = Vec::new();
    for (task, metas) in &by_task {
        decay_rows.extend(task_charts(&root, task, metas)?);
    }
    if !decay_rows.is_empty() {
        write_decay(&dir, &decay_rows)?;
    }
    if cfg.exploding.enabled {
        exploding(&cfg, &root, device, cli.common.overwrite)?;
    }
    if !cfg.forget_biases.is_empty() {
        forget_bias(&cfg, &root, device, cli.common.overwrite)?;
    }
    println!("wrote {} (decay_rates.csv and charts)", dir.display());
    if failed > 0 {
        bail!("{failed} run(s) failed; see their meta.yaml");
    }
    Ok(())
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

fn task_charts(root: &Path, task: &str, metas: &[Meta]) -> Result<Vec<DecayRow>> {
    let dir = root.join(EXPERIMENT);
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
        let model = m.tags.get("model").cloned().unwrap_or_default();
        let grads: Vec<GradRow> = read_csv(&root.join(EXPERIMENT).join(&m.run).join("grad_norms.csv"))?;
        let steps: Vec<usize> =
            grads.iter().map(|r| r.step).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
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
        let label = CellKind::parse(&model).map(|c| c.label()).unwrap_or("?");
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
    rnnlab::run::write_atomic(&dir.join("decay_rates.csv"), &rnnlab::run::csv_bytes(rows)?)?;
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

/// The exploding pair; the loss and the gradient norm (before clipping) per step.
fn exploding(cfg: &VanishingConfig, root: &Path, device: tch::Device, overwrite: bool) -> Result<()> {
    let e = &cfg.exploding;
    let mut series_norm = Vec::new();
    let mut series_loss = Vec::new();
    for clip in [None, Some(e.clip)] {
        let name = if clip.is_some() { "exploding-clipped" } else { "exploding-unclipped" };
        let mut model = ModelConfig { cell: CellKind::Rnn, ..cfg.synthetic.model.clone() };
        model.init.recurrent_gain = e.recurrent_gain;
        let train = TrainConfig {
            seed: cfg.seed,
            optimizer: e.optimizer,
            lr: e.lr,
            clip,
            epochs: e.epochs,
            log_every: 1,
            lr_by_cell: BTreeMap::new(),
            patience: None,
            ..cfg.synthetic.train.clone()
        };
        let data = SyntheticConfig { length: e.length, min_train_length: None, ..cfg.synthetic.data.clone() };
        let point = Point {
            arch: Arch::Recurrent,
            root: root.to_path_buf(),
            experiment: EXPERIMENT.into(),
            run: name.into(),
            config_yaml: config::to_yaml(&(&model, &train, &data))?,
            model,
            train,
            probe: ProbeConfig::default(),
            tags: BTreeMap::from([("task".into(), "exploding".into())]),
            device,
            overwrite,
        };
        let meta = train_point(point, &mut || Ok(data.dataset(cfg.seed)), Hooks::default())?;
        let steps: Vec<StepRow> = read_csv(&root.join(EXPERIMENT).join(name).join("steps.csv"))?;
        let diverged = meta.status == Status::Diverged;
        let acc = meta.result.get("val_acc").map_or(String::new(), |a| format!(", validation accuracy {a:.2}"));
        let label = match (clip, diverged) {
            (Some(c), false) => format!("clipped at {c}{acc}"),
            (Some(c), true) => format!("clipped at {c} — diverged at step {}", first_bad(&steps)),
            (None, true) => format!("no clipping — diverged (loss NaN) at step {}", first_bad(&steps)),
            (None, false) => format!("no clipping{acc}"),
        };
        let color = if clip.is_some() { cell_color(CellKind::Gru) } else { cell_color(CellKind::Rnn) };
        let norm = steps.iter().filter(|s| s.grad_norm.is_finite()).map(|s| (s.step as f64, s.grad_norm)).collect();
        let loss = steps.iter().filter(|s| s.loss.is_finite()).map(|s| (s.step as f64, s.loss)).collect();
        series_norm.push(Series::new(label.clone(), color, norm).width(2));
        series_loss.push(Series::new(label, color, loss).width(2));
    }
    let panels = vec![
        Panel {
            title: "gradient norm before clipping".into(),
            x_label: "training step".into(),
            y_label: "global ‖∂L/∂θ‖ (log scale)".into(),
            log_y: true,
            series: series_norm,
            ..Default::default()
        },
        Panel {
            title: "training loss".into(),
            x_label: "training step".into(),
            y_label: "cross-entropy".into(),
            series: series_loss,
            ..Default::default()
        },
    ];
    let title = format!(
        "Exploding gradients: vanilla RNN, W_hh × {}, {:?} lr {}, with and without clipping",
        e.recurrent_gain, e.optimizer, e.lr
    );
    Figure::new(title, panels).save(&root.join(EXPERIMENT).join("exploding"))
}

fn first_bad(steps: &[StepRow]) -> usize {
    steps.iter().find(|s| !s.loss.is_finite()).map_or(steps.len(), |s| s.step)
}

/// LSTM gradients at init with different forget-gate biases (no training).
fn forget_bias(cfg: &VanishingConfig, root: &Path, device: tch::Device, overwrite: bool) -> Result<()> {
    let data = cfg.synthetic.data.dataset(cfg.seed).to_device(device);
    let mut series = Vec::new();
    for (i, &b) in cfg.forget_biases.iter().enumerate() {
        let mut model_cfg = ModelConfig { cell: CellKind::Lstm, ..cfg.synthetic.model.clone() };
        model_cfg.init.forget_bias = Some(b);
        let name = format!("lstm-forget-bias-{b}");
        let yaml = config::to_yaml(&(&model_cfg, &cfg.synthetic.data, cfg.seed))?;
        let path = match RunDir::open(root, EXPERIMENT, &name, &yaml, cfg.seed, BTreeMap::new(), overwrite)? {
            Opened::Done(m) => root.join(EXPERIMENT).join(m.run),
            Opened::New(mut run) => {
                run.meta.device = rnnlab::cli::device_name(device);
                tch::manual_seed(cfg.seed as i64);
                let vs = tch::nn::VarStore::new(device);
                let model = Classifier::new(&vs.root(), &model_cfg, data.vocab, data.classes.len() as i64);
                let split = data.val.as_ref().unwrap_or(&data.train);
                let rows: Vec<i64> = (0..split.len().min(cfg.probe.batch_size) as i64).collect();
                let mut probe =
                    Probe::new(&model, split.batch(&rows, device), false, "lstm", run.path.join("grad_norms.csv"));
                probe.record(0)?;
                run.finish(Status::Finished, None)?;
                run.path
            }
        };
        let rows: Vec<GradRow> = read_csv(&path.join("grad_norms.csv"))?;
        let pts =
            rows.iter().filter(|r| r.quantity == "dl_dx").map(|r| (r.distance_to_readout as f64, r.norm)).collect();
        let s = Series::new(format!("LSTM, forget-gate bias {b}"), cell_color(CellKind::Lstm), pts).width(2);
        series.push(if i == 0 {
            s
        } else if i == 1 {
            s.dashed()
        } else {
            Series { color: BASELINE_GREY, ..s }
        });
    }
    let panel = Panel {
        x_label: "distance from the readout (steps)".into(),
        y_label: "mean ‖∂L/∂x_t‖ at init (log scale)".into(),
        log_y: true,
        series,
        ..Default::default()
    };
    let title = format!(
        "LSTM at initialisation: forget-gate bias and the reach of the gradient (L = {})",
        cfg.synthetic.data.length
    );
    Figure::new(title, vec![panel]).save(&root.join(EXPERIMENT).join("forget_bias"))
}
