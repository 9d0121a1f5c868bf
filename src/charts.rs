//! Charts built from run folders (read through [`crate::results`]), shared by the experiments: a metric against a
//! swept value (mean ± std over seeds, one line per model), training curves, gradient norm against distance.
use crate::config::CellKind;
use crate::plot::{cell_color, cell_width, BarSeries, Figure, Panel, Series, BASELINE_GREY};
use crate::results::{rows, summary, Meta};
use crate::stats::mean_std;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// One series per model: `result[y]` against `tags[x]` (numeric), mean ± std over the runs at each x.
/// Diverged runs count with their result if they have one; runs without the value are skipped.
pub fn metric_vs(metas: &[Meta], x: &str, y: &str) -> Vec<Series> {
    let mut out = Vec::new();
    for cell in CellKind::ALL {
        let runs: Vec<&Meta> = metas.iter().filter(|m| m.cell() == Some(cell)).collect();
        let agg = summary::by_tag(&runs, x, y);
        if agg.is_empty() {
            continue;
        }
        let n = agg.values().map(|v| v.2).max().unwrap_or(0);
        let pts: Vec<(f64, f64)> = agg.iter().map(|(k, v)| (*k as f64 / 1e6, v.0)).collect();
        let band: Vec<(f64, f64, f64)> =
            if n > 1 { agg.iter().map(|(k, v)| (*k as f64 / 1e6, v.0 - v.1, v.0 + v.1)).collect() } else { vec![] };
        let label = if n > 1 { format!("{} (mean ± std, {n} seeds)", cell.label()) } else { cell.label().to_string() };
        out.push(Series::new(label, cell_color(cell), pts).band(band).markers().width(cell_width(cell)));
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

/// Validation (or other split) accuracy per epoch, one panel per value of tag `group` (titled
/// `"{group_label} = value"`), one line per run coloured by model.
pub fn training_curves(
    root: &Path,
    metas: &[Meta],
    group: &str,
    group_label: &str,
    split: &str,
    title: &str,
) -> Result<Figure> {
    let mut groups: BTreeMap<i64, Vec<&Meta>> = BTreeMap::new();
    for m in metas {
        let g = m.tag(group).parse::<f64>().unwrap_or(0.0);
        groups.entry((g * 1e6) as i64).or_default().push(m);
    }
    let mut panels = Vec::new();
    for (g, ms) in groups {
        let mut series = Vec::new();
        for m in ms {
            let Some(cell) = m.cell() else { continue };
            let rows = rows::metrics(root, m)?;
            let pts =
                rows.iter().filter(|r| r.split == split && r.status == "ok").map(|r| (r.epoch as f64, r.acc)).collect();
            series.push(Series::new(cell.label(), cell_color(cell), pts).markers().width(cell_width(cell)));
        }
        let gv = g as f64 / 1e6;
        panels.push(Panel {
            title: format!("{group_label} = {gv}"),
            x_label: "epoch".into(),
            y_label: format!("{split} accuracy"),
            y_range: Some((0.0, 1.02)),
            series,
            ..Default::default()
        });
    }
    let mut fig = Figure::new(title, panels);
    fig.cols = fig.panels.len().clamp(1, 4);
    Ok(fig)
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
