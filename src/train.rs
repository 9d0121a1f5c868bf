//! The one training loop, for every experiment.
//!
//! Per step: forward, backward, global gradient norm before and after clipping, optimiser step. Every
//! `log_every` steps the step statistics are read back in one host sync, checked for NaN/Inf and handed to the
//! run (`steps.csv`). Per epoch: train (running) and val/test loss and accuracy → the run (`metrics.csv`); the
//! best epoch (`train.best_by`: validation loss or accuracy) → kept weights (early stopping with `patience`). With `train.average`, val/test are evaluated (and kept) with
//! a moving average of the weights, while training continues from the live ones. A non-finite loss ends the run
//! as `diverged`, keeping everything written so far.
use crate::config::{BestBy, OptimizerKind, Sampling, TrainConfig};
use crate::data::{Balanced, Batch, Dataset, Split};
use crate::model::Objective;
use crate::progress;
use crate::results::rows::{RowStatus, SplitName, StepRow};
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
    check_batching(data, cfg)?;
    flush_denormals(cfg.flush_denormals)?;
    let mut l = Loop::new(model, vs, data, cfg, lr, run)?;
    if let Some(h) = hook.as_mut() {
        (h.call)(0, true, run)?;
    }
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let diverged = l.train_epoch(epoch, run, &mut hook)?;
        l.train_s += t0.elapsed().as_secs_f64();
        if let Some(message) = diverged {
            (l.status, l.message) = (Status::Diverged, Some(message));
            break;
        }
        if !l.end_epoch(epoch, run)? {
            break;
        }
    }
    l.pb.finish_and_clear();
    if let Some(h) = hook.as_mut() {
        (h.call)(l.step, true, run)?;
    }
    run.flush()?;
    let result = l.results(run, vs);
    run.meta.result.extend(result.clone());
    run.finish(l.status, l.message.take())?;
    Ok(Outcome { status: l.status, steps: l.step, result })
}

/// A language model that carries its state from batch to batch needs its windows in order, one per stream.
fn check_batching(data: &Dataset, cfg: &TrainConfig) -> Result<()> {
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
    Ok(())
}

/// The state of one [`fit`].
struct Loop<'a> {
    model: &'a dyn Objective,
    data: &'a Dataset,
    cfg: &'a TrainConfig,
    lr: f64,
    device: Device,
    stepper: Stepper,
    vars: Vec<Tensor>,
    rng: Rng,
    balanced: Option<Balanced>,
    /// The moving average of the weights (`train.average`).
    average: Option<Vec<Tensor>>,
    pb: progress::ProgressBar,
    step: usize,
    train_s: f64,
    seqs: usize,
    /// (key, epoch, weights) of the best epoch so far: the lowest key (validation loss, or −accuracy).
    best: Option<(f64, usize, Vec<Tensor>)>,
    since_best: usize,
    status: Status,
    message: Option<String>,
}

/// The running sums of an epoch's training steps.
#[derive(Default)]
struct Sums {
    loss: f64,
    correct: f64,
    count: f64,
}

impl<'a> Loop<'a> {
    fn new(
        model: &'a dyn Objective,
        vs: &nn::VarStore,
        data: &'a Dataset,
        cfg: &'a TrainConfig,
        lr: f64,
        run: &RunDir,
    ) -> Result<Self> {
        let balanced = match cfg.sampling {
            Sampling::Balanced if data.train.labels.dim() != 1 => {
                anyhow::bail!("train.sampling: balanced needs one class per sequence (a classifier's data)")
            }
            Sampling::Balanced => Some(Balanced::new(&data.train.label_vec(), data.shape.classes.len())),
            Sampling::Natural => None,
        };
        let vars = vs.trainable_variables();
        let per_epoch = data.train.len().div_ceil(cfg.batch_size);
        Ok(Loop {
            model,
            data,
            cfg,
            lr,
            device: vs.device(),
            stepper: Stepper::new(vs, cfg, lr)?,
            rng: Rng::derived(run.meta.seed, "batches"),
            balanced,
            average: (cfg.average > 0.0).then(|| tch::no_grad(|| copies(&vars))),
            vars,
            pb: progress::bar((per_epoch * cfg.epochs) as u64, &run.meta.run),
            step: 0,
            train_s: 0.0,
            seqs: 0,
            best: None,
            since_best: 0,
            status: Status::Finished,
            message: None,
        })
    }

