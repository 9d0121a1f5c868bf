//! One training run: the steps every experiment shares.
//!
//! Open the run folder (reuse a finished run with the same config), seed everything, build the model, attach
//! the gradient probe and the experiment's step hook if asked, train with [`train::fit`](crate::train::fit),
//! then let the experiment add its own outputs. Sweeps call this once per point.
use crate::cli::device_name;
use crate::config::{to_yaml, Experiment, ModelConfig, ProbeConfig, TrainConfig};
use crate::data::{Dataset, Refused};
use crate::model::{BagOfWords, Classifier, LanguageModel, Objective};
use crate::probe::Probe;
use crate::run::{Meta, Opened, RunDir, Status};
use crate::train::{fit, Outcome, StepHook};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, Device};

/// What to train.
#[derive(Clone, Debug)]
pub enum Arch {
    /// [`Classifier`] with the point's model config.
    Recurrent,
    /// [`BagOfWords`] logistic regression ignoring these ids (besides padding).
    BagOfWords { ignore: Vec<i64> },
    /// [`LanguageModel`] conditioned on `n_cond` values (0: none); `stateful` for truncated BPTT.
    LanguageModel { n_cond: i64, stateful: bool },
}

/// The model a run trains.
pub enum Built {
    Classifier(Classifier),
    Bow(BagOfWords),
    Lm(LanguageModel),
}

impl Built {
    pub fn objective(&self) -> &dyn Objective {
        match self {
            Built::Classifier(m) => m,
            Built::Bow(m) => m,
            Built::Lm(m) => m,
        }
    }
}

/// One run to make.
pub struct Point {
    pub arch: Arch,
    pub root: PathBuf,
    pub experiment: String,
    pub run: String,
    /// The full config of this run, as YAML (saved as config.yaml and compared on reruns).
    pub config_yaml: String,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub probe: ProbeConfig,
    /// Labels copied into summaries (model, seq_len...). `model` is set from the cell (or `bow`).
    pub tags: BTreeMap<String, String>,
    pub device: Device,
    pub overwrite: bool,
}

impl Point {
    /// A [`Arch::Recurrent`] run of `cfg` (its model, train and probe sections; all of it saved as YAML), no tags.
    pub fn new<D: Serialize, S: Serialize>(
        cfg: &Experiment<D, S>,
        root: &Path,
        experiment: &str,
        run: &str,
        device: Device,
        overwrite: bool,
    ) -> Result<Point> {
        Ok(Point {
            arch: Arch::Recurrent,
            root: root.to_path_buf(),
            experiment: experiment.into(),
            run: run.into(),
            config_yaml: to_yaml(cfg)?,
            model: cfg.model.clone(),
            train: cfg.train.clone(),
            probe: cfg.probe.clone(),
            tags: BTreeMap::new(),
            device,
            overwrite,
        })
    }
}

/// Runs after training (predictions, samples, extra CSVs); only for new runs.
pub type After<'a> = dyn FnMut(&Built, &Dataset, &mut RunDir, &Outcome) -> Result<()> + 'a;
/// Runs at step 0, every `Hooks::every` steps and after the last step (samples during training...).
pub type During<'a> = dyn FnMut(&Built, usize) -> Result<()> + 'a;

/// The experiment's hooks into a run.
#[derive(Default)]
pub struct Hooks<'a> {
    pub after: Option<&'a mut After<'a>>,
    pub during: Option<&'a mut During<'a>>,
    pub every: usize,
}

