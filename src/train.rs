//! The one training loop, for every experiment.
//!
//! Per step: forward, backward, global gradient norm before and after clipping, optimiser step. Every
//! `log_every` steps the step statistics are read back in one host sync, checked for NaN/Inf and handed to the
//! run (`steps.csv`). Per epoch: train (running) and val/test loss and accuracy → the run (`metrics.csv`); best
//! validation loss → kept weights (early stopping). With `train.average`, val/test are evaluated (and kept) with
//! a moving average of the weights, while training continues from the live ones. A non-finite loss ends the run
//! as `diverged`, keeping everything written so far.
use crate::config::{BestBy, OptimizerKind, Sampling, TrainConfig};
use crate::data::{Balanced, Batch, Dataset, Split};
use crate::model::Objective;
use crate::progress;
use crate::results::rows::StepRow;
use crate::results::{RunDir, Status};
use crate::rng::Rng;
use anyhow::Result;
use std::collections::BTreeMap;
use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// How a run ended and its final numbers (also stored in `meta.yaml` under `result`).
#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    pub steps: usize,
    pub result: BTreeMap<String, f64>,
}

/// Called with the step count, `true` at init (step 0) and after the last step, `false` every `every` steps in
/// between (never when `every` is 0), and the run to record into.
pub struct StepHook<'a> {
    pub every: usize,
    pub call: &'a mut dyn FnMut(usize, bool, &mut RunDir) -> Result<()>,
}

