//! `demo`: RNN vs GRU vs LSTM on the offline long-range task (see `rnnlab::experiments::demo`).
fn main() -> std::process::ExitCode {
    rnnlab::sweep::binary(
        rnnlab::experiments::demo::Demo,
        "Offline demo: RNN vs GRU vs LSTM on a synthetic long-range task; writes results/demo/",
    )
}
