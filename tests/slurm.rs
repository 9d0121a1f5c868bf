//! Sweeps on a Slurm cluster: a single-node cluster from Debian's slurm-wlm and munge (`make test` installs them)
//! runs a 4-shard toy sweep with scripts/slurm/submit.sh; the merged results equal a serial run's. Skipped, with
//! the reason printed, only where the daemons cannot start.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Stops the cluster when the test ends, passed or not.
struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    fn start(dir: &Path) -> Result<Cluster, String> {
        let o = Command::new(format!("{ROOT}/scripts/slurm/local-cluster.sh"))
            .arg("start")
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run local-cluster.sh: {e}"))?;
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        match text.lines().find_map(|l| l.strip_prefix("SLURM_CONF=")) {
            Some(conf) if o.status.success() => Ok(Cluster { dir: dir.to_path_buf(), conf: conf.to_string() }),
            _ => Err(format!("the daemons did not start: {}{}", text, String::from_utf8_lossy(&o.stderr))),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(format!("{ROOT}/scripts/slurm/local-cluster.sh")).arg("stop").arg(&self.dir).status();
    }
}

/// The toy sweep: 8 runs of the demo, one epoch, one libtorch thread per run.
const TOY: [&str; 14] = [
    "--set",
    "sweep.data.length=[6,9]",
    "--set",
    "sweep.model.cell=[rnn,gru]",
    "--set",
    "sweep.train.seed=[0,1]",
    "--set",
    "train.epochs=1",
    "--set",
    "data.n_train=300",
    "--set",
    "data.n_val=50",
    "--set",
    "data.n_test=50",
];

#[test]
fn a_sweep_on_slurm_shards_and_merges_to_the_serial_results() {
    let missing: Vec<&str> =
        ["munged", "slurmctld", "slurmd", "sbatch"].into_iter().filter(|b| which(b).is_none()).collect();
    if !missing.is_empty() {
        eprintln!("SKIPPED: {} not installed (make test installs slurm-wlm and munge)", missing.join(", "));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = match Cluster::start(&dir.path().join("cluster")) {
        Ok(c) => c,
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    let demo = env!("CARGO_BIN_EXE_demo");
    let serial = dir.path().join("serial");
    let o =
        Command::new(demo).current_dir(ROOT).args(TOY).args(["--threads", "1", "--out"]).arg(&serial).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("slurm");
    let o = Command::new(format!("{ROOT}/scripts/slurm/submit.sh"))
        .current_dir(ROOT)
        .env("SLURM_CONF", &cluster.conf)
        .env("RNNLAB_OUT", &out)
        .env("CPUS", "1")
        .arg("4")
        .arg(demo)
        .args(TOY)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && text.starts_with("array "), "{text}{}", String::from_utf8_lossy(&o.stderr));
    let merge: String = text.split_whitespace().last().unwrap().to_string();
    // Wait for the merge job to leave the queue (the array first).
    let start = Instant::now();
    loop {
        let q = Command::new("squeue").env("SLURM_CONF", &cluster.conf).args(["-h", "-j", &merge]).output().unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "the Slurm jobs did not finish in 5 min");
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs: Vec<String> = std::fs::read_dir(out.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let shards = logs.iter().filter(|l| l.starts_with("shard-")).count();
    assert_eq!(shards, 4, "one log per array task: {logs:?}");
    for log in &logs {
        let t = std::fs::read_to_string(out.join("slurm").join(log)).unwrap();
        if log.starts_with("shard-") {
            assert!(t.contains("shard ") && t.contains("of 8 runs"), "{log}: {t}");
        }
    }
    // Every run's CSVs are the serial run's, byte for byte; the merged summary has every run.
    let (a, b) = (serial.join("demo"), out.join("demo"));
    let runs: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(runs.len(), 8);
    for r in &runs {
        for f in ["metrics.csv", "steps.csv", "grad_norms.csv", "config.yaml"] {
            let (x, y) = (std::fs::read(a.join(r).join(f)).unwrap(), std::fs::read(b.join(r).join(f)));
            assert!(y.is_ok_and(|y| y == x), "{r}/{f}: the Slurm run differs from the serial run");
        }
    }
    // summary.csv: everything but the timing columns (train_s, train_seq_per_s, wall_s: the last three).
    let numbers = |p: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(p).unwrap();
        text.lines().map(|l| l.split(',').collect::<Vec<_>>()).map(|c| c[..c.len() - 3].join(",")).collect()
    };
    let (sa, sb) = (numbers(&a.join("summary.csv")), numbers(&b.join("summary.csv")));
    assert!(sa.len() == 9 && sa[0].contains("test_acc"), "{sa:?}");
    assert_eq!(sa, sb, "the merged summary differs from the serial one");
    assert!(b.join("accuracy_vs_length.png").exists());
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}
