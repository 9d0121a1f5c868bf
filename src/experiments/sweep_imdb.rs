//! IMDB sequence-length sweep — expected result (`make sweep-imdb`, 3 seeds): in `distance` mode GRU and LSTM keep
//! their no-filler accuracy (0.736 / 0.732 at L = 50) up to L = 1000 (0.734 both, 950 filler steps) while the
//! vanilla RNN is at chance (0.496–0.502) from L = 100; the bag of words holds 0.745. In `truncate` mode GRU
//! reaches 0.892 at L = 1000, LSTM 0.888 (bag of words 0.890); `min_len` refuses L = 1000 (58 training reviews).
//!
//! Runs: every (mode, L, model, seed) of the config's sweep, each its own run folder in results/sweep-imdb/,
//! including a bag-of-words logistic regression on the same inputs as a reference (`model: bow`).
use crate::charts::{baseline, metric_vs};
use crate::config::CellKind;
use crate::data::imdb::{ImdbConfig, Mode};
use crate::plot::{cell_color, cell_width, Figure, Panel, Series, BASELINE_GREY, OTHER};
use crate::results::summary::{by_tag, table, Column, CLASSIFIER_RESULTS};
use crate::results::{read_csv, Meta, Status, Tag};
use crate::stats::aggregate;
use crate::sweep::{Cfg, Columns, Experiment, Finish, Trained};
use anyhow::Result;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Default)]
pub struct SweepImdb;

/// The name of a mode in tags and file names.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Truncate => "truncate",
        Mode::MinLen => "min_len",
        Mode::Distance => "distance",
    }
}

impl Experiment for SweepImdb {
    type Data = ImdbConfig;
    type Own = ();
    type PerRun = ();

    fn columns(&self) -> Columns {
        let mut results = CLASSIFIER_RESULTS.to_vec();
        results.extend(["train_tokens", "train_len_mean", "train_len_max", "grad_evidence", "grad_evidence_init"]);
        Columns { keys: vec!["model", "mode", "seq_len"], results }
    }

    fn tags(&self, cfg: &Cfg<Self>) -> Vec<(String, Tag)> {
        vec![("mode".into(), Tag::from(mode_name(cfg.data.mode))), ("seq_len".into(), Tag::from(cfg.data.length))]
    }

    /// In distance mode with the probe on: the mean ‖∂L/∂x_t‖ at the evidence tokens (the review's first k,
    /// `distance_to_readout` ≥ L − k), at init and after training.
    fn after(&self, cfg: &Cfg<Self>, t: Trained<()>) -> Result<()> {
        let rows = t.run.grad_rows();
        if cfg.data.mode != Mode::Distance || rows.is_empty() {
            return Ok(());
        }
        let l = cfg.data.length as i64;
        let first = l - (cfg.data.distance_k as i64).min(l);
        let last = rows.iter().map(|r| r.step).max().unwrap_or(0);
        let mean_at = |step: usize| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.step == step && r.quantity == "dl_dx" && r.distance_to_readout >= first)
                .map(|r| r.norm)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let found = [("grad_evidence_init", mean_at(0)), ("grad_evidence", mean_at(last))];
        for (key, v) in found {
            if let Some(v) = v {
                t.run.meta.result.insert(key.into(), v);
            }
        }
        Ok(())
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (dir, cfg, runs) = (&f.dir, f.cfg, f.runs);
        let mut text = String::new();
        if runs.iter().any(|m| m.tag("mode") == "distance") {
            story(&dir.join("summary.csv"), cfg.data.distance_k)?.save(&dir.join("story"))?;
        }
        for mode in [Mode::Truncate, Mode::MinLen, Mode::Distance] {
            let name = mode_name(mode);
            let ms: Vec<Meta> = runs.iter().filter(|m| m.tag("mode") == name).cloned().collect();
            let done: Vec<Meta> = ms.iter().filter(|m| m.result.contains_key("test_acc")).cloned().collect();
            if done.is_empty() {
                continue;
            }
            let x1 = done.iter().filter_map(|m| m.number("seq_len")).fold(10.0, f64::max);
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
                .filter_map(|m| m.number("seq_len").map(|l| l as i64))
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
            let over = if seeds == 1 { "1 seed".to_string() } else { format!("mean ± std over {seeds} seeds") };
            let title = format!("IMDB {name}: test accuracy vs L ({over})");
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
        Ok(text + "charts: story, accuracy_vs_length_<mode>, min_len_counts\n")
    }
}

/// The columns of summary.csv the story reads.
#[derive(Deserialize)]
struct StoryRow {
    model: String,
    mode: String,
    seq_len: f64,
    test_acc: Option<f64>,
    grad_evidence: Option<f64>,
    /// Absent in sweeps without the probe at init.
    #[serde(default)]
    grad_evidence_init: Option<f64>,
}

