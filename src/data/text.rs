//! Data for the character-level language models: names with their language (one sequence per name, with
//! start and end symbols) and IMDB review text as character streams for truncated backpropagation through time.
use super::imdb::read_reviews;
use super::names::{self, Corpus, NamesConfig};
use super::Memo;
use super::{Dataset, Shape, Source, Split};
use crate::config::{Checker, Validate};
use crate::rng::Rng;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Names LM ids: 0 padding, 1..=57 the names alphabet, then start and end of name.
pub const NAME_BOS: i64 = names::ALPHABET.len() as i64 + 1;
pub const NAME_EOS: i64 = NAME_BOS + 1;
pub const NAME_VOCAB: i64 = NAME_EOS + 1;

/// Inputs `[BOS, c1 .. cn]` and targets `[c1 .. cn, EOS]` of a folded name.
pub fn name_pair(name: &str) -> Result<(Vec<i64>, Vec<i64>)> {
    let ids = names::encode(name)?;
    let mut x = vec![NAME_BOS];
    x.extend(&ids);
    let mut y = ids;
    y.push(NAME_EOS);
    Ok((x, y))
}

/// The name a sequence of ids spells (ids outside the alphabet are skipped).
pub fn decode_name(ids: &[i64]) -> String {
    let a: Vec<char> = names::ALPHABET.chars().collect();
    ids.iter().filter_map(|&i| a.get((i - 1) as usize)).collect()
}

/// Names as conditional language-model data (condition = language), split as the classifier's data is.
/// Returns the data set (classes = languages) and the training names (to measure novelty).
pub fn names_lm(cfg: &NamesConfig, seed: u64) -> Result<(Dataset, Vec<String>)> {
    let corpus = Corpus::load(&cfg.dir)?;
    let corpus = if cfg.dedupe { corpus.deduped() } else { corpus };
    let (tr, va, te) = corpus.split(cfg.split, seed);
    let split = |name: &str, idx: &[usize]| -> Result<Split> {
        let (mut xs, mut ys, mut cs) = (vec![], vec![], vec![]);
        for &i in idx {
            let (x, y) = name_pair(&corpus.names[i])?;
            xs.push(x);
            ys.push(y);
            cs.push(corpus.labels[i]);
        }
        Ok(Split::sequences(name, &xs, &ys, Some(&cs)))
    };
    let ds = Dataset {
        train: split("train", &tr)?,
        val: if va.is_empty() { None } else { Some(split("val", &va)?) },
        test: Some(split("test", &te)?),
        shape: Shape { conditioned: true, ..Shape::classes(NAME_VOCAB, corpus.classes.clone()) },
    };
    Ok((ds, tr.iter().map(|&i| corpus.names[i].clone()).collect()))
}

/// Character vocabulary of the review LM: printable ASCII and newline; ids 1..=96.
pub struct Chars;

impl Chars {
    pub const VOCAB: i64 = 97;

    pub fn id(c: char) -> Option<i64> {
        match c {
            '\n' => Some(96),
            ' '..='~' => Some(c as i64 - ' ' as i64 + 1),
            _ => None,
        }
    }

    pub fn char(id: i64) -> char {
        match id {
            96 => '\n',
            1..=95 => char::from_u32((id - 1) as u32 + ' ' as u32).unwrap_or('?'),
            _ => '?',
        }
    }

    /// A review as ids: `<br />` becomes a newline, accents are removed, other characters dropped; reviews end
    /// with a newline.
    pub fn encode(text: &str) -> Vec<i64> {
        let t = names::strip_accents(&text.replace("<br /><br />", "\n").replace("<br />", "\n"));
        t.chars().filter_map(Chars::id).chain(std::iter::once(96)).collect()
    }

    pub fn decode(ids: &[i64]) -> String {
        ids.iter().map(|&i| Chars::char(i)).collect()
    }
}