    /// This epoch's batches of training rows.
    fn batches(&mut self) -> Vec<Vec<i64>> {
        let (train, bs) = (&self.data.train, self.cfg.batch_size);
        if let Some(b) = self.balanced.as_mut() {
            let rows = b.epoch(train.len(), &mut self.rng);
            train.batches_of(rows, bs, Some(&mut self.rng), self.cfg.bucket)
        } else if self.cfg.shuffle {
            train.batches(bs, Some(&mut self.rng), self.cfg.bucket)
        } else {
            train.batches(bs, None, false)
        }
    }

    /// Trains one epoch; records its steps and its training row. Returns the message when the loss became
    /// NaN/Inf (the epoch stops there).
    fn train_epoch(&mut self, epoch: usize, run: &mut RunDir, hook: &mut Option<StepHook>) -> Result<Option<String>> {
        self.stepper.set_lr(self.lr * self.cfg.lr_decay.powi(epoch as i32 - 1));
        let batches = self.batches();
        self.model.reset();
        let mut pending: Vec<([Tensor; 4], f64)> = Vec::new();
        let mut sums = Sums::default();
        for (i, idx) in batches.iter().enumerate() {
            pending.push(self.stepper.step(self.model, &self.data.train.batch(idx, self.device))?);
            self.step += 1;
            self.seqs += idx.len();
            if let Some(avg) = self.average.as_mut() {
                // Warm-up: early steps weigh more, so the average does not remember the initial weights.
                let decay = self.cfg.average.min((1 + self.step) as f64 / (10 + self.step) as f64);
                tch::no_grad(|| avg.iter_mut().zip(&self.vars).for_each(|(a, v)| drop(a.lerp_(v, 1.0 - decay))));
            }
            if self.step.is_multiple_of(self.cfg.log_every) || i + 1 == batches.len() {
                if let Some((at, loss)) = self.flush_steps(&mut pending, &mut sums, epoch, run)? {
                    let acc = sums.correct / sums.count;
                    run.metric(epoch, at, SplitName::Train, loss, acc, RowStatus::Diverged);
                    return Ok(Some(format!("loss became {loss} at step {at} (epoch {epoch}); run stopped")));
                }
            }
            if let Some(h) = hook.as_mut().filter(|h| h.every > 0 && self.step.is_multiple_of(h.every)) {
                (h.call)(self.step, false, run)?;
            }
        }
        run.metric(
            epoch,
            self.step,
            SplitName::Train,
            sums.loss / sums.count,
            sums.correct / sums.count,
            RowStatus::Ok,
        );
        Ok(None)
    }

    /// The steps since the last flush, read back in one host sync: into the run's `steps.csv` rows and the
    /// epoch's sums. Returns the first non-finite loss (step, loss), if any.
    fn flush_steps(
        &self,
        pending: &mut Vec<([Tensor; 4], f64)>,
        sums: &mut Sums,
        epoch: usize,
        run: &mut RunDir,
    ) -> Result<Option<(usize, f64)>> {
        let rows: Vec<Tensor> = pending.iter().map(|p| Tensor::stack(&p.0, 0).to_kind(Kind::Double)).collect();
        let host = Vec::<f64>::try_from(Tensor::stack(&rows, 0).flatten(0, -1).to_device(Device::Cpu))?;
        let first = self.step + 1 - pending.len();
        let mut bad = None;
        for (k, (v, (_, n))) in host.chunks(4).zip(pending.iter()).enumerate() {
            let loss = v[0] / n;
            run.step(StepRow { step: first + k, epoch, loss, grad_norm: v[2], grad_norm_clipped: v[3] });
            sums.loss += v[0];
            sums.correct += v[1];
            sums.count += n;
            if !loss.is_finite() && bad.is_none() {
                bad = Some((first + k, loss));
            }
        }
        pending.clear();
        self.pb.set_position(self.step as u64);
        self.pb.set_message(format!("epoch {epoch} loss {:.4}", sums.loss / sums.count.max(1.0)));
        Ok(bad)
    }

