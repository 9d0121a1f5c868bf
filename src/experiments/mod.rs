//! One module per experiment: its data section, what it adds to a run, its charts. Each implements
//! [`crate::sweep::Experiment`] (the benchmark, which trains no runs, is plain functions).
pub mod bench;
pub mod demo;
pub mod generate;
pub mod imdb;
pub mod imdb_sweep;
pub mod names;
pub mod seq2seq;
pub mod tagging;
pub mod vanishing;
