//! IMDB sentiment at one length — expected result: GRU 0.888 and LSTM 0.871 test accuracy on the first 400
//! tokens from raw text (no pretrained vectors); the vanilla RNN 0.667 (`make imdb`, 1 seed).
//!
//! RNN, GRU and LSTM (and variants such as `2layer`, `bi`: a labelled `variant` axis in the sweep) on the official
//! 25k/25k split, 10 % of the training reviews held out for validation. Outputs in results/imdb/: run folders,
//! summary.csv, training_curves and test_accuracy charts.
use crate::charts::{bars_by_cell, training_curves};
use crate::data::imdb::ImdbConfig;
use crate::plot::Bars;
use crate::results::rows::SplitName;
use crate::results::summary::{table, Column, CLASSIFIER_RESULTS};
use crate::results::{Meta, Tag};
use crate::sweep::{Cfg, Columns, Experiment, Finish};
use anyhow::Result;

#[derive(Default)]
pub struct Imdb;

impl Experiment for Imdb {
    type Data = ImdbConfig;
    type Own = ();
    type PerRun = ();

    fn columns(&self) -> Columns {
        Columns { keys: vec!["model", "variant", "seq_len"], results: CLASSIFIER_RESULTS.to_vec() }
    }

    fn tags(&self, cfg: &Cfg<Self>) -> Vec<(String, Tag)> {
        vec![("seq_len".into(), Tag::from(cfg.data.length))]
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (root, dir, cfg, runs) = (f.root, &f.dir, f.cfg, f.runs);
        let title = format!("IMDB, first {} tokens: validation accuracy per epoch", cfg.data.length);
        let mut fig = training_curves(root, runs, "seq_len", "L", SplitName::Val, &title)?;
        for p in &mut fig.panels {
            p.y_range = Some((0.45, 1.0));
        }
        fig.save(&dir.join("training_curves"))?;
        // Test accuracy per model and variant.
        let mut variants: Vec<String> = Vec::new();
        for m in runs {
            if !variants.contains(&m.tag("variant")) {
                variants.push(m.tag("variant"));
            }
        }
        let variants: Vec<&str> = variants.iter().map(String::as_str).collect();
        let seeds = runs.iter().map(|m| m.seed).collect::<std::collections::BTreeSet<_>>().len();
        let runs_ref: Vec<&Meta> = runs.iter().collect();
        let series = bars_by_cell(&runs_ref, "variant", &variants, "test_acc");
        Bars {
            title: format!("IMDB test accuracy, first {} tokens ({})", cfg.data.length, crate::stats::seeds(seeds)),
            y_label: "test accuracy".into(),
            categories: variants.iter().map(|v| v.to_string()).collect(),
            series,
            hlines: vec![(0.5, "chance (50 %)".into())],
            y_range: Some((0.4, 1.0)),
            log_y: false,
            size: (1000, 700),
        }
        .save(&dir.join("test_accuracy"))?;
        let cols = Column::per_value(runs, "variant", "variant", "test_acc");
        Ok(table("IMDB test accuracy", runs, &["model"], &cols) + "charts: training_curves, test_accuracy\n")
    }
}

/// An IMDB classifier loaded once, with its vocabulary (read from the run's data, `data.path`): what the
/// playground's sentiment panel asks.
pub struct SentimentPredictor {
    loaded: crate::results::checkpoint::Loaded,
    data: ImdbConfig,
    vocab: std::collections::HashMap<String, i64>,
    positive: i64,
}

/// A review read by one classifier.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sentiment {
    /// The words read (the review's first `data.length` tokens, as in training).
    pub words: Vec<String>,
    pub unknown: Vec<bool>,
    /// Words left out after the first `data.length`.
    pub cut: usize,
    pub p_positive: f64,
    /// P(positive) after each word.
    pub curve: Vec<f64>,
    /// ‖∂P(positive)/∂x_t‖ of each word's input vector.
    pub saliency: Vec<f64>,
}

impl SentimentPredictor {
    pub fn load(run: &std::path::Path, device: tch::Device) -> Result<Self> {
        use crate::results::checkpoint;
        let loaded = checkpoint::load(run, device)?;
        if loaded.model.classifier().is_none() {
            anyhow::bail!("{} holds no classifier", run.display());
        }
        let data: ImdbConfig = checkpoint::config_section(run, "data")?;
        let vocab = data
            .vocabulary()
            .map_err(|e| anyhow::anyhow!("{}: the vocabulary comes from its data ({e:#})", run.display()))?;
        let positive = loaded.spec.shape.classes.iter().position(|c| c == "positive").unwrap_or(1) as i64;
        Ok(SentimentPredictor { loaded, data, vocab, positive })
    }

    /// P(positive) of `text`, after each word, and each word's saliency.
    pub fn read(&self, text: &str) -> Result<Sentiment> {
        use crate::data::{Example, Pad, Split};
        use tch::{Kind, Tensor};
        let m = self.loaded.model.classifier().expect("checked at load");
        let mut words = crate::data::imdb::tokenize(text);
        if words.is_empty() {
            anyhow::bail!("nothing to read: give a review of a few words, e.g. \"A moving, beautifully acted film.\"");
        }
        let cut = words.len().saturating_sub(self.data.length);
        words.truncate(self.data.length);
        let ids: Vec<i64> = words.iter().map(|w| *self.vocab.get(w).unwrap_or(&crate::data::imdb::UNK)).collect();
        let device = self.loaded.vs.device();
        let split = Split::new("input", &[Example { tokens: ids.clone(), label: 0 }], Pad::Post).to_device(device);
        let batch = split.batch(&[0], device);
        let p_positive = m.predict_proba(&split, 1).double_value(&[0, self.positive]);
        let curve: Vec<f64> = match tch::no_grad(|| m.logits_per_step(&batch.tokens)) {
            Some(l) => {
                Vec::try_from(l.get(0).softmax(-1, Kind::Double).select(1, self.positive).to_device(tch::Device::Cpu))?
            }
            None => {
                let prefixes: Vec<Example> =
                    (1..=ids.len()).map(|n| Example { tokens: ids[..n].to_vec(), label: 0 }).collect();
                let p = m.predict_proba(&Split::new("prefixes", &prefixes, Pad::Post).to_device(device), 64);
                Vec::try_from(p.select(1, self.positive).to_kind(Kind::Double))?
            }
        };
        // Saliency through libtorch's kernels (autograd end to end).
        let x = m.embed(&batch.tokens).detach().set_requires_grad(true);
        let p = m.logits_from(&x, &batch, false, crate::config::Impl::Libtorch).softmax(-1, Kind::Float);
        p.get(0).get(self.positive).backward();
        let g: Tensor = x.grad().get(0).norm_scalaropt_dim(2.0, [1].as_slice(), false);
        let saliency = Vec::try_from(g.to_kind(Kind::Double).to_device(tch::Device::Cpu))?;
        let unknown = ids.iter().map(|&i| i == crate::data::imdb::UNK).collect();
        Ok(Sentiment { words, unknown, cut, p_positive, curve, saliency })
    }
}
