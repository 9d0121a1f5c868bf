//! `tagging`: part-of-speech tagging on the Brown corpus; `tagging predict` (see `rnnlab::experiments::tagging`).
use clap::{Parser, Subcommand};
use rnnlab::cli::{run_main, Common, SweepArgs};
use rnnlab::experiments::tagging::{predict, Tagging};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Part-of-speech tagging on the Brown corpus with RNN, GRU and LSTM, one- and two-directional")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    sweep: SweepArgs,
}

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
    run_main(|| {
        let cli = Cli::parse();
        match &cli.cmd {
            Some(Cmd::Predict { run, sentence }) => {
                print!("{}", predict(run, &sentence.join(" "), cli.common.setup()?)?);
                Ok(())
            }
            None => rnnlab::sweep::main(Tagging::default(), &cli.common, &cli.sweep),
        }
    })
}
