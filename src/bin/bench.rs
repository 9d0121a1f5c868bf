//! `bench`: throughput and memory of RNN, GRU and LSTM; `--compare` against PyTorch (see
//! `rnnlab::experiments::bench`).
use clap::Parser;
use rnnlab::experiments::bench::{run, BenchArgs};

#[derive(Parser)]
#[command(about = "Throughput and memory of RNN, GRU and LSTM on the names and IMDB protocols (writes results/bench/)")]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> std::process::ExitCode {
    rnnlab::cli::run_main(|| run(&Cli::parse().args))
}
