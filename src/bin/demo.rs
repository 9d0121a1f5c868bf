//! `demo`: RNN vs GRU vs LSTM on the offline long-range task (`rnnlab::experiments::demo`).
fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary(rnnlab::experiments::demo::Demo, "demo")
}
