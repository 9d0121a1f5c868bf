//! Sweeps: every experiment runs through [`main`]. The config's `sweep` section ([`Grid`]) becomes one typed,
//! validated config per run ([`points`]); each run gets its folder (finished ones are reused, so an interrupted
//! sweep resumes), `--shard i/n` runs every n-th point, `--merge-only` trains nothing; a failed run is counted and
//! the sweep goes on; at the end `summary.csv` and the experiment's charts and terminal table are made from every
//! run folder of the grid that exists.
//!
//! An experiment is a type implementing [`Experiment`]: where its data comes from, what it adds to a trained
//! run, and what it draws at the end.
use crate::cli::{is_worker, Common, SweepArgs, WORKER, WORKER_THREADS};
use crate::config::{self, AxisValue, ClassWeights, Config, Grid, Loaded, ModelKind, Options, Validate};
use crate::data::{Dataset, Refused, Source};
use crate::model::{build, Model};
use crate::probe::Probe;
use crate::results::summary::write_summary;
use crate::results::{checkpoint, read_meta, Meta, Opened, RunDir, Status};
use crate::train::{fit, Outcome, StepHook};
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Tensor};

/// The config of experiment `E`.
pub type Cfg<E> = Config<<E as Experiment>::Data, <E as Experiment>::Own>;

/// A trained run, handed to [`Experiment::after`].
pub struct Trained<'a> {
    pub model: &'a Model,
    pub data: &'a Dataset,
    pub run: &'a mut RunDir,
    pub outcome: &'a Outcome,
}

/// One experiment: its data, what it adds to a run, what it makes of all runs.
pub trait Experiment {
    /// The `data` section.
    type Data: Serialize + DeserializeOwned + Validate + Clone + Default + std::fmt::Debug + Source;
    /// The experiment's own section (`()`: none).
    type Own: Options;
    /// The results folder (unless `output.name` says otherwise) and the default config file.
    const NAME: &'static str;
    const CONFIG: &'static str;
    /// The tags and results of `summary.csv`, in column order.
    fn columns(&self) -> (Vec<&'static str>, Vec<&'static str>);
    /// The summary file's name.
    fn summary_name(&self) -> &'static str {
        "summary.csv"
    }
    /// Checks the data of the runs about to be made once, before any starts (a missing or corrupt data set
    /// stops the sweep here, not once per run).
    fn check(&mut self, cfgs: &[&Cfg<Self>]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        cfgs.iter().filter(|c| seen.insert(format!("{:?}", c.data))).try_for_each(|c| c.data.check())
    }
    /// Tags of a run besides its swept values (e.g. a fixed length every row should carry).
    fn tags(&self, _cfg: &Cfg<Self>) -> Vec<(String, String)> {
        vec![]
    }
    /// The data of one run (a [`Refused`] error records the run as refused).
    fn dataset(&mut self, cfg: &Cfg<Self>) -> Result<Dataset> {
        cfg.data.load(cfg.train.seed)
    }
    /// Steps between calls of [`during`](Self::during) (0: only at step 0 and after the last step).
    fn every(&self, _cfg: &Cfg<Self>) -> usize {
        0
    }
    /// Called during training at step 0, every [`every`](Self::every) steps and after the last step.
    fn during(&mut self, _cfg: &Cfg<Self>, _model: &Model, _step: usize, _run: &mut RunDir) -> Result<()> {
        Ok(())
    }
    /// Whether [`during`](Self::during) does anything for this run.
    fn wants_during(&self, _cfg: &Cfg<Self>) -> bool {
        false
    }
    /// After a new run trained (not for a reused one): its own files and numbers.
    fn after(&mut self, _cfg: &Cfg<Self>, _t: Trained) -> Result<()> {
        Ok(())
    }
    /// After all runs: charts and anything else built from the run folders; returns what to print (the table
    /// and the paths written).
    fn finish(&mut self, root: &Path, cfg: &Cfg<Self>, runs: &[Meta]) -> Result<String>;
}

/// One run of a sweep: its name, its swept values as tags (CSV column → value) and its config.
#[derive(Clone, Debug)]
pub struct Point<C> {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub cfg: C,
}

