//! rnnlab: vanilla RNN, GRU and LSTM on libtorch, and the experiments that show how they remember.
//!
//! Data flow: [`config`] → [`data`] → [`model`] → [`train`] (+ [`probe`]) → [`run`] folders → [`plot`].
pub mod charts;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod experiment;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod probe;
pub mod progress;
pub mod report;
pub mod rng;
pub mod run;
pub mod sample;
pub mod train;
