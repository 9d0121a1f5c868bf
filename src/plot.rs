//! Charts as PNG (1200×750 by default) and SVG, with an embedded font so they render on any machine.
//!
//! [`Figure`] is one or more line panels with a shared legend drawn in its own column (so it never covers
//! data); [`Heatmap`] and [`Bars`] cover the other chart kinds. One colour per model everywhere:
//! [`cell_color`]. Log axes are drawn by plotting log10 values and labelling ticks with powers of ten.
use crate::config::CellKind;
use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::{KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

pub const RNN_RED: RGBColor = RGBColor(214, 39, 40);
pub const GRU_BLUE: RGBColor = RGBColor(31, 119, 180);
pub const LSTM_GREEN: RGBColor = RGBColor(44, 160, 44);
pub const BASELINE_GREY: RGBColor = RGBColor(120, 120, 120);
/// Extra colours for series that are not one of the three cells.
pub const OTHER: [RGBColor; 4] =
    [RGBColor(148, 103, 189), RGBColor(255, 127, 14), RGBColor(140, 86, 75), RGBColor(23, 190, 207)];

/// Line width per cell: GRU is drawn wider, so where GRU and LSTM coincide (both at 100 %, say) the green
/// LSTM line shows inside a blue GRU casing instead of hiding it.
pub fn cell_width(c: CellKind) -> u32 {
    if c == CellKind::Gru {
        7
    } else {
        3
    }
}

/// RNN red, GRU blue, LSTM green — in every chart.
pub fn cell_color(c: CellKind) -> RGBColor {
    match c {
        CellKind::Rnn => RNN_RED,
        CellKind::Gru => GRU_BLUE,
        CellKind::Lstm => LSTM_GREEN,
    }
}

const FONT: &str = "sans-serif";
const MONO: &str = "monospace";

fn init_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).ok();
        register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).ok();
        register_font(MONO, FontStyle::Normal, dejavu::sans_mono::regular()).ok();
    });
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
}

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

/// Writes `<stem>.png` and `<stem>.svg`, each via a temporary file.
fn save_both(stem: &Path, size: (u32, u32), canvas: Canvas) -> Result<()> {
    init_font();
    if let Some(d) = stem.parent() {
        std::fs::create_dir_all(d)?;
    }
    let (png, svg) = (stem.with_extension("png"), stem.with_extension("svg"));
    let (tmp_png, tmp_svg) = (stem.with_extension("tmp.png"), stem.with_extension("tmp.svg"));
    {
        let root = BitMapBackend::new(&tmp_png, size).into_drawing_area();
        canvas.render(&root)?;
        root.present().map_err(|e| anyhow!("{}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&tmp_svg, size).into_drawing_area();
        canvas.render(&root)?;
        root.present().map_err(|e| anyhow!("{}: {e}", svg.display()))?;
    }
    std::fs::rename(&tmp_png, &png)?;
    std::fs::rename(&tmp_svg, &svg)?;
    Ok(())
}

/// A chart to render on either backend.
enum Canvas<'a> {
    Figure(&'a Figure),
    Heatmap(&'a Heatmap),
    Bars(&'a Bars),
    BarStack(&'a BarStack),
    Table(&'a Table),
    Text(&'a ColouredText),
}

impl Canvas<'_> {
    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let r = match self {
            Canvas::Figure(f) => draw_figure(root, f),
            Canvas::Heatmap(h) => draw_heatmap(root, h),
            Canvas::Bars(b) => draw_bars(root, b),
            Canvas::BarStack(b) => draw_bar_stack(root, b),
            Canvas::Table(t) => draw_table(root, t),
            Canvas::Text(t) => draw_text(root, t),
        };
        r.map_err(|e| anyhow!("drawing failed: {e:?}"))
    }
}

impl Figure {
    pub fn save(&self, stem: &Path) -> Result<()> {
        save_both(stem, self.size, Canvas::Figure(self))
    }
}

type DrawResult<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

fn lg(v: f64, log: bool) -> f64 {
    if log {
        v.max(1e-300).log10()
    } else {
        v
    }
}

/// Tick label for a value on a possibly log axis.
fn tick(v: f64, log: bool) -> String {
    if log {
        let p = 10f64.powf(v);
        if (1.0..1e5).contains(&p) {
            // Plain numbers with two significant digits: 10, 20, 300, 1000.
            let digits = (1.0 - p.log10().floor()).max(0.0) as usize;
            let s = format!("{p:.digits$}");
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            }
        } else if (v - v.round()).abs() < 1e-9 {
            format!("1e{}", v.round() as i64)
        } else {
            format!("{p:.0e}")
        }
    } else if v.abs() >= 1e4 || (v != 0.0 && v.abs() < 1e-2) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Range of the finite values, padded by `pad` of the span (log-transformed values arrive already transformed;
/// non-positive values on a log axis are filtered before).
fn span(vals: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) =
        vals.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let m = (hi - lo) * pad;
    (lo - m, hi + m)
}

type Entry = (String, RGBColor, Dash, u32);

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[Entry]) -> DrawResult<DB> {
    let mut y = 40;
    for (label, color, dash, width) in entries {
        let style = color.stroke_width(*width.min(&5));
        match dash {
            Dash::Solid => area.draw(&PathElement::new(vec![(8, y), (40, y)], style))?,
            Dash::Dashed => {
                area.draw(&PathElement::new(vec![(8, y), (18, y)], style))?;
                area.draw(&PathElement::new(vec![(24, y), (34, y)], style))?;
            }
        }
        area.draw(&Text::new(label.clone(), (48, y - 9), font(16.0)))?;
        y += 26;
    }
    Ok(())
}

fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult<DB> {
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
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
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
        };
        if s.markers {
            chart.draw_series(pts.iter().map(|&q| Circle::new(q, s.width / 2 + 3, s.color.filled())))?;
        }
    }
    Ok(())
}

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

fn draw_heatmap<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &Heatmap) -> DrawResult<DB> {
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
    // Colour bar.
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(30)
        .margin_bottom(80)
        .margin_right(10)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..1.0, lo..hi)?;
    let log = h.log;
    let fb = move |v: &f64| tick(*v, log);
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&fb)
        .y_desc(&h.bar_label)
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