/// The CSV column and run-name prefix of a swept key: the shared vocabulary (`seq_len`, `L…`).
pub fn vocabulary(key: &str) -> (String, String) {
    let (col, prefix) = match key {
        "model.cell" => ("model", ""),
        "train.seed" => ("seed", "s"),
        "data.length" => ("seq_len", "L"),
        "data.distance" => ("distance", "k"),
        "data.mode" => ("mode", ""),
        "data.bptt" => ("bptt", "bptt"),
        k if !k.contains('.') => (k, ""),
        k => {
            let last = k.rsplit('.').next().unwrap_or(k);
            (last, last)
        }
    };
    (col.to_string(), prefix.to_string())
}

/// Where a column's part goes in a run's name: task, mode, model, variant, lengths, other values, seed last.
fn name_rank(col: &str) -> usize {
    ["task", "mode", "model", "variant", "seq_len", "distance", "bptt"].iter().position(|c| *c == col).unwrap_or(7)
        + if col == "seed" { 10 } else { 0 }
}

fn label_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().replace(['\n', ' '], ""),
    }
}

/// Every run of the config's grid, in grid order (first axis outermost), each with its own typed and validated
/// config and a name made of its swept values, ending with its seed (`gru-L200-s0`; `s0` alone without a grid).
/// Errors name the run and the key.
pub fn points<'a, C: DeserializeOwned + Validate>(
    loaded: &Loaded<C>,
    grid: &'a Grid,
    overrides: &[String],
) -> Result<Vec<Point<C>>> {
    for o in overrides {
        let key = o.split('=').next().unwrap_or("").trim();
        if !key.starts_with("sweep.") && grid.sweeps(key) {
            bail!(
                "{}: --set {o}: `{key}` is swept (sweep.{key}); set the values to run with --set 'sweep.{key}=[...]'",
                loaded.origin
            );
        }
    }
    let mut base = loaded.tree.clone();
    if let Value::Mapping(m) = &mut base {
        m.remove("sweep");
    }
    let blocks: Vec<&[config::Axis]> =
        if grid.is_empty() { vec![&[]] } else { grid.blocks.iter().map(Vec::as_slice).collect() };
    let mut out: Vec<Point<C>> = Vec::new();
    for axes in blocks {
        // Combination n in mixed radix: the last axis changes fastest.
        let total: usize = axes.iter().map(|a| a.values.len()).product();
        for n in 0..total {
            let mut idx = vec![0usize; axes.len()];
            let mut rem = n;
            for k in (0..axes.len()).rev() {
                idx[k] = rem % axes[k].values.len();
                rem /= axes[k].values.len();
            }
            let mut tree = base.clone();
            let mut tags = BTreeMap::new();
            let mut parts: Vec<(usize, String)> = Vec::new();
            // Which axis set each key: two axes setting one key is a mistake, not a combination.
            let mut set_by: BTreeMap<String, &str> = BTreeMap::new();
            let mut mark = |key: &str, axis: &'a str| -> Result<()> {
                match set_by.insert(key.to_string(), axis) {
                    Some(other) if other != axis => bail!(
                        "{}: sweep: `{key}` is set by two axes ({other} and {axis}); keep one of them",
                        loaded.origin
                    ),
                    _ => Ok(()),
                }
            };
            for (a, &i) in axes.iter().zip(&idx) {
                let (col, prefix) = vocabulary(&a.key);
                let label = match &a.values[i] {
                    AxisValue::Plain(v) => {
                        mark(&a.key, &a.key)?;
                        config::set_path(&mut tree, &a.key, v.clone())
                            .with_context(|| format!("{}: sweep.{}", loaded.origin, a.key))?;
                        label_of(v)
                    }
                    AxisValue::Named(label, patch) => {
                        for (k, v) in patch {
                            let k =
                                k.as_str().with_context(|| format!("sweep.{}.{label}: a key is not text", a.key))?;
                            mark(k, &a.key)?;
                            config::set_path(&mut tree, k, v.clone())
                                .with_context(|| format!("{}: sweep.{}.{label}", loaded.origin, a.key))?;
                        }
                        label.clone()
                    }
                };
                parts.push((name_rank(&col), format!("{prefix}{label}")));
                if col != "seed" {
                    tags.insert(col, label);
                }
            }
            if !parts.iter().any(|p| p.0 >= 10) {
                // Every run's name ends with its seed, swept or not.
                let seed = tree.get("train").and_then(|t| t.get("seed")).and_then(Value::as_u64).unwrap_or(0);
                parts.push((name_rank("seed"), format!("s{seed}")));
            }
            parts.sort_by_key(|p| p.0);
            let name = if parts.is_empty() {
                "run".into()
            } else {
                parts.into_iter().map(|p| p.1).collect::<Vec<_>>().join("-")
            };
            if out.iter().any(|p| p.name == name) {
                bail!("{}: the sweep makes run {name} twice; give the axes different values", loaded.origin);
            }
            let cfg = config::from_tree(tree, &format!("{}, run {name}", loaded.origin), overrides)?;
            out.push(Point { name, tags, cfg });
        }
    }
    Ok(out)
}

