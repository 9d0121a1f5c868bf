//! Surnames → language (the PyTorch tutorial "Classifying Names with a Character-Level RNN").
//!
//! `names/<Language>.txt`, one UTF-8 name per line. Names are folded to the tutorial's alphabet (ASCII letters
//! and ` .,;'`): Unicode NFD decomposition, combining marks removed, anything else outside the alphabet dropped
//! (and counted in [`FoldReport`]). Classes are the file names, sorted.
//!
//! Ids: 0 padding, 1..=57 the alphabet, 58 the filler of the `distance` mode (k filler steps after the name, read
//! by the model, so the evidence sits k steps before the readout).
use super::{Dataset, Example, Pad, Shape, Source, Split};
use crate::config::{Checker, Validate};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The tutorial's alphabet: `string.ascii_letters + " .,;'"`.
pub const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'";
/// Id of the filler token of the distance mode.
pub const FILLER: i64 = ALPHABET.len() as i64 + 1;
/// Ids 0..=FILLER.
pub const VOCAB: i64 = FILLER + 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// 80/10/10 train/val/test, stratified by language, from the run's seed.
    Stratified,
    /// The tutorial's procedure: `random_split(data, [.85, .15])` with a generator seeded 2024 (libtorch's
    /// randperm over the files in sorted order); train and test only.
    Tutorial,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamesConfig {
    /// Folder holding the 18 `<Language>.txt` files.
    pub dir: PathBuf,
    pub split: SplitKind,
    /// Drop repeated (name, language) pairs before splitting (the data has many, e.g. Arabic: 2000 lines,
    /// 108 distinct names), so no test name was seen in training under the same label.
    pub dedupe: bool,
    /// Filler steps after each name (the `distance` mode); 0 = plain names.
    pub distance: usize,
}

impl Default for NamesConfig {
    fn default() -> Self {
        NamesConfig { dir: PathBuf::from("data/names"), split: SplitKind::Stratified, dedupe: false, distance: 0 }
    }
}

impl Validate for NamesConfig {
    fn validate(&self, _c: &mut Checker) {}
}

/// What folding changed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FoldReport {
    pub lines: usize,
    /// Names whose text changed (accents removed or characters dropped).
    pub changed: usize,
    /// Characters dropped (not in the alphabet after removing accents), with counts.
    pub dropped: BTreeMap<char, usize>,
    /// Lines that were empty after folding (skipped).
    pub empty: usize,
    /// Folded names listed under more than one language, with those languages.
    pub cross_language: Vec<(String, Vec<String>)>,
    /// Repeated (name, language) lines.
    pub repeated: usize,
}

/// All names, folded, in file order (files sorted by language).
#[derive(Clone, Debug)]
pub struct Corpus {
    pub names: Vec<String>,
    pub labels: Vec<i64>,
    pub classes: Vec<String>,
    pub report: FoldReport,
}

/// Folds to the alphabet; returns the folded name and the characters dropped.
pub fn fold(s: &str) -> (String, Vec<char>) {
    let mut dropped = Vec::new();
    let mut out = String::new();
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        if ALPHABET.contains(c) {
            out.push(c);
        } else {
            dropped.push(c);
        }
    }
    (out, dropped)
}

/// Removes accents (NFD, combining marks dropped) and keeps every other character.
pub fn strip_accents(s: &str) -> String {
    s.nfd().filter(|c| !is_combining_mark(*c)).collect()
}

/// Ids of a name already in the alphabet; an error names the first character outside it.
pub fn encode(name: &str) -> Result<Vec<i64>> {
    name.chars()
        .map(|c| match ALPHABET.find(c) {
            Some(i) => Ok(i as i64 + 1),
            None => bail!("{name:?}: character {c:?} is not in the alphabet (ASCII letters and \" .,;'\")"),
        })
        .collect()
}

