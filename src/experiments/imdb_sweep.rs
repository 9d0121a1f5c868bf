//! IMDB sequence-length sweep — expected result: in `distance` mode the vanilla RNN is at chance (0.496) once 50
//! filler steps follow the review's first 50 tokens; with the default budget GRU and LSTM give out soon after
//! (GRU 0.61 ± 0.09 at L = 100) while the bag of words holds 0.744; in `truncate` mode GRU reaches 0.834 at
//! L = 1000, LSTM 0.799, RNN 0.630; `min_len` refuses L = 1000 (58 training reviews) and says so.
//!
//! Runs: every (mode, L, model, seed) of the config's sweep, each its own run folder in results/sweep_imdb/,
//! including a bag-of-words logistic regression on the same inputs as a reference (`model: bow`).
use crate::charts::{baseline, metric_vs};
use crate::data::imdb::{ImdbConfig, Mode};
use crate::plot::{Figure, Panel, Series, BASELINE_GREY, OTHER};
use crate::results::summary::{by_tag, table, Column, CLASSIFIER_RESULTS};
use crate::results::{Meta, Status};
use crate::sweep::{Cfg, Experiment};
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Default)]
pub struct ImdbSweep;

/// The name of a mode in tags and file names.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Truncate => "truncate",
        Mode::MinLen => "min_len",
        Mode::Distance => "distance",
    }
}

impl Experiment for ImdbSweep {
    type Data = ImdbConfig;
    type Own = ();
    const NAME: &'static str = "sweep_imdb";
    const CONFIG: &'static str = "configs/imdb_sweep.yaml";

    fn columns(&self) -> (Vec<&'static str>, Vec<&'static str>) {
        (vec!["model", "mode", "seq_len"], CLASSIFIER_RESULTS.to_vec())
    }

    fn summary_name(&self) -> &'static str {
        "sweep.csv"
    }

    fn tags(&self, cfg: &Cfg<Self>) -> Vec<(String, String)> {
        vec![("mode".into(), mode_name(cfg.data.mode).into()), ("seq_len".into(), cfg.data.length.to_string())]
    }

    fn finish(&mut self, root: &Path, cfg: &Cfg<Self>, runs: &[Meta]) -> Result<String> {
        let dir = root.join(crate::sweep::folder::<Self>(cfg));
        let mut text = String::new();
        for mode in [Mode::Truncate, Mode::MinLen, Mode::Distance] {
            let name = mode_name(mode);
            let ms: Vec<Meta> = runs.iter().filter(|m| m.tag("mode") == name).cloned().collect();
            let done: Vec<Meta> = ms.iter().filter(|m| m.result.contains_key("test_acc")).cloned().collect();
            if done.is_empty() {
                continue;
            }
            let x1 = done.iter().filter_map(|m| m.tag("seq_len").parse::<f64>().ok()).fold(10.0, f64::max);
            let mut series = metric_vs(&done, "seq_len", "test_acc");
            // The bag-of-words reference: mean over seeds at each L.
            let bow: Vec<&Meta> = done.iter().filter(|m| m.tag("model") == "bow").collect();
            let bow = by_tag(&bow, "seq_len", "test_acc");
            if !bow.is_empty() {
                let pts = bow.iter().map(|(l, v)| (*l as f64 / 1e6, v.0)).collect();
                series.push(Series::new("bag of words (same tokens)", OTHER[0], pts).dashed().width(2).markers());
            }
            series.push(baseline("chance (50 %)", 0.5, 10.0, x1));
            let refused: BTreeSet<i64> = ms
                .iter()
                .filter(|m| m.status == Status::Refused && m.tag("model") != "bow")
                .filter_map(|m| m.tag("seq_len").parse().ok())
                .collect();
            let seeds = done.iter().map(|m| m.seed).collect::<BTreeSet<_>>().len();
            let what = match mode {
                Mode::Truncate => "first L tokens of every review".to_string(),
                Mode::MinLen => "only reviews with >= L tokens".to_string(),
                Mode::Distance => format!("first {} tokens, then filler up to L", cfg.data.distance_k),
            };
            let note = if refused.is_empty() {
                String::new()
            } else {
                format!(
                    "; too few reviews at L = {}",
                    refused.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
                )
            };
            let panel = Panel {
                title: format!("{what}{note}"),
                x_label: "sequence length L (tokens, log scale)".into(),
                y_label: "test accuracy".into(),
                log_x: true,
                y_range: Some((0.45, 1.0)),
                series,
                ..Default::default()
            };
            let title = format!("IMDB {name}: test accuracy vs L (mean ± std over {seeds} seed(s))");
            Figure::new(title, vec![panel]).save(&dir.join(format!("accuracy_vs_length_{name}")))?;
            // Training-set size behind each point (min_len shrinks it).
            if mode == Mode::MinLen {
                let all: Vec<&Meta> = ms.iter().collect();
                let n = by_tag(&all, "seq_len", "n_train");
                let pts: Vec<(f64, f64)> = n.iter().map(|(l, v)| (*l as f64 / 1e6, v.0.max(1.0))).collect();
                let panel = Panel {
                    title: format!("refused below data.min_examples = {}", cfg.data.min_examples),
                    x_label: "sequence length L (tokens, log scale)".into(),
                    y_label: "training reviews with >= L tokens (log scale)".into(),
                    log_x: true,
                    log_y: true,
                    series: vec![Series::new("n_train", BASELINE_GREY, pts).markers()],
                    ..Default::default()
                };
                Figure::new("IMDB min_len: training reviews available at each L", vec![panel])
                    .save(&dir.join("min_len_counts"))?;
            }
            let cols = Column::per_value(&ms, "seq_len", "L", "test_acc");
            text += &table(&format!("{name}: test accuracy"), &ms, &["model"], &cols);
        }
        Ok(text + "charts: accuracy_vs_length_<mode>, min_len_counts\n")
    }
}