/// The results folder of an experiment with this config.
pub fn folder<E: Experiment>(cfg: &Cfg<E>) -> String {
    if cfg.output.name.is_empty() {
        E::NAME.to_string()
    } else {
        cfg.output.name.clone()
    }
}

/// The `main` of an experiment binary without subcommands: its `--help` line, the shared options, [`main`].
pub fn binary<E: Experiment>(e: E, about: &'static str) -> std::process::ExitCode {
    /// No subcommands: the binary only runs its sweep.
    #[derive(clap::Subcommand)]
    enum None {}
    binary_with::<E, None>(e, about, |cmd, _| match cmd {})
}

/// [`binary`] for an experiment with subcommands (`names predict`, `generate sample`, ...): without one the
/// binary runs the sweep, with one it calls `cmd` with the parsed subcommand and the shared options.
pub fn binary_with<E: Experiment, C: clap::Subcommand>(
    e: E,
    about: &'static str,
    cmd: impl FnOnce(C, &Common) -> Result<()>,
) -> std::process::ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    #[derive(clap::Parser)]
    struct Cli<C: clap::Subcommand> {
        #[command(subcommand)]
        cmd: Option<C>,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        sweep: SweepArgs,
    }
    crate::cli::run_main(|| {
        let matches = Cli::<C>::command().about(about).get_matches();
        let cli = Cli::<C>::from_arg_matches(&matches)?;
        match cli.cmd {
            Some(c) => cmd(c, &cli.common),
            None => main(e, &cli.common, &cli.sweep),
        }
    })
}

/// What an experiment binary does: load the config (its default file, `--config`, `--set`), then [`run`].
pub fn main<E: Experiment>(mut e: E, common: &Common, args: &SweepArgs) -> Result<()> {
    let loaded: Loaded<Cfg<E>> = config::load(&common.config_path(E::CONFIG), &common.set)?;
    let device = common.setup()?;
    let root = common.out.clone().unwrap_or_else(|| loaded.cfg.output.dir.clone());
    let opts = RunOptions {
        shard: args.shard()?,
        merge_only: args.merge_only,
        only: args.only.clone(),
        overwrite: common.overwrite,
        device,
        worker: is_worker(),
    };
    if args.jobs > 1 && !opts.worker && !opts.merge_only {
        let threads = common.threads.map_or((tch::get_num_threads() as usize / args.jobs).max(1), |t| t as usize);
        return parallel(&mut e, &loaded, &common.set, &root, &opts, args.jobs, threads);
    }
    run(&mut e, &loaded, &common.set, &root, &opts)
}

/// How [`run`] runs.
pub struct RunOptions {
    /// Run only shard `i` of `n` (1-based): every n-th point starting at the i-th.
    pub shard: Option<(usize, usize)>,
    /// Train nothing: rebuild the summary and charts from the run folders present.
    pub merge_only: bool,
    /// Train only the runs whose name contains one of these (all when empty).
    pub only: Vec<String>,
    pub overwrite: bool,
    pub device: Device,
    /// A worker of a `--jobs` sweep: train the runs no other worker has claimed, write no summary.
    pub worker: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shard: None,
            merge_only: false,
            only: vec![],
            overwrite: false,
            device: Device::Cpu,
            worker: false,
        }
    }
}

/// The runs this invocation trains: `--only`, then `--shard`.
fn selected<'a, C>(all: &'a [Point<C>], opts: &RunOptions) -> Result<Vec<&'a Point<C>>> {
    let picked: Vec<&Point<C>> =
        all.iter().filter(|p| opts.only.is_empty() || opts.only.iter().any(|o| p.name.contains(o))).collect();
    if picked.is_empty() {
        bail!("--only {}: no run of the sweep has that in its name", opts.only.join(" --only "));
    }
    Ok(match opts.shard {
        Some((i, n)) => picked.into_iter().enumerate().filter(|(k, _)| k % n == i - 1).map(|p| p.1).collect(),
        None => picked,
    })
}

/// Claims run `name` for this worker: true once, for the first worker that asks (an atomic file create).
fn claim(claims: &Path, name: &str) -> Result<bool> {
    match std::fs::OpenOptions::new().write(true).create_new(true).open(claims.join(name)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot claim {name} in {}", claims.display())),
    }
}

