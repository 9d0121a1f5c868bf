//! Shared by the integration tests: where the real data sets are; a small training point run through the
//! library (no subprocess).
#![allow(dead_code)]
use rnnlab::config::{CellKind, ModelConfig, ProbeConfig, TrainConfig};
use rnnlab::data::synthetic::SyntheticConfig;
use rnnlab::experiments::demo::Demo;
use rnnlab::results::Meta;
use rnnlab::sweep::{run_point, Cfg, Point, RunOptions};
use std::path::{Path, PathBuf};

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

/// A small demo run on the synthetic task at L = 6 (600 training sequences): embedding 8, hidden 16, batch 32,
/// Adam 0.01, seed 7; the probe (every 10 steps) when `probe`.
pub fn point(run: &str, cell: CellKind, epochs: usize, probe: bool) -> Point<Cfg<Demo>> {
    let cfg = Cfg::<Demo> {
        data: SyntheticConfig { length: 6, n_train: 600, n_val: 100, n_test: 200, ..Default::default() },
        model: ModelConfig { cell, embed_dim: 8, hidden: 16, ..Default::default() },
        train: TrainConfig { epochs, batch_size: 32, lr: 0.01, seed: 7, ..Default::default() },
        probe: ProbeConfig { enabled: probe, every: 10, batch_size: 16, hidden: true },
        ..Default::default()
    };
    Point { name: run.into(), tags: Default::default(), cfg }
}

/// Trains `p` under `<root>/t/`.
pub fn train(root: &Path, p: &Point<Cfg<Demo>>, overwrite: bool) -> anyhow::Result<Meta> {
    run_point(&Demo, p, root, "t", &RunOptions { overwrite, ..Default::default() })
}
