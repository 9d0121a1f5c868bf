//! `vanishing`: per-timestep gradient norms, exploding gradients, forget-gate bias
//! (`rnnlab::experiments::vanishing`).
fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary(rnnlab::experiments::vanishing::Vanishing, "vanishing")
}
