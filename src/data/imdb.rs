//! IMDB movie reviews (Maas et al. 2011): reading, tokenising, a vocabulary from the training split, an on-disk
//! cache of the encoded corpus, and the three ways of cutting reviews to a length L.
//!
//! Reads `aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt` straight from a `.tar.gz` (streamed, nothing
//! extracted) or from an extracted folder.
//!
//! Tokeniser: lower-case, `<br />` → space, then every maximal run of `[a-z0-9']` is a token (the pattern
//! the data README's word counts use). Anything else separates tokens.
//!
//! Ids: 0 padding, 1 unknown word, 2 filler (distance mode), then words by training-split frequency (ties in
//! alphabetical order): the `vocab_size` most frequent words seen at least `min_freq` times.
use super::Memo;
use super::{Dataset, Example, Pad, Refused, Shape, Source, Split};
use crate::config::{Checker, Validate};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const PAD: i64 = 0;
pub const UNK: i64 = 1;
pub const FILLER: i64 = 2;
const FIRST_WORD: i64 = 3;
/// Bump when the tokeniser or the cache format changes (part of the cache key).
/// Version 2 ends with a CRC-32 of everything before it (a bit-flipped cache was read as a different corpus).
const CACHE_VERSION: u32 = 2;

/// One review as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    pub test: bool,
    /// 1 positive, 0 negative.
    pub label: u8,
    pub id: u32,
    pub rating: u8,
    pub text: String,
}

/// Reads every labelled review under `path` (a `.tar.gz` / `.tgz` archive or a folder holding `aclImdb/` or
/// `train/` and `test/`), sorted by (split, label, id).
pub fn read_reviews(path: &Path) -> Result<Vec<Review>> {
    let hint = "get it with `make data` (or pass the path of aclImdb_v1.tar.gz or an extracted aclImdb/ folder)";
    if !path.exists() {
        bail!("IMDB data not found at {}; {hint}", path.display());
    }
    let mut out = Vec::new();
    if path.is_dir() {
        let root = if path.join("aclImdb").is_dir() { path.join("aclImdb") } else { path.to_path_buf() };
        for split in ["train", "test"] {
            for label in ["pos", "neg"] {
                let dir = root.join(split).join(label);
                let entries = std::fs::read_dir(&dir)
                    .with_context(|| format!("{}: missing {split}/{label}/; {hint}", root.display()))?;
                for e in entries {
                    let p = e?.path();
                    let rel = format!("{split}/{label}/{}", p.file_name().unwrap_or_default().to_string_lossy());
                    if let Some(meta) = parse_path(&rel) {
                        let text =
                            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
                        out.push(Review { text, ..meta });
                    }
                }
            }
        }
    } else {
        let corrupt = |e: std::io::Error| anyhow::anyhow!("{} is truncated or corrupt ({e}); {hint}", path.display());
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 20, file));
        let mut archive = tar::Archive::new(gz);
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let name = entry.path().map_err(corrupt)?.to_string_lossy().to_string();
            if let Some(meta) = parse_path(&name) {
                // The header's size is not trusted for the allocation (a corrupt one could ask for gigabytes).
                let mut text = String::with_capacity((entry.size() as usize).min(1 << 20));
                entry.read_to_string(&mut text).map_err(corrupt)?;
                out.push(Review { text, ..meta });
            }
        }
    }
    if out.is_empty() {
        bail!(
            "{} holds no reviews in the layout aclImdb/{{train,test}}/{{pos,neg}}/<id>_<rating>.txt; {hint}",
            path.display()
        );
    }
    out.sort_by_key(|r| (r.test, r.label, r.id));
    Ok(out)
}

/// `.../{train,test}/{pos,neg}/<id>_<rating>.txt` → the review's labels (text empty).
fn parse_path(p: &str) -> Option<Review> {
    let parts: Vec<&str> = p.trim_end_matches('/').rsplit('/').take(3).collect();
    let [file, label, split] = parts[..] else { return None };
    let test = match split {
        "train" => false,
        "test" => true,
        _ => return None,
    };
    let label = match label {
        "pos" => 1,
        "neg" => 0,
        _ => return None,
    };
    let (id, rating) = file.strip_suffix(".txt")?.split_once('_')?;
    Some(Review { test, label, id: id.parse().ok()?, rating: rating.parse().ok()?, text: String::new() })
}