/// `--jobs n`: the same command as `n` worker processes with `threads` libtorch threads each (cores/n unless
/// `--threads` says), which claim the runs one by one; this process shows the overall progress, then writes the
/// summary and charts as a serial sweep would.
fn parallel<E: Experiment>(
    e: &mut E,
    loaded: &Loaded<Cfg<E>>,
    overrides: &[String],
    root: &Path,
    opts: &RunOptions,
    jobs: usize,
    threads: usize,
) -> Result<()> {
    let all = points(loaded, &loaded.cfg.sweep, overrides)?;
    let mine = selected(&all, opts)?;
    e.check(&mine.iter().map(|p| &p.cfg).collect::<Vec<_>>())?;
    let dir = root.join(folder::<E>(&loaded.cfg));
    let claims = dir.join(".claims");
    if claims.exists() {
        std::fs::remove_dir_all(&claims).with_context(|| format!("cannot clear {}", claims.display()))?;
    }
    std::fs::create_dir_all(&claims).with_context(|| format!("cannot create {}", claims.display()))?;
    crate::progress::say!("{} runs on {jobs} workers, {threads} libtorch thread(s) each", mine.len());
    let exe = std::env::current_exe()?;
    let mut children = (1..=jobs)
        .map(|k| {
            std::process::Command::new(&exe)
                .args(std::env::args_os().skip(1))
                .env(WORKER, format!("{k}/{jobs}"))
                .env(WORKER_THREADS, threads.to_string())
                .spawn()
                .with_context(|| format!("cannot start worker {k} ({})", exe.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let pb = crate::progress::bar(mine.len() as u64, "runs");
    let mut codes = vec![None; children.len()];
    while codes.iter().any(Option::is_none) {
        std::thread::sleep(std::time::Duration::from_millis(500));
        for (c, code) in children.iter_mut().zip(codes.iter_mut()) {
            if code.is_none() {
                *code = c.try_wait()?.map(|s| s.success());
            }
        }
        let done = mine.iter().filter(|p| read_meta(&dir.join(&p.name)).is_ok_and(|m| m.status.is_complete())).count();
        pb.set_position(done as u64);
    }
    pb.finish_and_clear();
    let _ = std::fs::remove_dir_all(&claims);
    let merge = RunOptions { merge_only: true, ..RunOptions { device: opts.device, ..Default::default() } };
    run(e, loaded, overrides, root, &merge)?;
    let failed = codes.iter().filter(|c| **c != Some(true)).count();
    if failed > 0 {
        bail!("{failed} of {jobs} workers reported failed runs; see the runs' meta.yaml (a rerun retries them)");
    }
    Ok(())
}

/// Runs the grid of `loaded` (see the module docs) and returns when the summary and charts are written.
pub fn run<E: Experiment>(
    e: &mut E,
    loaded: &Loaded<Cfg<E>>,
    overrides: &[String],
    root: &Path,
    opts: &RunOptions,
) -> Result<()> {
    let all = points(loaded, &loaded.cfg.sweep, overrides)?;
    let name = folder::<E>(&loaded.cfg);
    let mut failed = 0;
    if !opts.merge_only {
        let mine = selected(&all, opts)?;
        if let Some((i, n)) = opts.shard {
            crate::progress::say!("shard {i}/{n}: {} of {} runs", mine.len(), all.len());
        }
        let claims = root.join(&name).join(".claims");
        if !opts.worker {
            e.check(&mine.iter().map(|p| &p.cfg).collect::<Vec<_>>())?;
        }
        for (k, p) in mine.iter().enumerate() {
            if opts.worker && !claim(&claims, &p.name)? {
                continue;
            }
            let who = std::env::var(WORKER).map_or(String::new(), |w| format!(" (worker {w})"));
            crate::progress::say!("[{}/{}] {}{who}", k + 1, mine.len(), p.name);
            if let Err(err) = run_point(e, p, root, &name, opts) {
                crate::progress::say!("error: {}: {err:#}", p.name);
                failed += 1;
            }
        }
        if opts.worker {
            if failed > 0 {
                bail!("{failed} run(s) failed");
            }
            return Ok(());
        }
    }
    let dir = root.join(&name);
    let metas: Vec<Meta> = all
        .iter()
        .map(|p| dir.join(&p.name))
        .filter(|d| d.join("meta.yaml").exists())
        .map(|d| read_meta(&d))
        .collect::<Result<_>>()?;
    if metas.is_empty() {
        bail!("no runs under {}", dir.display());
    }
    let (tags, results) = e.columns();
    let summary = dir.join(e.summary_name());
    write_summary(&summary, &metas, &tags, &results)?;
    let text = e.finish(root, &loaded.cfg, &metas)?;
    print!("{text}");
    println!("wrote {} ({} runs) and the charts in {}", summary.display(), metas.len(), dir.display());
    if failed > 0 {
        bail!("{failed} run(s) failed; see their meta.yaml (a rerun retries them)");
    }
    Ok(())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Trains one point (unless its folder already holds it finished with the same config): the data, a seeded
/// model, the gradient probe and the experiment's hooks, [`fit`], the checkpoint, the experiment's outputs.
pub fn run_point<E: Experiment>(
    e: &mut E,
    p: &Point<Cfg<E>>,
    root: &Path,
    name: &str,
    opts: &RunOptions,
) -> Result<Meta> {
    let cfg = &p.cfg;
    let mut tags = p.tags.clone();
    tags.extend(e.tags(cfg));
    let model_name = match cfg.model.kind {
        ModelKind::Bow => "bow",
        _ => cfg.model.cell.name(),
    };
    tags.insert("model".into(), model_name.into());
    let yaml = config::to_yaml(cfg)?;
    let mut run = match RunDir::open(root, name, &p.name, &yaml, cfg.train.seed, tags, opts.overwrite)? {
        Opened::Done(meta) => {
            crate::progress::say!("{}: finished earlier with the same config, reusing it", p.name);
            return Ok(meta);
        }
        Opened::New(run) => run,
    };
    run.meta.device = crate::cli::device_name(opts.device);
    let mut data = match e.dataset(cfg) {
        Ok(d) => d.to_device(opts.device),
        Err(err) => {
            let (status, message) = match err.downcast_ref::<Refused>() {
                Some(r) => {
                    run.meta.result.insert("n_train".into(), r.n_train as f64);
                    run.meta.result.insert("n_test".into(), r.n_test as f64);
                    (Status::Refused, r.message.clone())
                }
                None => (Status::Failed, format!("{err:#}")),
            };
            crate::progress::say!("{}: {}: {message}", p.name, status.name());
            run.finish(status, Some(message))?;
            return if status == Status::Refused { Ok(run.meta) } else { Err(err) };
        }
    };
    for (k, s) in [("n_train", Some(&data.train)), ("n_val", data.val.as_ref()), ("n_test", data.test.as_ref())] {
        run.meta.result.insert(k.into(), s.map_or(0, |s| s.len()) as f64);
    }
    // What the run trained on: tokens per epoch and the training sequences' lengths.
    let lens = &data.train.lengths;
    let tokens: i64 = lens.iter().sum();
    run.meta.result.insert("train_tokens".into(), tokens as f64);
    run.meta.result.insert("train_len_mean".into(), tokens as f64 / lens.len().max(1) as f64);
    run.meta.result.insert("train_len_max".into(), lens.iter().copied().max().unwrap_or(0) as f64);
    data.shape.class_counts = data.train.class_counts(data.shape.classes.len()).unwrap_or_default();
    let seeded = crate::rng::torch_seed(cfg.train.seed as i64);
    let vs = nn::VarStore::new(opts.device);
    let mut model = build(&vs.root(), &cfg.model, &data.shape);
    if let Model::Seq2seq(m) = &model {
        m.teacher_forcing.set(cfg.train.teacher_forcing);
    }
    if let (Model::Classifier(m), ClassWeights::Inverse | ClassWeights::Sqrt) = (&mut model, cfg.train.class_weights) {
        let w = cfg.train.class_weights.of(&data.shape.class_counts);
        m.class_weights = Some(Tensor::from_slice(&w).to_kind(tch::Kind::Float).to_device(opts.device));
    }
    // The gradient probe (classifiers) and the experiment's own hook share one step hook.
    let mut probe = match (model.classifier(), cfg.probe.enabled) {
        (Some(m), true) => {
            let split = data.val.as_ref().unwrap_or(&data.train);
            let rows: Vec<i64> = (0..split.len().min(cfg.probe.batch_size) as i64).collect();
            Some(Probe::new(m, split.batch(&rows, opts.device), cfg.probe.hidden, cfg.model.cell.name()))
        }
        _ => None,
    };
    let wants = e.wants_during(cfg);
    let hooked = probe.is_some() || wants;
    let probe_every = if probe.is_some() { cfg.probe.every } else { 0 };
    let own_every = if wants { e.every(cfg) } else { 0 };
    // Each hook runs at most once per step (the last step can be both periodic and final).
    let (mut probed, mut called) = (None, None);
    let mut call = |step: usize, edge: bool, run: &mut RunDir| -> Result<()> {
        let due = |every: usize| edge || (every > 0 && step.is_multiple_of(every));
        if let Some(pr) = probe.as_mut().filter(|_| due(probe_every) && probed != Some(step)) {
            run.grads(pr.rows(step));
            run.flush()?;
            probed = Some(step);
        }
        if wants && due(own_every) && called != Some(step) {
            e.during(cfg, &model, step, run)?;
            called = Some(step);
        }
        Ok(())
    };
    let hook = hooked.then(|| StepHook { every: gcd(probe_every, own_every), call: &mut call });
    let lr = cfg.train.lr_for(&cfg.model);
    let outcome = fit(model.objective(), &vs, &data, &cfg.train, lr, &mut run, hook);
    drop(seeded);
    if let Some(pr) = &probe {
        // Probe time is part of train_s; report it so its share can be checked.
        run.meta.result.insert("probe_s".into(), pr.seconds);
        run.save_meta()?;
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(err) => {
            run.finish(Status::Failed, Some(format!("{err:#}")))?;
            return Err(err);
        }
    };
    if cfg.train.checkpoint && outcome.status == Status::Finished {
        checkpoint::save(&run, &vs, &cfg.model, &data.shape, &cfg.train)?;
    }
    e.after(cfg, Trained { model: &model, data: &data, run: &mut run, outcome: &outcome })?;
    run.save_meta()?;
    Ok(run.meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::SyntheticConfig;

    type C = Config<SyntheticConfig>;

    fn pts(text: &str, sets: &[&str]) -> Result<Vec<Point<C>>> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let loaded: Loaded<C> = config::from_str(text, "x.yaml", &sets)?;
        points(&loaded, &loaded.cfg.sweep, &sets)
    }

    #[test]
    fn a_grid_becomes_named_runs_with_their_own_configs() {
        let text = "train: {seed: 3}\nsweep:\n  data.length: [10, 20]\n  model.cell: [rnn, gru]\n  variant: {base: {}, bi: {model.bidirectional: true, train.lr: 0.01}}\n";
        let p = pts(text, &[]).unwrap();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        // First axis outermost; names in the shared order (model, variant, L, seed last).
        assert_eq!(&names[..4], ["rnn-base-L10-s3", "rnn-bi-L10-s3", "gru-base-L10-s3", "gru-bi-L10-s3"]);
        assert_eq!(p.len(), 8);
        let bi = &p[1];
        assert!(bi.cfg.model.bidirectional && bi.cfg.train.lr == 0.01 && bi.cfg.data.length == 10);
        assert!(!p[0].cfg.model.bidirectional && p[0].cfg.train.lr == 1e-3);
        assert_eq!(bi.tags["seq_len"], "10");
        assert_eq!(bi.tags["variant"], "bi");
        assert_eq!(bi.tags["model"], "rnn");
        // The saved config of a run has no sweep section.
        assert!(!config::to_yaml(&bi.cfg).unwrap().contains("sweep"));
        // A list of grids is their union; --set replaces an axis in every grid that has it.
        let text =
            "sweep:\n  - {model.cell: [rnn, gru], train.seed: [0]}\n  - {model.cell: [lstm], data.length: [5]}\n";
        let p = pts(text, &["sweep.model.cell=[gru]"]).unwrap();
        assert_eq!(p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["gru-s0", "gru-L5-s0"]);
        // Errors: the same run twice; a bad value names the run.
        let e = format!("{:#}", pts("sweep: [{model.cell: [gru]}, {model.cell: [gru]}]", &[]).unwrap_err());
        assert!(e.contains("makes run gru-s0 twice"), "{e}");
        let e = format!("{:#}", pts("sweep: {mode: {a: {data.length: 3}}, data.length: [4]}", &[]).unwrap_err());
        assert!(e.contains("`data.length` is set by two axes (mode and data.length)"), "{e}");
        let e = format!("{:#}", pts("sweep: {data.length: [10, 0]}", &[]).unwrap_err());
        assert!(e.contains("run L0-s0") && e.contains("data.length = 0"), "{e}");
    }
}
