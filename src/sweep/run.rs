//! Running a sweep: every selected point trained (or reused) in its folder, then the summary and the charts.
use super::jobs::{claim, selected};
use super::{Cfg, Descriptor, Experiment, Finish, Point, RunOptions, Trained};
use crate::cli::WORKER;
use crate::config::{self, ClassWeights, Loaded, ModelKind};
use crate::data::{Dataset, Refused};
use crate::model::{build, Model};
use crate::probe::Probe;
use crate::results::summary::write_summary;
use crate::results::{checkpoint, read_meta, wait_for, Busy, Meta, Opened, RunDir, Status, Tag};
use crate::train::{fit, StepHook};
use anyhow::{bail, Result};
use std::path::Path;
use tch::{nn, Tensor};

/// Runs the grid of `loaded` (see the module docs of [`super`]) and returns when the summary and charts are
/// written.
pub fn run<E: Experiment>(
    e: &E,
    d: &Descriptor,
    loaded: &Loaded<Cfg<E>>,
    overrides: &[String],
    root: &Path,
    opts: &RunOptions,
) -> Result<()> {
    let all = super::points(loaded, &loaded.cfg.sweep, overrides)?;
    let mut failed = 0;
    if !opts.merge_only {
        let mine = selected(&all, opts)?;
        if let Some((i, n)) = opts.shard {
            crate::progress::say!("shard {i}/{n}: {} of {} runs", mine.len(), all.len());
        }
        let claims = d.folder(root).join(".claims");
        if !opts.worker {
            e.check(&mine.iter().map(|p| &p.cfg).collect::<Vec<_>>())?;
        }
        // Runs another process is writing (a second sweep on this folder) wait until the end. True when busy.
        let mut attempt = |p: &Point<Cfg<E>>| match run_guarded(e, p, root, d.name, opts) {
            Err(err) if err.downcast_ref::<Busy>().is_some() => {
                crate::progress::say!("{err}; coming back to it after the other runs");
                true
            }
            Err(err) => {
                crate::progress::say!("error: {}: {err:#}", p.name);
                failed += 1;
                false
            }
            Ok(_) => false,
        };
        let mut busy = std::collections::VecDeque::new();
        for (k, p) in mine.iter().enumerate() {
            if opts.worker && !claim(&claims, &p.name)? {
                continue;
            }
            let who = std::env::var(WORKER).map_or(String::new(), |w| format!(" (worker {w})"));
            crate::progress::say!("[{}/{}] {}{who}", k + 1, mine.len(), p.name);
            if attempt(p) {
                busy.push_back(*p);
            }
        }
        while let Some(p) = busy.pop_front() {
            crate::progress::say!("{}: waiting for the process writing it to end", p.name);
            wait_for(root, d.name, &p.name)?;
            if attempt(p) {
                busy.push_back(p);
            }
        }
        if opts.worker {
            if failed > 0 {
                bail!("{failed} run(s) failed");
            }
            return Ok(());
        }
    }
    let dir = d.folder(root);
    crate::files::clean_stale(&dir);
    let metas: Vec<Meta> = all
        .iter()
        .map(|p| dir.join(&p.name))
        .filter(|d| d.join("meta.yaml").exists())
        .map(|d| read_meta(&d))
        .collect::<Result<_>>()?;
    if metas.is_empty() {
        bail!("no runs under {}", dir.display());
    }
    let cols = e.columns();
    let summary = dir.join(d.summary);
    write_summary(&summary, &metas, &cols.keys, &cols.results)?;
    let text = e.finish(&Finish { root, dir: dir.clone(), cfg: &loaded.cfg, runs: &metas })?;
    print!("{text}");
    println!("wrote {} ({} runs) and the charts in {}", summary.display(), metas.len(), dir.display());
    if failed > 0 {
        bail!("{failed} run(s) failed; see their meta.yaml (a rerun retries them)");
    }
    Ok(())
}

