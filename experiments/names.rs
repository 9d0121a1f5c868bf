//! `names`: surname → language with RNN, GRU and LSTM; `names predict` (see `rnnlab::experiments::names`).
use clap::{Parser, Subcommand};
use rnnlab::cli::{run_main, Common, SweepArgs};
use rnnlab::experiments::names::{predict, Names, Prior};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Surname → language with RNN, GRU and LSTM (the PyTorch names tutorial, measured properly)")]
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
    /// Print the most likely languages of each NAME with a trained run's checkpoint.
    Predict {
        /// A run folder holding model.safetensors (e.g. results/names/gru-s0).
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// How many languages to print per name.
        #[arg(long, default_value_t = 3)]
        top: usize,
        /// The prior the probabilities are given under: uniform (which language the name looks like, whatever
        /// the data's mix), data (the training data's mix: 47 % Russian), model (as trained).
        #[arg(long, value_enum, default_value_t = Prior::Uniform)]
        prior: Prior,
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let cli = Cli::parse();
        match &cli.cmd {
            Some(Cmd::Predict { run, top, prior, names }) => {
                print!("{}", predict(run, *top, *prior, names, cli.common.setup()?)?);
                Ok(())
            }
            None => rnnlab::sweep::main(Names::default(), &cli.common, &cli.sweep),
        }
    })
}
