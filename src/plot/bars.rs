//! Grouped bars ([`Bars`]) with error bars and reference lines, and panels of them stacked ([`BarStack`]).
use super::{draw_legend, font, lg, save_both, span, tick, Canvas, Dash, DrawResult, Entry, BASELINE_GREY};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Grouped bars: one group per category, one bar per series, optional error bars and reference lines.
/// One series of a [`Bars`] chart: (label, colour, value per category, error per category or empty).
pub type BarSeries = (String, RGBColor, Vec<f64>, Vec<f64>);

#[derive(Clone, Debug)]
pub struct Bars {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    /// Dashed horizontal reference lines: (value, label).
    pub hlines: Vec<(f64, String)>,
    pub y_range: Option<(f64, f64)>,
    pub log_y: bool,
    pub size: (u32, u32),
}

impl Bars {
    pub fn save(&self, stem: &Path) -> Result<()> {
        save_both(stem, self.size, Canvas::Bars(self))
    }
}

pub(super) fn draw_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, b: &Bars) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(&b.title, font(24.0))?;
    let main = bars_legend(&root, b)?;
    draw_bar_panel(&main, b, None)
}

/// Draws the legend of `b`'s series and lines at the right of `root`; returns the area left for the bars.
fn bars_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    b: &Bars,
) -> std::result::Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut entries: Vec<Entry> = b.series.iter().map(|s| (s.0.clone(), s.1, Dash::Solid, 5)).collect();
    entries.extend(b.hlines.iter().map(|h| (h.1.clone(), BASELINE_GREY, Dash::Dashed, 2)));
    let longest = entries.iter().map(|e| e.0.chars().count()).max().unwrap_or(0);
    let (w, _) = root.dim_in_pixel();
    let (main, legend) = root.split_horizontally(w.saturating_sub((60 + longest * 9).min(380) as u32));
    draw_legend(&legend, &entries)?;
    Ok(main)
}

/// Several [`Bars`] panels stacked, with one title and the first panel's legend (the panels' `title`s become
/// their captions).
#[derive(Clone, Debug)]
pub struct BarStack {
    pub title: String,
    pub panels: Vec<Bars>,
    pub size: (u32, u32),
}

impl BarStack {
    pub fn save(&self, stem: &Path) -> Result<()> {
        save_both(stem, self.size, Canvas::BarStack(self))
    }
}

pub(super) fn draw_bar_stack<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &BarStack) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(&s.title, font(24.0))?;
    let Some(first) = s.panels.first() else { return Ok(()) };
    let main = bars_legend(&root, first)?;
    for (area, b) in main.split_evenly((s.panels.len(), 1)).iter().zip(&s.panels) {
        draw_bar_panel(area, b, Some(&b.title))?;
    }
    Ok(())
}

