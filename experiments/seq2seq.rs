//! `seq2seq`: encoder–decoders with and without attention on dates and on reversing sentences (see
//! `rnnlab::experiments::seq2seq`).
fn main() -> std::process::ExitCode {
    rnnlab::sweep::binary(
        rnnlab::experiments::seq2seq::Seq2seq,
        "Sequence to sequence with RNN, GRU and LSTM, with and without attention: dates -> ISO, reversed sentences",
    )
}
