//! `generate sample` and `generate score`: a trained run writes (names of a language, or text after a start) or
//! scores a text in bits per character.
use super::{lm, GenerateData, Task};
use crate::data::shakespeare::Alphabet;
use crate::data::text::Chars;
use crate::model::lm::Pick;
use crate::results::checkpoint;
use crate::rng::Rng;
use crate::sample::{language_id, sample_name, sample_text, score_text, Alphabetic, Score};
use anyhow::{bail, Result};
use std::path::Path;
use tch::Device;

/// What [`sample`] writes and how it picks characters.
pub struct SampleArgs<'a> {
    /// Names runs: one of the training languages.
    pub language: Option<&'a str>,
    pub start: &'a str,
    pub how: Pick,
    /// Names runs: how many names; text runs: how many characters after the start.
    pub count: usize,
    pub seed: u64,
}

/// The alphabet of a text run (Shakespeare's from its checkpoint; the reviews' fixed one).
fn alphabet(task: Task, source_tokens: &[String]) -> Result<Box<dyn Alphabetic>> {
    match task {
        Task::Shakespeare => Ok(Box::new(Alphabet::from_names(source_tokens)?)),
        Task::Reviews => Ok(Box::new(Chars)),
        Task::Names => bail!("a names run samples names: give --language"),
    }
}

/// `generate sample`: names from a names run (one per line), or `count` characters after `start` from a text
/// run (Shakespeare, reviews).
pub fn sample(run: &Path, a: &SampleArgs, device: Device) -> Result<String> {
    let loaded = checkpoint::load(run, device)?;
    let lm = lm(&loaded.model)?;
    let data: GenerateData = checkpoint::config_section(run, "data")?;
    let mut rng = Rng::derived(a.seed, "sample");
    if data.task != Task::Names {
        if a.language.is_some() {
            bail!("{} is a character model of text, not of names: leave out --language", run.display());
        }
        let alphabet = alphabet(data.task, &loaded.spec.shape.source_tokens)?;
        let start = if a.start.is_empty() { "\n" } else { a.start };
        return Ok(sample_text(lm, alphabet.as_ref(), start, a.count, a.how, &mut rng)? + "\n");
    }
    let Some(language) = a.language else {
        bail!(
            "a names run samples names of a language: give --language (one of {})",
            loaded.spec.shape.classes.join(", ")
        )
    };
    let lang = language_id(&loaded.spec.shape.classes, language)?;
    let n = if a.how == Pick::Greedy { 1 } else { a.count };
    let mut out = String::new();
    for _ in 0..n {
        out += &sample_name(lm, lang, a.start, a.how, &mut rng)?;
        out.push('\n');
    }
    Ok(out)
}

/// `generate score`: the loss of `text` under a text run, per character (unknown characters counted, not scored).
pub fn score(run: &Path, text: &str, device: Device) -> Result<Score> {
    let loaded = checkpoint::load(run, device)?;
    let lm = lm(&loaded.model)?;
    let data: GenerateData = checkpoint::config_section(run, "data")?;
    let alphabet = alphabet(data.task, &loaded.spec.shape.source_tokens).map_err(|_| {
        anyhow::anyhow!("{} is a names model: score a text with a Shakespeare (or reviews) run", run.display())
    })?;
    let window = match data.task {
        Task::Shakespeare => data.shakespeare.bptt,
        _ => data.reviews.bptt,
    };
    score_text(lm, alphabet.as_ref(), text, window)
}
