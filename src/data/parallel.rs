//! Parallel text for translation: verse-aligned Bible translations (`bible-parallel.tsv.gz`, a header naming its
//! columns `book chapter verse en fr de es it ru`) or the PyTorch tutorial's `eng-fra.txt` (tab-separated
//! English and French), source and target chosen by column name.
//!
//! The split holds out **whole books** (seeded): the test and validation sets are books the model never saw.
//! A test pair whose source text also occurs in training (parallel passages repeat across books) is dropped and
//! counted. `eng-fra.txt` has no books: its distinct source sentences are split instead, so no test source is
//! seen in training either.
//!
//! Text is lower-cased; tokens are words (punctuation split off as 13a would, elisions like `l'` kept whole,
//! the most frequent `vocab` words of the training split) or subwords (BPE, trained on the training split only,
//! with the `tokenizers` crate; `vocab` is its size). Ids: source 0 padding, 1 unknown, then the vocabulary;
//! target 0 padding, 1 start, 2 end, 3 unknown, then the vocabulary (`Shape::source_tokens` and
//! `Shape::classes` name them).
use super::seq::TARGET_SPECIALS;
use super::Memo;
use super::{Dataset, Shape, Source, Split};
use crate::config::{Checker, Validate};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How text becomes tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokens {
    /// Lower-cased words and punctuation, the most frequent `vocab` of training (the PyTorch tutorial's way).
    Words,
    /// Byte-pair-encoded subwords (Sennrich et al. 2016), a vocabulary of `vocab` trained on the training split.
    #[default]
    Bpe,
}

/// The `data.translate` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranslateConfig {
    /// `bible-parallel.tsv.gz` (make data) or a tutorial-style `eng-fra.txt`.
    pub path: PathBuf,
    /// Column names: the Bible file's header (en, fr, de, es, it, ru); `eng-fra.txt` has en and fr.
    pub source: String,
    pub target: String,
    pub tokens: Tokens,
    /// Words kept (words) or subword vocabulary size (bpe), per side.
    pub source_vocab: usize,
    pub target_vocab: usize,
    /// Training pairs whose source has more words are left out (the test keeps every length).
    pub max_len: usize,
    /// Shares of the pairs held out for testing and validation, as whole books.
    pub test_share: f64,
    pub val_share: f64,
    /// Training pairs used (a seeded subset); null = all.
    pub max_train: Option<usize>,
}

impl Default for TranslateConfig {
    fn default() -> Self {
        TranslateConfig {
            path: PathBuf::from("data/bible-parallel.tsv.gz"),
            source: "en".into(),
            target: "fr".into(),
            tokens: Tokens::Bpe,
            source_vocab: 4000,
            target_vocab: 4000,
            max_len: 100,
            test_share: 0.1,
            val_share: 0.05,
            max_train: None,
        }
    }
}

impl Validate for TranslateConfig {
    fn validate(&self, c: &mut Checker) {
        c.check(self.source_vocab >= 10, "data.translate.source_vocab", self.source_vocab, "must be >= 10");
        c.check(self.target_vocab >= 10, "data.translate.target_vocab", self.target_vocab, "must be >= 10");
        c.positive("data.translate.max_len", self.max_len);
        let ok = |v: f64| v > 0.0 && v < 0.5;
        c.check(ok(self.test_share), "data.translate.test_share", self.test_share, "must be in (0, 0.5)");
        c.check(ok(self.val_share), "data.translate.val_share", self.val_share, "must be in (0, 0.5)");
        c.check(self.source != self.target, "data.translate.target", &self.target, "must differ from the source");
    }
}

/// One aligned pair and the book it comes from (0 when the file has none).
#[derive(Clone, Debug)]
pub struct Pair {
    pub book: u32,
    pub source: String,
    pub target: String,
}

/// The pairs of a parallel file in the two columns asked for (lower-cased), read once per process.
pub fn read_pairs(path: &Path, source: &str, target: &str) -> Result<Arc<Vec<Pair>>> {
    let key = (path.to_path_buf(), source.to_string(), target.to_string());
    PAIRS.get_or(key, usize::MAX, || parse(&read_text(path)?, path, source, target))
}

pub(super) static PAIRS: Memo<(PathBuf, String, String), Vec<Pair>> = Memo::new();

/// The whole file as UTF-8, gunzipped when it is gzip.
fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| {
        format!("cannot read the parallel text {}; run 'make data' or set data.translate.path", path.display())
    })?;
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).with_context(|| {
            format!("{}: not a whole gzip file of UTF-8 text (truncated or corrupt?)", path.display())
        })?;
        s
    } else {
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))?
    };
    if text.trim().is_empty() {
        bail!("{}: empty file", path.display());
    }
    Ok(text)
}

