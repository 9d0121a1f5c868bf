//! Files written whole or not at all: through a temporary name in the same folder, then renamed into place.
//!
//! Every file rnnlab writes goes through here ([`write_atomic`], or [`temp_for`] + [`commit`] for writers that
//! want a path: libtorch's `save`, plotters): a reader never sees half a file, a process killed at any moment
//! leaves at most a hidden temporary (`.<stem>.<pid>.tmp.<ext>`, removed by [`clean_stale`]), and two processes
//! writing the same file never share a temporary. A failed write (a full disk) removes its temporary.
//!
//! Two hooks for tests/faults.rs, read from the environment: `RNNLAB_WRITE_LOG=FILE` appends the path of every
//! file committed; `RNNLAB_KILL_AT_WRITE=N` kills the process with SIGKILL during its N-th write (half the bytes
//! in the temporary, or the temporary complete but not yet renamed), as `kill -9` at that moment would.
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes through a temporary file in the same folder and renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_for(path)?;
    let written = if kill_due() {
        std::fs::write(&tmp, &bytes[..bytes.len() / 2]).and_then(|()| -> std::io::Result<()> { kill_now() })
    } else {
        std::fs::write(&tmp, bytes)
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    rename(&tmp, path)
}

/// The temporary path to write `path` through (its folder created): `.<stem>.<pid>.tmp.<ext>` beside it, so
/// writers that pick a format by extension still do.
pub fn temp_for(path: &Path) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("file");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    Ok(dir.join(format!(".{stem}.{}.tmp.{ext}", std::process::id())))
}

/// Renames a complete temporary from [`temp_for`] into place (on failure the temporary is removed).
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    if kill_due() {
        kill_now();
    }
    rename(tmp, path)
}

/// Removes `tmp` (after a failed write into it); a missing file is fine.
pub fn discard(tmp: &Path) {
    let _ = std::fs::remove_file(tmp);
}

fn rename(tmp: &Path, path: &Path) -> Result<()> {
    if let Err(e) = std::fs::rename(tmp, path) {
        discard(tmp);
        return Err(e).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()));
    }
    if let Some(log) = std::env::var_os("RNNLAB_WRITE_LOG") {
        let line = format!("{}\n", path.display());
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        f.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Removes the temporaries in `dir` left by processes that no longer exist (killed while writing).
pub fn clean_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix('.')
            .and_then(|n| n.split_once(".tmp."))
            .and_then(|(head, _)| head.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if pid.is_some_and(|p| !alive(p)) {
            discard(&e.path());
        }
    }
}

/// Whether process `pid` exists on this machine.
pub fn alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

static WRITES: AtomicUsize = AtomicUsize::new(0);

/// Counts a write; true when `RNNLAB_KILL_AT_WRITE` names this one.
fn kill_due() -> bool {
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    std::env::var("RNNLAB_KILL_AT_WRITE").ok().and_then(|v| v.parse::<usize>().ok()) == Some(n)
}

fn kill_now() -> ! {
    let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
