//! Charts built from run folders (read through [`crate::results`]), shared by the experiments: a metric against a
//! swept value (mean ± std over seeds, one line per point of every other swept key), training curves, gradient
//! norm against distance.
use crate::config::CellKind;
use crate::plot::{cell_color, cell_width, BarSeries, Figure, Panel, Series, BASELINE_GREY};
use crate::results::rows::{RowStatus, SplitName};
use crate::results::{rows, summary, Meta, Tag};
use crate::stats::mean_std;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// The runs of one line of a chart, with the tags they share.
pub type Line<'a> = (Vec<(String, Tag)>, Vec<&'a Meta>);

/// The runs grouped by every tag but `x` (the seed is not a tag): one group per line of a chart, in the order
/// RNN, GRU, LSTM, others, then by the other values.
pub fn lines<'a>(metas: &'a [Meta], x: &str) -> Vec<Line<'a>> {
    let mut groups: Vec<Line> = Vec::new();
    for m in metas {
        let key: Vec<(String, Tag)> =
            m.tags.iter().filter(|(k, _)| k.as_str() != x).map(|(k, v)| (k.clone(), v.clone())).collect();
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1.push(m),
            None => groups.push((key, vec![m])),
        }
    }
    let rank = |g: &Vec<&Meta>| g[0].cell().map_or(9, |c| c as usize);
    groups.sort_by(|a, b| {
        rank(&a.1).cmp(&rank(&b.1)).then_with(|| {
            a.0.iter().zip(&b.0).map(|(p, q)| p.1.order(&q.1)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    groups
}

/// The label of a line: the model, then every other tag whose value differs between the lines
/// (`GRU, hidden = 64`).
pub fn line_label(key: &[(String, Tag)], all: &[Line]) -> String {
    let mut parts = Vec::new();
    for (k, v) in key {
        let varies = all.iter().any(|g| g.0.iter().any(|(k2, v2)| k2 == k && v2 != v));
        if k == "model" {
            parts.insert(
                0,
                CellKind::parse(&v.to_string())
                    .map_or_else(|_| summary::model_label(&v.to_string()), |c| c.label().to_string()),
            );
        } else if varies {
            parts.push(format!("{k} = {v}"));
        }
    }
    parts.join(", ")
}

/// One series per line (every combination of the tags but `x`): `result[y]` against the tag `x` (numeric),
/// mean ± std over the runs (seeds) at each x. A cell keeps its colour; several lines of one cell differ by
/// dash and width. Runs of other models (the bag of words) are left to the caller. Diverged runs count with their
/// result if they have one; runs without the value are skipped.
pub fn metric_vs(metas: &[Meta], x: &str, y: &str) -> Vec<Series> {
    let cells: Vec<Meta> = metas.iter().filter(|m| m.cell().is_some()).cloned().collect();
    let groups = lines(&cells, x);
    let mut out = Vec::new();
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for (key, runs) in &groups {
        let agg = summary::by_tag(runs, x, y);
        if agg.is_empty() {
            continue;
        }
        let n = agg.values().map(|v| v.2).max().unwrap_or(0);
        let pts: Vec<(f64, f64)> = agg.iter().map(|(k, v)| (*k as f64 / 1e6, v.0)).collect();
        let band: Vec<(f64, f64, f64)> =
            if n > 1 { agg.iter().map(|(k, v)| (*k as f64 / 1e6, v.0 - v.1, v.0 + v.1)).collect() } else { vec![] };
        let name = line_label(key, &groups);
        let label = if n > 1 { format!("{name} (mean ± std, {n} seeds)") } else { name };
        let Some(cell) = runs[0].cell() else { continue };
        let k = seen.entry(cell as usize).or_default();
        let width = if *k == 0 { cell_width(cell) } else { 2 };
        let mut s = Series::new(label, cell_color(cell), pts).band(band).markers().width(width);
        if *k % 2 == 1 {
            s = s.dashed();
        }
        *k += 1;
        out.push(s);
    }
    out
}

/// Grouped bars: one series per model (its colour), one bar per value of tag `group` in `categories`, the mean ±
/// std of `result[key]` over the runs (seeds) with that model and value.
pub fn bars_by_cell(runs: &[&Meta], group: &str, categories: &[&str], key: &str) -> Vec<BarSeries> {
    CellKind::ALL
        .iter()
        .filter(|&&c| runs.iter().any(|m| m.cell() == Some(c)))
        .map(|&c| {
            let (m, s): (Vec<f64>, Vec<f64>) = categories
                .iter()
                .map(|v| {
                    let values: Vec<f64> = runs
                        .iter()
                        .filter(|m| m.cell() == Some(c) && m.tag(group) == *v)
                        .filter_map(|m| m.result.get(key).copied())
                        .collect();
                    mean_std(&values)
                })
                .unzip();
            (c.label().to_string(), cell_color(c), m, s)
        })
        .collect()
}

/// A horizontal reference line across `[x0, x1]`.
pub fn baseline(label: &str, value: f64, x0: f64, x1: f64) -> Series {
    Series::new(label, BASELINE_GREY, vec![(x0, value), (x1, value)]).dashed().width(2)
}

/// Accuracy on `split` per epoch, one panel per value of tag `group` (titled `"{group_label} = value"`), one line
/// per run coloured by model.
pub fn training_curves(
    root: &Path,
    metas: &[Meta],
    group: &str,
    group_label: &str,
    split: SplitName,
    title: &str,
) -> Result<Figure> {
    let mut groups: BTreeMap<i64, Vec<&Meta>> = BTreeMap::new();
    for m in metas {
        let g = m.number(group).unwrap_or(0.0);
        groups.entry((g * 1e6) as i64).or_default().push(m);
    }
    let mut panels = Vec::new();
    for (g, ms) in groups {
        let mut series = Vec::new();
        for m in ms {
            let Some(cell) = m.cell() else { continue };
            let rows = rows::metrics(root, m)?;
            let pts = rows
                .iter()
                .filter(|r| r.split == split && r.status == RowStatus::Ok)
                .map(|r| (r.epoch as f64, r.acc))
                .collect();
            series.push(Series::new(cell.label(), cell_color(cell), pts).markers().width(cell_width(cell)));
        }
        let gv = g as f64 / 1e6;
        panels.push(Panel {
            title: format!("{group_label} = {gv}"),
            x_label: "epoch".into(),
            y_label: format!("{} accuracy", split_word(split)),
            y_range: Some((0.0, 1.02)),
            series,
            ..Default::default()
        });
    }
    let mut fig = Figure::new(title, panels);
    fig.cols = fig.panels.len().clamp(1, 4);
    Ok(fig)
}

/// How a split reads on an axis.
fn split_word(s: SplitName) -> &'static str {
    match s {
        SplitName::Train => "train",
        SplitName::Val => "val",
        SplitName::Test => "test",
    }
}

/// Mean gradient norm against distance to the readout for `quantity` at init or at the last probe, one line per
/// run.
pub fn grad_series(root: &Path, metas: &[Meta], quantity: &str, at_init: bool) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for m in metas {
        let Some(cell) = m.cell() else { continue };
        let rows = rows::grads(root, m)?;
        if rows.is_empty() {
            continue;
        }
        let step = if at_init { 0 } else { rows.iter().map(|r| r.step).max().unwrap_or(0) };
        let pts = rows
            .iter()
            .filter(|r| r.step == step && r.quantity == quantity)
            .map(|r| (r.distance_to_readout as f64, r.norm))
            .collect();
        out.push(Series::new(cell.label(), cell_color(cell), pts).width(2));
    }
    Ok(out)
}