/// Text cut into `streams` parallel streams and windows of `bptt` characters, rows ordered window-major
/// (batch k = window k of every stream), so that consecutive batches continue each stream.
pub fn stream_split(name: &str, ids: &[i64], streams: usize, bptt: usize) -> Result<Split> {
    let per = ids.len() / streams;
    let windows = per.saturating_sub(1) / bptt;
    if windows == 0 {
        bail!("{name}: {} characters are too few for {streams} streams of windows of {bptt}", ids.len());
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for w in 0..windows {
        for s in 0..streams {
            let a = s * per + w * bptt;
            xs.push(ids[a..a + bptt].to_vec());
            ys.push(ids[a + 1..a + bptt + 1].to_vec());
        }
    }
    Ok(Split::sequences(name, &xs, &ys, None))
}

/// Review texts concatenated in a seeded order until `max_chars`.
pub fn review_text(texts: &[&str], max_chars: usize, seed: u64) -> Vec<i64> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    Rng::derived(seed, "review-text").shuffle(&mut order);
    let mut out = Vec::with_capacity(max_chars);
    for i in order {
        if out.len() >= max_chars {
            break;
        }
        out.extend(Chars::encode(texts[i]));
    }
    out.truncate(max_chars);
    out
}

/// IMDB review text as a character stream, for a language model trained with truncated backpropagation
/// through time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewsConfig {
    /// aclImdb archive or folder.
    pub path: PathBuf,
    /// Characters of training text (reviews of the training split, seeded order) and of validation text (test
    /// split).
    pub train_chars: usize,
    pub val_chars: usize,
    /// Parallel streams (the batch size: one window of each stream per batch).
    pub streams: usize,
    /// Truncated BPTT window.
    pub bptt: usize,
}

impl Default for ReviewsConfig {
    fn default() -> Self {
        ReviewsConfig {
            path: PathBuf::from("data/aclImdb_v1.tar.gz"),
            train_chars: 2_000_000,
            val_chars: 200_000,
            streams: 64,
            bptt: 100,
        }
    }
}

impl Validate for ReviewsConfig {
    fn validate(&self, c: &mut Checker) {
        c.positive("data.train_chars", self.train_chars);
        c.positive("data.val_chars", self.val_chars);
        c.positive("data.streams", self.streams);
        c.positive("data.bptt", self.bptt);
    }
}

/// Review text as ids: training and validation characters.
pub struct ReviewText {
    pub train: Vec<i64>,
    pub val: Vec<i64>,
}

impl ReviewsConfig {
    /// The text for `seed`, read once per process (the runs of a sweep share it).
    pub fn text(&self, seed: u64) -> Result<Arc<ReviewText>> {
        let key = (self.path.clone(), self.train_chars, self.val_chars, seed);
        TEXTS.get_or(key, usize::MAX, || {
            let reviews = read_reviews(&self.path)?;
            let texts = |test: bool| -> Vec<&str> {
                reviews.iter().filter(|r| r.test == test).map(|r| r.text.as_str()).collect()
            };
            Ok(ReviewText {
                train: review_text(&texts(false), self.train_chars, seed),
                val: review_text(&texts(true), self.val_chars, seed),
            })
        })
    }
}

pub(super) static TEXTS: Memo<(PathBuf, usize, usize, u64), ReviewText> = Memo::new();

impl Source for ReviewsConfig {
    fn load(&self, seed: u64) -> Result<Dataset> {
        let t = self.text(seed)?;
        Ok(Dataset {
            train: stream_split("train", &t.train, self.streams, self.bptt)?,
            val: Some(stream_split("val", &t.val, self.streams, self.bptt)?),
            test: None,
            shape: Shape { streams: self.streams, ..Shape::classes(Chars::VOCAB, vec![]) },
        })
    }

    fn check(&self) -> Result<()> {
        read_reviews(&self.path).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_and_streams() {
        assert_eq!(Chars::decode(&Chars::encode("Héllo<br />world")), "Hello\nworld\n");
        let ids: Vec<i64> = (1..=41).collect();
        let s = stream_split("x", &ids, 2, 4).unwrap();
        // 2 streams of 20 (+1 spare): 4 windows each; row order window-major.
        assert_eq!(s.len(), 8);
        let row = |r: i64| Vec::<i64>::try_from(s.tokens.get(r)).unwrap();
        assert_eq!((row(0), row(1), row(2)), (vec![1, 2, 3, 4], vec![21, 22, 23, 24], vec![5, 6, 7, 8]));
        assert_eq!(Vec::<i64>::try_from(s.labels.get(0)).unwrap(), vec![2, 3, 4, 5]);
        let (x, y) = name_pair("Ab").unwrap();
        assert_eq!((x, y), (vec![NAME_BOS, 27, 2], vec![27, 2, NAME_EOS]));
        assert_eq!(decode_name(&[27, 2]), "Ab");
    }
}
