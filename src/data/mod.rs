//! Data sets as encoded sequences + labels, and seeded (optionally length-bucketed) batching.
//!
//! Sources ([`synthetic`], and the names and IMDB readers) produce [`Example`]s; [`Split::new`] pads them once
//! into one `[N, T_max]` tensor, and every batch is an `index_select` of it cut to the batch's own longest
//! sequence, so no tensor is rebuilt from Rust vectors during training. Each batch carries its [`Spans`]:
//! where every sequence's real tokens sit.
pub mod brown;
pub mod imdb;
pub mod names;
pub mod parallel;
pub mod seq;
pub mod shakespeare;
pub mod synthetic;
pub mod text;

use crate::rng::Rng;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// What a process has read from disk, kept so the runs of a sweep share it; [`forget_cached`] empties them all.
pub struct Memo<K, V> {
    items: std::sync::Mutex<Vec<(K, Arc<V>)>>,
}

impl<K: PartialEq, V> Memo<K, V> {
    pub const fn new() -> Self {
        Memo { items: std::sync::Mutex::new(Vec::new()) }
    }

    /// The value kept for `key`, or `make()`'s, kept from now on (only the newest `keep` values stay). The memo
    /// is locked while `make` runs, so concurrent callers read a file once.
    pub fn get_or(&self, key: K, keep: usize, make: impl FnOnce() -> Result<V>) -> Result<Arc<V>> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, v)) = items.iter().find(|(k, _)| *k == key) {
            return Ok(v.clone());
        }
        if items.len() >= keep.max(1) {
            // Dropped before `make` runs, so an old value and its replacement are never both held.
            items.remove(0);
        }
        let v = Arc::new(make()?);
        items.push((key, v.clone()));
        Ok(v)
    }

    pub fn clear(&self) {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl<K: PartialEq, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Drops every data set this process keeps in memory (the benchmark does, before it measures memory).
pub fn forget_cached() {
    brown::CORPORA.clear();
    imdb::CORPORA.clear();
    *imdb::LAST.lock().unwrap_or_else(|e| e.into_inner()) = None;
    parallel::PAIRS.clear();
    shakespeare::WORKS.clear();
    text::TEXTS.clear();
}

/// Where each sequence's real tokens sit in a padded `[B, T]` batch (both `[B]`, i64).
#[derive(Debug)]
pub struct Spans {
    pub start: Tensor,
    pub len: Tensor,
}

impl Spans {
    /// Step numbers `[1, T]` and each span's start and end `[B, 1]`.
    fn bounds(&self, t_len: i64) -> (Tensor, Tensor, Tensor) {
        let t = Tensor::arange(t_len, (Kind::Int64, self.start.device())).unsqueeze(0);
        let s = self.start.unsqueeze(1);
        let e = &s + self.len.unsqueeze(1);
        (t, s, e)
    }

    /// `[B, T]` boolean: true at the real tokens.
    pub fn mask(&self, t_len: i64) -> Tensor {
        let (t, s, e) = self.bounds(t_len);
        t.ge_tensor(&s).logical_and(&t.lt_tensor(&e))
    }

    /// Index `[B, T]` that reverses every span in place and leaves padding where it is (an involution).
    pub fn reverse_index(&self, t_len: i64) -> Tensor {
        let (t, s, e) = self.bounds(t_len);
        (&s + &e - 1 - &t).where_self(&self.mask(t_len), &t)
    }

    /// Each sequence's last real step `[B]`.
    pub fn last(&self) -> Tensor {
        &self.start + &self.len - 1
    }
}

/// One encoded sequence (ids >= 1; 0 is padding) and its class.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub tokens: Vec<i64>,
    pub label: i64,
}

/// Where padding goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pad {
    /// Tokens first, padding after (the readout is at each sequence's last real step).
    Post,
    /// Padding first, tokens last (every sequence ends at the batch's last step).
    Pre,
}

/// A batch on the model's device.
#[derive(Debug)]
pub struct Batch {
    /// `[B, T]` token ids.
    pub tokens: Tensor,
    pub spans: Spans,
    /// `[B]` class ids (or `[B, T]` next-token ids for a language model, 0 = no target).
    pub targets: Tensor,
    /// `[B]` conditioning ids (e.g. the language of a generated name), when the data has them.
    pub cond: Option<Tensor>,
    /// `[B, T, C]` character ids of every token's spelling, when the data has them.
    pub chars: Option<Tensor>,
}

impl Batch {
    pub fn size(&self) -> i64 {
        self.tokens.size()[0]
    }
}