impl<'a> Hooks<'a> {
    pub fn after(f: &'a mut After<'a>) -> Self {
        Hooks { after: Some(f), ..Default::default() }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Trains the point's model on the data that `load` returns (called only when the run is not already done).
/// A [`Refused`] error from `load` records the run as refused. Returns the run's meta; `result` holds n_train,
/// n_val, n_test besides the training numbers.
pub fn train_point(p: Point, load: &mut dyn FnMut() -> Result<Dataset>, hooks: Hooks) -> Result<Meta> {
    let mut tags = p.tags.clone();
    let name = match p.arch {
        Arch::BagOfWords { .. } => "bow",
        _ => p.model.cell.name(),
    };
    tags.insert("model".into(), name.into());
    let opened = RunDir::open(&p.root, &p.experiment, &p.run, &p.config_yaml, p.train.seed, tags, p.overwrite)?;
    let mut run = match opened {
        Opened::Done(meta) => {
            eprintln!("{}: finished earlier with the same config, reusing it", p.run);
            return Ok(meta);
        }
        Opened::New(run) => run,
    };
    run.meta.device = device_name(p.device);
    let data = match load() {
        Ok(d) => d.to_device(p.device),
        Err(e) => {
            let (status, message) = match e.downcast_ref::<Refused>() {
                Some(r) => {
                    run.meta.result.insert("n_train".into(), r.n_train as f64);
                    run.meta.result.insert("n_test".into(), r.n_test as f64);
                    (Status::Refused, r.message.clone())
                }
                None => (Status::Failed, format!("{e:#}")),
            };
            eprintln!("{}: {}: {message}", p.run, status.name());
            run.finish(status, Some(message))?;
            return if status == Status::Refused { Ok(run.meta) } else { Err(e) };
        }
    };
    for (k, s) in [("n_train", Some(&data.train)), ("n_val", data.val.as_ref()), ("n_test", data.test.as_ref())] {
        run.meta.result.insert(k.into(), s.map_or(0, |s| s.len()) as f64);
    }
    tch::manual_seed(p.train.seed as i64);
    let vs = nn::VarStore::new(p.device);
    let classes = data.classes.len() as i64;
    let (built, lr) = match &p.arch {
        Arch::Recurrent => (
            Built::Classifier(Classifier::new(&vs.root(), &p.model, data.vocab, classes)),
            p.train.lr_for(p.model.cell),
        ),
        Arch::BagOfWords { ignore } => {
            (Built::Bow(BagOfWords::new(&vs.root(), data.vocab, classes, ignore)), p.train.lr)
        }
        Arch::LanguageModel { n_cond, stateful } => (
            Built::Lm(LanguageModel::new(&vs.root(), &p.model, data.vocab, *n_cond, *stateful)),
            p.train.lr_for(p.model.cell),
        ),
    };
    // The gradient probe (classifiers) and the experiment's own hook share one step hook.
    let mut probe = match (&built, p.probe.enabled) {
        (Built::Classifier(m), true) => {
            let split = data.val.as_ref().unwrap_or(&data.train);
            let rows: Vec<i64> = (0..split.len().min(p.probe.batch_size) as i64).collect();
            let path = run.path.join("grad_norms.csv");
            Some(Probe::new(m, split.batch(&rows, p.device), p.probe.hidden, p.model.cell.name(), path))
        }
        _ => None,
    };
    let Hooks { after, mut during, every } = hooks;
    let probe_every = if probe.is_some() { p.probe.every } else { 0 };
    let own_every = if during.is_some() { every } else { 0 };
    let wanted = probe.is_some() || during.is_some();
    // Each hook runs at most once per step (the last step can be both periodic and final).
    let (mut probed, mut called) = (None, None);
    let mut call = |step: usize, edge: bool| -> Result<()> {
        let due = |every: usize| edge || (every > 0 && step.is_multiple_of(every));
        if let Some(pr) = probe.as_mut().filter(|_| due(probe_every) && probed != Some(step)) {
            pr.record(step)?;
            probed = Some(step);
        }
        if let Some(d) = during.as_mut().filter(|_| due(own_every) && called != Some(step)) {
            d(&built, step)?;
            called = Some(step);
        }
        Ok(())
    };
    let hook = wanted.then(|| StepHook { every: gcd(probe_every, own_every), call: &mut call });
    let outcome = fit(built.objective(), &vs, &data, &p.train, lr, &mut run, hook);
    if let Some(pr) = &probe {
        // Probe time is part of train_s; report it so its share can be checked.
        run.meta.result.insert("probe_s".into(), pr.seconds);
        run.save_meta()?;
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            run.finish(Status::Failed, Some(format!("{e:#}")))?;
            return Err(e);
        }
    };
    if let Some(after) = after {
        after(&built, &data, &mut run, &outcome)?;
        run.save_meta()?;
    }
    Ok(run.meta)
}
