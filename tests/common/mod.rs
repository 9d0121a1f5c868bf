//! Shared by the integration tests: where the real data sets are; a small training point.
#![allow(dead_code)]
use rnnlab::config::{CellKind, ModelConfig, ProbeConfig, TrainConfig};
use rnnlab::experiment::{Arch, Point};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Device;

/// `$RNNLAB_TEST_DATA` (set by `make test`), else `../shared/data` next to the clone. Panics with a clear
/// message when the folder is missing: tests on real data never pass silently without it.
pub fn test_data() -> PathBuf {
    let dir = std::env::var_os("RNNLAB_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")));
    assert!(
        dir.join("names").is_dir(),
        "test data not found at {} (expected names/ and aclImdb_labeled.tar.gz); run `make test TEST_DATA=/path/to/data`",
        dir.display()
    );
    dir
}

/// A small run of experiment `t` on the CPU: embedding 8, hidden 16, batch 32, Adam 0.01, seed 7; the probe
/// (every 10 steps) when `probe`.
pub fn point(root: &Path, run: &str, cell: CellKind, epochs: usize, probe: bool) -> Point {
    let model = ModelConfig { cell, embed_dim: 8, hidden: 16, ..Default::default() };
    let train = TrainConfig { epochs, batch_size: 32, lr: 0.01, seed: 7, ..Default::default() };
    let probe = ProbeConfig { enabled: probe, every: 10, batch_size: 16, hidden: true };
    Point {
        arch: Arch::Recurrent,
        root: root.to_path_buf(),
        experiment: "t".into(),
        run: run.into(),
        config_yaml: format!("{model:?} {train:?} {probe:?}"),
        model,
        train,
        probe,
        tags: BTreeMap::new(),
        device: Device::Cpu,
        overwrite: false,
    }
}
