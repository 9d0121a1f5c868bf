//! `names`: surname → language with RNN, GRU and LSTM (and `names-distance`); `names predict`
//! (`rnnlab::experiments::names`).
use clap::Subcommand;
use rnnlab::experiments::names::{predict, Names, Prior};
use std::path::PathBuf;

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
    rnnlab::experiments::binary_with(Names, "names", |Cmd::Predict { run, top, prior, names }, common| {
        let device = common.setup()?;
        eprintln!("{}", prior.meaning());
        print!("{}", predict(&run, top, prior, &names, device)?);
        Ok(())
    })
}
