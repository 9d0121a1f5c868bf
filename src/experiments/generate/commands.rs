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
use tch::{Device, Tensor};

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
fn alphabet(task: Task, source_tokens: &[String]) -> Result<Box<dyn Alphabetic + Send>> {
    match task {
        Task::Shakespeare => Ok(Box::new(Alphabet::from_names(source_tokens)?)),
        Task::Reviews => Ok(Box::new(Chars)),
        Task::Names => bail!("a names run samples names: give --language"),
    }
}

/// One layer's `h` or `c` over a text: (layer from 1, `h` or `c`, `[T][H]` values).
pub type UnitStates = (usize, &'static str, Vec<Vec<f64>>);

/// A language model loaded once from its run folder (what `generate sample` and the playground ask).
pub struct Generator {
    loaded: checkpoint::Loaded,
    pub data: GenerateData,
    /// Text runs: the characters it reads and writes.
    alphabet: Option<Box<dyn Alphabetic + Send>>,
}

impl Generator {
    pub fn load(run: &Path, device: Device) -> Result<Self> {
        let loaded = checkpoint::load(run, device)?;
        lm(&loaded.model)?;
        let data: GenerateData = checkpoint::config_section(run, "data")?;
        let alphabet =
            if data.task == Task::Names { None } else { Some(alphabet(data.task, &loaded.spec.shape.source_tokens)?) };
        Ok(Generator { loaded, data, alphabet })
    }

    /// A names run's languages (empty for text runs).
    pub fn languages(&self) -> &[String] {
        if self.data.task == Task::Names {
            &self.loaded.spec.shape.classes
        } else {
            &[]
        }
    }

    /// Names of a language (one per line) from a names run, or `count` characters after `start` from a text run.
    pub fn sample(&self, a: &SampleArgs) -> Result<String> {
        let (run, lm) = (&self.loaded.dir, lm(&self.loaded.model)?);
        let mut rng = Rng::derived(a.seed, "sample");
        if let Some(alphabet) = &self.alphabet {
            if a.language.is_some() {
                bail!("{} is a character model of text, not of names: leave out --language", run.display());
            }
            let start = if a.start.is_empty() { "\n" } else { a.start };
            return Ok(sample_text(lm, alphabet.as_ref(), start, a.count, a.how, &mut rng)? + "\n");
        }
        let Some(language) = a.language else {
            bail!("a names run samples names of a language: give --language (one of {})", self.languages().join(", "))
        };
        let lang = language_id(self.languages(), language)?;
        let n = if a.how == Pick::Greedy { 1 } else { a.count };
        let mut out = String::new();
        for _ in 0..n {
            out += &sample_name(lm, lang, a.start, a.how, &mut rng)?;
            out.push('\n');
        }
        Ok(out)
    }

    /// A text run's hidden units over `text`: per layer, `h` (and an LSTM's `c`) as `[T][H]` values (characters
    /// outside the alphabet are an error naming them).
    pub fn states(&self, text: &str) -> Result<Vec<UnitStates>> {
        let Some(alphabet) = &self.alphabet else { bail!("a names run has no text to read") };
        let unknown: String = text.chars().filter(|&c| alphabet.id(c).is_none()).collect();
        if !unknown.is_empty() {
            bail!("the model's alphabet has no {unknown:?}");
        }
        let lm = lm(&self.loaded.model)?;
        let ids: Vec<i64> = text.chars().filter_map(|c| alphabet.id(c)).collect();
        let x = Tensor::from_slice(&ids).view([1, -1]).to_device(self.loaded.vs.device());
        let trace = tch::no_grad(|| lm.rnn.trace(&lm.inputs(&x, None)));
        let mut out = Vec::new();
        for (l, t) in trace.iter().enumerate() {
            for (name, v) in std::iter::once(("h", &t.h)).chain(t.c.as_ref().map(|c| ("c", c))) {
                out.push((l + 1, name, Vec::try_from(v.to_kind(tch::Kind::Double).to_device(Device::Cpu))?));
            }
        }
        Ok(out)
    }
}

/// `generate sample`: names from a names run (one per line), or `count` characters after `start` from a text
/// run (Shakespeare, reviews).
pub fn sample(run: &Path, a: &SampleArgs, device: Device) -> Result<String> {
    Generator::load(run, device)?.sample(a)
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
