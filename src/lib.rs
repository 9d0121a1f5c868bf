//! rnnlab: vanilla RNN, GRU and LSTM on libtorch, and the experiments that show how they remember.
//!
//! Layers, each using only those above it: [`stats`], [`bleu`], [`rng`], [`progress`], [`files`] → [`config`] →
//! [`cli`] → [`data`] → [`model`] → [`results`] → [`train`] → [`probe`] → [`plot`] → [`charts`] → [`sample`] →
//! [`sweep`] → [`experiments`] → [`report`] → [`serve`].
pub mod bleu;
pub mod charts;
pub mod cli;
pub mod config;
pub mod data;
pub mod experiments;
pub mod files;
pub mod model;
pub mod plot;
pub mod probe;
pub mod progress;
pub mod report;
pub mod results;
pub mod rng;
pub mod sample;
pub mod serve;
pub mod stats;
pub mod sweep;
pub mod train;
