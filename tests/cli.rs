//! Bad input to an experiment binary: a clear message naming the file and key, a non-zero exit.
use std::process::Command;

fn demo(config: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("--config")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("results"))
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!dir.path().join("results").exists() || out.status.success(), "a rejected config wrote results");
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn config_errors_name_the_file_the_key_and_what_is_allowed() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("train: {epocs: 3}", &[], &["c.yaml", "unknown field `epocs`", "epochs"]),
        ("model: {hidden: many}", &[], &["c.yaml", "key `model.hidden`", "invalid type"]),
        ("model: {hidden: 0}", &[], &["c.yaml", "model.hidden = 0: must be > 0"]),
        ("model: {layers: -2}", &[], &["model.layers = -2: must be > 0"]),
        ("model: {cell: tanh}", &[], &["key `model.cell`", "unknown variant `tanh`", "`rnn`, `gru`, `lstm`"]),
        (
            "sweep: {model.cell: [rnn, transformer]}",
            &[],
            &["run transformer-s0", "model.cell", "unknown variant `transformer`"],
        ),
        ("sweep: {model.cell: gru}", &[], &["sweep.model.cell: expected a list of values"]),
        (
            "sweep: {model.cell: [rnn]}",
            &["--set", "model.cell=gru"],
            &["`model.cell` is swept", "'sweep.model.cell=[...]'"],
        ),
        ("", &["--set", "sweep.model.hidden=[8,0]"], &["run hidden0-s0", "model.hidden = 0: must be > 0"]),
        ("", &["--set", "train.batch_size=0"], &["train.batch_size = 0: must be > 0"]),
        ("", &["--set", "train.lr=fast"], &["key `train.lr` (from --set)", "invalid type"]),
        ("", &["--set", "data.classes=1"], &["data.classes = 1: must be >= 2"]),
        ("bogus: 1", &[], &["unknown field `bogus`", "`data`, `model`"]),
        ("train: {lr_decay: 1.5}", &[], &["c.yaml", "train.lr_decay = 1.5: must be in (0, 1]"]),
        ("model: {init: {chrono: 2}}", &[], &["model.init.chrono = 2.0: must be a number of steps > 2"]),
        ("model: {init: {chrono: 100, forget_bias: 1}}", &[], &["model.init.forget_bias = 1.0: must be null when"]),
        ("model: [1, 2", &[], &["c.yaml", "not valid YAML"]),
        ("experiment: nope", &[], &["c.yaml", "no experiment called `nope`", "names-distance"]),
        ("experiment: names-distance", &[], &["experiment `names-distance` runs with target/release/names"]),
        ("experiment: [demo]", &[], &["key `experiment`: expected the name of an experiment"]),
        ("", &["--device", "cuda:7"], &["--device cuda:7", "CUDA is not available"]),
    ];
    for (config, extra, expected) in cases {
        let (code, err) = demo(config, extra);
        assert_ne!(code, 0, "{config:?} {extra:?} was accepted");
        for e in *expected {
            assert!(err.contains(e), "{config:?} {extra:?}: expected {e:?} in:\n{err}");
        }
    }
}

#[test]
fn missing_config_file_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo")).args(["--config", "/nonexistent/x.yaml"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read config file /nonexistent/x.yaml"), "{err}");
}

#[test]
fn help_lists_the_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in ["--config", "--set", "--device", "--threads", "--out", "--overwrite"] {
        assert!(text.contains(opt), "--help lacks {opt}:\n{text}");
    }
}

#[test]
fn jobs_run_side_by_side_and_give_the_serial_bytes() {
    // 4 runs: one process with 1 thread, then 2 worker processes with 1 thread each.
    let dir = tempfile::tempdir().unwrap();
    let small = [
        "--set",
        "sweep.data.length=[6,9]",
        "--set",
        "sweep.model.cell=[rnn,gru]",
        "--set",
        "train.epochs=2",
        "--set",
        "data.n_train=300",
        "--set",
        "data.n_val=60",
        "--set",
        "data.n_test=60",
        "--threads",
        "1",
    ];
    let run = |out: &str, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/configs/demo.yaml"), "--out"])
            .arg(dir.path().join(out))
            .args(small)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run("serial", &[]);
    run("jobs", &["--jobs", "2"]);
    let (a, b) = (dir.path().join("serial/demo"), dir.path().join("jobs/demo"));
    let mut pids = std::collections::BTreeSet::new();
    for r in ["rnn-L6-s0", "gru-L6-s0", "rnn-L9-s0", "gru-L9-s0"] {
        for f in ["metrics.csv", "steps.csv", "grad_norms.csv", "config.yaml"] {
            let (x, y) = (std::fs::read(a.join(r).join(f)).unwrap(), std::fs::read(b.join(r).join(f)).unwrap());
            assert!(x == y, "{r}/{f} differs between the serial run and --jobs 2");
        }
        // `impl: auto` is saved as what it ran (the fused kernels, for the RNN and GRU everywhere).
        let config = std::fs::read_to_string(a.join(r).join("config.yaml")).unwrap();
        assert!(config.contains("impl: fused"), "{r}/config.yaml:\n{config}");
        let meta = std::fs::read_to_string(b.join(r).join("meta.yaml")).unwrap();
        pids.insert(meta.lines().find(|l| l.starts_with("pid:")).unwrap().to_string());
        assert!(meta.contains("threads: 1"), "{meta}");
    }
    assert!(pids.len() >= 2, "one worker did every run: {pids:?}");
    assert!(!b.join(".claims").exists(), "the claims are cleared");
    let summary = std::fs::read_to_string(b.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 5, "{summary}");
}

#[test]
fn a_corrupt_imdb_archive_is_reported_once_before_any_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("broken.tar.gz");
    std::fs::write(&archive, b"\x1f\x8b\x08\x00 this is not a whole archive").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imdb"))
        .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/configs/imdb.yaml"), "--set"])
        .arg(format!("data.path={}", archive.display()))
        .arg("--set")
        .arg(format!("data.cache_dir={}", dir.path().join("cache").display()))
        .arg("--out")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a corrupt archive was accepted:\n{err}");
    assert_eq!(err.matches("broken.tar.gz").count(), 1, "named once, before the runs:\n{err}");
    assert!(err.contains("truncated or corrupt"), "{err}");
    let runs = dir.path().join("results/imdb");
    let started = std::fs::read_dir(&runs).map(|d| d.filter(|e| e.as_ref().unwrap().path().is_dir()).count());
    assert_eq!(started.unwrap_or(0), 0, "no run folder may be started");
}