/// Checks the official counts: 25,000 train and 25,000 test reviews, half of each positive.
pub fn check_official_counts(reviews: &[Review], path: &Path) -> Result<()> {
    for test in [false, true] {
        let n = reviews.iter().filter(|r| r.test == test).count();
        let pos = reviews.iter().filter(|r| r.test == test && r.label == 1).count();
        let split = if test { "test" } else { "train" };
        if n != 25_000 || pos != 12_500 {
            bail!(
                "{}: {split} split has {n} reviews ({pos} positive); the official data has 25000 (12500)",
                path.display()
            );
        }
    }
    Ok(())
}

/// Lower-cased tokens of `text` (see the module docs).
pub fn tokenize(text: &str) -> Vec<String> {
    tokens(&normalise(text)).map(str::to_string).collect()
}

/// Lower case, `<br />` removed.
fn normalise(text: &str) -> String {
    text.replace("<br />", " ").replace("<br/>", " ").to_lowercase()
}

/// The tokens of normalised text.
fn tokens(lower: &str) -> impl Iterator<Item = &str> {
    lower.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '\'')).filter(|t| !t.is_empty())
}

/// One encoded review: `words` are ranks in [`Encoded::words`] (0 = most frequent in the training split).
#[derive(Clone, Debug, PartialEq)]
pub struct Doc {
    pub test: bool,
    pub label: u8,
    pub rating: u8,
    pub id: u32,
    pub words: Vec<u32>,
}

/// The tokenised corpus: every distinct word ranked by training-split frequency (test-only words after all
/// training words), and every review as ranks. Independent of vocabulary size, so one cache serves all.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub words: Vec<String>,
    /// Training-split count of each word (same order).
    pub train_counts: Vec<u32>,
    pub docs: Vec<Doc>,
}

impl Encoded {
    pub fn from_reviews(reviews: &[Review]) -> Encoded {
        // Normalising is the costly part: two threads, each on half of the reviews.
        let half = reviews.len().div_ceil(2).max(1);
        let lowered: Vec<String> = std::thread::scope(|s| {
            let parts: Vec<_> = reviews
                .chunks(half)
                .map(|c| s.spawn(move || c.iter().map(|r| normalise(&r.text)).collect::<Vec<_>>()))
                .collect();
            parts.into_iter().flat_map(|h| h.join().expect("tokeniser thread")).collect()
        });
        let tokens: Vec<Vec<&str>> = lowered.iter().map(|l| tokens(l).collect()).collect();
        let mut counts: HashMap<&str, (u32, bool)> = HashMap::new();
        for (r, toks) in reviews.iter().zip(&tokens) {
            for &t in toks {
                let e = counts.entry(t).or_insert((0, false));
                if !r.test {
                    e.0 += 1;
                    e.1 = true;
                }
            }
        }
        let mut order: Vec<(&str, u32, bool)> = counts.iter().map(|(w, &(c, tr))| (*w, c, tr)).collect();
        // Training words by count (desc), ties alphabetical; then test-only words alphabetical.
        order.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(b.0)));
        let rank: HashMap<&str, u32> = order.iter().enumerate().map(|(i, w)| (w.0, i as u32)).collect();
        let docs = reviews
            .iter()
            .zip(&tokens)
            .map(|(r, toks)| Doc {
                test: r.test,
                label: r.label,
                rating: r.rating,
                id: r.id,
                words: toks.iter().map(|t| rank[t]).collect(),
            })
            .collect();
        Encoded {
            words: order.iter().map(|w| w.0.to_string()).collect(),
            train_counts: order.iter().map(|w| w.1).collect(),
            docs,
        }
    }

    /// Model ids of a document for a vocabulary of the `size` most frequent words seen >= `min_freq` times.
    pub fn ids(&self, doc: &Doc, size: usize, min_freq: u32) -> Vec<i64> {
        doc.words
            .iter()
            .map(|&r| {
                let known = (r as usize) < size && self.train_counts[r as usize] >= min_freq.max(1);
                if known {
                    r as i64 + FIRST_WORD
                } else {
                    UNK
                }
            })
            .collect()
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(b"RNNLAB-IMDB")?;
        w.write_all(&CACHE_VERSION.to_le_bytes())?;
        w.write_all(&(self.words.len() as u32).to_le_bytes())?;
        for (word, c) in self.words.iter().zip(&self.train_counts) {
            w.write_all(&(word.len() as u16).to_le_bytes())?;
            w.write_all(word.as_bytes())?;
            w.write_all(&c.to_le_bytes())?;
        }
        w.write_all(&(self.docs.len() as u32).to_le_bytes())?;
        for d in &self.docs {
            w.write_all(&[d.test as u8, d.label, d.rating])?;
            w.write_all(&d.id.to_le_bytes())?;
            w.write_all(&(d.words.len() as u32).to_le_bytes())?;
            let bytes: Vec<u8> = d.words.iter().flat_map(|x| x.to_le_bytes()).collect();
            w.write_all(&bytes)?;
        }
        Ok(())
    }

    fn read(bytes: &[u8]) -> Option<Encoded> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = bytes.get(at..at + n)?;
            at += n;
            Some(s)
        };
        if take(11)? != b"RNNLAB-IMDB" {
            return None;
        }
        let u32_ = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
        if u32_(take(4)?) != CACHE_VERSION {
            return None;
        }
        let n_words = u32_(take(4)?) as usize;
        // Counts from the file bound nothing until the bytes are there: each word takes at least 6 bytes, a doc 11.
        let cap = n_words.min(bytes.len() / 6);
        let (mut words, mut train_counts) = (Vec::with_capacity(cap), Vec::with_capacity(cap));
        for _ in 0..n_words {
            let len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
            words.push(String::from_utf8(take(len)?.to_vec()).ok()?);
            train_counts.push(u32_(take(4)?));
        }
        let n_docs = u32_(take(4)?) as usize;
        let mut docs = Vec::with_capacity(n_docs.min(bytes.len() / 11));
        for _ in 0..n_docs {
            let h = take(3)?;
            let (test, label, rating) = (h[0] == 1, h[1], h[2]);
            let id = u32_(take(4)?);
            let n = u32_(take(4)?) as usize;
            let words = take(4 * n)?.chunks_exact(4).map(u32_).collect();
            docs.push(Doc { test, label, rating, id, words });
        }
        (at == bytes.len()).then_some(Encoded { words, train_counts, docs })
    }
}

