//! The reviews task: an activation map of the hidden units that track features of the text.
use crate::config::CellKind;
use crate::data::text::Chars;
use crate::model::LanguageModel;
use crate::plot::ColouredText;
use crate::stats::correlation;
use anyhow::Result;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Hidden units over a review, coloured by activation: for each of three features (inside quotes, position in
/// the line, word boundary) the unit whose activation correlates most with it.
pub(super) fn activation_map(lm: &LanguageModel, val_ids: &[i64], stem: &Path, cell: CellKind) -> Result<()> {
    // A stretch of validation text with quotes in it.
    let text: Vec<i64> = {
        let q = Chars::id('"').unwrap();
        let start = val_ids.iter().position(|&i| i == q).unwrap_or(0).saturating_sub(150);
        val_ids[start..(start + 600).min(val_ids.len())].to_vec()
    };
    let chars: Vec<char> = text.iter().map(|&i| Chars::char(i)).collect();
    let acts: Vec<Vec<f64>> = tch::no_grad(|| -> Result<Vec<Vec<f64>>> {
        let device = lm.rnn.weights[0][0].device();
        let x = lm.inputs(&Tensor::from_slice(&text).view([1, -1]).to_device(device), None);
        let (out, _) = lm.rnn.forward_state(&x, None, false);
        let out = out.get(0).to_kind(Kind::Double).to_device(Device::Cpu).tr().contiguous();
        Ok(Vec::<Vec<f64>>::try_from(out)?)
    })?;
    let mut quote = false;
    let mut col = 0f64;
    let (mut f_quote, mut f_col, mut f_space) = (vec![], vec![], vec![]);
    for &c in &chars {
        if c == '"' {
            quote = !quote;
        }
        col = if c == '\n' || c == '.' { 0.0 } else { col + 1.0 };
        f_quote.push(quote as u8 as f64);
        f_col.push(col);
        f_space.push((c == ' ') as u8 as f64);
    }
    let mut blocks = Vec::new();
    for (feature, f) in [
        ("inside quotes", &f_quote),
        ("characters since the last full stop or line break", &f_col),
        ("space (word boundary)", &f_space),
    ] {
        let (unit, r) = acts
            .iter()
            .enumerate()
            .map(|(u, a)| (u, correlation(a, f)))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap_or((0, 0.0));
        // Scaled by the unit's largest |activation| so that its whole range shows.
        let scale = acts[unit].iter().fold(1e-9f64, |m, v| m.max(v.abs()));
        let caption =
            format!("unit {unit}: correlation {r:+.2} with \"{feature}\" (red: +{scale:.2}, blue: −{scale:.2})");
        blocks.push((caption, chars.iter().copied().zip(acts[unit].iter().map(|v| v / scale)).collect()));
    }
    ColouredText {
        title: format!("{}: hidden units over a test review (trained character model)", cell.label()),
        blocks,
        width: 100,
    }
    .save(stem)
}
