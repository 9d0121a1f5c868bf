//! `seq2seq`: encoder–decoders with and without attention — dates, reversal, translation (`make seq2seq`,
//! `make translate`); `seq2seq predict` (`rnnlab::experiments::seq2seq`).
use clap::Subcommand;
use rnnlab::experiments::seq2seq::predict::{draw_attention, predict};
use rnnlab::experiments::seq2seq::Seq2seq;
use std::path::PathBuf;

#[derive(Subcommand)]
enum Cmd {
    /// Answer INPUT with a trained run of any task (a date to convert, a sentence to reverse or translate).
    Predict {
        /// A run folder holding model.safetensors (e.g. results/translate/gru-dot-s0).
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// Beam width (1: greedy); default: the run's model.beam.
        #[arg(long)]
        beam: Option<usize>,
        /// Also draw where each output piece looked in the input (PNG, and an SVG beside it).
        #[arg(long, value_name = "FILE.png")]
        attention: Option<PathBuf>,
        #[arg(required = true, value_name = "INPUT")]
        input: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    rnnlab::experiments::binary_with(Seq2seq, "seq2seq", |Cmd::Predict { run, beam, attention, input }, common| {
        let answer = predict(&run, &input.join(" "), beam, common.setup()?)?;
        for n in &answer.notes {
            eprintln!("note: {n}");
        }
        println!("{}", answer.output);
        if let Some(png) = attention {
            draw_attention(&answer, &png.with_extension(""))?;
            eprintln!("attention drawn in {} (and .svg)", png.with_extension("png").display());
        }
        Ok(())
    })
}
