//! Sampling from the character language models (names per language, review text, Shakespeare) and scoring a
//! text under one (bits per character).
use crate::data::names;
use crate::data::text::{self, Chars};
use crate::model::lm::{pick, Pick};
use crate::model::LanguageModel;
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use tch::Tensor;

/// Longest name sampled.
pub const MAX_NAME: usize = 20;

/// The condition id of `language` among `classes`; an error lists the valid ones.
pub fn language_id(classes: &[String], language: &str) -> Result<i64> {
    match classes.iter().position(|c| c == language) {
        Some(i) => Ok(i as i64),
        None => bail!("unknown language {language:?}; valid: {}", classes.join(", ")),
    }
}

/// One name that starts with `start`, conditioned on language `lang`, letter by letter until the end symbol
/// (the same `rng` state gives the same name).
pub fn sample_name(lm: &LanguageModel, lang: i64, start: &str, how: Pick, rng: &mut Rng) -> Result<String> {
    let prefix = names::encode(&names::strip_accents(start)).with_context(|| format!("--start {start:?}"))?;
    tch::no_grad(|| {
        let device = lm.rnn.weights[0][0].device();
        let cond = Tensor::from_slice(&[lang]).to_device(device);
        let mut ids: Vec<i64> = vec![text::NAME_BOS];
        ids.extend(&prefix);
        let x = Tensor::from_slice(&ids).view([1, -1]).to_device(device);
        let (mut logits, mut state) = lm.run(&x, Some(&cond), None, false);
        let mut out = prefix.clone();
        while out.len() < MAX_NAME {
            // Logit i is id i + 1. Never the start symbol; the end symbol only after at least one letter.
            let banned: &[i64] = if out.is_empty() { &[text::NAME_BOS, text::NAME_EOS] } else { &[text::NAME_BOS] };
            let banned = Tensor::from_slice(banned).to_device(device) - 1;
            let last = logits.get(0).get(-1).index_fill(0, &banned, f64::NEG_INFINITY);
            let next = pick(&last, how, rng);
            if next == text::NAME_EOS {
                break;
            }
            out.push(next);
            let x = Tensor::from_slice(&[next]).view([1, 1]).to_device(device);
            let (l, s) = lm.run(&x, Some(&cond), Some(&state), false);
            logits = l;
            state = s;
        }
        Ok(text::decode_name(&out))
    })
}

/// How a character model's token ids map to characters.
pub trait Alphabetic {
    fn id(&self, c: char) -> Option<i64>;
    fn char(&self, id: i64) -> char;
}

impl Alphabetic for Chars {
    fn id(&self, c: char) -> Option<i64> {
        Chars::id(c)
    }
    fn char(&self, id: i64) -> char {
        Chars::char(id)
    }
}

impl Alphabetic for crate::data::shakespeare::Alphabet {
    fn id(&self, c: char) -> Option<i64> {
        crate::data::shakespeare::Alphabet::id(self, c)
    }
    fn char(&self, id: i64) -> char {
        crate::data::shakespeare::Alphabet::char(self, id)
    }
}

/// `n` characters after `prime` from a character model of text (characters outside its alphabet are an error).
pub fn sample_text(
    lm: &LanguageModel,
    alphabet: &dyn Alphabetic,
    prime: &str,
    n: usize,
    how: Pick,
    rng: &mut Rng,
) -> Result<String> {
    let unknown: String = prime.chars().filter(|&c| alphabet.id(c).is_none()).collect();
    if !unknown.is_empty() {
        bail!("--start {prime:?}: the model's alphabet has no {unknown:?}");
    }
    if prime.is_empty() {
        bail!("--start: give the first characters (e.g. \"ROMEO.\")");
    }
    tch::no_grad(|| {
        let device = lm.rnn.weights[0][0].device();
        let ids: Vec<i64> = prime.chars().filter_map(|c| alphabet.id(c)).collect();
        let (mut logits, mut state) =
            lm.run(&Tensor::from_slice(&ids).view([1, -1]).to_device(device), None, None, false);
        let mut out = ids.clone();
        for _ in 0..n {
            let next = pick(&logits.get(0).get(-1), how, rng);
            out.push(next);
            let (l, s) = lm.run(&Tensor::from_slice(&[next]).view([1, 1]).to_device(device), None, Some(&state), false);
            logits = l;
            state = s;
        }
        Ok(out.iter().map(|&i| alphabet.char(i)).collect())
    })
}

/// A text scored by a character model: natural-log loss summed over the scored characters, how many were scored
/// and how many were outside the alphabet (neither fed nor scored as themselves: read as unknown, not scored).
#[derive(Debug)]
pub struct Score {
    pub nats: f64,
    pub scored: usize,
    pub unknown: usize,
}

impl Score {
    pub fn nats_per_char(&self) -> f64 {
        self.nats / self.scored.max(1) as f64
    }
    pub fn bits_per_char(&self) -> f64 {
        self.nats_per_char() / std::f64::consts::LN_2
    }
}

/// Scores `text` (every character after the first, in windows of `window` with the state carried) under a
/// model whose unknown token is id 1.
pub fn score_text(lm: &LanguageModel, alphabet: &dyn Alphabetic, text: &str, window: usize) -> Result<Score> {
    let ids: Vec<i64> = text.chars().map(|c| alphabet.id(c).unwrap_or(1)).collect();
    let unknown = ids.iter().filter(|&&i| i == 1).count();
    if ids.len() < 2 {
        bail!("nothing to score: the text has {} character(s); give at least two", ids.len());
    }
    tch::no_grad(|| {
        let device = lm.rnn.weights[0][0].device();
        let (mut nats, mut scored, mut state) = (0.0, 0usize, None);
        let inputs = &ids[..ids.len() - 1];
        for (k, chunk) in inputs.chunks(window.max(1)).enumerate() {
            let start = k * window.max(1);
            let targets = &ids[start + 1..start + 1 + chunk.len()];
            let x = Tensor::from_slice(chunk).view([1, -1]).to_device(device);
            let (logits, s) = lm.run(&x, None, state.as_ref(), false);
            state = Some(s);
            let logp = logits.get(0).log_softmax(-1, tch::Kind::Double).to_device(tch::Device::Cpu);
            for (t, &y) in targets.iter().enumerate().filter(|(_, &y)| y != 1) {
                // Logit k is id k + 1.
                nats -= logp.double_value(&[t as i64, y - 1]);
                scored += 1;
            }
        }
        Ok(Score { nats, scored, unknown })
    })
}
