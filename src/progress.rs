//! Progress bars with ETA on a terminal; plain lines otherwise (logs, CI).
pub use indicatif::ProgressBar;
use indicatif::ProgressStyle;
use std::io::{IsTerminal, Write};

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

/// Writes one line to stderr in a single write, so that the lines of the worker processes of a `--jobs` sweep,
/// which share the terminal, never interleave mid-line (`eprintln!` writes a line in pieces).
pub fn say_line(msg: &str) {
    let _ = std::io::stderr().lock().write_all(format!("{msg}\n").as_bytes());
}

/// `eprintln!` as one write: see [`say_line`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::progress::say_line(&format!($($arg)*))
    };
}
pub(crate) use say;

/// Prints a line above the bar (or plainly when there is no bar).
pub fn line(pb: &ProgressBar, msg: &str) {
    if pb.is_hidden() {
        say_line(msg);
    } else {
        pb.println(msg);
    }
}