impl Corpus {
    /// Reads every `*.txt` in `dir`.
    pub fn load(dir: &Path) -> Result<Corpus> {
        let hint =
            "get the data with `make data`, or point data.dir (or NAMES=...) at a folder of <Language>.txt files";
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("names folder {} not readable; {hint}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("names folder {} has no .txt files; {hint}", dir.display());
        }
        let mut c = Corpus { names: vec![], labels: vec![], classes: vec![], report: FoldReport::default() };
        let mut langs_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (label, f) in files.iter().enumerate() {
            let lang = f.file_stem().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {} as UTF-8", f.display()))?;
            let before = c.names.len();
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                c.report.lines += 1;
                let (name, dropped) = fold(line);
                if name != line {
                    c.report.changed += 1;
                }
                for d in dropped {
                    *c.report.dropped.entry(d).or_default() += 1;
                }
                if name.is_empty() {
                    c.report.empty += 1;
                    continue;
                }
                let langs = langs_of.entry(name.clone()).or_default();
                if langs.last() == Some(&lang) {
                    c.report.repeated += 1;
                } else {
                    langs.push(lang.clone());
                }
                c.names.push(name);
                c.labels.push(label as i64);
            }
            if c.names.len() == before {
                bail!("{} holds no names", f.display());
            }
            c.classes.push(lang);
        }
        c.report.cross_language = langs_of.into_iter().filter(|(_, l)| l.len() > 1).collect();
        Ok(c)
    }

    /// Keeps the first of each repeated (name, language) pair.
    pub fn deduped(&self) -> Corpus {
        let mut seen = std::collections::HashSet::new();
        let keep: Vec<usize> =
            (0..self.names.len()).filter(|&i| seen.insert((&self.names[i], self.labels[i]))).collect();
        Corpus {
            names: keep.iter().map(|&i| self.names[i].clone()).collect(),
            labels: keep.iter().map(|&i| self.labels[i]).collect(),
            ..self.clone()
        }
    }

    /// Row indices of (train, val, test).
    pub fn split(&self, kind: SplitKind, seed: u64) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        match kind {
            SplitKind::Stratified => {
                let mut rng = Rng::derived(seed, "names-split");
                let (mut tr, mut va, mut te) = (vec![], vec![], vec![]);
                for class in 0..self.classes.len() as i64 {
                    let mut idx: Vec<usize> = (0..self.names.len()).filter(|&i| self.labels[i] == class).collect();
                    rng.shuffle(&mut idx);
                    let n = idx.len();
                    let n_val = ((n as f64) * 0.1).round() as usize;
                    let n_test = ((n as f64) * 0.1).round() as usize;
                    te.extend_from_slice(&idx[..n_test]);
                    va.extend_from_slice(&idx[n_test..n_test + n_val]);
                    tr.extend_from_slice(&idx[n_test + n_val..]);
                }
                for v in [&mut tr, &mut va, &mut te] {
                    v.sort();
                }
                (tr, va, te)
            }
            SplitKind::Tutorial => {
                let n = self.names.len();
                // torch.utils.data.random_split: floor of each fraction, remainder to the first parts in turn.
                let n_train = (n as f64 * 0.85).floor() as usize;
                let n_test = (n as f64 * 0.15).floor() as usize;
                let n_train = n_train + (n - n_train - n_test).min(1);
                let perm = {
                    let _seeded = crate::rng::torch_seed(2024);
                    tch::Tensor::randperm(n as i64, (tch::Kind::Int64, tch::Device::Cpu))
                };
                let perm: Vec<i64> = Vec::try_from(perm).expect("randperm");
                let perm: Vec<usize> = perm.into_iter().map(|i| i as usize).collect();
                (perm[..n_train].to_vec(), vec![], perm[n_train..].to_vec())
            }
        }
    }

    /// Encoded examples for rows `idx`, each followed by `distance` filler steps.
    pub fn examples(&self, idx: &[usize], distance: usize) -> Vec<Example> {
        idx.iter()
            .map(|&i| {
                let mut tokens = encode(&self.names[i]).expect("folded names are in the alphabet");
                tokens.extend(std::iter::repeat_n(FILLER, distance));
                Example { tokens, label: self.labels[i] }
            })
            .collect()
    }
}

/// The test split's names, in row order, and what the training split says about each.
#[derive(Clone, Debug, Default)]
pub struct TestNames {
    pub names: Vec<String>,
    /// The name is in the training split, but only under other languages: a classifier that agrees with its
    /// training data cannot get it right (the test label contradicts the training labels).
    pub only_elsewhere: Vec<bool>,
}

impl NamesConfig {
    /// Loads, (optionally) dedupes and splits the corpus; also returns the test split's names.
    pub fn dataset(&self, seed: u64) -> Result<(Dataset, TestNames)> {
        let corpus = Corpus::load(&self.dir)?;
        let corpus = if self.dedupe { corpus.deduped() } else { corpus };
        let (tr, va, te) = corpus.split(self.split, seed);
        let split = |name: &str, idx: &[usize]| Split::new(name, &corpus.examples(idx, self.distance), Pad::Post);
        let ds = Dataset {
            train: split("train", &tr),
            val: (!va.is_empty()).then(|| split("val", &va)),
            test: Some(split("test", &te)),
            shape: Shape::classes(VOCAB, corpus.classes.clone()),
        };
        let mut seen: std::collections::HashMap<&str, Vec<i64>> = std::collections::HashMap::new();
        for &i in &tr {
            seen.entry(corpus.names[i].as_str()).or_default().push(corpus.labels[i]);
        }
        let only_elsewhere =
            te.iter().map(|&i| seen.get(corpus.names[i].as_str()).is_some_and(|l| !l.contains(&corpus.labels[i])));
        let test = TestNames {
            names: te.iter().map(|&i| corpus.names[i].clone()).collect(),
            only_elsewhere: only_elsewhere.collect(),
        };
        Ok((ds, test))
    }
}

impl Source for NamesConfig {
    fn load(&self, seed: u64) -> Result<Dataset> {
        Ok(self.dataset(seed)?.0)
    }

    fn check(&self) -> Result<()> {
        Corpus::load(&self.dir).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_like_the_tutorial() {
        assert_eq!(fold("Ślusàrski").0, "Slusarski");
        assert_eq!(fold("Béringer").0, "Beringer");
        assert_eq!(fold("Bekovich-Cherkassky"), ("BekovichCherkassky".to_string(), vec!['-']));
        assert_eq!(fold("Großmann"), ("Gromann".to_string(), vec!['ß']));
        assert_eq!(fold("O'Neal").0, "O'Neal");
        assert_eq!(strip_accents("Żuk-Nowak"), "Zuk-Nowak");
        // ids are 1 + the index in ALPHABET (lower case first, as the tutorial's `ascii_letters`); 0 is padding.
        assert_eq!(encode("Ab").unwrap(), vec![27, 2]);
        let e = encode("Ab-c").unwrap_err().to_string();
        assert!(e.contains("'-'") && e.contains("not in the alphabet"), "{e}");
    }
}
