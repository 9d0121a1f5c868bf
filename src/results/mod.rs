//! Results: the one place that writes (and reads back) run folders and their rows.
//!
//! `results/<experiment>/<run>/` holds `config.yaml` (exactly what ran), `meta.yaml` (status, seed, device,
//! versions, commit, timings, final numbers) and the run's CSVs. A [`RunDir`] is also the recorder of its run:
//! the training loop and the gradient probe hand it rows ([`rows`]), and it writes them. Every file is written
//! to a temporary name and renamed, so a crash never leaves half a file. A finished run with the same config is
//! reused, not redone; one with a different config is never replaced without `--overwrite`.
pub mod checkpoint;
pub mod rows;
pub mod summary;
pub mod tags;

pub use crate::files::write_atomic;
pub use tags::{Tag, Tags};

use anyhow::{bail, Context, Result};
use rows::{GradRow, MetricRow, RowStatus, SplitName, StepRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Finished,
    Diverged,
    Failed,
    /// Not trained: the data could not make this point (too few examples...). See `message`.
    Refused,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
            Status::Refused => "refused",
        }
    }
    /// A run that ended on its own (finished, diverged or refused) is complete; its results stand.
    pub fn is_complete(self) -> bool {
        matches!(self, Status::Finished | Status::Diverged | Status::Refused)
    }
}

/// `meta.yaml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub experiment: String,
    pub run: String,
    pub status: Status,
    /// Why the run diverged or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub seed: u64,
    pub device: String,
    pub threads: i64,
    pub rnnlab_version: String,
    pub tch_version: String,
    pub libtorch_version: String,
    pub commit: Option<String>,
    pub host: String,
    /// Process that wrote the run (to tell a run in progress from an interrupted one).
    #[serde(default)]
    pub pid: u32,
    pub started: String,
    pub finished: Option<String>,
    pub wall_s: f64,
    /// What identifies the run besides its seed (model, mode, seq_len...): its swept values and the
    /// experiment's fixed ones; every one is a column of the summary.
    #[serde(default)]
    pub tags: Tags,
    /// Final numbers (test_acc, n_params, train_s...).
    #[serde(default)]
    pub result: BTreeMap<String, f64>,
}

/// What [`RunDir::open`] found.
pub enum Opened {
    /// A complete run with the same config: its meta, to reuse.
    Done(Meta),
    /// A fresh (or restarted) run folder to write into.
    New(RunDir),
}

/// A run folder being written, and the recorder of the run's rows.
pub struct RunDir {
    pub path: PathBuf,
    pub meta: Meta,
    clock: Instant,
    metrics: Vec<MetricRow>,
    steps: Vec<StepRow>,
    grads: Vec<GradRow>,
    /// Held while the run is written (see [`Busy`]).
    _lock: std::fs::File,
    /// Outputs still to come after training (checkpoint, the experiment's files): `meta.yaml` says `running`
    /// until [`complete`](Self::complete), so a run killed while writing them is redone, not reused.
    pending: bool,
}

/// Another process is writing this run: it holds the run's lock, `<root>/<experiment>/.locks/<run>` (an
/// advisory lock the system releases when that process ends, even by `kill -9`).
#[derive(Debug)]
pub struct Busy {
    pub run: PathBuf,
    /// The process holding it, as it wrote in the lock file.
    pub pid: Option<u32>,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by = self.pid.map_or("another process".into(), |p| format!("another process (pid {p})"));
        write!(f, "{} is being written by {by}", self.run.display())
    }
}

impl std::error::Error for Busy {}

/// Takes the lock of run `run` of `experiment` without waiting; a [`Busy`] error when another process has it.
fn lock(root: &Path, experiment: &str, run: &str) -> Result<std::fs::File> {
    let dir = root.join(experiment).join(".locks");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(run);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::{Seek, Write};
            file.set_len(0)?;
            file.rewind()?;
            write!(file, "{}", std::process::id())?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse().ok());
            Err(Busy { run: root.join(experiment).join(run), pid }.into())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Waits until no process holds the lock of run `run` of `experiment` (and does not keep it).
pub fn wait_for(root: &Path, experiment: &str, run: &str) -> Result<()> {
    let path = root.join(experiment).join(".locks").join(run);
    let file = std::fs::File::open(&path).with_context(|| format!("cannot open the lock {}", path.display()))?;
    file.lock_shared().with_context(|| format!("cannot wait for the lock {}", path.display()))
}

