//! Which runs this process trains (`--only`, `--shard i/n`) and `--jobs N`: worker processes that claim the runs
//! one by one while this one shows the overall progress.
use super::{run, Cfg, Descriptor, Experiment, Point};
use crate::cli::{WORKER, WORKER_THREADS};
use crate::config::Loaded;
use crate::results::read_meta;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::Device;

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
pub fn selected<'a, C>(all: &'a [Point<C>], opts: &RunOptions) -> Result<Vec<&'a Point<C>>> {
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
pub fn claim(claims: &Path, name: &str) -> Result<bool> {
    match std::fs::OpenOptions::new().write(true).create_new(true).open(claims.join(name)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot claim {name} in {}", claims.display())),
    }
}

/// `--jobs n`: the same command as `n` worker processes with `threads` libtorch threads each (cores/n unless
/// `--threads` says), which claim the runs one by one; this process shows the overall progress, then writes the
/// summary and charts as a serial sweep would.
pub fn parallel<E: Experiment>(
    e: &E,
    d: &Descriptor,
    loaded: &Loaded<Cfg<E>>,
    overrides: &[String],
    root: &Path,
    opts: &RunOptions,
    (jobs, threads): (usize, usize),
) -> Result<()> {
    let all = super::points(loaded, &loaded.cfg.sweep, overrides)?;
    let mine = selected(&all, opts)?;
    e.check(&mine.iter().map(|p| &p.cfg).collect::<Vec<_>>())?;
    let dir = d.folder(root);
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
    let mut codes: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    while codes.iter().any(Option::is_none) {
        std::thread::sleep(std::time::Duration::from_millis(500));
        for (c, code) in children.iter_mut().zip(codes.iter_mut()) {
            if code.is_none() {
                *code = c.try_wait()?;
            }
        }
        let done = mine.iter().filter(|p| read_meta(&dir.join(&p.name)).is_ok_and(|m| m.status.is_complete())).count();
        pb.set_position(done as u64);
    }
    pb.finish_and_clear();
    let _ = std::fs::remove_dir_all(&claims);
    // A worker killed from outside (kill -9, the OOM killer) leaves the run it held unfinished: train those here.
    let killed: Vec<String> = codes
        .iter()
        .enumerate()
        .filter_map(|(k, c)| c.and_then(signal).map(|s| format!("worker {}/{jobs} was killed by signal {s}", k + 1)))
        .collect();
    let mut again = RunOptions { device: opts.device, only: opts.only.clone(), ..Default::default() };
    if killed.is_empty() {
        again.merge_only = true;
    } else {
        again.shard = opts.shard;
        // As a worker would have: the same threads give the same bytes.
        tch::set_num_threads(threads as i32);
        crate::progress::say!("{}; training the runs left unfinished in this process", killed.join(", "));
    }
    run(e, d, loaded, overrides, root, &again)?;
    let failed = codes.iter().filter(|c| c.is_some_and(|c| !c.success() && signal(c).is_none())).count();
    if failed > 0 {
        bail!("{failed} of {jobs} workers reported failed runs; see the runs' meta.yaml (a rerun retries them)");
    }
    Ok(())
}

/// The signal that ended a process, if one did.
fn signal(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}
