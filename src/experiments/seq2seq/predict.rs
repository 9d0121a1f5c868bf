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
#[derive(Debug, serde::Serialize)]
pub struct Answer {
    pub output: String,
    pub source_pieces: Vec<String>,
    pub output_pieces: Vec<String>,
    /// `[output pieces][source pieces]`.
    pub attention: Option<Vec<Vec<f64>>>,
    pub notes: Vec<String>,
}

/// An encoder–decoder loaded once from its run folder, with its source vocabulary (what `seq2seq predict` and the
/// playground ask).
pub struct Seq2seqPredictor {
    loaded: checkpoint::Loaded,
    pub data: Seq2seqData,
    index: HashMap<String, i64>,
    bpe: Option<Vocab>,
    longest: f64,
}

impl Seq2seqPredictor {
    pub fn load(run: &Path, device: Device) -> Result<Self> {
        let loaded = checkpoint::load(run, device)?;
        if !matches!(loaded.model, Model::Seq2seq(_)) {
            bail!("{} holds no encoder-decoder", run.display());
        }
        let data: Seq2seqData = checkpoint::config_section(run, "data")?;
        let index = loaded.spec.shape.source_tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as i64)).collect();
        let bpe = if data.task == Task::Translate && data.translate.tokens == Tokens::Bpe {
            let path = run.join("source.tokenizer.json");
            let tok = tokenizers::Tokenizer::from_file(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e} (train the run again)", path.display()))?;
            Some(Vocab::Bpe(Box::new(tok)))
        } else {
            None
        };
        let longest =
            crate::results::read_meta(run).ok().and_then(|m| m.result.get("train_len_max").copied()).unwrap_or(0.0);
        Ok(Seq2seqPredictor { loaded, data, index, bpe, longest })
    }

    /// Translates (or converts, or reverses) `input`, with beam width `beam` (else the run's own).
    pub fn answer(&self, input: &str, beam: Option<usize>) -> Result<Answer> {
        let Model::Seq2seq(m) = &self.loaded.model else { unreachable!("checked at load") };
        let (run, device, shape) = (&self.loaded.dir, self.loaded.vs.device(), &self.loaded.spec.shape);
        let id = |w: &str| *self.index.get(w).unwrap_or(&1);
        // The input's pieces and their ids (1: unknown).
        let (pieces, ids): (Vec<String>, Vec<i64>) = match self.data.task {
            Task::Dates => input.trim().chars().map(|c| (c.to_string(), id(&c.to_string()))).unzip(),
            Task::Reverse => input.split_whitespace().map(|w| w.to_lowercase()).map(|w| (w.clone(), id(&w))).unzip(),
            Task::Translate => {
                let text = input.trim().to_lowercase();
                match &self.bpe {
                    None => word_tokens(&text).into_iter().map(|w| (w.clone(), id(&w))).unzip(),
                    Some(v) => v.encode(&text)?.into_iter().map(|(i, name)| (name, i.map_or(1, |i| i + 2))).unzip(),
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
        let longest = self.longest;
        if longest > 0.0 && ids.len() as f64 > longest {
            notes.push(format!(
                "{} source tokens: longer than any training source ({longest}); translated anyway",
                ids.len()
            ));
        }
        let split = Split::pairs("input", std::slice::from_ref(&ids), &[vec![2]]).to_device(device);
        let batch = split.batch(&[0], device);
        let beam = beam.unwrap_or(m.cfg.beam).max(1);
        let max_len = 2 * ids.len() as i64 + 10;
        let decoded = if beam > 1 {
            let (t, a) = m.beam(&batch, 0, beam, max_len);
            vec![(t.into_iter().take_while(|&t| t != crate::model::seq2seq::EOS && t != 0).collect(), a)]
        } else {
            decode(m, &batch, max_len)
        };
        let (out_ids, alpha) = decoded.into_iter().next().unwrap_or_default();
        let names: Vec<String> =
            out_ids.iter().map(|&i| shape.classes.get(i as usize).cloned().unwrap_or_default()).collect();
        let output = match self.data.task {
            Task::Dates => names.concat(),
            Task::Reverse => names.join(" "),
            Task::Translate => match self.data.translate.tokens {
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
}

/// Translates (or converts, or reverses) `input` with the run in `run` (beam width `beam`, else the run's own).
pub fn predict(run: &Path, input: &str, beam: Option<usize>, device: Device) -> Result<Answer> {
    Seq2seqPredictor::load(run, device)?.answer(input, beam)
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