/// The cache file for `path` under `dir`: keyed by the data's identity (path, size, modification time of the
/// archive or of every file in the folder) and the tokeniser version.
pub fn cache_file(path: &Path, dir: &Path) -> Result<PathBuf> {
    let canon = std::fs::canonicalize(path).with_context(|| format!("IMDB data not found at {}", path.display()))?;
    let mut key = format!("{}|v{CACHE_VERSION}", canon.display());
    let stamp = |p: &Path| -> Result<String> {
        let m = std::fs::metadata(p)?;
        let t = m.modified()?.duration_since(std::time::UNIX_EPOCH)?.as_nanos();
        Ok(format!("|{}:{}", m.len(), t))
    };
    if canon.is_dir() {
        let mut stack = vec![canon.clone()];
        let mut files = Vec::new();
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let p = e?.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        files.sort();
        for f in files {
            key += &stamp(&f)?;
        }
    } else {
        key += &stamp(&canon)?;
    }
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    Ok(dir.join(format!("imdb-{h:016x}.bin")))
}

/// Default cache folder: `$XDG_CACHE_HOME/rnnlab` or `~/.cache/rnnlab`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rnnlab")
}

/// The encoded corpus of `path`, from the cache when it holds it, else read, tokenised and cached.
/// Returns it and whether it came from the cache.
pub fn load_encoded(path: &Path, cache_dir: Option<&Path>) -> Result<(Encoded, bool)> {
    if let Some(dir) = cache_dir {
        let file = cache_file(path, dir)?;
        let checked = |b: Vec<u8>| -> Option<Vec<u8>> {
            let (body, sum) = b.split_at(b.len().checked_sub(4)?);
            (crc32(body).to_le_bytes() == sum).then(|| body.to_vec())
        };
        if let Some(enc) = std::fs::read(&file).ok().and_then(checked).and_then(|b| Encoded::read(&b)) {
            return Ok((enc, true));
        }
        let enc = Encoded::from_reviews(&read_reviews(path)?);
        let mut bytes = Vec::new();
        enc.write(&mut bytes)?;
        bytes.extend_from_slice(&crc32(&bytes).to_le_bytes());
        crate::files::write_atomic(&file, &bytes)?;
        return Ok((enc, false));
    }
    Ok((Encoded::from_reviews(&read_reviews(path)?), false))
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

/// How a review becomes a sequence of length L.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Keep the first (or last) L tokens of every review; shorter reviews are padded.
    Truncate,
    /// Only reviews with >= L tokens, cut to exactly L: nothing is padded, but long reviews are few.
    MinLen,
    /// The review's first k tokens, then filler up to L: the evidence sits L − k steps before the readout.
    /// For L <= k, the first L tokens and no filler (as `truncate`).
    Distance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    First,
    Last,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImdbConfig {
    /// aclImdb_v1.tar.gz (or any .tar.gz with that layout) or an extracted aclImdb/ folder.
    pub path: PathBuf,
    /// Words in the vocabulary (besides padding, unknown and filler).
    pub vocab_size: usize,
    pub min_freq: u32,
    /// Where the encoded corpus is cached; null = the user cache folder (~/.cache/rnnlab).
    pub cache_dir: Option<PathBuf>,
    /// Fraction of the training reviews held out for validation.
    pub val_fraction: f64,
    /// Random subsets (from the seed) to bound the cost; null = all.
    pub max_train: Option<usize>,
    pub max_test: Option<usize>,
    pub mode: Mode,
    /// L.
    pub length: usize,
    /// truncate: which end of the review to keep.
    pub keep: Keep,
    /// truncate: padding side (pre: the RNN reads the padding first and ends on the review).
    pub pad: Pad,
    /// distance: review tokens kept before the filler.
    pub distance_k: usize,
    /// distance: how long the training sequences' filler is (validation and test are always exactly L).
    pub train_gaps: Gaps,
    /// min_len: refuse a point with fewer training (or test) reviews than this.
    pub min_examples: usize,
}

/// The filler of the training sequences in `distance` mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gaps {
    /// Every training sequence is L long, as at test time.
    #[default]
    Fixed,
    /// Each training review's filler is cut to a length drawn uniformly from [0, L − its evidence] (once per
    /// seed): the short gaps show the model what matters, the long ones teach it to carry that; on average the
    /// sequences are half as long.
    Mixed,
}