/// Trains `model` (whose variables live in `vs`) on `data` and records everything in `run`. With
/// `cfg.epochs == 0` nothing is trained: the hooks run at step 0 and the splits are evaluated as initialised.
pub fn fit(
    model: &dyn Objective,
    vs: &nn::VarStore,
    data: &Dataset,
    cfg: &TrainConfig,
    lr: f64,
    run: &mut RunDir,
    mut hook: Option<StepHook>,
) -> Result<Outcome> {
    let device = vs.device();
    let streams = data.shape.streams;
    if streams > 0 && (cfg.shuffle || cfg.bucket || cfg.batch_size != streams) {
        anyhow::bail!(
            "the data is cut into {streams} streams whose state carries from batch to batch: set train.batch_size: \
             {streams}, train.shuffle: false and train.bucket: false (got {}, {}, {})",
            cfg.batch_size,
            cfg.shuffle,
            cfg.bucket
        );
    }
    let mut stepper = Stepper::new(vs, cfg, lr)?;
    let vars = vs.trainable_variables();
    let mut rng = Rng::derived(run.meta.seed, "batches");
    let mut balanced = match cfg.sampling {
        Sampling::Balanced if data.train.labels.dim() != 1 => {
            anyhow::bail!("train.sampling: balanced needs one class per sequence (a classifier's data)")
        }
        Sampling::Balanced => Some(Balanced::new(&data.train.label_vec(), data.shape.classes.len())),
        Sampling::Natural => None,
    };
    let per_epoch = data.train.len().div_ceil(cfg.batch_size);
    let pb = progress::bar((per_epoch * cfg.epochs) as u64, &run.meta.run);
    let (mut step, mut train_s, mut seqs) = (0usize, 0f64, 0usize);
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let mut since_best = 0;
    let mut average = (cfg.average > 0.0).then(|| tch::no_grad(|| copies(&vars)));
    if let Some(h) = hook.as_mut() {
        (h.call)(0, true, run)?;
    }
    let mut status = Status::Finished;
    let mut message = None;
    'epochs: for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        stepper.set_lr(lr * cfg.lr_decay.powi(epoch as i32 - 1));
        let batches = if let Some(b) = balanced.as_mut() {
            let rows = b.epoch(data.train.len(), &mut rng);
            data.train.batches_of(rows, cfg.batch_size, Some(&mut rng), cfg.bucket)
        } else if cfg.shuffle {
            data.train.batches(cfg.batch_size, Some(&mut rng), cfg.bucket)
        } else {
            data.train.batches(cfg.batch_size, None, false)
        };
        model.reset();
        let mut pending: Vec<[Tensor; 4]> = Vec::new();
        let mut counts: Vec<f64> = Vec::new();
        let (mut loss_sum, mut correct, mut count) = (0f64, 0f64, 0f64);
        for (i, idx) in batches.iter().enumerate() {
            let (stats, n) = stepper.step(model, &data.train.batch(idx, device));
            step += 1;
            if let Some(avg) = average.as_mut() {
                // Warm-up: early steps weigh more, so the average does not remember the initial weights.
                let decay = cfg.average.min((1 + step) as f64 / (10 + step) as f64);
                tch::no_grad(|| avg.iter_mut().zip(&vars).for_each(|(a, v)| drop(a.lerp_(v, 1.0 - decay))));
            }
            seqs += idx.len();
            pending.push(stats);
            counts.push(n);
            let last = i + 1 == batches.len();
            if step % cfg.log_every == 0 || last {
                // One host sync for the steps since the last flush.
                let rows_k: Vec<Tensor> = pending.iter().map(|p| Tensor::stack(p, 0).to_kind(Kind::Double)).collect();
                let host = Vec::<f64>::try_from(Tensor::stack(&rows_k, 0).flatten(0, -1).to_device(Device::Cpu))?;
                let first = step + 1 - pending.len();
                let mut bad = None;
                for (k, (v, n)) in host.chunks(4).zip(&counts).enumerate() {
                    let loss = v[0] / n;
                    run.step(StepRow { step: first + k, epoch, loss, grad_norm: v[2], grad_norm_clipped: v[3] });
                    loss_sum += v[0];
                    correct += v[1];
                    count += n;
                    if !loss.is_finite() && bad.is_none() {
                        bad = Some((first + k, loss));
                    }
                }
                counts.clear();
                pending.clear();
                pb.set_position(step as u64);
                pb.set_message(format!("epoch {epoch} loss {:.4}", loss_sum / count.max(1.0)));
                if let Some((at, loss)) = bad {
                    run.metric(epoch, at, "train", loss, correct / count, "diverged");
                    status = Status::Diverged;
                    message = Some(format!("loss became {loss} at step {at} (epoch {epoch}); run stopped"));
                    train_s += t0.elapsed().as_secs_f64();
                    break 'epochs;
                }
            }
            if let Some(h) = hook.as_mut().filter(|h| h.every > 0 && step % h.every == 0) {
                (h.call)(step, false, run)?;
            }
        }
        train_s += t0.elapsed().as_secs_f64();
        run.metric(epoch, step, "train", loss_sum / count, correct / count, "ok");
        let mut line =
            format!("{} epoch {epoch:>3}: train loss {:.4} acc {:.4}", run.meta.run, loss_sum / count, correct / count);
        // Evaluated (and kept, if best) with the averaged weights; training goes on from the live ones.
        let live = average.as_ref().map(|avg| {
            tch::no_grad(|| {
                let live = copies(&vars);
                load(&vars, avg);
                live
            })
        });
        let val = data.val.as_ref().map(|v| evaluate(model, v, cfg.batch_size, device));
        if let Some((l, a)) = val {
            run.metric(epoch, step, "val", l, a, "ok");
            line += &format!(" | val loss {l:.4} acc {a:.4}");
        }
        if cfg.test_each_epoch {
            if let Some(t) = &data.test {
                let (l, a) = evaluate(model, t, cfg.batch_size, device);
                run.metric(epoch, step, "test", l, a, "ok");
                line += &format!(" | test acc {a:.4}");
            }
        }
        progress::line(&pb, &line);
        run.flush()?;
        // Best epoch by validation loss or accuracy (training split when there is no validation split).
        let (loss, acc) = val.unwrap_or((loss_sum / count, correct / count));
        if !loss.is_finite() {
            status = Status::Diverged;
            message = Some(format!("evaluation loss became {loss} after epoch {epoch}; run stopped"));
            break;
        }
        let key = match cfg.best_by {
            BestBy::ValLoss => loss,
            BestBy::ValAcc => -acc,
        };
        let better = best.as_ref().is_none_or(|b| key < b.0);
        if better {
            best = Some((key, epoch, tch::no_grad(|| copies(&vars))));
        }
        if let Some(live) = live {
            tch::no_grad(|| load(&vars, &live));
        }
        if better {
            since_best = 0;
        } else {
            since_best += 1;
            if cfg.patience.is_some_and(|p| since_best >= p) {
                progress::line(
                    &pb,
                    &format!(
                        "{}: early stop after epoch {epoch} (best epoch {})",
                        run.meta.run,
                        best.as_ref().map_or(0, |b| b.1)
                    ),
                );
                break;
            }
        }
    }
    pb.finish_and_clear();
    if let Some(h) = hook.as_mut() {
        (h.call)(step, true, run)?;
    }
    run.flush()?;
    let mut result = BTreeMap::new();
    result.insert("steps".into(), step as f64);
    result.insert("train_s".into(), train_s);
    result.insert("train_seq_per_s".into(), seqs as f64 / train_s.max(1e-9));
    result.insert("n_params".into(), crate::model::n_params(vs) as f64);
    // The kept weights (the best epoch's; the initial ones when nothing was trained) on val and test.
    let kept = match best {
        Some((_, best_epoch, weights)) if status == Status::Finished => {
            tch::no_grad(|| load(&vars, &weights));
            result.insert("best_epoch".into(), best_epoch as f64);
            true
        }
        _ => cfg.epochs == 0,
    };
    if kept {
        let mut put = |split: &Option<Split>, name: &str| {
            if let Some(s) = split {
                let (l, a) = evaluate(model, s, cfg.batch_size, device);
                result.insert(format!("{name}_loss"), l);
                result.insert(format!("{name}_acc"), a);
            }
        };
        put(&data.val, "val");
        put(&data.test, "test");
    }
    if let Some(r) = run.metrics().iter().rev().find(|r| r.split == "train") {
        result.insert("train_loss".into(), r.loss);
        result.insert("train_acc".into(), r.acc);
    }
    run.meta.result.extend(result.clone());
    run.finish(status, message)?;
    Ok(Outcome { status, steps: step, result })
}

