//! Shared by the integration tests: where the real data sets are.
#![allow(dead_code)]
use std::path::PathBuf;

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