fn draw_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, b: &Bars) -> DrawResult<DB> {
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

fn draw_bar_stack<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &BarStack) -> DrawResult<DB> {
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
    let vals = b
        .series
        .iter()
        .flat_map(|s| s.2.iter().zip(s.3.iter().chain(std::iter::repeat(&0.0))).flat_map(|(v, e)| [v - e, v + e]));
    let (y0, y1) = b.y_range.map(|(a, c)| (lg(a, ly), lg(c, ly))).unwrap_or_else(|| {
        let (lo, hi) = span(vals.chain(b.hlines.iter().map(|h| h.0)).map(|v| lg(v, ly)), 0.05);
        if ly {
            (lo, hi)
        } else {
            (lo.min(0.0), hi)
        }
    });
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

/// A small table as an image: a header and rows of text; a row may carry a colour swatch (its model).
#[derive(Clone, Debug)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<(Option<RGBColor>, Vec<String>)>,
    /// A line under the table (what the numbers mean).
    pub note: String,
}

impl Table {
    pub fn save(&self, stem: &Path) -> Result<()> {
        let widths = self.widths();
        let w = (widths.iter().sum::<u32>() + 80).max(self.note.chars().count() as u32 * 8 + 40).max(600);
        let h = 110 + 30 * (self.rows.len() as u32 + 1);
        save_both(stem, (w, h), Canvas::Table(self))
    }

    fn widths(&self) -> Vec<u32> {
        (0..self.header.len())
            .map(|c| {
                let cells = std::iter::once(&self.header[c]).chain(self.rows.iter().filter_map(|r| r.1.get(c)));
                cells.map(|s| s.chars().count() as u32).max().unwrap_or(4) * 10 + 30
            })
            .collect()
    }
}