fn copies(vars: &[Tensor]) -> Vec<Tensor> {
    vars.iter().map(Tensor::copy).collect()
}

/// Overwrites the variables' values (call under `no_grad`).
fn load(vars: &[Tensor], values: &[Tensor]) {
    for (v, w) in vars.iter().zip(values) {
        v.shallow_clone().copy_(w);
    }
}

/// The phases of one training step, as [`Stepper::step_timed`] reports them.
pub const PHASES: [&str; 4] = ["forward + loss", "backward", "grad norm / clip", "optimiser step"];

/// One optimiser step at a time: forward, backward, clipping, update. Shared by [`fit`] and the benchmark.
pub struct Stepper {
    opt: nn::Optimizer,
    vars: Vec<Tensor>,
    clip: Option<f64>,
}

impl Stepper {
    pub fn new(vs: &nn::VarStore, cfg: &TrainConfig, lr: f64) -> Result<Self> {
        let opt = match cfg.optimizer {
            OptimizerKind::Adam => nn::Adam { wd: cfg.weight_decay, ..Default::default() }.build(vs, lr)?,
            OptimizerKind::Sgd => {
                nn::Sgd { momentum: cfg.momentum, wd: cfg.weight_decay, ..Default::default() }.build(vs, lr)?
            }
        };
        Ok(Stepper { opt, vars: vs.trainable_variables(), clip: cfg.clip })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.opt.set_lr(lr);
    }

    /// Trains on one batch. Returns, as device scalars (no host sync), `[loss × items, correct, gradient norm
    /// before clipping, after clipping]`, and the number of items.
    pub fn step(&mut self, model: &dyn Objective, batch: &Batch) -> ([Tensor; 4], f64) {
        self.step_timed(model, batch, &mut |_| {})
    }

    /// As [`step`](Self::step), calling `lap` with the name of each phase as it ends: [`PHASES`] in order.
    pub fn step_timed(
        &mut self,
        model: &dyn Objective,
        batch: &Batch,
        lap: &mut dyn FnMut(&'static str),
    ) -> ([Tensor; 4], f64) {
        let s = model.stats(batch, true);
        lap(PHASES[0]);
        self.opt.zero_grad();
        model.backward(&s.loss);
        lap(PHASES[1]);
        let (norm, clipped) = clip_grad_norm(&self.vars, self.clip);
        lap(PHASES[2]);
        self.opt.step();
        lap(PHASES[3]);
        let n = s.count as f64;
        let d = |t: Tensor| t.to_kind(Kind::Double);
        ([d(s.loss.detach()) * n, d(s.correct), d(norm), d(clipped)], n)
    }
}

/// Global L2 norm of all gradients, scaled down to `max` when above it, without a host sync.
/// Returns (norm before, norm after) as scalar tensors.
pub fn clip_grad_norm(vars: &[Tensor], max: Option<f64>) -> (Tensor, Tensor) {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = vars.iter().map(Tensor::grad).filter(Tensor::defined).collect();
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm().to_kind(Kind::Float)).collect();
        let total = Tensor::stack(&norms, 0).norm();
        match max {
            Some(m) => {
                let coef = ((&total + 1e-6).reciprocal() * m).clamp_max(1.0);
                for g in &grads {
                    let _ = g.shallow_clone().g_mul_(&coef);
                }
                let after = &total * &coef;
                (total, after)
            }
            None => (total.shallow_clone(), total),
        }
    })
}

/// Mean loss and accuracy over a split, in evaluation mode, one host sync.
pub fn evaluate(model: &dyn Objective, split: &Split, batch_size: usize, device: Device) -> (f64, f64) {
    model.reset();
    tch::no_grad(|| {
        let mut sums = Tensor::zeros([2], (Kind::Double, device));
        let mut count = 0i64;
        for idx in split.batches(batch_size, None, true) {
            let s = model.stats(&split.batch(&idx, device), false);
            sums += Tensor::stack(&[s.loss.to_kind(Kind::Double) * s.count as f64, s.correct.to_kind(Kind::Double)], 0);
            count += s.count;
        }
        let v = Vec::<f64>::try_from(sums.to_device(Device::Cpu)).expect("eval sums");
        (v[0] / count as f64, v[1] / count as f64)
    })
}