impl RunDir {
    /// Opens `<root>/<experiment>/<run>` for a run with config `config_yaml`.
    /// An incomplete earlier attempt (running, failed) is replaced; a complete one with the same config is
    /// returned as [`Opened::Done`]; a different config is an error unless `overwrite`.
    pub fn open(
        root: &Path,
        experiment: &str,
        run: &str,
        config_yaml: &str,
        seed: u64,
        tags: Tags,
        overwrite: bool,
    ) -> Result<Opened> {
        let path = root.join(experiment).join(run);
        let lock = lock(root, experiment, run)?;
        if path.exists() {
            let old = read_meta(&path).ok();
            let same = std::fs::read_to_string(path.join("config.yaml")).is_ok_and(|c| c == config_yaml);
            match old {
                Some(m) if m.status.is_complete() && same && !overwrite => return Ok(Opened::Done(m)),
                Some(m) if m.status.is_complete() && !overwrite => bail!(
                    "{} holds a {} run made with a different config (compare its config.yaml); pass --overwrite to \
                     replace it, or --out DIR to write elsewhere",
                    path.display(),
                    m.status.name()
                ),
                _ => {}
            }
            std::fs::remove_dir_all(&path).with_context(|| format!("cannot clear {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create run folder {}", path.display()))?;
        let meta = Meta {
            experiment: experiment.into(),
            run: run.into(),
            status: Status::Running,
            message: None,
            seed,
            device: String::new(),
            threads: tch::get_num_threads() as i64,
            rnnlab_version: env!("CARGO_PKG_VERSION").into(),
            tch_version: "0.26".into(),
            libtorch_version: option_env!("RNNLAB_LIBTORCH_VERSION").unwrap_or("unknown").into(),
            commit: git_commit(),
            host: hostname(),
            pid: std::process::id(),
            started: now(),
            finished: None,
            wall_s: 0.0,
            tags,
            result: BTreeMap::new(),
        };
        let dir = RunDir {
            path,
            meta,
            clock: Instant::now(),
            metrics: vec![],
            steps: vec![],
            grads: vec![],
            _lock: lock,
            pending: false,
        };
        dir.write("config.yaml", config_yaml.as_bytes())?;
        dir.save_meta()?;
        Ok(Opened::New(dir))
    }

    /// Writes `name` in the run folder atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path.join(name), bytes)
    }

    /// Writes rows as a CSV file (headers from the row type), atomically.
    pub fn write_csv<R: Serialize>(&self, name: &str, rows: &[R]) -> Result<()> {
        write_csv(&self.path.join(name), rows)
    }

    /// Records one epoch's numbers on one split.
    pub fn metric(&mut self, epoch: usize, step: usize, split: SplitName, loss: f64, acc: f64, status: RowStatus) {
        let tag = |k: &str| self.meta.tags.get(k).map(Tag::to_string).unwrap_or_default();
        self.metrics.push(MetricRow {
            experiment: self.meta.experiment.clone(),
            run: self.meta.run.clone(),
            model: tag("model"),
            variant: tag("variant"),
            seed: self.meta.seed,
            epoch,
            step,
            split,
            loss,
            acc,
            status,
        });
    }

    /// The epoch rows recorded so far.
    pub fn metrics(&self) -> &[MetricRow] {
        &self.metrics
    }

    /// Records one optimiser step.
    pub fn step(&mut self, row: StepRow) {
        self.steps.push(row);
    }

    /// Records gradient norms from the probe.
    pub fn grads(&mut self, rows: Vec<GradRow>) {
        self.grads.extend(rows);
    }

    /// The gradient-norm rows recorded so far.
    pub fn grad_rows(&self) -> &[GradRow] {
        &self.grads
    }

    /// Writes the recorded rows: `metrics.csv`, `steps.csv`, `grad_norms.csv` (each once it has rows).
    pub fn flush(&self) -> Result<()> {
        if !self.metrics.is_empty() {
            self.write_csv(rows::METRICS, &self.metrics)?;
        }
        if !self.steps.is_empty() {
            self.write_csv(rows::STEPS, &self.steps)?;
        }
        if !self.grads.is_empty() {
            self.write_csv(rows::GRADS, &self.grads)?;
        }
        Ok(())
    }

