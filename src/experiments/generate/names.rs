//! The names task: samples per language, how many are new, and which language a trained classifier hears in them.
use super::Generate;
use crate::data::names;
use crate::data::{Example, Pad, Split};
use crate::model::lm::Pick;
use crate::model::LanguageModel;
use crate::results::{checkpoint, RunDir};
use crate::rng::Rng;
use crate::sample::sample_name;
use crate::sweep::Cfg;
use anyhow::{bail, Result};
use std::collections::HashSet;

/// Samples per language → samples.txt, the share of new names and (with a classifier) of the asked language.
pub(super) fn names_samples(
    lm: &LanguageModel,
    classes: &[String],
    train: &[String],
    cfg: &Cfg<Generate>,
    run: &mut RunDir,
) -> Result<()> {
    let s = &cfg.own;
    let device = lm.rnn.weights[0][0].device();
    let known: HashSet<&String> = train.iter().collect();
    let classifier = match &s.classifier {
        Some(p) if p.join(checkpoint::WEIGHTS).exists() => Some(checkpoint::load(p, device)?),
        Some(p) => {
            crate::progress::say!(
                "sampling.classifier {}: no trained classifier there (run `make names`); language match skipped",
                p.display()
            );
            None
        }
        None => None,
    };
    let mut rng = Rng::derived(cfg.train.seed, "sample");
    let how = Pick::Sample { temperature: s.temperature, top_k: None };
    let (mut lines, mut novel, mut matched, mut total) = (String::new(), 0, 0, 0);
    for (lang, name) in classes.iter().enumerate() {
        let sampled: Vec<String> = (0..s.samples_per_language)
            .map(|_| sample_name(lm, lang as i64, "", how, &mut rng))
            .collect::<Result<_>>()?;
        novel += sampled.iter().filter(|n| !known.contains(n)).count();
        total += sampled.len();
        if let Some(c) = &classifier {
            let pred = classify(c, &sampled)?;
            matched += pred.iter().filter(|&&p| c.spec.shape.classes[p as usize] == *name).count();
        }
        lines += &format!("{name}: {}\n", sampled.join(", "));
    }
    run.write("samples.txt", lines.as_bytes())?;
    run.meta.result.insert("novel_frac".into(), novel as f64 / total.max(1) as f64);
    if classifier.is_some() {
        run.meta.result.insert("language_match".into(), matched as f64 / total.max(1) as f64);
    }
    Ok(())
}

/// The classifier's most likely class of each (non-empty) name.
fn classify(c: &checkpoint::Loaded, names_: &[String]) -> Result<Vec<i64>> {
    let Some(model) = c.model.classifier() else { bail!("{} holds no classifier", c.dir.display()) };
    let ex: Vec<Example> = names_
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| Ok(Example { tokens: names::encode(n)?, label: 0 }))
        .collect::<Result<_>>()?;
    if ex.is_empty() {
        return Ok(vec![]);
    }
    let device = model.rnn.weights[0][0].device();
    let split = Split::new("samples", &ex, Pad::Post).to_device(device);
    Ok(Vec::try_from(model.predict_proba(&split, 256).argmax(-1, false))?)
}