/// Trains one point of experiment `name` (unless its folder already holds it finished with the same config):
/// the data, a seeded model, the gradient probe and the experiment's hooks, [`fit`], the checkpoint, the
/// experiment's outputs.
pub fn run_point<E: Experiment>(e: &E, p: &Point<Cfg<E>>, root: &Path, name: &str, opts: &RunOptions) -> Result<Meta> {
    let mut run = match open(e, p, root, name, opts)? {
        Opened::Done(meta) => {
            crate::progress::say!("{}: finished earlier with the same config, reusing it", p.name);
            return Ok(meta);
        }
        Opened::New(run) => run,
    };
    run.hold_completion();
    match train_point(e, p, &mut run, opts) {
        Ok(()) => {
            run.complete()?;
            Ok(run.meta)
        }
        Err(err) => {
            // A failure after training (a full disk while writing the checkpoint...) fails the run too.
            if run.meta.status != Status::Failed {
                let _ = run.finish(Status::Failed, Some(format!("{err:#}")));
            }
            Err(err)
        }
    }
}

/// Everything of [`run_point`] after the folder is open.
fn train_point<E: Experiment>(e: &E, p: &Point<Cfg<E>>, run: &mut RunDir, opts: &RunOptions) -> Result<()> {
    let cfg = &p.cfg;
    let Some((mut data, mut state)) = load_data(e, cfg, run, opts)? else { return Ok(()) };
    record_data(&mut data, run);
    let seeded = crate::rng::torch_seed(cfg.train.seed as i64);
    let vs = nn::VarStore::new(opts.device);
    let model = model_for::<E>(&vs, cfg, &data);
    let mut probe = probe_for::<E>(&model, cfg, &data, opts);
    let outcome = {
        let every = e.during_every(cfg);
        let probe_every = probe.as_ref().map(|_| cfg.probe.every);
        // Each hook runs at most once per step (the last step can be both periodic and final).
        let (mut probed, mut called) = (None, None);
        let mut call = |step: usize, edge: bool, run: &mut RunDir| -> Result<()> {
            let due = |every: Option<usize>| every.is_some_and(|n| edge || (n > 0 && step.is_multiple_of(n)));
            if let Some(pr) = probe.as_mut().filter(|_| due(probe_every) && probed != Some(step)) {
                run.grads(pr.rows(step));
                run.flush()?;
                probed = Some(step);
            }
            if due(every) && called != Some(step) {
                e.during(cfg, &mut state, &model, step, run)?;
                called = Some(step);
            }
            Ok(())
        };
        let hooked = probe_every.is_some() || every.is_some();
        let period = gcd(probe_every.unwrap_or(0), every.unwrap_or(0));
        let hook = hooked.then_some(StepHook { every: period, call: &mut call });
        fit(model.objective(), &vs, &data, &cfg.train, cfg.train.lr_for(&cfg.model), run, hook)
    };
    drop(seeded);
    if let Some(pr) = &probe {
        // Probe time is part of train_s; report it so its share can be checked.
        run.meta.result.insert("probe_s".into(), pr.seconds);
        run.save_meta()?;
    }
    let outcome = outcome?;
    if cfg.train.checkpoint && outcome.status == Status::Finished {
        checkpoint::save(run, &vs, &cfg.model, &data.shape, &cfg.train)?;
    }
    let t = Trained { model: &model, data: &data, run, outcome: &outcome, state: &mut state };
    e.after(cfg, t)
}

/// [`run_point`], with a panic inside the run (a libtorch error, a bug) turned into a failed run: its meta says
/// so with the message, and the sweep goes on.
fn run_guarded<E: Experiment>(e: &E, p: &Point<Cfg<E>>, root: &Path, name: &str, opts: &RunOptions) -> Result<Meta> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_point(e, p, root, name, opts)));
    r.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        // libtorch's messages carry a C++ backtrace after their first line.
        let message = format!("the run panicked: {}", what.lines().next().unwrap_or(""));
        crate::results::mark_failed(&root.join(name).join(&p.name), &message)?;
        bail!(message)
    })
}