fn draw_table<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, t: &Table) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    root.draw(&Text::new(t.title.clone(), (20, 14), font(20.0)))?;
    let widths = t.widths();
    let x0 = 50;
    let mut y = 56;
    let bold: TextStyle = (FONT, 16.0, FontStyle::Bold).into_font().into();
    let mut x = x0;
    for (c, head) in t.header.iter().enumerate() {
        root.draw(&Text::new(head.clone(), (x, y), bold.clone()))?;
        x += widths[c] as i32;
    }
    let right = x;
    root.draw(&PathElement::new(vec![(x0 - 30, y + 24), (right, y + 24)], BLACK.stroke_width(1)))?;
    for (color, cells) in &t.rows {
        y += 30;
        if let Some(c) = color {
            root.draw(&Rectangle::new([(x0 - 26, y + 2), (x0 - 10, y + 16)], c.filled()))?;
        }
        let mut x = x0;
        for (c, cell) in cells.iter().enumerate() {
            root.draw(&Text::new(cell.clone(), (x, y), font(16.0)))?;
            x += widths[c] as i32;
        }
    }
    root.draw(&Text::new(t.note.clone(), (20, y + 40), font(13.0).color(&BASELINE_GREY)))?;
    Ok(())
}

/// Text with a colour behind every character (an activation in [-1, 1]: blue −1, white 0, red +1), in blocks
/// with captions: Karpathy's hidden-unit visualisations.
#[derive(Clone, Debug)]
pub struct ColouredText {
    pub title: String,
    /// (caption, characters with their values)
    pub blocks: Vec<(String, Vec<(char, f64)>)>,
    /// Characters per line.
    pub width: usize,
}

const CELL: (i32, i32) = (11, 20);

impl ColouredText {
    fn lines(&self, chars: &[(char, f64)]) -> Vec<Vec<(char, f64)>> {
        let mut lines = vec![Vec::new()];
        for &(c, v) in chars {
            if c == '\n' || lines.last().unwrap().len() >= self.width {
                lines.push(Vec::new());
            }
            if c != '\n' {
                lines.last_mut().unwrap().push((c, v));
            }
        }
        lines
    }

    pub fn save(&self, stem: &Path) -> Result<()> {
        let rows: usize = self.blocks.iter().map(|b| self.lines(&b.1).len() + 2).sum();
        let w = (self.width as i32 * CELL.0 + 60) as u32;
        let h = (60 + rows as i32 * CELL.1 + 20) as u32;
        save_both(stem, (w.max(700), h), Canvas::Text(self))
    }
}

/// Diverging colour for a value in [-1, 1].
pub fn diverging(v: f64) -> RGBColor {
    let v = if v.is_finite() { v.clamp(-1.0, 1.0) } else { 0.0 };
    let m = |a: f64| (255.0 - a * v.abs()).round() as u8;
    if v >= 0.0 {
        RGBColor(255, m(200.0), m(200.0))
    } else {
        RGBColor(m(200.0), m(160.0), 255)
    }
}

fn draw_text<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, t: &ColouredText) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    root.draw(&Text::new(t.title.clone(), (20, 12), font(18.0)))?;
    let mono: TextStyle = (MONO, 15.0).into_font().into();
    let mut y = 50;
    for (caption, chars) in &t.blocks {
        root.draw(&Text::new(caption.clone(), (20, y), font(15.0)))?;
        y += CELL.1 + 4;
        for line in t.lines(chars) {
            for (i, (c, v)) in line.iter().enumerate() {
                let x = 30 + i as i32 * CELL.0;
                root.draw(&Rectangle::new([(x, y), (x + CELL.0, y + CELL.1)], diverging(*v).filled()))?;
                root.draw(&Text::new(c.to_string(), (x + 1, y + 2), mono.clone()))?;
            }
            y += CELL.1;
        }
        y += CELL.1 - 4;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn log_axes_are_labelled_at_one_two_five() {
        assert_eq!(super::one_two_five(9.0, 1100.0), vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]);
        assert_eq!(super::one_two_five(0.3, 3.0), vec![0.5, 1.0, 2.0]);
    }

    #[test]
    fn log_ticks_are_short() {
        let at = |p: f64| tick(p.log10(), true);
        assert_eq!([at(6.3), at(6.309573), at(63.0957), at(100.0), at(1.0)], ["6.3", "6.3", "63", "100", "1"]);
        assert_eq!(tick(-3.0, true), "1e-3");
        assert_eq!(tick(0.25, false), "0.25");
    }
}