/// One split, padded once.
#[derive(Debug)]
pub struct Split {
    pub name: String,
    /// `[N, T_max]` ids, padded on `pad`'s side.
    pub tokens: Tensor,
    pub lengths: Vec<i64>,
    /// `[N]` labels, or `[N, T_max]` per-step targets (post-padded with 0).
    pub labels: Tensor,
    pub pad: Pad,
    /// `[N]` conditioning ids, if any.
    pub cond: Option<Tensor>,
    /// `[N, T_max]` spelling ids of the tokens and the `[S, C]` character ids of each spelling (the
    /// character-level word encoder reads them), if any.
    pub spell: Option<(Tensor, Tensor)>,
    /// The lengths of per-step targets that are not as long as their inputs (an encoder–decoder's), if so.
    pub target_lengths: Option<Vec<i64>>,
}

impl Split {
    pub fn new(name: &str, examples: &[Example], pad: Pad) -> Self {
        let t_max = examples.iter().map(|e| e.tokens.len()).max().unwrap_or(1).max(1);
        let mut flat = vec![0i64; examples.len() * t_max];
        for (row, e) in flat.chunks_mut(t_max).zip(examples) {
            let off = if pad == Pad::Pre { t_max - e.tokens.len() } else { 0 };
            row[off..off + e.tokens.len()].copy_from_slice(&e.tokens);
        }
        let labels: Vec<i64> = examples.iter().map(|e| e.label).collect();
        Split {
            name: name.to_string(),
            tokens: Tensor::from_slice(&flat).view([examples.len() as i64, t_max as i64]),
            lengths: examples.iter().map(|e| e.tokens.len() as i64).collect(),
            labels: Tensor::from_slice(&labels),
            pad,
            cond: None,
            spell: None,
            target_lengths: None,
        }
    }

    /// A language-model split: `inputs[i]` and `targets[i]` of equal lengths (post-padded), optional
    /// conditioning id per sequence.
    pub fn sequences(name: &str, inputs: &[Vec<i64>], targets: &[Vec<i64>], cond: Option<&[i64]>) -> Self {
        let ex =
            |s: &[Vec<i64>]| -> Vec<Example> { s.iter().map(|t| Example { tokens: t.clone(), label: 0 }).collect() };
        let x = Split::new(name, &ex(inputs), Pad::Post);
        let y = Split::new(name, &ex(targets), Pad::Post);
        Split { labels: y.tokens, cond: cond.map(Tensor::from_slice), ..x }
    }

    /// Source–target pairs of different lengths (both post-padded with 0): an encoder–decoder's data.
    pub fn pairs(name: &str, sources: &[Vec<i64>], targets: &[Vec<i64>]) -> Self {
        let ex =
            |s: &[Vec<i64>]| -> Vec<Example> { s.iter().map(|t| Example { tokens: t.clone(), label: 0 }).collect() };
        let x = Split::new(name, &ex(sources), Pad::Post);
        let y = Split::new(name, &ex(targets), Pad::Post);
        Split { labels: y.tokens, target_lengths: Some(y.lengths), ..x }
    }