/// Parses a headed TSV (its header names the columns; `book` the book) or, without a header, two-column lines
/// (`en`, `fr`, as `eng-fra.txt`).
fn parse(text: &str, path: &Path, source: &str, target: &str) -> Result<Vec<Pair>> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let header: Vec<&str> = first.split('\t').collect();
    let headed = header.contains(&source) || header.contains(&"book");
    type Lines<'a> = Box<dyn Iterator<Item = (usize, &'a str)> + 'a>;
    let (columns, body): (Vec<&str>, Lines) = if headed {
        (header, Box::new(lines.enumerate().map(|(i, l)| (i + 2, l))))
    } else {
        (vec!["en", "fr"], Box::new(text.lines().enumerate().map(|(i, l)| (i + 1, l))))
    };
    let col = |name: &str| -> Result<usize> {
        columns.iter().position(|c| *c == name).with_context(|| {
            format!("{}: no column `{name}` (the columns are: {})", path.display(), columns.join(", "))
        })
    };
    let (s, t) = (col(source)?, col(target)?);
    let b = columns.iter().position(|c| *c == "book");
    let mut out = Vec::new();
    for (n, line) in body {
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() <= s.max(t) || b.is_some_and(|b| f.len() <= b) {
            bail!("{}:{n}: {} columns, {} expected ({})", path.display(), f.len(), columns.len(), columns.join(", "));
        }
        let book = match b {
            Some(b) => {
                f[b].parse().with_context(|| format!("{}:{n}: book {:?} is not a number", path.display(), f[b]))?
            }
            None => 0,
        };
        let (src, tgt) = (f[s].trim().to_lowercase(), f[t].trim().to_lowercase());
        if !src.is_empty() && !tgt.is_empty() {
            out.push(Pair { book, source: src, target: tgt });
        }
    }
    if out.is_empty() {
        bail!("{}: no pairs of {source} and {target}", path.display());
    }
    Ok(out)
}