/// The run's folder, with its tags: the swept values, the experiment's own and the model.
fn open<E: Experiment>(e: &E, p: &Point<Cfg<E>>, root: &Path, name: &str, opts: &RunOptions) -> Result<Opened> {
    let cfg = &p.cfg;
    let mut tags = p.tags.clone();
    tags.extend(e.tags(cfg));
    let model = match cfg.model.kind {
        ModelKind::Bow => "bow",
        _ => cfg.model.cell.name(),
    };
    tags.insert("model".into(), Tag::from(model));
    // The config as run: `impl: auto` saved as what it stood for here, so a reused run is one made by the same
    // kernels, and the saved config reruns them on any machine.
    let mut ran = cfg.clone();
    ran.model.imp = ran.model.imp.resolve();
    let yaml = config::to_yaml(&ran)?;
    RunDir::open(root, name, &p.name, &yaml, cfg.train.seed, tags, opts.overwrite)
}

/// The run's data on the device and what the experiment keeps of it; None when the data refused the point
/// (recorded as `refused`). A failure is recorded as `failed` and returned.
fn load_data<E: Experiment>(
    e: &E,
    cfg: &Cfg<E>,
    run: &mut RunDir,
    opts: &RunOptions,
) -> Result<Option<(Dataset, E::PerRun)>> {
    run.meta.device = crate::cli::device_name(opts.device);
    match e.dataset(cfg) {
        Ok((d, state)) => Ok(Some((d.to_device(opts.device), state))),
        Err(err) => {
            let (status, message) = match err.downcast_ref::<Refused>() {
                Some(r) => {
                    run.meta.result.insert("n_train".into(), r.n_train as f64);
                    run.meta.result.insert("n_test".into(), r.n_test as f64);
                    (Status::Refused, r.message.clone())
                }
                None => (Status::Failed, format!("{err:#}")),
            };
            crate::progress::say!("{}: {}: {message}", run.meta.run, status.name());
            run.finish(status, Some(message))?;
            if status == Status::Refused {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// What the run trained on, in its meta: split sizes, tokens per epoch, the training sequences' lengths; and the
/// class counts the model and the checkpoint need.
fn record_data(data: &mut Dataset, run: &mut RunDir) {
    for (k, s) in [("n_train", Some(&data.train)), ("n_val", data.val.as_ref()), ("n_test", data.test.as_ref())] {
        run.meta.result.insert(k.into(), s.map_or(0, |s| s.len()) as f64);
    }
    let lens = &data.train.lengths;
    let tokens: i64 = lens.iter().sum();
    run.meta.result.insert("train_tokens".into(), tokens as f64);
    run.meta.result.insert("train_len_mean".into(), tokens as f64 / lens.len().max(1) as f64);
    run.meta.result.insert("train_len_max".into(), lens.iter().copied().max().unwrap_or(0) as f64);
    data.shape.class_counts = data.train.class_counts(data.shape.classes.len()).unwrap_or_default();
}

/// The model of the config for this data (call with libtorch's generator seeded), with its training settings.
fn model_for<E: Experiment>(vs: &nn::VarStore, cfg: &Cfg<E>, data: &Dataset) -> Model {
    let mut model = build(&vs.root(), &cfg.model, &data.shape);
    if let Model::Seq2seq(m) = &model {
        m.teacher_forcing.set(cfg.train.teacher_forcing);
    }
    if let (Model::Classifier(m), ClassWeights::Inverse | ClassWeights::Sqrt) = (&mut model, cfg.train.class_weights) {
        let w = cfg.train.class_weights.of(&data.shape.class_counts);
        m.class_weights = Some(Tensor::from_slice(&w).to_kind(tch::Kind::Float).to_device(vs.device()));
    }
    model
}

/// The gradient probe on a fixed batch (validation split, else training split), for classifiers with the
/// probe on.
fn probe_for<'m, E: Experiment>(
    model: &'m Model,
    cfg: &Cfg<E>,
    data: &Dataset,
    opts: &RunOptions,
) -> Option<Probe<'m>> {
    let m = model.classifier().filter(|_| cfg.probe.enabled)?;
    let split = data.val.as_ref().unwrap_or(&data.train);
    let rows: Vec<i64> = (0..split.len().min(cfg.probe.batch_size) as i64).collect();
    Some(Probe::new(m, split.batch(&rows, opts.device), cfg.probe.hidden, cfg.model.cell.name()))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