impl Default for ImdbConfig {
    fn default() -> Self {
        ImdbConfig {
            path: PathBuf::from("data/aclImdb_v1.tar.gz"),
            vocab_size: 20_000,
            min_freq: 2,
            cache_dir: None,
            val_fraction: 0.1,
            max_train: None,
            max_test: None,
            mode: Mode::Truncate,
            length: 200,
            keep: Keep::First,
            pad: Pad::Post,
            distance_k: 50,
            train_gaps: Gaps::Fixed,
            min_examples: 500,
        }
    }
}

impl Validate for ImdbConfig {
    fn validate(&self, c: &mut Checker) {
        c.positive("data.vocab_size", self.vocab_size);
        c.positive("data.length", self.length);
        c.check((0.0..0.5).contains(&self.val_fraction), "data.val_fraction", self.val_fraction, "must be in [0, 0.5)");
        if self.mode == Mode::Distance {
            c.positive("data.distance_k", self.distance_k);
        }
    }
}

impl ImdbConfig {
    /// Vocabulary size of the model (padding, unknown and filler included).
    pub fn model_vocab(&self) -> i64 {
        self.vocab_size as i64 + FIRST_WORD
    }

    /// The encoded corpus at `path`: read and tokenised once per process (and cached on disk in `cache_dir`), so
    /// every run of a sweep shares it and bad data is reported once, before any run starts.
    pub fn corpus(&self) -> Result<Arc<Encoded>> {
        CORPORA.get_or(self.path.clone(), usize::MAX, || {
            let t = std::time::Instant::now();
            let cache = self.cache_dir.clone().unwrap_or_else(default_cache_dir);
            let (enc, hit) = load_encoded(&self.path, Some(&cache))?;
            let how = if hit { "from the cache" } else { "read and tokenised" };
            crate::progress::say!("IMDB: {} reviews {how} in {:.2} s", enc.docs.len(), t.elapsed().as_secs_f64());
            Ok(enc)
        })
    }

    /// The model id of every word in this config's vocabulary (unknown words map to [`UNK`]).
    pub fn vocabulary(&self) -> Result<HashMap<String, i64>> {
        let enc = self.corpus()?;
        Ok((0..enc.words.len().min(self.vocab_size))
            .filter(|&r| enc.train_counts[r] >= self.min_freq.max(1))
            .map(|r| (enc.words[r].clone(), r as i64 + FIRST_WORD))
            .collect())
    }

    /// The sequence of one document under this config, or None when `min_len` excludes it.
    pub fn sequence(&self, enc: &Encoded, doc: &Doc) -> Option<Vec<i64>> {
        let ids = enc.ids(doc, self.vocab_size, self.min_freq);
        let l = self.length;
        match self.mode {
            Mode::Truncate => Some(match self.keep {
                Keep::First => ids[..ids.len().min(l)].to_vec(),
                Keep::Last => ids[ids.len().saturating_sub(l)..].to_vec(),
            }),
            Mode::MinLen => (ids.len() >= l).then(|| ids[..l].to_vec()),
            Mode::Distance => {
                let mut s = ids[..ids.len().min(self.distance_k).min(l)].to_vec();
                s.resize(l.max(s.len()), FILLER);
                Some(s)
            }
        }
    }

