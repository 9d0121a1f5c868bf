//! Training one classifier run: the steps every classification experiment shares.
//!
//! Open the run folder (reuse a finished run with the same config), seed everything, build the model, attach
//! the gradient probe if asked, train with [`train::fit`](crate::train::fit), then let the experiment add its
//! own outputs. Sweeps call this once per point.
use crate::cli::device_name;
use crate::config::{ModelConfig, ProbeConfig, TrainConfig};
use crate::data::{Dataset, Refused};
use crate::model::{BagOfWords, Classifier};
use crate::probe::Probe;
use crate::run::{Meta, Opened, RunDir, Status};
use crate::train::{fit, Outcome, StepHook};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tch::{nn, Device};

/// What to train.
#[derive(Clone, Debug)]
pub enum Arch {
    /// [`Classifier`] with the point's model config.
    Recurrent,
    /// [`BagOfWords`] logistic regression ignoring these ids (besides padding).
    BagOfWords { ignore: Vec<i64> },
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

/// What the experiment may do after training (predictions, extra CSVs); runs only for new runs.
pub type After<'a> = dyn FnMut(&Classifier, &Dataset, &mut RunDir, &Outcome) -> Result<()> + 'a;

/// Trains the point's model on the data that `load` returns (called only when the run is not already done).
/// `after` runs for recurrent models only. A [`Refused`] error from `load` records the run as refused.
/// Returns the run's meta; `result` holds n_train, n_val, n_test besides the training numbers.
pub fn train_classifier(
    p: Point,
    load: &mut dyn FnMut() -> Result<Dataset>,
    after: Option<&mut After>,
) -> Result<Meta> {
    let mut tags = p.tags.clone();
    let name = match p.arch {
        Arch::Recurrent => p.model.cell.name(),
        Arch::BagOfWords { .. } => "bow",
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
    if let Arch::BagOfWords { ignore } = &p.arch {
        let bow = BagOfWords::new(&vs.root(), data.vocab, classes, ignore);
        let outcome = fit(&bow, &vs, &data, &p.train, p.train.lr, &mut run, None);
        return finish(outcome, run);
    }
    let model = Classifier::new(&vs.root(), &p.model, data.vocab, classes);
    let lr = p.train.lr_for(p.model.cell);
    let outcome = if p.probe.enabled {
        let split = data.val.as_ref().unwrap_or(&data.train);
        let rows: Vec<i64> = (0..split.len().min(p.probe.batch_size) as i64).collect();
        let batch = split.batch(&rows, p.device);
        let mut probe = Probe::new(&model, batch, p.probe.hidden, p.model.cell.name(), run.path.join("grad_norms.csv"));
        let mut call = |step| probe.record(step);
        let hook = StepHook { every: p.probe.every, call: &mut call };
        let out = fit(&model, &vs, &data, &p.train, lr, &mut run, Some(hook));
        // Probe time is part of train_s; report it so its share can be checked.
        run.meta.result.insert("probe_s".into(), probe.seconds);
        run.save_meta()?;
        out
    } else {
        fit(&model, &vs, &data, &p.train, lr, &mut run, None)
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return finish(Err(e), run),
    };
    if let Some(after) = after {
        after(&model, &data, &mut run, &outcome)?;
        run.save_meta()?;
    }
    Ok(run.meta)
}

/// A training error marks the run failed (and is returned); otherwise the meta.
fn finish(outcome: Result<Outcome>, mut run: RunDir) -> Result<Meta> {
    match outcome {
        Ok(_) => Ok(run.meta),
        Err(e) => {
            run.finish(Status::Failed, Some(format!("{e:#}")))?;
            Err(e)
        }
    }
}
