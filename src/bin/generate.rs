//! `generate`: character-level generation of names and review text; `generate sample` (see
//! `rnnlab::experiments::generate`).
use clap::Subcommand;
use rnnlab::experiments::generate::{sample, Generate, SampleArgs};
use rnnlab::model::lm::Pick;
use std::path::PathBuf;

#[derive(Subcommand)]
enum Cmd {
    /// Sample names from a trained names model (a run folder of this experiment).
    Sample {
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// One of the 18 languages of the training data.
        #[arg(long)]
        language: String,
        /// The first letters of every name.
        #[arg(long, default_value = "")]
        start: String,
        /// Softmax temperature (lower: more conservative).
        #[arg(long, default_value_t = 0.8)]
        temperature: f64,
        /// Sample only among the k most likely letters.
        #[arg(long)]
        top_k: Option<i64>,
        /// Always take the most likely letter (one name).
        #[arg(long)]
        greedy: bool,
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary_with(Generate, "generate", |cmd, common| {
        let Cmd::Sample { run, language, start, temperature, top_k, greedy, count, seed } = cmd;
        let how = if greedy { Pick::Greedy } else { Pick::Sample { temperature, top_k } };
        let args = SampleArgs { language: &language, start: &start, how, count, seed };
        print!("{}", sample(&run, &args, common.setup()?)?);
        Ok(())
    })
}
