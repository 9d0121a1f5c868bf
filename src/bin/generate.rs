//! `generate`: character-level generation — names, review text, Shakespeare (`make generate`, `make
//! shakespeare`); `generate sample` and `generate score` (`rnnlab::experiments::generate`).
use anyhow::Context;
use clap::Subcommand;
use rnnlab::experiments::generate::commands::{sample, score, SampleArgs};
use rnnlab::experiments::generate::Generate;
use rnnlab::model::lm::Pick;
use std::path::PathBuf;

#[derive(Subcommand)]
enum Cmd {
    /// Sample from a trained run: names of a language (names runs), or text after --start (Shakespeare, reviews).
    Sample {
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// Names runs: one of the 18 languages of the training data.
        #[arg(long)]
        language: Option<String>,
        /// The first letters of every name, or the text to continue (e.g. "ROMEO.").
        #[arg(long, default_value = "")]
        start: String,
        /// Softmax temperature (lower: more conservative).
        #[arg(long, default_value_t = 0.8)]
        temperature: f64,
        /// Sample only among the k most likely characters.
        #[arg(long)]
        top_k: Option<i64>,
        /// Always take the most likely character.
        #[arg(long)]
        greedy: bool,
        /// Names to sample (names runs) or characters to write (text runs).
        #[arg(long)]
        count: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Bits per character of a UTF-8 text FILE under a trained text run (characters outside its alphabet are
    /// counted and left out).
    Score {
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary_with(Generate, "generate", |cmd, common| {
        match cmd {
            Cmd::Sample { run, language, start, temperature, top_k, greedy, count, seed } => {
                let how = if greedy { Pick::Greedy } else { Pick::Sample { temperature, top_k } };
                let count = count.unwrap_or(if language.is_some() { 10 } else { 500 });
                let args = SampleArgs { language: language.as_deref(), start: &start, how, count, seed };
                print!("{}", sample(&run, &args, common.setup()?)?);
            }
            Cmd::Score { run, file } => {
                let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
                let text = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", file.display()))?;
                let s = score(&run, &text, common.setup()?)?;
                println!(
                    "{}: {:.4} bits per character ({:.4} nats) over {} characters",
                    file.display(),
                    s.bits_per_char(),
                    s.nats_per_char(),
                    s.scored
                );
                if s.unknown > 0 {
                    eprintln!(
                        "note: {} characters are outside the model's alphabet: read as unknown, not scored",
                        s.unknown
                    );
                }
            }
        }
        Ok(())
    })
}
