//! The offline long-range task, generated from a seed.
//!
//! A sequence of length L starts with `key_len` key tokens drawn from `classes` key symbols; the class is the
//! sum of their indices modulo `classes` (with one key token: the class *is* the first token). The other
//! L − key_len steps are noise tokens drawn uniformly from `noise_tokens` other symbols. The readout is at the
//! last step, so the evidence sits L − key_len .. L − 1 steps before it: a model must carry it across the
//! noise. Chance accuracy is 1 / classes.
//!
//! Ids: 0 padding, 1..=classes key symbols, then the noise symbols.
use super::{Dataset, Example, Pad, Shape, Source, Split};
use crate::config::{Checker, Validate};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    pub classes: usize,
    pub key_len: usize,
    pub noise_tokens: usize,
    /// Sequence length L of the validation and test sequences (the demo sweeps it).
    pub length: usize,
    /// Training lengths are drawn uniformly from [min_train_length, length] (null: all exactly `length`).
    /// Shorter sequences show the model what matters; the test still puts the evidence L steps back.
    pub min_train_length: Option<usize>,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            classes: 4,
            key_len: 1,
            noise_tokens: 16,
            length: 50,
            min_train_length: None,
            n_train: 4000,
            n_val: 500,
            n_test: 1000,
        }
    }
}

impl Validate for SyntheticConfig {
    fn validate(&self, c: &mut Checker) {
        c.check(self.classes >= 2, "data.classes", self.classes, "must be >= 2");
        c.positive("data.key_len", self.key_len);
        c.positive("data.noise_tokens", self.noise_tokens);
        c.check(self.length >= self.key_len, "data.length", self.length, "must be >= data.key_len");
        c.positive("data.n_train", self.n_train);
        if let Some(m) = self.min_train_length {
            c.check(m >= self.key_len, "data.min_train_length", m, "must be >= data.key_len, or null");
        }
    }
}

impl SyntheticConfig {
    pub fn vocab(&self) -> i64 {
        (1 + self.classes + self.noise_tokens) as i64
    }

    /// `n` examples with lengths uniform in `lengths` (inclusive) from `rng`.
    pub fn examples(&self, n: usize, lengths: (usize, usize), rng: &mut Rng) -> Vec<Example> {
        let (c, k) = (self.classes as u64, self.key_len);
        (0..n)
            .map(|_| {
                let length = lengths.0 + rng.below((lengths.1 - lengths.0 + 1) as u64) as usize;
                let keys: Vec<u64> = (0..k).map(|_| rng.below(c)).collect();
                let label = (keys.iter().sum::<u64>() % c) as i64;
                let noise = (k..length).map(|_| (1 + c + rng.below(self.noise_tokens as u64)) as i64);
                let tokens = keys.iter().map(|&x| x as i64 + 1).chain(noise).collect();
                Example { tokens, label }
            })
            .collect()
    }

    /// Train/val/test at `self.length`, all from `seed`.
    pub fn dataset(&self, seed: u64) -> Dataset {
        let mut rng = Rng::derived(seed, "synthetic");
        let mut split = |name: &str, n: usize, lo: usize| {
            Split::new(name, &self.examples(n, (lo, self.length), &mut rng), Pad::Post)
        };
        let train = split("train", self.n_train, self.min_train_length.unwrap_or(self.length).min(self.length));
        let mut split = |name: &str, n: usize| split(name, n, self.length);
        let val = (self.n_val > 0).then(|| split("val", self.n_val));
        let test = (self.n_test > 0).then(|| split("test", self.n_test));
        let classes = (0..self.classes).map(|i| format!("class {i}")).collect();
        Dataset { train, val, test, shape: Shape::classes(self.vocab(), classes) }
    }
}

impl Source for SyntheticConfig {
    fn load(&self, seed: u64) -> anyhow::Result<Dataset> {
        Ok(self.dataset(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_is_set_by_the_keys() {
        let cfg = SyntheticConfig { classes: 3, key_len: 2, noise_tokens: 5, ..Default::default() };
        let ex = cfg.examples(200, (12, 12), &mut Rng::new(3));
        for e in &ex {
            assert_eq!(e.tokens.len(), 12);
            assert_eq!(e.label, (e.tokens[0] - 1 + e.tokens[1] - 1) % 3);
            assert!(e.tokens[2..].iter().all(|&t| (4..9).contains(&t)));
        }
        assert_eq!(ex, cfg.examples(200, (12, 12), &mut Rng::new(3)));
    }
}
