//! `tagging`: part-of-speech tagging on the Brown corpus; `tagging predict` (see `rnnlab::experiments::tagging`).
use clap::Subcommand;
use rnnlab::experiments::tagging::{predict, Tagging};
use std::path::PathBuf;

#[derive(Subcommand)]
enum Cmd {
    /// Tag a sentence with a trained run's checkpoint (one word and its tag per line).
    Predict {
        /// A run folder holding model.safetensors (e.g. results/tagging/lstm-bi-s0).
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        #[arg(required = true, value_name = "SENTENCE")]
        sentence: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary_with(Tagging, "tagging", |Cmd::Predict { run, sentence }, common| {
        print!("{}", predict(&run, &sentence.join(" "), common.setup()?)?);
        Ok(())
    })
}
