//! Command-line options shared by every experiment binary, and the set-up they imply (device, threads).
use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use tch::Device;

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// YAML config file (see configs/; every key is commented there).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. --set train.epochs=3 --set model.hidden=128 (repeatable; YAML values).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// cpu, cuda, cuda:N, or auto (cuda when available).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Intra-op threads for libtorch (default: one per core, shared out when other rnnlab runs are live).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Results root instead of the config's output.dir.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Redo runs whose folder already holds results (by default finished runs with the same config are
    /// reused and runs with a different config are refused).
    #[arg(long)]
    pub overwrite: bool,
}

impl Common {
    /// The config path, or the experiment's default.
    pub fn config_path(&self, default: &str) -> PathBuf {
        self.config.clone().unwrap_or_else(|| PathBuf::from(default))
    }

    /// Applies `--threads` (or shares the cores with other live rnnlab runs) and resolves `--device`.
    pub fn setup(&self) -> Result<Device> {
        // A worker of a `--jobs` sweep takes the threads its parent gave it.
        if let Some(t) = std::env::var(WORKER_THREADS).ok().and_then(|t| t.parse().ok()) {
            tch::set_num_threads(t);
            return parse_device(&self.device);
        }
        match self.threads {
            Some(t) if t < 1 => bail!("--threads {t}: must be >= 1"),
            Some(t) => tch::set_num_threads(t),
            None => {
                let others =
                    std::env::current_exe().ok().and_then(|e| e.parent().map(processes_in)).unwrap_or_default();
                if !others.is_empty() {
                    let cores = tch::get_num_threads();
                    let t = shared_threads(cores, others.len());
                    tch::set_num_threads(t);
                    crate::progress::say!(
                        "note: {} other rnnlab run(s) live (pid {:?}): using {t} libtorch thread(s) of {cores}. Runs \
                         that each use every core wait on each other (two on 2 cores ran ~100x slower); --threads \
                         overrides",
                        others.len(),
                        others
                    );
                }
            }
        }
        parse_device(&self.device)
    }
}

/// Options of every binary that runs a sweep.
#[derive(Args, Debug, Clone, Default)]
pub struct SweepArgs {
    /// Run only shard I of N (1-based): every N-th run starting at the I-th (e.g. one per job of a cluster job
    /// array); `--merge-only` then collects them.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Train nothing: rebuild the summary CSV and the charts from the run folders present.
    #[arg(long)]
    pub merge_only: bool,
    /// Train only the runs whose name contains TEXT (repeatable; e.g. --only gru --only lstm).
    #[arg(long, value_name = "TEXT")]
    pub only: Vec<String>,
    /// Train N runs at once, each in its own process with cores/N libtorch threads (or --threads) (small models
    /// do not fill the cores). Each run's numbers are those of a serial run with that many threads.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
}

pub use crate::progress::WORKER;
/// The libtorch threads of a `--jobs` worker (in its environment).
pub const WORKER_THREADS: &str = "RNNLAB_WORKER_THREADS";

/// Whether this process is a worker of a `--jobs` sweep.
pub fn is_worker() -> bool {
    std::env::var_os(WORKER).is_some()
}

impl SweepArgs {
    /// `--shard i/n` → (i, n), 1 <= i <= n.
    pub fn shard(&self) -> Result<Option<(usize, usize)>> {
        let Some(s) = &self.shard else { return Ok(None) };
        let bad = || anyhow::anyhow!("--shard {s}: expected I/N with 1 <= I <= N, e.g. --shard 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n): (usize, usize) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if i == 0 || n == 0 || i > n {
            return Err(bad());
        }
        Ok(Some((i, n)))
    }
}

/// Threads for one of `others + 1` runs sharing `cores`.
pub fn shared_threads(cores: i32, others: usize) -> i32 {
    (cores / (others as i32 + 1)).max(1)
}

/// Pids of the other live processes whose executable is in `dir` (this project's binaries), leaving out the
/// coordinators of `--jobs` sweeps (a process whose child is one of them), which only wait.
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            // The playground idles between requests: it does not compete for the cores.
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe.parent() == Some(dir) && exe.file_name() != Some("serve".as_ref()))
        })
        .collect();
    let parent = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    };
    let parents: Vec<u32> = pids.iter().filter_map(|&p| parent(p)).collect();
    pids.retain(|p| !parents.contains(p));
    pids.sort();
    pids
}

/// Runs `body` and turns an error into one `error: ...` line on stderr (causes joined by ": ") and exit code 1.
pub fn run_main(body: impl FnOnce() -> Result<()>) -> std::process::ExitCode {
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            crate::progress::say!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn parse_device(s: &str) -> Result<Device> {
    let cuda_n = tch::Cuda::device_count();
    let need = |i: usize| -> Result<Device> {
        if (i as i64) < cuda_n {
            Ok(Device::Cuda(i))
        } else {
            bail!(
                "--device {s}: CUDA is not available here (libtorch sees {cuda_n} GPU(s)); use --device cpu, or build \
                 with a CUDA libtorch and RNNLAB_CUDA=1 (see README)"
            )
        }
    };
    match s {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available()),
        "cuda" => need(0),
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(i) => need(i),
            None => bail!("--device {s}: expected cpu, cuda, cuda:N or auto"),
        },
    }
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_shared_between_live_runs() {
        assert_eq!(
            [shared_threads(2, 0), shared_threads(2, 1), shared_threads(2, 3), shared_threads(8, 1)],
            [2, 1, 1, 4]
        );
        // A process started from a copy of `sleep` in a scratch folder is found there, and nowhere else.
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("sleep");
        std::fs::copy("/bin/sleep", &exe).unwrap();
        assert!(processes_in(dir.path()).is_empty());
        let mut child = std::process::Command::new(&exe).arg("30").spawn().unwrap();
        let found = processes_in(dir.path());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found, vec![child.id()]);
        assert!(processes_in(Path::new("/nonexistent")).is_empty());
    }
}
