//! Sampling from the character language models: names per language, review text.
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

/// `n` characters after `prime` from a review model.
pub fn sample_text(lm: &LanguageModel, prime: &str, n: usize, how: Pick, rng: &mut Rng) -> Result<String> {
    tch::no_grad(|| {
        let device = lm.rnn.weights[0][0].device();
        let ids: Vec<i64> = prime.chars().filter_map(Chars::id).collect();
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
        Ok(Chars::decode(&out))
    })
}
