//! Charts as PNG (1200×750 by default) and SVG, with an embedded font so they render on any machine.
//!
//! - [`lines`]: [`Figure`], one or more line panels with a shared legend drawn in its own column (so it never
//!   covers data);
//! - [`heatmap`], [`bars`], [`text`]: the other chart kinds ([`Heatmap`], [`Bars`], [`BarStack`], [`Table`],
//!   [`ColouredText`]);
//! - here: one colour per model everywhere ([`cell_color`]), fonts, ticks, the legend, and saving both formats.
//!
//! Log axes are drawn by plotting log10 values and labelling ticks with powers of ten.
pub mod bars;
pub mod heatmap;
pub mod lines;
pub mod text;

pub use bars::{BarSeries, BarStack, Bars};
pub use heatmap::{viridis, Heatmap};
pub use lines::{Figure, Panel, Series};
pub use text::{diverging, CharGrid, ColouredText, Table};

use crate::config::CellKind;
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
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

/// Shade `k` of a colour: 0 is the colour itself, then alternately darker and lighter, so that variants of one cell
/// (tokens, decoders) keep the cell's hue and stay told apart.
pub fn shade(c: RGBColor, k: usize) -> RGBColor {
    const STEPS: [f64; 6] = [0.0, -0.45, 0.45, -0.25, 0.25, -0.6];
    let t = STEPS[k % STEPS.len()];
    let mix = |v: u8| {
        let v = v as f64;
        (if t < 0.0 { v * (1.0 + t) } else { v + (255.0 - v) * t }).round() as u8
    };
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

pub(super) const FONT: &str = "sans-serif";
pub(super) const MONO: &str = "monospace";

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
    /// Markers only, no line (a scatter).
    None,
}

/// Writes `<stem>.png` and `<stem>.svg`, each via a temporary file.
pub(super) fn save_both(stem: &Path, size: (u32, u32), canvas: Canvas) -> Result<()> {
    init_font();
    let (png, svg) = (stem.with_extension("png"), stem.with_extension("svg"));
    let (tmp_png, tmp_svg) = (crate::files::temp_for(&png)?, crate::files::temp_for(&svg)?);
    let drawn = (|| {
        let root = BitMapBackend::new(&tmp_png, size).into_drawing_area();
        canvas.render(&root)?;
        root.present().map_err(|e| anyhow!("{}: {e}", png.display()))?;
        drop(root);
        let root = SVGBackend::new(&tmp_svg, size).into_drawing_area();
        canvas.render(&root)?;
        root.present().map_err(|e| anyhow!("{}: {e}", svg.display()))
    })();
    if let Err(e) = drawn {
        crate::files::discard(&tmp_png);
        crate::files::discard(&tmp_svg);
        return Err(e);
    }
    crate::files::commit(&tmp_png, &png)?;
    crate::files::commit(&tmp_svg, &svg)
}

/// A chart to render on either backend.
pub(super) enum Canvas<'a> {
    Figure(&'a Figure),
    Heatmap(&'a Heatmap),
    Bars(&'a Bars),
    BarStack(&'a BarStack),
    Table(&'a Table),
    Text(&'a ColouredText),
    Grid(&'a CharGrid),
}

impl Canvas<'_> {
    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let r = match self {
            Canvas::Figure(f) => lines::draw_figure(root, f),
            Canvas::Heatmap(h) => heatmap::draw_heatmap(root, h),
            Canvas::Bars(b) => bars::draw_bars(root, b),
            Canvas::BarStack(b) => bars::draw_bar_stack(root, b),
            Canvas::Table(t) => text::draw_table(root, t),
            Canvas::Text(t) => text::draw_text(root, t),
            Canvas::Grid(g) => text::draw_grid(root, g),
        };
        r.map_err(|e| anyhow!("drawing failed: {e:?}"))
    }
}

pub(super) type DrawResult<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

pub(super) fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

pub(super) fn lg(v: f64, log: bool) -> f64 {
    if log {
        v.max(1e-300).log10()
    } else {
        v
    }
}

/// Tick label for a value on a possibly log axis.
pub(super) fn tick(v: f64, log: bool) -> String {
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
pub(super) fn span(vals: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
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

pub(super) type Entry = (String, RGBColor, Dash, u32);

pub(super) fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[Entry]) -> DrawResult<DB> {
    let mut y = 40;
    for (label, color, dash, width) in entries {
        let style = color.stroke_width(*width.min(&5));
        match dash {
            Dash::Solid => area.draw(&PathElement::new(vec![(8, y), (40, y)], style))?,
            Dash::Dashed => {
                area.draw(&PathElement::new(vec![(8, y), (18, y)], style))?;
                area.draw(&PathElement::new(vec![(24, y), (34, y)], style))?;
            }
            Dash::None => area.draw(&Circle::new((24, y), 5, color.filled()))?,
        }
        area.draw(&Text::new(label.clone(), (48, y - 9), font(16.0)))?;
        y += 26;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{shade, tick, GRU_BLUE};
    use std::collections::BTreeSet;

    #[test]
    fn shades_of_a_cell_differ_and_keep_its_hue() {
        let all: Vec<_> = (0..6).map(|k| shade(GRU_BLUE, k)).collect();
        assert_eq!(all[0], GRU_BLUE);
        assert_eq!(all.iter().map(|c| (c.0, c.1, c.2)).collect::<BTreeSet<_>>().len(), 6);
        // Blue stays the strongest channel in every shade.
        assert!(all.iter().all(|c| c.2 > c.1 && c.1 > c.0), "{all:?}");
    }

    #[test]
    fn log_axes_are_labelled_at_one_two_five() {
        assert_eq!(super::lines::one_two_five(9.0, 1100.0), vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]);
        assert_eq!(super::lines::one_two_five(0.3, 3.0), vec![0.5, 1.0, 2.0]);
    }

    #[test]
    fn log_ticks_are_short() {
        let at = |p: f64| tick(p.log10(), true);
        assert_eq!([at(6.3), at(6.309573), at(63.0957), at(100.0), at(1.0)], ["6.3", "6.3", "63", "100", "1"]);
        assert_eq!(tick(-3.0, true), "1e-3");
        assert_eq!(tick(0.25, false), "0.25");
    }
}
