//! [`Heatmap`]: a matrix with labelled rows and columns, a colour scale and a colour bar.
use super::{font, lg, save_both, tick, Canvas, DrawResult};
use anyhow::Result;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::RangedCoordi32;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A matrix of values with labelled rows and columns, a colour scale (optionally log) and a colour bar.
#[derive(Clone, Debug)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_ticks: Vec<String>,
    pub y_ticks: Vec<String>,
    /// `values[row][col]`; row 0 is drawn at the top.
    pub values: Vec<Vec<f64>>,
    pub log: bool,
    pub bar_label: String,
    /// Write each value in its cell (for small matrices).
    pub annotate: bool,
    pub size: (u32, u32),
}

impl Heatmap {
    pub fn save(&self, stem: &Path) -> Result<()> {
        save_both(stem, self.size, Canvas::Heatmap(self))
    }
}

/// Viridis, interpolated between 6 anchors; `t` in [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    const A: [(f64, f64, f64); 6] =
        [(68., 1., 84.), (65., 68., 135.), (42., 120., 142.), (34., 168., 132.), (122., 209., 81.), (253., 231., 37.)];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * 5.0;
    let i = (x.floor() as usize).min(4);
    let f = x - i as f64;
    let (a, b) = (A[i], A[i + 1]);
    let m = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

pub(super) fn draw_heatmap<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &Heatmap) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(&h.title, font(24.0))?;
    let (w, _) = root.dim_in_pixel();
    let (main, bar) = root.split_horizontally(w.saturating_sub(150));
    let (rows, cols) = (h.values.len(), h.values.first().map_or(0, Vec::len));
    let vals = h.values.iter().flatten().copied().filter(|v| v.is_finite() && (!h.log || *v > 0.0));
    let (lo, hi) =
        vals.map(|v| lg(v, h.log)).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, if hi > lo { hi } else { lo + 1.0 }) } else { (0.0, 1.0) };
    let norm = |v: f64| (lg(v, h.log) - lo) / (hi - lo);
    let longest = h.y_ticks.iter().map(|s| s.chars().count()).max().unwrap_or(4);
    let rotate = h.x_ticks.iter().any(|s| s.chars().count() > 4);
    // Categorical axes: segment i is column (row) i; labels sit at segment centres.
    let mut chart = ChartBuilder::on(&main)
        .margin(10)
        .margin_right(20)
        .x_label_area_size(55)
        .y_label_area_size((longest * 9 + 40).min(200) as u32)
        .build_cartesian_2d((0..cols as i32 - 1).into_segmented(), (0..rows as i32 - 1).into_segmented())?;
    let xt = h.x_ticks.clone();
    let yt = h.y_ticks.clone();
    let label = |ticks: &[String], v: &SegmentValue<i32>, flip: bool| match v {
        SegmentValue::CenterOf(i) => {
            let i = if flip { ticks.len() as i32 - 1 - i } else { *i };
            usize::try_from(i).ok().and_then(|i| ticks.get(i)).cloned().unwrap_or_default()
        }
        _ => String::new(),
    };
    // Row 0 is drawn at the top.
    let fx = move |v: &SegmentValue<i32>| label(&xt, v, false);
    let fy = move |v: &SegmentValue<i32>| label(&yt, v, true);
    let xstyle = font(if rotate { 10.0 } else { 13.0 });
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&h.x_label)
        .y_desc(&h.y_label)
        .x_labels(cols.min(24))
        .y_labels(rows.min(30))
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .x_label_style(xstyle)
        .y_label_style(font(13.0))
        .axis_desc_style(font(16.0))
        .draw()?;
    draw_cells(&mut chart, h, norm)?;
    draw_colour_bar(&bar, h.log, (lo, hi), &h.bar_label)
}

/// The coloured cells (row 0 at the top), with their values written in them when `annotate`.
fn draw_cells<DB: DrawingBackend>(
    chart: &mut ChartContext<DB, Cartesian2d<SegmentedCoord<RangedCoordi32>, SegmentedCoord<RangedCoordi32>>>,
    h: &Heatmap,
    norm: impl Fn(f64) -> f64,
) -> DrawResult<DB> {
    let rows = h.values.len();
    for (r, row) in h.values.iter().enumerate() {
        let y = (rows - 1 - r) as i32;
        for (c, &v) in row.iter().enumerate() {
            let c = c as i32;
            let color = if v.is_finite() && (!h.log || v > 0.0) { viridis(norm(v)) } else { RGBColor(220, 220, 220) };
            let cell = [
                (SegmentValue::Exact(c), SegmentValue::Exact(y + 1)),
                (SegmentValue::Exact(c + 1), SegmentValue::Exact(y)),
            ];
            chart.draw_series(std::iter::once(Rectangle::new(cell, color.filled())))?;
            if h.annotate && v.is_finite() && v.abs() >= 0.005 {
                let txt = if v.abs() < 10.0 { format!("{v:.2}") } else { format!("{v:.0}") };
                let tc = if norm(v) > 0.6 { BLACK } else { WHITE };
                let style = font(11.0).color(&tc).pos(Pos::new(HPos::Center, VPos::Center));
                let at = (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y));
                chart.draw_series(std::iter::once(Text::new(txt, at, style)))?;
            }
        }
    }
    Ok(())
}

/// The colour scale from `lo` to `hi` (log10 values when `log`), labelled `label`.
fn draw_colour_bar<DB: DrawingBackend>(
    bar: &DrawingArea<DB, Shift>,
    log: bool,
    (lo, hi): (f64, f64),
    label: &str,
) -> DrawResult<DB> {
    let mut cb = ChartBuilder::on(bar)
        .margin_top(30)
        .margin_bottom(80)
        .margin_right(10)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..1.0, lo..hi)?;
    let fb = move |v: &f64| tick(*v, log);
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&fb)
        .y_desc(label)
        .axis_desc_style(font(14.0))
        .label_style(font(12.0))
        .draw()?;
    let steps = 100;
    for i in 0..steps {
        let a = lo + (hi - lo) * i as f64 / steps as f64;
        let b = lo + (hi - lo) * (i + 1) as f64 / steps as f64;
        cb.draw_series(std::iter::once(Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis(i as f64 / (steps - 1) as f64).filled(),
        )))?;
    }
    Ok(())
}
