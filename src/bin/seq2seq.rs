//! `seq2seq`: encoder–decoders with and without attention (`rnnlab::experiments::seq2seq`).
fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary(rnnlab::experiments::seq2seq::Seq2seq, "seq2seq")
}
