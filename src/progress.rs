//! Progress bars with ETA on a terminal; plain lines otherwise (logs, CI).
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Set in the environment of the worker processes of a `--jobs` sweep.
pub const WORKER: &str = "RNNLAB_WORKER";

/// A bar of `len` steps labelled `prefix`, hidden when stderr is not a terminal and in the worker processes of a
/// `--jobs` sweep (their parent shows one bar for all).
pub fn bar(len: u64, prefix: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() || std::env::var_os(WORKER).is_some() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>18} [{bar:28}] {pos}/{len} {msg} ({elapsed}, ETA {eta})")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

/// Prints a line above the bar (or plainly when there is no bar).
pub fn line(pb: &ProgressBar, msg: &str) {
    if pb.is_hidden() {
        eprintln!("{msg}");
    } else {
        pb.println(msg);
    }
}