/// The story of the distance mode in one figure, from summary.csv alone: test accuracy against L (mean ± std over
/// seeds, with chance and the bag of words) beside the gradient that reaches the evidence tokens after training
/// (log scale, mean over seeds; band: lowest to highest seed).
pub fn story(summary_csv: &Path, k: usize) -> Result<Figure> {
    let rows: Vec<StoryRow> = read_csv(summary_csv)?;
    let rows: Vec<&StoryRow> = rows.iter().filter(|r| r.mode == "distance").collect();
    let seeds = |m: &str| {
        let mut n: BTreeMap<i64, usize> = BTreeMap::new();
        rows.iter()
            .filter(|r| r.model == m && r.test_acc.is_some())
            .for_each(|r| *n.entry(r.seq_len as i64).or_default() += 1);
        n.values().copied().max().unwrap_or(0)
    };
    let (mut acc, mut grad) = (Vec::new(), Vec::new());
    for cell in CellKind::ALL {
        let of = |f: fn(&StoryRow) -> Option<f64>| {
            aggregate(rows.iter().filter(|r| r.model == cell.name()).filter_map(|r| Some((r.seq_len as i64, f(r)?))))
        };
        let a = of(|r| r.test_acc);
        if a.is_empty() {
            continue;
        }
        let n = seeds(cell.name());
        // One legend entry per cell for both panels (the seeds are in the left panel's title).
        let label = cell.label().to_string();
        let pts: Vec<(f64, f64)> = a.iter().map(|(l, v)| (*l as f64, v.0)).collect();
        let band = if n > 1 { a.iter().map(|(l, v)| (*l as f64, v.0 - v.1, v.0 + v.1)).collect() } else { vec![] };
        let (color, width) = (cell_color(cell), cell_width(cell));
        acc.push(Series::new(label.clone(), color, pts).band(band).markers().width(width));
        // Mean over seeds at each L, and the lowest and highest seed (a band on a log axis).
        let over_seeds = |f: fn(&StoryRow) -> Option<f64>| -> Vec<(f64, f64, f64, f64)> {
            let mut by: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for r in rows.iter().filter(|r| r.model == cell.name()) {
                if let Some(v) = f(r).filter(|v| *v > 0.0) {
                    by.entry(r.seq_len as i64).or_default().push(v);
                }
            }
            by.into_iter()
                .map(|(l, v)| {
                    let (lo, hi) = v.iter().fold((f64::INFINITY, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
                    (l as f64, v.iter().sum::<f64>() / v.len() as f64, lo, hi)
                })
                .collect()
        };
        let g = over_seeds(|r| r.grad_evidence);
        let pts = g.iter().map(|p| (p.0, p.1)).collect();
        let band = if n > 1 { g.iter().map(|p| (p.0, p.2, p.3)).collect() } else { vec![] };
        grad.push(Series::new(label, color, pts).band(band).markers().width(width));
        // Before training every cell's gradient fades with distance: the contrast is what training does.
        let init: Vec<(f64, f64)> = over_seeds(|r| r.grad_evidence_init).iter().map(|p| (p.0, p.1)).collect();
        if !init.is_empty() {
            grad.push(Series::new(format!("{}, at init (dashed)", cell.label()), color, init).dashed().width(1));
        }
        // A gradient that underflows float32 to exactly 0 has no place on a log axis: say where it happened.
        let mut zero: Vec<i64> = rows
            .iter()
            .filter(|r| r.model == cell.name() && r.grad_evidence == Some(0.0))
            .map(|r| r.seq_len as i64)
            .collect();
        zero.dedup();
        if !zero.is_empty() {
            let at = zero.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ");
            let note = format!("{}: exactly 0 (float32 underflow) at L = {at}", cell.label());
            grad.push(Series::new(note, color, vec![]).dashed().width(2));
        }
    }
    let seeds_all = CellKind::ALL.iter().map(|c| seeds(c.name())).max().unwrap_or(0);
    let lengths: Vec<f64> = rows.iter().map(|r| r.seq_len).collect();
    let (x0, x1) = lengths.iter().fold((f64::INFINITY, 0f64), |(a, b), &l| (a.min(l), b.max(l)));
    let bow = aggregate(rows.iter().filter(|r| r.model == "bow").filter_map(|r| Some((r.seq_len as i64, r.test_acc?))));
    if !bow.is_empty() {
        let pts = bow.iter().map(|(l, v)| (*l as f64, v.0)).collect();
        acc.push(Series::new("bag of words (same tokens, order-free)", OTHER[0], pts).dashed().width(2).markers());
    }
    acc.push(baseline("chance (50 %)", 0.5, x0, x1));
    let top =
        acc.iter().flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().map(|b| b.2))).fold(0.8, f64::max)
            + 0.02;
    let x_label = format!("L = the review's first {k} tokens + L − {k} filler steps (log scale)");
    let panels = vec![
        Panel {
            title: match seeds_all {
                1 => "test accuracy (1 seed)".to_string(),
                n => format!("test accuracy (mean ± std over {n} seeds)"),
            },
            x_label: x_label.clone(),
            y_label: "test accuracy".into(),
            log_x: true,
            y_range: Some((0.45, top)),
            series: acc,
            ..Default::default()
        },
        Panel {
            title: "gradient reaching the evidence: trained (solid) and at init (dashed)".into(),
            x_label,
            y_label: format!("mean ‖∂L/∂x_t‖ over the first {k} tokens (log scale)"),
            log_x: true,
            log_y: true,
            series: grad,
            ..Default::default()
        },
    ];
    let title = format!("IMDB: the evidence sits L − {k} steps before the readout; what survives the distance");
    let mut fig = Figure::new(title, panels);
    fig.size = (1500, 700);
    Ok(fig)
}
