//! `vanishing`: per-timestep gradient norms, exploding gradients, forget-gate bias (see
//! `rnnlab::experiments::vanishing`).
fn main() -> std::process::ExitCode {
    rnnlab::sweep::binary(
        rnnlab::experiments::vanishing::Vanishing,
        "Vanishing/exploding gradients: per-timestep gradient norms of RNN, GRU and LSTM through training",
    )
}