    /// Train (minus validation), validation and test splits from `seed`. A `Refused` error (downcast it)
    /// means the point cannot be made with this data.
    pub fn dataset(&self, enc: &Encoded, seed: u64) -> Result<Dataset> {
        let pick = |test: bool| -> Vec<Example> {
            enc.docs
                .iter()
                .filter(|d| d.test == test)
                .filter_map(|d| Some(Example { tokens: self.sequence(enc, d)?, label: d.label as i64 }))
                .collect()
        };
        let (mut train, mut test) = (pick(false), pick(true));
        let n_val_total = (train.len() as f64 * self.val_fraction).round() as usize;
        if self.mode == Mode::MinLen
            && (train.len() - n_val_total < self.min_examples || test.len() < self.min_examples)
        {
            let (n_train, n_test) = (train.len() - n_val_total, test.len());
            let message = format!(
                "min_len L = {}: only {n_train} training and {n_test} test reviews have >= {} tokens (minimum {}; \
                 data.min_examples)",
                self.length, self.length, self.min_examples
            );
            return Err(Refused { message, n_train, n_test }.into());
        }
        let mut rng = Rng::derived(seed, "imdb-subset");
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
        let mut val: Vec<Example> = train.drain(..n_val_total).collect();
        if let Some(m) = self.max_train {
            train.truncate(m);
            val.truncate((m as f64 * self.val_fraction / (1.0 - self.val_fraction)).ceil() as usize);
        }
        if let Some(m) = self.max_test {
            test.truncate(m);
        }
        if self.mode == Mode::Distance && self.train_gaps == Gaps::Mixed {
            let mut draw = Rng::derived(seed, "imdb-gaps");
            for e in &mut train {
                let evidence = e.tokens.iter().position(|&t| t == FILLER).unwrap_or(e.tokens.len());
                let gap = draw.below((e.tokens.len() - evidence + 1) as u64) as usize;
                e.tokens.truncate(evidence + gap);
            }
        }
        let pad = if self.mode == Mode::Truncate { self.pad } else { Pad::Post };
        Ok(Dataset {
            train: Split::new("train", &train, pad),
            val: (!val.is_empty()).then(|| Split::new("val", &val, pad)),
            test: Some(Split::new("test", &test, pad)),
            shape: Shape {
                filler: vec![FILLER],
                ..Shape::classes(self.model_vocab(), vec!["negative".into(), "positive".into()])
            },
        })
    }
}

impl Source for ImdbConfig {
    /// [`dataset`](Self::dataset) for `seed` from the [`corpus`](Self::corpus); the last one made is kept, so the
    /// models of one sweep point share it.
    fn load(&self, seed: u64) -> Result<Dataset> {
        let key = format!("{self:?} {seed}");
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, ds)) = last.as_ref() {
            if *k == key {
                return Ok(ds.shallow_clone());
            }
        }
        *last = None;
        let ds = self.dataset(&*self.corpus()?, seed)?;
        *last = Some((key, ds.shallow_clone()));
        Ok(ds)
    }

    fn check(&self) -> Result<()> {
        self.corpus().map(drop)
    }
}

pub(super) static CORPORA: Memo<PathBuf, Encoded> = Memo::new();
/// The last data set made (tensors are not `Sync`, so not a [`Memo`]).
pub(super) static LAST: Mutex<Option<(String, Dataset)>> = Mutex::new(None);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_examples() {
        assert_eq!(
            tokenize("Great movie!<br /><br />I didn't LIKE it... 10/10"),
            ["great", "movie", "i", "didn't", "like", "it", "10", "10"]
        );
        assert_eq!(tokenize("'Quoted' — café"), ["'quoted'", "caf"]);
        assert!(tokenize("<br />...!").is_empty());
    }

    #[test]
    fn paths_parse() {
        let r = parse_path("aclImdb/test/neg/123_4.txt").unwrap();
        assert_eq!((r.test, r.label, r.id, r.rating), (true, 0, 123, 4));
        assert!(parse_path("aclImdb/train/unsup/1_0.txt").is_none());
        assert!(parse_path("aclImdb/README").is_none());
    }
}
