//! `imdb`: IMDB sentiment at one length (see `rnnlab::experiments::imdb`).
fn main() -> std::process::ExitCode {
    rnnlab::sweep::binary(
        rnnlab::experiments::imdb::Imdb,
        "IMDB sentiment with RNN, GRU and LSTM at one sequence length (and variants: 2 layers, bidirectional)",
    )
}
