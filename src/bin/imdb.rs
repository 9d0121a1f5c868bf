//! `imdb`: IMDB sentiment at one length (`rnnlab::experiments::imdb`).
fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary(rnnlab::experiments::imdb::Imdb, "imdb")
}