    pub fn save_meta(&self) -> Result<()> {
        let mut meta = self.meta.clone();
        if self.pending && meta.status.is_complete() {
            meta.status = Status::Running;
        }
        let bytes = serde_yaml::to_string(&meta)?;
        match self.write("meta.yaml", bytes.as_bytes()) {
            // A full disk has no room for a second copy: a failed run's meta is written in place, so the reason
            // is kept (half of it, if killed meanwhile, never reads as a complete run).
            Err(e) if meta.status == Status::Failed && full(&e) => std::fs::write(self.path.join("meta.yaml"), bytes)
                .with_context(|| format!("cannot write {}", self.path.join("meta.yaml").display())),
            r => r,
        }
    }

    /// From now on `meta.yaml` shows a finished (diverged, refused) run as `running` until
    /// [`complete`](Self::complete): for a caller that writes more outputs after training.
    pub fn hold_completion(&mut self) {
        self.pending = true;
    }

    /// All outputs are written: `meta.yaml` shows the run's real status.
    pub fn complete(&mut self) -> Result<()> {
        self.pending = false;
        self.save_meta()
    }

    /// Records the end of the run.
    pub fn finish(&mut self, status: Status, message: Option<String>) -> Result<()> {
        self.meta.status = status;
        self.meta.message = message;
        self.meta.finished = Some(now());
        self.meta.wall_s = self.clock.elapsed().as_secs_f64();
        self.save_meta()
    }
}

pub fn read_meta(run_dir: &Path) -> Result<Meta> {
    let p = run_dir.join("meta.yaml");
    let text = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("{} is not a valid meta.yaml", p.display()))
}

impl Meta {
    /// A tag's value as text, as the config wrote it (empty when absent).
    pub fn tag(&self, key: &str) -> String {
        self.tags.get(key).map(Tag::to_string).unwrap_or_default()
    }

    /// A tag's value as a number (None when absent or not a number).
    pub fn number(&self, key: &str) -> Option<f64> {
        self.tags.get(key).and_then(Tag::number)
    }

    /// The cell this run trained, if it is a recurrent model.
    pub fn cell(&self) -> Option<crate::config::CellKind> {
        match self.tags.get("model") {
            Some(Tag::Text(m)) => crate::config::CellKind::parse(m).ok(),
            _ => None,
        }
    }

    /// The folder of this run under `root`.
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(&self.experiment).join(&self.run)
    }
}

/// Records a run that stopped without finishing its own meta (it panicked) as failed, with `message`; nothing
/// when the folder has no meta.
pub fn mark_failed(run_dir: &Path, message: &str) -> Result<()> {
    let Ok(mut meta) = read_meta(run_dir) else { return Ok(()) };
    meta.status = Status::Failed;
    meta.message = Some(message.to_string());
    meta.finished = Some(now());
    write_atomic(&run_dir.join("meta.yaml"), serde_yaml::to_string(&meta)?.as_bytes())
}

/// The config a run saved (`config.yaml`), typed.
pub fn read_config<T: serde::de::DeserializeOwned>(root: &Path, m: &Meta) -> Result<T> {
    let p = m.dir(root).join("config.yaml");
    let text = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("{} does not match this experiment's config", p.display()))
}

/// Metas of every run folder under `<root>/<experiment>`, sorted by run name.
pub fn list_runs(root: &Path, experiment: &str) -> Result<Vec<Meta>> {
    let dir = root.join(experiment);
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for e in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if p.join("meta.yaml").exists() {
            match read_meta(&p) {
                Ok(m) => out.push(m),
                // Deleted between the listing and the read (by a rerun with --overwrite, or by hand).
                Err(_) if !p.exists() => crate::progress::say!("{}: deleted while being read; left out", p.display()),
                Err(e) => return Err(e),
            }
        }
    }
    out.sort_by(|a, b| a.run.cmp(&b.run));
    Ok(out)
}

/// Serialises rows to CSV bytes.
pub fn csv_bytes<R: Serialize>(rows: &[R]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))
}

/// Writes rows as a CSV file (headers from the row type), atomically.
pub fn write_csv<R: Serialize>(path: &Path, rows: &[R]) -> Result<()> {
    write_atomic(path, &csv_bytes(rows)?)
}

/// Reads a CSV of `T` rows; errors name the file.
pub fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    r.deserialize().map(|row| row.with_context(|| format!("bad row in {}", path.display()))).collect()
}

/// Whether an error is a full disk (ENOSPC).
fn full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.raw_os_error() == Some(28)))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// `git rev-parse HEAD` (with `-dirty` when the tree has changes), if this is a git checkout.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut c = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if dirty {
        c.push_str("-dirty");
    }
    Some(c)
}
