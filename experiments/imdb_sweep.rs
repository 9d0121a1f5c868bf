//! `imdb_sweep`: IMDB accuracy as reviews are cut to length L, three ways (see `rnnlab::experiments::imdb_sweep`).
fn main() -> std::process::ExitCode {
    rnnlab::sweep::binary(
        rnnlab::experiments::imdb_sweep::ImdbSweep,
        "IMDB: accuracy of RNN, GRU and LSTM as reviews are cut to length L (three modes); resumable",
    )
}
