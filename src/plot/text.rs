//! Text as images: a small [`Table`], and [`ColouredText`] (characters on a colour per value).
use super::{font, save_both, Canvas, DrawResult, BASELINE_GREY, FONT, MONO};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

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

pub(super) fn draw_table<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, t: &Table) -> DrawResult<DB> {
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

pub(super) fn draw_text<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, t: &ColouredText) -> DrawResult<DB> {
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

/// One character of a [`CharGrid`]: itself, the unit's activation, the top next characters with their
/// probabilities.
pub type GridCell = (char, f64, Vec<(char, f64)>);

/// Karpathy's cell visualisation: a passage, each character on a colour for one unit's activation in [-1, 1]
/// (blue −1, white 0, red +1) and under it the model's five most likely next characters, each on a grey as dark
/// as its probability. Line breaks show as `↵`, spaces among the predictions as `␣`.
#[derive(Clone, Debug)]
pub struct CharGrid {
    pub title: String,
    pub caption: String,
    /// Per character: the character, the unit's activation, the top predictions (character, probability).
    pub cells: Vec<GridCell>,
    /// Characters per row.
    pub width: usize,
}

const GRID: (i32, i32, i32) = (15, 22, 14);

fn visible(c: char, space: bool) -> String {
    match c {
        '\n' => "↵".into(),
        ' ' if space => "␣".into(),
        c => c.to_string(),
    }
}

impl CharGrid {
    pub fn save(&self, stem: &Path) -> Result<()> {
        let rows = self.cells.len().div_ceil(self.width.max(1)) as i32;
        let top = self.cells.first().map_or(0, |c| c.2.len()) as i32;
        let w = (self.width as i32 * GRID.0 + 60).max(800) as u32;
        let h = (80 + rows * (GRID.1 + top * GRID.2 + 12)) as u32;
        save_both(stem, (w, h), Canvas::Grid(self))
    }
}

pub(super) fn draw_grid<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &CharGrid) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    root.draw(&Text::new(g.title.clone(), (20, 10), font(18.0)))?;
    root.draw(&Text::new(g.caption.clone(), (20, 36), font(14.0).color(&BASELINE_GREY)))?;
    let mono: TextStyle = (MONO, 15.0).into_font().into();
    let small: TextStyle = (MONO, 11.0).into_font().into();
    let top = g.cells.first().map_or(0, |c| c.2.len()) as i32;
    let mut y = 62;
    for row in g.cells.chunks(g.width.max(1)) {
        for (i, (c, v, preds)) in row.iter().enumerate() {
            let x = 30 + i as i32 * GRID.0;
            root.draw(&Rectangle::new([(x, y), (x + GRID.0, y + GRID.1)], super::diverging(*v).filled()))?;
            root.draw(&Text::new(visible(*c, false), (x + 2, y + 3), mono.clone()))?;
            for (k, (p, prob)) in preds.iter().enumerate() {
                let y0 = y + GRID.1 + k as i32 * GRID.2;
                let shade = (255.0 - 150.0 * prob.clamp(0.0, 1.0)).round() as u8;
                root.draw(&Rectangle::new(
                    [(x, y0), (x + GRID.0, y0 + GRID.2)],
                    RGBColor(shade, shade, shade).filled(),
                ))?;
                root.draw(&Text::new(visible(*p, true), (x + 3, y0 + 1), small.clone()))?;
            }
        }
        y += GRID.1 + top * GRID.2 + 12;
    }
    Ok(())
}