fn draw_bar_panel<DB: DrawingBackend>(
    main: &DrawingArea<DB, Shift>,
    b: &Bars,
    caption: Option<&str>,
) -> DrawResult<DB> {
    let n = b.categories.len();
    let k = b.series.len().max(1);
    let ly = b.log_y;
    let (y0, y1) = y_span(b);
    // Smaller tick labels when the categories are many and long (rotated text clips in plotters).
    let longest_cat = b.categories.iter().map(|c| c.chars().count()).max().unwrap_or(1) as f64;
    let per_cat = (main.dim_in_pixel().0 as f64 - 100.0) / n.max(1) as f64;
    let tick_size = (per_cat / longest_cat * 1.6).clamp(9.0, 14.0);
    let mut builder = ChartBuilder::on(main);
    if let Some(c) = caption {
        builder.caption(c, font(18.0));
    }
    let mut chart =
        builder.margin(12).x_label_area_size(50).y_label_area_size(80).build_cartesian_2d(0f64..n as f64, y0..y1)?;
    let cats = b.categories.clone();
    let fx = move |v: &f64| {
        cats.get(v.floor() as usize).filter(|_| (v.fract() - 0.5).abs() < 1e-6).cloned().unwrap_or_default()
    };
    let fy = move |v: &f64| tick(*v, ly);
    let xstyle = font(tick_size);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * n + 1)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .x_label_style(xstyle)
        .y_desc(&b.y_label)
        .axis_desc_style(font(17.0))
        .label_style(font(14.0))
        .draw()?;
    let width = 0.8 / k as f64;
    let base = if ly { y0 } else { 0f64.max(y0) };
    for (j, (_, color, values, errs)) in b.series.iter().enumerate() {
        for (i, &v) in values.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let x = i as f64 + 0.1 + j as f64 * width;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, base), (x + width * 0.92, lg(v, ly))],
                color.filled(),
            )))?;
            if let Some(&e) = errs.get(i).filter(|e| **e > 0.0) {
                let xm = x + width * 0.46;
                let style = BLACK.stroke_width(1);
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(xm, lg(v - e, ly)), (xm, lg(v + e, ly))],
                    style,
                )))?;
            }
        }
    }
    for (v, _) in &b.hlines {
        chart.draw_series(DashedLineSeries::new(
            vec![(0.0, lg(*v, ly)), (n as f64, lg(*v, ly))],
            10,
            6,
            BASELINE_GREY.stroke_width(2),
        ))?;
    }
    Ok(())
}

/// The value axis' span (log10 units on a log axis): the bars with their error bars and the reference lines.
fn y_span(b: &Bars) -> (f64, f64) {
    let ly = b.log_y;
    let vals = b
        .series
        .iter()
        .flat_map(|s| s.2.iter().zip(s.3.iter().chain(std::iter::repeat(&0.0))).flat_map(|(v, e)| [v - e, v + e]));
    b.y_range.map(|(a, c)| (lg(a, ly), lg(c, ly))).unwrap_or_else(|| {
        // Missing bars (NaN) and, on a log axis, values ≤ 0 do not set the range (lg would clamp them to 1e-300).
        let shown = vals.chain(b.hlines.iter().map(|h| h.0)).filter(|v| v.is_finite() && (!ly || *v > 0.0));
        let (lo, hi) = span(shown.map(|v| lg(v, ly)), 0.05);
        if ly {
            // At least one decade (and room above the tallest bar): on a narrower log axis bars of 242 and 247
            // would look 10× apart.
            if hi - lo < 1.0 {
                (hi - 1.0, hi + 0.05)
            } else {
                (lo, hi)
            }
        } else {
            (lo.min(0.0), hi)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bar_does_not_stretch_a_log_axis() {
        let b = Bars {
            title: String::new(),
            y_label: String::new(),
            categories: vec!["a".into(), "b".into()],
            series: vec![("x".into(), RGBColor(0, 0, 0), vec![100.0, f64::NAN], vec![])],
            hlines: vec![],
            y_range: None,
            log_y: true,
            size: (400, 300),
        };
        let (lo, hi) = y_span(&b);
        assert!(lo > 0.5 && hi < 3.0, "log10 span {lo}..{hi} for one bar of 100");
    }

    #[test]
    fn a_log_axis_spans_at_least_a_decade_and_wide_ranges_keep_theirs() {
        let bars = |values: Vec<f64>| Bars {
            title: String::new(),
            y_label: String::new(),
            categories: values.iter().map(|v| v.to_string()).collect(),
            series: vec![("x".into(), RGBColor(0, 0, 0), values, vec![])],
            hlines: vec![],
            y_range: None,
            log_y: true,
            size: (400, 300),
        };
        let (lo, hi) = y_span(&bars(vec![242.0, 247.0]));
        assert!(hi - lo >= 1.0 && hi > 247f64.log10() + 0.04, "log10 span {lo}..{hi} for 242 and 247");
        let (lo, hi) = y_span(&bars(vec![300.0, 56_000.0]));
        assert!(lo < 300f64.log10() && lo > 2.0 && hi > 56_000f64.log10() && hi < 5.0, "log10 span {lo}..{hi}");
    }
}
