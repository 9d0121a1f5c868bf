//! `sweep-imdb`: IMDB accuracy as reviews are cut to length L, three ways (`rnnlab::experiments::sweep_imdb`).
fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary(rnnlab::experiments::sweep_imdb::SweepImdb, "sweep-imdb")
}
