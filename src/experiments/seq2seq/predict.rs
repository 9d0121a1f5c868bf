//! `seq2seq predict --run DIR "input"`: a trained run of any task (dates, reverse, translate) answers an input of
//! one's own, optionally drawing where it attended. Unknown words or characters are read as unknown and named
//! in the answer; an empty input is an error; an input longer than anything seen in training is translated
//! with a note.
use super::translate::piece_label;
use super::{decode, Seq2seqData, Task};
use crate::data::parallel::{word_tokens, Tokens, Vocab};
use crate::data::Split;
use crate::model::Model;
use crate::plot::Heatmap;
use crate::results::checkpoint;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind};

/// What `predict` answers: the output text, the pieces it read and wrote, the attention (when the model
/// attends), and notes (unknown pieces, a source longer than training's).
#[derive(Debug)]
pub struct Answer {
    pub output: String,
    pub source_pieces: Vec<String>,
    pub output_pieces: Vec<String>,
    /// `[output pieces][source pieces]`.
    pub attention: Option<Vec<Vec<f64>>>,
    pub notes: Vec<String>,
}

/// Translates (or converts, or reverses) `input` with the run in `run` (beam width `beam`, else the run's own).
pub fn predict(run: &Path, input: &str, beam: Option<usize>, device: Device) -> Result<Answer> {
    let loaded = checkpoint::load(run, device)?;
    let Model::Seq2seq(m) = &loaded.model else { bail!("{} holds no encoder-decoder", run.display()) };
    let data: Seq2seqData = checkpoint::config_section(run, "data")?;
    let shape = &loaded.spec.shape;
    let index: HashMap<&str, i64> =
        shape.source_tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i as i64)).collect();
    // The input's pieces and their ids (1: unknown).
    let (pieces, ids): (Vec<String>, Vec<i64>) = match data.task {
        Task::Dates => {
            input.trim().chars().map(|c| (c.to_string(), *index.get(c.to_string().as_str()).unwrap_or(&1))).unzip()
        }
        Task::Reverse => input
            .split_whitespace()
            .map(|w| w.to_lowercase())
            .map(|w| {
                let id = *index.get(w.as_str()).unwrap_or(&1);
                (w, id)
            })
            .unzip(),
        Task::Translate => {
            let text = input.trim().to_lowercase();
            match data.translate.tokens {
                Tokens::Words => word_tokens(&text)
                    .into_iter()
                    .map(|w| {
                        let id = *index.get(w.as_str()).unwrap_or(&1);
                        (w, id)
                    })
                    .unzip(),
                Tokens::Bpe => {
                    let path = run.join("source.tokenizer.json");
                    let tok = tokenizers::Tokenizer::from_file(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e} (train the run again)", path.display()))?;
                    Vocab::Bpe(Box::new(tok))
                        .encode(&text)?
                        .into_iter()
                        .map(|(i, name)| (name, i.map_or(1, |i| i + 2)))
                        .unzip()
                }
            }
        }
    };
    if ids.is_empty() {
        bail!("nothing to answer: the input has no words (e.g. seq2seq predict --run {} \"In the beginning God made the heaven and the earth.\")", run.display());
    }
    let mut notes = Vec::new();
    let unknown: Vec<&str> = pieces.iter().zip(&ids).filter(|(_, &i)| i == 1).map(|(p, _)| p.as_str()).collect();
    if !unknown.is_empty() {
        notes.push(format!("not in the model's vocabulary, read as <unk>: {}", unknown.join(", ")));
    }
    let longest =
        crate::results::read_meta(run).ok().and_then(|m| m.result.get("train_len_max").copied()).unwrap_or(0.0);
    if longest > 0.0 && ids.len() as f64 > longest {
        notes.push(format!(
            "{} source tokens: longer than any training source ({longest}); translated anyway",
            ids.len()
        ));
    }
    let split = Split::pairs("input", std::slice::from_ref(&ids), &[vec![2]]).to_device(device);
    let batch = split.batch(&[0], device);
    let mut m_cfg = m.cfg.clone();
    if let Some(b) = beam {
        m_cfg.beam = b.max(1);
    }
    let max_len = 2 * ids.len() as i64 + 10;
    let decoded = if m_cfg.beam > 1 {
        let (t, a) = m.beam(&batch, 0, m_cfg.beam, max_len);
        vec![(t.into_iter().take_while(|&t| t != crate::model::seq2seq::EOS && t != 0).collect(), a)]
    } else {
        decode(m, &batch, max_len)
    };
    let (out_ids, alpha) = decoded.into_iter().next().unwrap_or_default();
    let names: Vec<String> =
        out_ids.iter().map(|&i| shape.classes.get(i as usize).cloned().unwrap_or_default()).collect();
    let output = match data.task {
        Task::Dates => names.concat(),
        Task::Reverse => names.join(" "),
        Task::Translate => match data.translate.tokens {
            Tokens::Words => crate::data::parallel::join_words(&names),
            Tokens::Bpe => names.concat().replace('▁', " ").trim().to_string(),
        },
    };
    let attention = match alpha {
        Some(a) => Some(Vec::<Vec<f64>>::try_from(a.to_device(Device::Cpu).to_kind(Kind::Double))?),
        None => None,
    };
    Ok(Answer { output, source_pieces: pieces, output_pieces: names, attention, notes })
}

/// Draws an answer's attention as `<stem>.png` and `.svg`.
pub fn draw_attention(a: &Answer, stem: &Path) -> Result<()> {
    let Some(values) = &a.attention else { bail!("this run does not attend (model.attention: none): nothing to draw") };
    let label = |p: &String| if p == " " { "␣".to_string() } else { piece_label(p) };
    let (ns, nt) = (a.source_pieces.len(), a.output_pieces.len());
    Heatmap {
        title: format!("Where each output piece (row) looks in the input (column): {}", a.output),
        x_label: "input".into(),
        y_label: "output".into(),
        x_ticks: a.source_pieces.iter().map(label).collect(),
        y_ticks: a.output_pieces.iter().map(label).collect(),
        values: values.iter().take(nt).map(|r| r.iter().take(ns).copied().collect()).collect(),
        log: false,
        bar_label: "attention weight α".into(),
        annotate: false,
        size: ((400 + 26 * ns).clamp(900, 2600) as u32, (250 + 22 * nt).clamp(600, 2600) as u32),
    }
    .save(stem)
    .context("drawing the attention")
}
