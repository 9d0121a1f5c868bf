//! Line charts: [`Series`] (points, an optional band, a style) on [`Panel`]s, arranged in a [`Figure`].
use super::{draw_legend, font, lg, save_both, span, tick, Canvas, Dash, DrawResult, Entry};
use anyhow::Result;
use plotters::coord::ranged1d::{KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One line: points, optional band (x, low, high), style.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    pub dash: Dash,
    pub markers: bool,
    /// Stroke width in pixels.
    pub width: u32,
}

impl Series {
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Series { label: label.into(), color, points, band: Vec::new(), dash: Dash::Solid, markers: false, width: 3 }
    }
    pub fn dashed(mut self) -> Self {
        self.dash = Dash::Dashed;
        self
    }
    pub fn markers(mut self) -> Self {
        self.markers = true;
        self
    }
    pub fn width(mut self, w: u32) -> Self {
        self.width = w;
        self
    }
    pub fn band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = band;
        self
    }
    /// Markers only, no line between them (a scatter).
    pub fn scatter(mut self) -> Self {
        self.dash = Dash::None;
        self.markers = true;
        self
    }
}

/// One set of axes.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// Where the x axis is labelled (data values, e.g. the swept lengths); empty: automatic.
    pub x_ticks: Vec<f64>,
    pub series: Vec<Series>,
}

/// Panels in a grid with one title and one legend column.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
    pub cols: usize,
    pub size: (u32, u32),
}

impl Figure {
    pub fn new(title: impl Into<String>, panels: Vec<Panel>) -> Self {
        let cols = panels.len().clamp(1, 4);
        Figure { title: title.into(), panels, cols, size: (1200, 750) }
    }
}

impl Figure {
    pub fn save(&self, stem: &Path) -> Result<()> {
        save_both(stem, self.size, Canvas::Figure(self))
    }
}

pub(super) fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(&fig.title, font(26.0))?;
    let mut entries: Vec<Entry> = Vec::new();
    for s in fig.panels.iter().flat_map(|p| &p.series) {
        if !s.label.is_empty() && !entries.iter().any(|e| e.0 == s.label) {
            entries.push((s.label.clone(), s.color, s.dash, s.width));
        }
    }
    let longest = entries.iter().map(|e| e.0.chars().count()).max().unwrap_or(0);
    let legend_w = if entries.is_empty() { 0 } else { (60 + longest * 9).min(440) as u32 };
    let (w, _) = root.dim_in_pixel();
    let (plots, legend) = root.split_horizontally(w.saturating_sub(legend_w));
    draw_legend(&legend, &entries)?;
    let rows = fig.panels.len().div_ceil(fig.cols);
    let areas = plots.split_evenly((rows, fig.cols));
    for (panel, area) in fig.panels.iter().zip(areas) {
        draw_panel(&area, panel)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult<DB> {
    let xs = p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0).chain(s.band.iter().map(|b| b.0)));
    let (x0, x1) = p
        .x_range
        .map(|(a, b)| (lg(a, p.log_x), lg(b, p.log_x)))
        .unwrap_or_else(|| span(xs.filter(|x| !p.log_x || *x > 0.0).map(|x| lg(x, p.log_x)), 0.02));
    let ys = p.series.iter().flat_map(|s| s.points.iter().map(|q| q.1).chain(s.band.iter().flat_map(|b| [b.1, b.2])));
    let (y0, y1) = p
        .y_range
        .map(|(a, b)| (lg(a, p.log_y), lg(b, p.log_y)))
        .unwrap_or_else(|| span(ys.filter(|y| !p.log_y || *y > 0.0).map(|y| lg(y, p.log_y)), 0.05));
    let mut builder = ChartBuilder::on(area);
    builder.caption(&p.title, font(19.0)).margin(12).x_label_area_size(52).y_label_area_size(78);
    // A log x axis is labelled at 1, 2, 5 × 10^k (the lengths sweeps use), unless the panel says where.
    let ticks =
        if p.x_ticks.is_empty() && p.log_x { one_two_five(10f64.powf(x0), 10f64.powf(x1)) } else { p.x_ticks.clone() };
    if ticks.is_empty() {
        let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
        fill_panel(&mut chart, p)
    } else {
        let keys: Vec<f64> = ticks.iter().map(|&t| lg(t, p.log_x)).collect();
        let axis = Ticked { inner: (x0..x1).into(), keys };
        let mut chart = builder.build_cartesian_2d(axis, y0..y1)?;
        fill_panel(&mut chart, p)
    }
}

/// 1, 2, 5 × 10^k within [lo, hi].
pub(super) fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-300).log10().floor());
    while decade <= hi {
        out.extend([1.0, 2.0, 5.0].map(|m| m * decade).into_iter().filter(|v| (lo..=hi).contains(v)));
        decade *= 10.0;
    }
    out
}

/// An f64 axis labelled (and gridded) at given values only.
#[derive(Clone)]
struct Ticked {
    inner: RangedCoordf64,
    keys: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(v, limit)
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        match hint.weight() {
            KeyPointWeight::Bold => self.keys.clone(),
            KeyPointWeight::Any => vec![],
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for Ticked {
    fn format(v: &f64) -> String {
        v.to_string()
    }
}

/// The mesh, bands, lines and markers of a panel on its axes.
fn fill_panel<DB: DrawingBackend, X: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &mut ChartContext<DB, Cartesian2d<X, RangedCoordf64>>,
    p: &Panel,
) -> DrawResult<DB> {
    let (lx, ly) = (p.log_x, p.log_y);
    let fx = move |v: &f64| tick(*v, lx);
    let fy = move |v: &f64| tick(*v, ly);
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .axis_desc_style(font(17.0))
        .label_style(font(14.0))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()?;
    for s in &p.series {
        if !s.band.is_empty() {
            let mut poly: Vec<(f64, f64)> = s.band.iter().map(|b| (lg(b.0, lx), lg(b.2, ly))).collect();
            poly.extend(s.band.iter().rev().map(|b| (lg(b.0, lx), lg(b.1, ly))));
            chart.draw_series(std::iter::once(Polygon::new(poly, s.color.mix(0.18).filled())))?;
        }
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|q| q.1.is_finite() && (!ly || q.1 > 0.0))
            .map(|q| (lg(q.0, lx), lg(q.1, ly)))
            .collect();
        let style = s.color.stroke_width(s.width);
        match s.dash {
            Dash::Solid => chart.draw_series(LineSeries::new(pts.clone(), style))?,
            Dash::Dashed => chart.draw_series(DashedLineSeries::new(pts.clone(), 10, 6, style))?,
            Dash::None => chart.draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?,
        };
        if s.markers {
            let fill = if s.dash == Dash::None { s.color.mix(0.6).filled() } else { s.color.filled() };
            chart.draw_series(pts.iter().map(|&q| Circle::new(q, s.width / 2 + 3, fill)))?;
        }
    }
    Ok(())
}