/// Words and punctuation: every character that 13a splits off is its own token, an elision (`l'`, `qu'`) ends
/// its token, hyphens stay inside words.
pub fn word_tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    for c in s.chars() {
        if c.is_whitespace() {
            flush(&mut cur, &mut out);
        } else if c == '\'' || c == '’' {
            cur.push('\'');
            flush(&mut cur, &mut out);
        } else if c.is_alphanumeric() || (c == '-' && !cur.is_empty()) {
            cur.push(c);
        } else {
            flush(&mut cur, &mut out);
            out.push(c.to_string());
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// Text from word tokens: spaces between them, none after an elision.
pub fn join_words(tokens: &[String]) -> String {
    let mut s = String::new();
    for t in tokens {
        if !s.is_empty() && !s.ends_with('\'') {
            s.push(' ');
        }
        s.push_str(t);
    }
    s
}

/// The words of a text, as the length buckets count them (whitespace-separated).
pub fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// One side's tokens: a word list or a trained BPE model.
#[derive(Clone)]
pub enum Vocab {
    Words { ids: HashMap<String, i64>, names: Vec<String> },
    Bpe(Box<tokenizers::Tokenizer>),
}

impl std::fmt::Debug for Vocab {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Vocab({} tokens)", self.len())
    }
}

/// The unknown token's name in both vocabularies.
pub const UNK: &str = "<unk>";

impl Vocab {
    /// The `size` most frequent words of `texts` (ties in text order), or a BPE of `size` trained on them.
    pub fn train(kind: Tokens, texts: &[&str], size: usize) -> Result<Vocab> {
        match kind {
            Tokens::Words => {
                let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
                for t in texts {
                    for w in word_tokens(t) {
                        let n = counts.len();
                        counts.entry(w).or_insert((0, n)).0 += 1;
                    }
                }
                let mut v: Vec<(String, (usize, usize))> = counts.into_iter().collect();
                v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
                v.truncate(size);
                let names: Vec<String> = v.into_iter().map(|w| w.0).collect();
                let ids = names.iter().enumerate().map(|(i, w)| (w.clone(), i as i64)).collect();
                Ok(Vocab::Words { ids, names })
            }
            Tokens::Bpe => bpe(texts, size).map(|t| Vocab::Bpe(Box::new(t))),
        }
    }

    /// Tokens in the vocabulary, the unknown token counted for BPE.
    pub fn len(&self) -> usize {
        match self {
            Vocab::Words { names, .. } => names.len(),
            Vocab::Bpe(t) => t.get_vocab_size(true),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of every token, by its index (BPE's unknown token first).
    pub fn names(&self) -> Vec<String> {
        match self {
            Vocab::Words { names, .. } => names.clone(),
            Vocab::Bpe(t) => {
                let mut v: Vec<(String, u32)> = t.get_vocab(true).into_iter().collect();
                v.sort_by_key(|p| p.1);
                v.into_iter().map(|p| p.0).collect()
            }
        }
    }

    /// A text as token indices (None: unknown), with the tokens' names.
    pub fn encode(&self, text: &str) -> Result<Vec<(Option<i64>, String)>> {
        Ok(match self {
            Vocab::Words { ids, .. } => word_tokens(text).into_iter().map(|w| (ids.get(&w).copied(), w)).collect(),
            Vocab::Bpe(t) => {
                let e = t.encode(text, false).map_err(|e| anyhow::anyhow!("BPE cannot encode {text:?}: {e}"))?;
                let unk = t.token_to_id(UNK);
                e.get_ids()
                    .iter()
                    .zip(e.get_tokens())
                    .map(|(&i, s)| ((Some(i) != unk).then_some(i as i64), s.clone()))
                    .collect()
            }
        })
    }

    /// Text from the names of tokens (BPE pieces joined, `▁` as spaces; words as [`join_words`]).
    pub fn decode(&self, names: &[String]) -> String {
        match self {
            Vocab::Words { .. } => join_words(names),
            Vocab::Bpe(_) => names.concat().replace('▁', " ").trim().to_string(),
        }
    }
}

/// A BPE of `size` tokens (the unknown token among them) trained on `texts`: SentencePiece's `▁` marks word
/// starts, so that decoding gives back the text.
fn bpe(texts: &[&str], size: usize) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
    use tokenizers::pre_tokenizers::metaspace::Metaspace;
    use tokenizers::{AddedToken, Tokenizer};
    // One thread, so that training cannot depend on scheduling, and leaves the cores to libtorch.
    tokenizers::utils::parallelism::set_parallelism(false);
    let model = BPE::builder().unk_token(UNK.into()).build().map_err(|e| anyhow::anyhow!("BPE: {e}"))?;
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Metaspace::default()));
    tok.with_decoder(Some(Metaspace::default()));
    let mut trainer: tokenizers::models::TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(UNK, true)])
        .build()
        .into();
    tok.train(&mut trainer, texts.iter().copied()).map_err(|e| anyhow::anyhow!("BPE training failed: {e}"))?;
    Ok(tok)
}

/// A translation data set and what decoding needs besides it.
#[derive(Debug)]
pub struct Parallel {
    pub data: Dataset,
    pub source: Vocab,
    pub target: Vocab,
    /// The test pairs, in row order (raw lower-cased text).
    pub test: Vec<Pair>,
    /// What the split did: books per split, test pairs dropped because their source is in training.
    pub report: SplitReport,
}

/// How the pairs were split.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SplitReport {
    pub train_books: Vec<u32>,
    pub val_books: Vec<u32>,
    pub test_books: Vec<u32>,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    /// Held-out pairs left out because their source text also occurs in the training split.
    pub test_sources_in_train: usize,
    pub val_sources_in_train: usize,
    /// Training pairs left out for being longer than `max_len` words.
    pub train_too_long: usize,
}

impl TranslateConfig {
    /// The pairs split by whole books (seeded), tokenised with vocabularies made from the training split.
    pub fn parallel(&self, seed: u64) -> Result<Parallel> {
        let pairs = read_pairs(&self.path, &self.source, &self.target)?;
        let (train, val, test, mut report) = split(&pairs, self, seed)?;
        let src_texts: Vec<&str> = train.iter().map(|p| p.source.as_str()).collect();
        let tgt_texts: Vec<&str> = train.iter().map(|p| p.target.as_str()).collect();
        let source = Vocab::train(self.tokens, &src_texts, self.source_vocab)?;
        let target = Vocab::train(self.tokens, &tgt_texts, self.target_vocab)?;
        let ids = |v: &Vocab, text: &str, offset: i64, unk: i64| -> Result<Vec<i64>> {
            Ok(v.encode(text)?.into_iter().map(|(i, _)| i.map_or(unk, |i| i + offset)).collect())
        };
        let make = |name: &str, ps: &[Pair]| -> Result<Split> {
            let xs: Vec<Vec<i64>> = ps.iter().map(|p| ids(&source, &p.source, 2, 1)).collect::<Result<_>>()?;
            let ys: Vec<Vec<i64>> = ps
                .iter()
                .map(|p| Ok(ids(&target, &p.target, 4, 3)?.into_iter().chain([2]).collect()))
                .collect::<Result<_>>()?;
            Ok(Split::pairs(name, &xs, &ys))
        };
        report.n_train = train.len();
        let mut classes: Vec<String> = TARGET_SPECIALS.iter().map(|s| s.to_string()).collect();
        classes.push(UNK.into());
        classes.extend(target.names());
        let mut shape = Shape::classes(source.len() as i64 + 2, classes);
        shape.source_tokens = ["<pad>", UNK].iter().map(|s| s.to_string()).chain(source.names()).collect();
        let data = Dataset {
            train: make("train", &train)?,
            val: Some(make("val", &val)?),
            test: Some(make("test", &test)?),
            shape,
        };
        Ok(Parallel { data, source, target, test, report })
    }
}