    /// After an epoch: val (and test) rows, with the averaged weights when averaging; the best epoch so far and
    /// early stopping. Returns whether to go on.
    fn end_epoch(&mut self, epoch: usize, run: &mut RunDir) -> Result<bool> {
        let (model, bs, device) = (self.model, self.cfg.batch_size, self.device);
        let train = run.metrics().last().map(|r| (r.loss, r.acc)).unwrap_or_default();
        let mut line = format!("{} epoch {epoch:>3}: train loss {:.4} acc {:.4}", run.meta.run, train.0, train.1);
        // Evaluated (and kept, if best) with the averaged weights; training goes on from the live ones.
        let live = self.average.as_ref().map(|avg| {
            tch::no_grad(|| {
                let live = copies(&self.vars);
                load(&self.vars, avg);
                live
            })
        });
        let val = self.data.val.as_ref().map(|v| evaluate(model, v, bs, device));
        if let Some((l, a)) = val {
            run.metric(epoch, self.step, SplitName::Val, l, a, RowStatus::Ok);
            line += &format!(" | val loss {l:.4} acc {a:.4}");
        }
        if let (true, Some(t)) = (self.cfg.test_each_epoch, &self.data.test) {
            let (l, a) = evaluate(model, t, bs, device);
            run.metric(epoch, self.step, SplitName::Test, l, a, RowStatus::Ok);
            line += &format!(" | test acc {a:.4}");
        }
        progress::line(&self.pb, &line);
        run.flush()?;
        // Best epoch by validation loss or accuracy (training split when there is no validation split).
        let (loss, acc) = val.unwrap_or(train);
        if !loss.is_finite() {
            self.status = Status::Diverged;
            self.message = Some(format!("evaluation loss became {loss} after epoch {epoch}; run stopped"));
            return Ok(false);
        }
        let key = match self.cfg.best_by {
            BestBy::ValLoss => loss,
            BestBy::ValAcc => -acc,
        };
        let better = self.best.as_ref().is_none_or(|b| key < b.0);
        if better {
            self.best = Some((key, epoch, tch::no_grad(|| copies(&self.vars))));
        }
        if let Some(live) = live {
            tch::no_grad(|| load(&self.vars, &live));
        }
        self.since_best = if better { 0 } else { self.since_best + 1 };
        if self.cfg.patience.is_some_and(|p| self.since_best >= p) {
            let best = self.best.as_ref().map_or(0, |b| b.1);
            progress::line(&self.pb, &format!("{}: early stop after epoch {epoch} (best epoch {best})", run.meta.run));
            return Ok(false);
        }
        Ok(true)
    }