    /// The split with the spelling id of every token (`spell[i]` as long as row i) and the spellings' characters.
    pub fn with_spellings(self, spell: &[Vec<i64>], spellings: &Tensor) -> Self {
        let ex: Vec<Example> = spell.iter().map(|s| Example { tokens: s.clone(), label: 0 }).collect();
        let ids = Split::new(&self.name, &ex, Pad::Post).tokens;
        Split { spell: Some((ids, spellings.shallow_clone())), ..self }
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// A copy sharing the tensors' storage.
    pub fn shallow_clone(&self) -> Self {
        Split {
            name: self.name.clone(),
            tokens: self.tokens.shallow_clone(),
            lengths: self.lengths.clone(),
            labels: self.labels.shallow_clone(),
            pad: self.pad,
            cond: self.cond.as_ref().map(Tensor::shallow_clone),
            spell: self.spell.as_ref().map(|(a, b)| (a.shallow_clone(), b.shallow_clone())),
            target_lengths: self.target_lengths.clone(),
        }
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Self {
        self.rows(&(0..n.min(self.len()) as i64).collect::<Vec<_>>())
    }

    /// A split of the rows `idx` (in that order), with tensors of its own.
    pub fn rows(&self, idx: &[i64]) -> Self {
        let pick = |v: &[i64]| -> Vec<i64> { idx.iter().map(|&i| v[i as usize]).collect() };
        let sel = Tensor::from_slice(idx).to_device(self.tokens.device());
        Split {
            name: self.name.clone(),
            tokens: self.tokens.index_select(0, &sel),
            lengths: pick(&self.lengths),
            labels: self.labels.index_select(0, &sel),
            pad: self.pad,
            cond: self.cond.as_ref().map(|c| c.index_select(0, &sel)),
            spell: self.spell.as_ref().map(|(a, b)| (a.index_select(0, &sel), b.shallow_clone())),
            target_lengths: self.target_lengths.as_ref().map(|t| pick(t)),
        }
    }

    /// Moves the split's tensors to `device` once (batches are then cut there).
    pub fn to_device(self, device: Device) -> Self {
        Split {
            tokens: self.tokens.to_device(device),
            labels: self.labels.to_device(device),
            cond: self.cond.map(|c| c.to_device(device)),
            spell: self.spell.map(|(a, b)| (a.to_device(device), b.to_device(device))),
            ..self
        }
    }

    /// Batches of row indices. With `rng`, the order is shuffled; with `bucket`, rows are sorted by length
    /// inside windows of 50 batches, so each batch holds similar lengths (less padding), and the batch order
    /// is shuffled again. Without `rng`, rows keep their order (evaluation), bucketed if asked.
    pub fn batches(&self, batch_size: usize, rng: Option<&mut Rng>, bucket: bool) -> Vec<Vec<i64>> {
        let mut idx: Vec<i64> = (0..self.len() as i64).collect();
        let mut rng = rng;
        if let Some(r) = rng.as_deref_mut() {
            r.shuffle(&mut idx);
        }
        self.batches_of(idx, batch_size, rng, bucket)
    }

    /// Rows `idx` (in their order) as batches, bucketed as [`batches`](Self::batches) does.
    pub fn batches_of(
        &self,
        mut idx: Vec<i64>,
        batch_size: usize,
        rng: Option<&mut Rng>,
        bucket: bool,
    ) -> Vec<Vec<i64>> {
        if bucket {
            for window in idx.chunks_mut(batch_size * 50) {
                window.sort_by_key(|&i| self.lengths[i as usize]);
            }
        }
        let mut out: Vec<Vec<i64>> = idx.chunks(batch_size).map(<[i64]>::to_vec).collect();
        if let (true, Some(r)) = (bucket, rng) {
            r.shuffle(&mut out);
        }
        out
    }

    /// The batch of rows `idx`, cut to its longest sequence, on `device`.
    pub fn batch(&self, idx: &[i64], device: Device) -> Batch {
        let t_max = self.tokens.size()[1];
        let lens: Vec<i64> = idx.iter().map(|&i| self.lengths[i as usize]).collect();
        let t = lens.iter().copied().max().unwrap_or(1).max(1);
        let sel = Tensor::from_slice(idx).to_device(self.tokens.device());
        let rows = self.tokens.index_select(0, &sel);
        let (tokens, start) = match self.pad {
            Pad::Post => (rows.narrow(1, 0, t), vec![0; lens.len()]),
            Pad::Pre => (rows.narrow(1, t_max - t, t), lens.iter().map(|l| t - l).collect()),
        };
        Batch {
            tokens: tokens.to_device(device),
            spans: Spans {
                start: Tensor::from_slice(&start).to_device(device),
                len: Tensor::from_slice(&lens).to_device(device),
            },
            targets: {
                let y = self.labels.index_select(0, &sel);
                let t_y = match &self.target_lengths {
                    Some(tl) => idx.iter().map(|&i| tl[i as usize]).max().unwrap_or(1).max(1),
                    None => t,
                };
                if y.dim() == 2 { y.narrow(1, 0, t_y) } else { y }.to_device(device)
            },
            cond: self.cond.as_ref().map(|c| c.index_select(0, &sel).to_device(device)),
            chars: self.spell.as_ref().map(|(ids, table)| {
                let ids = ids.index_select(0, &sel).narrow(1, 0, t);
                table.index_select(0, &ids.flatten(0, -1)).view([idx.len() as i64, t, -1]).to_device(device)
            }),
        }
    }

    /// Fraction of padding in the batches that `batches` would make (to measure what bucketing saves).
    pub fn padding_fraction(&self, batches: &[Vec<i64>]) -> f64 {
        let (mut real, mut total) = (0i64, 0i64);
        for b in batches {
            let lens: Vec<i64> = b.iter().map(|&i| self.lengths[i as usize]).collect();
            real += lens.iter().sum::<i64>();
            total += lens.iter().max().copied().unwrap_or(0) * lens.len() as i64;
        }
        if total == 0 {
            0.0
        } else {
            1.0 - real as f64 / total as f64
        }
    }

    /// Rows per class (`classes` classes), when every row has one class.
    pub fn class_counts(&self, classes: usize) -> Option<Vec<i64>> {
        if self.labels.dim() != 1 {
            return None;
        }
        let mut n = vec![0i64; classes];
        for l in self.label_vec() {
            n[l as usize] += 1;
        }
        Some(n)
    }

    /// Labels as a host vector.
    pub fn label_vec(&self) -> Vec<i64> {
        Vec::<i64>::try_from(self.labels.to_device(Device::Cpu).to_kind(Kind::Int64)).expect("labels")
    }
}

/// Epochs with every class equally often: the PyTorch names tutorial's draw (a language uniformly, then one of
/// its names), without starving the big classes of coverage. Each class's rows form a shuffled queue that the
/// epochs walk through in turn (reshuffled when used up), so the small classes repeat within an epoch and the big
/// ones are covered over several.
#[derive(Clone, Debug)]
pub struct Balanced {
    queues: Vec<Vec<i64>>,
    next: Vec<usize>,
}

impl Balanced {
    /// From the class of every row (`classes` classes; those without rows are left out).
    pub fn new(labels: &[i64], classes: usize) -> Self {
        let mut queues = vec![Vec::new(); classes];
        for (i, &l) in labels.iter().enumerate() {
            queues[l as usize].push(i as i64);
        }
        queues.retain(|q| !q.is_empty());
        let next = queues.iter().map(Vec::len).collect();
        Balanced { queues, next }
    }

    /// One epoch of about `n` rows: ⌈n / classes⌉ of each class, in a random order.
    pub fn epoch(&mut self, n: usize, rng: &mut Rng) -> Vec<i64> {
        let per = n.div_ceil(self.queues.len().max(1));
        let mut out = Vec::with_capacity(per * self.queues.len());
        for (q, next) in self.queues.iter_mut().zip(self.next.iter_mut()) {
            for _ in 0..per {
                if *next == q.len() {
                    rng.shuffle(q);
                    *next = 0;
                }
                out.push(q[*next]);
                *next += 1;
            }
        }
        rng.shuffle(&mut out);
        out
    }
}

/// A data point that cannot be made (too little data for the requested cut, an impossible length...): the run
/// is recorded as `refused` with this message and its counts instead of failing the sweep.
#[derive(Debug)]
pub struct Refused {
    pub message: String,
    pub n_train: usize,
    pub n_test: usize,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// A data section that makes a data set from a seed.
pub trait Source {
    /// The data set for `seed` (a [`Refused`] error when this data cannot make it).
    fn load(&self, seed: u64) -> Result<Dataset>;
    /// Reads what [`load`](Self::load) will need, so that missing or corrupt data stops a sweep before its
    /// first run instead of failing every run.
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// What a model needs to know about its data; saved with a checkpoint so that the model can be rebuilt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Number of token ids, padding (0) included.
    pub vocab: i64,
    /// Class names in label order (for a conditioned language model: the condition values).
    pub classes: Vec<String>,
    /// The language model is conditioned on one of `classes` per sequence.
    #[serde(default)]
    pub conditioned: bool,
    /// Encoder–decoders: the name of every source id (the classes name the target ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_tokens: Vec<String>,
    /// Characters of the spellings (0: the data has none).
    #[serde(default)]
    pub chars: i64,
    /// Training rows per class (classifiers; empty otherwise).
    #[serde(default)]
    pub class_counts: Vec<i64>,
    /// Token ids that carry no evidence (the filler of the distance modes): the bag of words ignores them.
    #[serde(default)]
    pub filler: Vec<i64>,
    /// The text is cut into this many parallel streams (0: separate sequences), batch k holding window k of
    /// every stream: the language model carries its state across batches (truncated backpropagation through
    /// time), so a batch must hold exactly one window per stream, in order.
    #[serde(default)]
    pub streams: usize,
}

impl Shape {
    /// A classifier's data: `vocab` ids, these classes.
    pub fn classes(vocab: i64, classes: Vec<String>) -> Self {
        Shape { vocab, classes, ..Default::default() }
    }
}

/// Train / validation / test splits of one data set, with what is needed to build a model for it.
#[derive(Debug)]
pub struct Dataset {
    pub train: Split,
    pub val: Option<Split>,
    pub test: Option<Split>,
    pub shape: Shape,
}

impl Dataset {
    /// A copy sharing the tensors' storage (to train several models on one data set).
    pub fn shallow_clone(&self) -> Self {
        Dataset {
            train: self.train.shallow_clone(),
            val: self.val.as_ref().map(Split::shallow_clone),
            test: self.test.as_ref().map(Split::shallow_clone),
            shape: self.shape.clone(),
        }
    }

    /// The splits present, with their names.
    pub fn splits(&self) -> Vec<&Split> {
        std::iter::once(&self.train).chain(&self.val).chain(&self.test).collect()
    }

    pub fn to_device(self, device: Device) -> Self {
        Dataset {
            train: self.train.to_device(device),
            val: self.val.map(|s| s.to_device(device)),
            test: self.test.map(|s| s.to_device(device)),
            ..self
        }
    }
}
