//! The demo in a real terminal (tmux): the progress bar with its ETA while training, per-epoch lines above it,
//! and a clean screen at the end with the table and the paths of the summary and charts.
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", socket])
        .args(args)
        .output()
        .expect("tmux not found: install it (make test-deps does)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn progress_bar_eta_and_result_lines_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "data: {n_train: 3000, n_val: 200, n_test: 200}\ntrain: {epochs: 3, log_every: 10}\nprobe: {enabled: false}\n\
         sweep: {data.length: [60], model.cell: [rnn, lstm]}\n",
    )
    .unwrap();
    let cmd = format!(
        "{} --config {} --out {} --threads 1; echo EXIT=$?; sleep 60",
        env!("CARGO_BIN_EXE_demo"),
        config.display(),
        dir.path().join("results").display()
    );
    let socket = format!("rnnlab-test-{}", std::process::id());
    tmux(&socket, &["new-session", "-d", "-x", "110", "-y", "40", &cmd]);
    let (mut saw_bar, mut screen) = (false, String::new());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(240) {
        screen = tmux(&socket, &["capture-pane", "-p"]);
        saw_bar |= screen.lines().any(|l| l.contains("ETA") && l.contains("[") && l.contains("/"));
        if screen.contains("EXIT=") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux(&socket, &["kill-server"]);
    assert!(screen.contains("EXIT=0"), "the demo did not finish in time:\n{screen}");
    assert!(saw_bar, "no progress bar with an ETA was ever on screen");
    assert!(!screen.contains("ETA"), "a progress bar was left on the final screen:\n{screen}");
    for expected in ["epoch   3:", "1 run each: no spread measured", "summary.csv", "charts"] {
        assert!(screen.contains(expected), "{expected:?} not on the final screen:\n{screen}");
    }
    assert!(!screen.contains("± 0.000"), "a single seed printed as a zero spread:\n{screen}");
}