    /// The run's final numbers: steps and speed, and val/test with the kept weights (the best epoch's; the
    /// initial ones when nothing was trained), which are loaded into the model.
    fn results(&mut self, run: &RunDir, vs: &nn::VarStore) -> BTreeMap<String, f64> {
        let mut result = BTreeMap::new();
        result.insert("steps".into(), self.step as f64);
        result.insert("train_s".into(), self.train_s);
        result.insert("train_seq_per_s".into(), self.seqs as f64 / self.train_s.max(1e-9));
        result.insert("n_params".into(), crate::model::n_params(vs) as f64);
        let kept = match self.best.take() {
            Some((_, best_epoch, weights)) if self.status == Status::Finished => {
                tch::no_grad(|| load(&self.vars, &weights));
                result.insert("best_epoch".into(), best_epoch as f64);
                true
            }
            _ => self.cfg.epochs == 0,
        };
        if kept {
            for (split, name) in [(&self.data.val, "val"), (&self.data.test, "test")] {
                if let Some(s) = split {
                    let (l, a) = evaluate(self.model, s, self.cfg.batch_size, self.device);
                    result.insert(format!("{name}_loss"), l);
                    result.insert(format!("{name}_acc"), a);
                }
            }
        }
        if let Some(r) = run.metrics().iter().rev().find(|r| r.split == SplitName::Train) {
            result.insert("train_loss".into(), r.loss);
            result.insert("train_acc".into(), r.acc);
        }
        result
    }
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

/// Puts the CPU's threads in the mode `train.flush_denormals` asks for. Untouched while no run has asked for it,
/// so that a process that never flushes never enters a parallel region for it.
pub fn flush_denormals(on: bool) -> Result<()> {
    static EVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if on || EVER.load(std::sync::atomic::Ordering::Relaxed) {
        EVER.store(true, std::sync::atomic::Ordering::Relaxed);
        let threads = tch::get_num_threads().max(1) as usize;
        let reached = crate::model::fused::rows::set_flush_denormals(on, threads)
            .map_err(|e| anyhow::anyhow!("train.flush_denormals: {e}"))?;
        if on && !reached {
            crate::progress::say!("warning: train.flush_denormals reached only this thread, not libtorch's pool");
        }
    }
    Ok(())
}

/// The phases of one training step, as [`Stepper::step_timed`] reports them.
pub const PHASES: [&str; 4] = ["forward + loss", "backward", "grad norm / clip", "optimiser step"];

/// One optimiser step at a time: forward, backward, clipping, update. Shared by [`fit`] and the benchmark.
pub struct Stepper {
    opt: nn::Optimizer,
    vars: Vec<Tensor>,
    clip: Option<f64>,
    /// `train.overflow_at_step`, and the steps taken.
    overflow_at: Option<usize>,
    taken: usize,
}

impl Stepper {
    pub fn new(vs: &nn::VarStore, cfg: &TrainConfig, lr: f64) -> Result<Self> {
        let opt = match cfg.optimizer {
            OptimizerKind::Adam => nn::Adam { wd: cfg.weight_decay, ..Default::default() }.build(vs, lr)?,
            OptimizerKind::Sgd => {
                nn::Sgd { momentum: cfg.momentum, wd: cfg.weight_decay, ..Default::default() }.build(vs, lr)?
            }
        };
        Ok(Stepper { opt, vars: vs.trainable_variables(), clip: cfg.clip, overflow_at: cfg.overflow_at_step, taken: 0 })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.opt.set_lr(lr);
    }

    /// Trains on one batch. Returns, as device scalars (no host sync), `[loss × items, correct, gradient norm
    /// before clipping, after clipping]`, and the number of items.
    pub fn step(&mut self, model: &dyn Objective, batch: &Batch) -> Result<([Tensor; 4], f64)> {
        self.step_timed(model, batch, &mut |_| {})
    }

    /// As [`step`](Self::step), calling `lap` with the name of each phase as it ends: [`PHASES`] in order.
    pub fn step_timed(
        &mut self,
        model: &dyn Objective,
        batch: &Batch,
        lap: &mut dyn FnMut(&'static str),
    ) -> Result<([Tensor; 4], f64)> {
        let mut s = model.stats(batch, true);
        self.taken += 1;
        if self.overflow_at == Some(self.taken) {
            s.loss = &s.loss * f64::INFINITY;
        }
        lap(PHASES[0]);
        self.opt.zero_grad();
        crate::model::backward(&s.loss)?;
        lap(PHASES[1]);
        let (norm, clipped) = clip_grad_norm(&self.vars, self.clip);
        lap(PHASES[2]);
        self.opt.step();
        lap(PHASES[3]);
        let n = s.count as f64;
        let d = |t: Tensor| t.to_kind(Kind::Double);
        Ok(([d(s.loss.detach()) * n, d(s.correct), d(norm), d(clipped)], n))
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
