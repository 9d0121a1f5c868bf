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
