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