/// Training, validation and test pairs: whole books (or, without books, whole source sentences) drawn in a
/// seeded order for the test set, then the validation set, until each holds its share; the rest trains.
/// Training, validation and test pairs, and how they were split.
type Splits = (Vec<Pair>, Vec<Pair>, Vec<Pair>, SplitReport);

fn split(pairs: &[Pair], cfg: &TranslateConfig, seed: u64) -> Result<Splits> {
    let has_books = pairs.iter().any(|p| p.book != 0);
    // Groups: books, or distinct source sentences.
    let mut groups: Vec<Vec<&Pair>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for p in pairs {
        let key = if has_books { p.book.to_string() } else { p.source.clone() };
        let n = groups.len();
        let g = *index.entry(key).or_insert(n);
        if g == n {
            groups.push(Vec::new());
        }
        groups[g].push(p);
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    Rng::derived(seed, "translate-split").shuffle(&mut order);
    let total = pairs.len() as f64;
    let (mut test, mut val, mut train) = (Vec::new(), Vec::new(), Vec::new());
    let mut report = SplitReport::default();
    for g in order {
        let (dest, books): (&mut Vec<Pair>, &mut Vec<u32>) = if (test.len() as f64) < cfg.test_share * total {
            (&mut test, &mut report.test_books)
        } else if (val.len() as f64) < cfg.val_share * total {
            (&mut val, &mut report.val_books)
        } else {
            (&mut train, &mut report.train_books)
        };
        dest.extend(groups[g].iter().map(|p| (*p).clone()));
        if has_books {
            books.push(groups[g][0].book);
        }
    }
    for b in [&mut report.train_books, &mut report.val_books, &mut report.test_books] {
        b.sort();
    }
    if train.is_empty() || test.is_empty() || val.is_empty() {
        bail!(
            "{}: {} pairs are too few to hold out whole books for validation and test",
            cfg.path.display(),
            pairs.len()
        );
    }
    // A held-out source that also occurs in training is not unseen: dropped, and counted.
    let seen: HashSet<&str> = train.iter().map(|p| p.source.as_str()).collect();
    let before = (test.len(), val.len());
    test.retain(|p| !seen.contains(p.source.as_str()));
    val.retain(|p| !seen.contains(p.source.as_str()));
    report.test_sources_in_train = before.0 - test.len();
    report.val_sources_in_train = before.1 - val.len();
    let n = train.len();
    train.retain(|p| words(&p.source) <= cfg.max_len);
    report.train_too_long = n - train.len();
    if let Some(m) = cfg.max_train {
        Rng::derived(seed, "translate-subset").shuffle(&mut train);
        train.truncate(m);
    }
    (report.n_val, report.n_test) = (val.len(), test.len());
    Ok((train, val, test, report))
}

impl Source for TranslateConfig {
    fn load(&self, seed: u64) -> Result<Dataset> {
        Ok(self.parallel(seed)?.data)
    }

    fn check(&self) -> Result<()> {
        read_pairs(&self.path, &self.source, &self.target).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_13a_and_join_back() {
        let t = word_tokens("dieu dit: que la lumière soit! et l'homme, peut-être...");
        assert_eq!(
            t,
            [
                "dieu",
                "dit",
                ":",
                "que",
                "la",
                "lumière",
                "soit",
                "!",
                "et",
                "l'",
                "homme",
                ",",
                "peut-être",
                ".",
                ".",
                "."
            ]
        );
        assert_eq!(join_words(&t), "dieu dit : que la lumière soit ! et l'homme , peut-être . . .");
        let s = "dieu dit: que la lumière soit! et l'homme, peut-être...";
        assert_eq!(crate::bleu::tokenize_13a(&join_words(&t)), crate::bleu::tokenize_13a(s));
    }
}
