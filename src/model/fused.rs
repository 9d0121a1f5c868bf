//! The fused training path of the GRU and the vanilla RNN on the CPU (`model.impl: fused`).
//!
//! Forward, per layer and direction: the input projections of all steps in one GEMM, then per step one GEMM for
//! the hidden projection and one pass in Rust over the gates, which keeps what the backward pass needs. Backward
//! (the approach cuDNN takes): the chain over steps carries only ∂L/∂h (per step one GEMM and one pass), and the
//! weight gradients are two GEMMs over all steps afterwards.
//!
//! tch has no custom autograd functions, so the backward is split. A fused call runs on a detached copy of its
//! input and returns a leaf that requires grad; the model's head and loss stay in autograd. [`Tape::backward`]
//! runs after `loss.backward()` has filled the leaves' gradients: for each call, last first, the hand-written
//! backward through time, then one small backward of `Σ w·∂L/∂w + x·∂L/∂x` that puts the weight gradients into
//! the variables and carries ∂L/∂x through whatever made the input (dropout, the reversal of a bidirectional
//! layer, the previous layer's leaf, the embedding).
//!
//! The gate nonlinearities in float32 use a vectorised exp (AVX2+FMA when the CPU has it) accurate to a few
//! units in the last place; float64 uses the standard library (the tests compare both with libtorch's kernels).
use crate::config::CellKind;
use std::cell::RefCell;
use tch::{Kind, Tensor};

/// What a fused call keeps for its backward pass.
struct Call {
    /// Calls of one group (the directions of one layer) share their input's graph: one backward for them all.
    group: usize,
    cell: CellKind,
    /// The input as given (part of the autograd graph, when it needs a gradient).
    input: Tensor,
    /// `[T·B, I]` the detached input, time-major.
    x: Tensor,
    /// The initial state as given, when it needs a gradient.
    h0: Option<Tensor>,
    /// `[T + 1, B, H]`: h_0 .. h_T.
    hs: Tensor,
    /// GRU: `[T, B, 4H]`: r, z, n and W_hn h + b_hn per step.
    saved: Tensor,
    w: [Tensor; 4],
    /// `[B, T, H]` the leaf returned to the rest of the model.
    out: Tensor,
}

/// The fused calls of one training step, for [`Tape::backward`], and the work buffers they reuse from step to
/// step (fresh buffers of tens of MB each step cost page faults: ~15 % of a step).
#[derive(Default)]
pub struct Tape {
    calls: RefCell<Vec<Call>>,
    pool: RefCell<Vec<Tensor>>,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Tape({} calls)", self.calls.borrow().len())
    }
}

/// Whether the fused path covers this cell (the LSTM keeps libtorch's oneDNN kernel) on this device.
pub fn covers(cell: CellKind, x: &Tensor) -> bool {
    cell != CellKind::Lstm && x.device() == tch::Device::Cpu && matches!(x.kind(), Kind::Float | Kind::Double)
}

impl Tape {
    /// Forgets the calls of a step that will not be backpropagated.
    pub fn clear(&self) {
        self.calls.borrow_mut().clear();
    }

    pub fn is_empty(&self) -> bool {
        self.calls.borrow().is_empty()
    }

    /// The calls recorded since the last forward pass (one per layer and direction that ran fused).
    pub fn len(&self) -> usize {
        self.calls.borrow().len()
    }

    /// A work buffer of this shape (contents undefined), from the pool when it holds one.
    fn buffer(&self, shape: &[i64], like: &Tensor) -> Tensor {
        let mut pool = self.pool.borrow_mut();
        match pool.iter().position(|t| t.size() == shape && t.kind() == like.kind() && t.device() == like.device()) {
            Some(i) => pool.swap_remove(i),
            None => Tensor::empty(shape, (like.kind(), like.device())),
        }
    }

    /// Returns work buffers to the pool (at most a few dozen are kept).
    fn recycle(&self, ts: impl IntoIterator<Item = Tensor>) {
        let mut pool = self.pool.borrow_mut();
        pool.extend(ts);
        let excess = pool.len().saturating_sub(32);
        pool.drain(..excess);
    }

    /// One layer, one direction: `x` `[B, T, I]`, weights `[w_ih, w_hh, b_ih, b_hh]`, initial state `[B, H]`
    /// (zeros when None). Returns the outputs `[B, T, H]` and the final state `[B, H]`. With `record`, the call is
    /// kept for [`backward`](Self::backward) and the outputs are a leaf requiring grad; `group` is the layer (its
    /// directions' inputs come from one graph, which is backpropagated once).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        cell: CellKind,
        x: &Tensor,
        h0: Option<&Tensor>,
        w: &[Tensor; 4],
        record: bool,
        group: usize,
    ) -> (Tensor, Tensor) {
        let (b, t_len, i) = (x.size()[0], x.size()[1], x.size()[2]);
        let h = w[1].size()[1];
        let g = w[0].size()[0];
        let kind = x.kind();
        let (xs, hs, saved) = tch::no_grad(|| {
            let mut xs = self.buffer(&[t_len, b, i], x);
            xs.copy_(&x.detach().transpose(0, 1));
            let xs = xs.view([t_len * b, i]);
            // All input projections at once: [T·B, G].
            let gx = self.buffer(&[t_len * b, g], x);
            let _ = w[2].detach().addmm_out(&gx, &xs, &w[0].detach().tr());
            let hs = Tensor::zeros([t_len + 1, b, h], (kind, x.device()));
            if let Some(h0) = h0 {
                hs.get(0).copy_(&h0.detach());
            }
            let saved = match cell {
                CellKind::Gru => self.buffer(&[t_len, b, 4 * h], x),
                _ => Tensor::empty([0], (kind, x.device())),
            };
            let split = if x.device() == tch::Device::Cpu {
                super::rows::split(b as usize, tch::get_num_threads() as usize)
            } else {
                None
            };
            if let Some(n) = split {
                let (w_hh, b_hh) = (w[1].detach().contiguous(), w[3].detach().contiguous());
                rows_forward(cell, n, &gx, &w_hh, &b_hh, &hs, &saved);
                self.recycle([gx]);
                return (xs, hs, saved);
            }
            let gh = self.buffer(&[b, g], x);
            let (w_hh_t, b_hh) = (w[1].detach().tr(), w[3].detach());
            for t in 0..t_len {
                let _ = b_hh.addmm_out(&gh, &hs.get(t), &w_hh_t);
                match kind {
                    Kind::Double => step_forward::<f64>(cell, &gx, &gh, &hs, &saved, t, b, h),
                    _ => step_forward::<f32>(cell, &gx, &gh, &hs, &saved, t, b, h),
                }
            }
            self.recycle([gx, gh]);
            (xs, hs, saved)
        });
        let out = hs.narrow(0, 1, t_len).transpose(0, 1);
        if !record {
            let last = hs.get(t_len);
            self.recycle([xs, saved]);
            return (out, last);
        }
        let out = out.set_requires_grad(true);
        let last = out.select(1, t_len - 1);
        self.calls.borrow_mut().push(Call {
            group,
            cell,
            input: x.shallow_clone(),
            x: xs,
            h0: h0.filter(|h| h.requires_grad()).map(Tensor::shallow_clone),
            hs,
            saved,
            w: [w[0].shallow_clone(), w[1].shallow_clone(), w[2].shallow_clone(), w[3].shallow_clone()],
            out: out.shallow_clone(),
        });
        (out, last)
    }

    /// After `loss.backward()`: the backward pass of every recorded call, the last layer first (see the module
    /// docs).
    pub fn backward(&self) {
        let mut calls: Vec<Call> = self.calls.borrow_mut().drain(..).collect();
        while let Some(group) = calls.last().map(|c| c.group) {
            let split = calls.iter().position(|c| c.group == group).unwrap_or(0);
            let mut terms: Vec<Tensor> = Vec::new();
            for c in calls.drain(split..) {
                let dout = c.out.grad();
                if !dout.defined() {
                    continue;
                }
                let (dw, dx, dh0) = tch::no_grad(|| self.call_backward(&c, &dout));
                self.recycle([c.x.shallow_clone(), c.saved.shallow_clone()]);
                terms.extend(c.w.iter().zip(&dw).map(|(w, d)| (w * d).sum(Kind::Double)));
                if c.input.requires_grad() {
                    terms.push((&c.input * dx).sum(Kind::Double));
                }
                if let Some(h0) = &c.h0 {
                    terms.push((h0 * dh0).sum(Kind::Double));
                }
            }
            if !terms.is_empty() {
                Tensor::stack(&terms, 0).sum(Kind::Double).backward();
            }
        }
    }
}

impl Tape {
    /// ∂L/∂[w_ih, w_hh, b_ih, b_hh], ∂L/∂x `[B, T, I]` and ∂L/∂h_0 `[B, H]` of one call.
    fn call_backward(&self, c: &Call, dout: &Tensor) -> ([Tensor; 4], Tensor, Tensor) {
        let (t_len, b, h) = (c.hs.size()[0] - 1, c.hs.size()[1], c.hs.size()[2]);
        let g = c.w[0].size()[0];
        let (kind, device) = (c.hs.kind(), c.hs.device());
        let mut d = self.buffer(&[t_len, b, h], &c.hs);
        d.copy_(&dout.transpose(0, 1));
        let dout = d;
        let dgx = self.buffer(&[t_len, b, g], &c.hs);
        // The GRU's hidden-side gate gradients differ from the input side's in the new gate (× r); the RNN's do not.
        let dgh = if c.cell == CellKind::Gru { self.buffer(&[t_len, b, g], &c.hs) } else { dgx.shallow_clone() };
        let dh_next = Tensor::zeros([b, h], (kind, device));
        let carry = Tensor::empty([b, h], (kind, device));
        let w_hh = c.w[1].detach().contiguous();
        let split = if device == tch::Device::Cpu {
            super::rows::split(b as usize, tch::get_num_threads() as usize)
        } else {
            None
        };
        if let Some(n) = split {
            rows_backward(c, n, &dout, &w_hh, &dgx, &dgh, &dh_next);
        }
        for t in (0..t_len).rev().filter(|_| split.is_none()) {
            match kind {
                Kind::Double => step_backward::<f64>(c, &dout, &dh_next, &carry, &dgx, &dgh, t, b, h),
                _ => step_backward::<f32>(c, &dout, &dh_next, &carry, &dgx, &dgh, t, b, h),
            }
            // ∂L/∂h_{t-1} = the direct path + the gates' path through W_hh.
            let _ = carry.addmm_out(&dh_next, &dgh.get(t), &w_hh);
        }
        let (dgx2, dgh2) = (dgx.view([t_len * b, g]), dgh.view([t_len * b, g]));
        let h_prev = c.hs.narrow(0, 0, t_len).reshape([t_len * b, h]);
        let dw = [
            dgx2.tr().mm(&c.x),
            dgh2.tr().mm(&h_prev),
            dgx2.sum_dim_intlist([0].as_slice(), false, kind),
            dgh2.sum_dim_intlist([0].as_slice(), false, kind),
        ];
        let dx = dgx2.mm(&c.w[0].detach()).view([t_len, b, -1]).transpose(0, 1);
        self.recycle([dout, dgx, dgh, carry]);
        (dw, dx, dh_next)
    }
}

/// A float the gate loops run on.
pub(super) trait Real:
    Copy
    + Default
    + tch::kind::Element
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
{
    const ONE: Self;
    fn sigmoid(self) -> Self;
    fn tanh(self) -> Self;
}

impl Real for f64 {
    const ONE: f64 = 1.0;
    fn sigmoid(self) -> f64 {
        1.0 / (1.0 + (-self).exp())
    }
    fn tanh(self) -> f64 {
        f64::tanh(self)
    }
}

impl Real for f32 {
    const ONE: f32 = 1.0;
    #[inline(always)]
    fn sigmoid(self) -> f32 {
        1.0 / (1.0 + exp(-self))
    }
    #[inline(always)]
    fn tanh(self) -> f32 {
        tanh(self)
    }
}

/// e^x in float32: x = n ln 2 + r with |r| ≤ ln 2 / 2, e^r by its Taylor polynomial to degree 7 (truncation error
/// < 1e-8 relative), 2^n through the exponent bits. Branch-free, so that loops of it vectorise.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // SAFETY: |n| ≤ 127 after the clamp, so the conversion is exact (and vectorises, unlike a saturating `as`).
    let n = unsafe { n.to_int_unchecked::<i32>() };
    p * f32::from_bits(((n + 127) as u32) << 23)
}

/// tanh in float32: its odd Taylor series to x¹³ for |x| < 0.5 (error < 1e-7 relative), else 1 − 2/(e^{2|x|} + 1)
/// with the sign restored.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let big = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    let s = x * x;
    let small = x
        * (1.0
            + s * (-1.0 / 3.0
                + s * (2.0 / 15.0
                    + s * (-17.0 / 315.0
                        + s * (62.0 / 2835.0 + s * (-1382.0 / 155_925.0 + s * (21_844.0 / 6_081_075.0)))))));
    if a < 0.5 {
        small
    } else {
        big.copysign(x)
    }
}

/// [`super::rows::forward`] on tensors (`gx` `[T·B, G]`, `hs` `[T + 1, B, H]`, the rest as there), in their kind.
fn rows_forward(cell: CellKind, n: usize, gx: &Tensor, w_hh: &Tensor, b_hh: &Tensor, hs: &Tensor, saved: &Tensor) {
    /// # Safety
    /// Contiguous CPU tensors of kind R and of the shapes above.
    unsafe fn go<R: super::rows::Gemm>(cell: CellKind, n: usize, ts: [&Tensor; 5]) {
        let [gx, w_hh, b_hh, hs, saved] = ts;
        let [t1, b, h] = [0, 1, 2].map(|d| hs.size()[d] as usize);
        super::rows::forward::<R>(cell, n, slice(gx), slice(w_hh), slice(b_hh), slice(hs), slice(saved), t1 - 1, b, h)
    }
    let ts = [gx, w_hh, b_hh, hs, saved];
    // SAFETY: the caller's buffers are contiguous CPU tensors of one kind, alive for the call.
    unsafe {
        match gx.kind() {
            Kind::Double => go::<f64>(cell, n, ts),
            _ => go::<f32>(cell, n, ts),
        }
    }
}

/// [`super::rows::backward`] on tensors, for a recorded call `c`, in its kind; `dgh` is `dgx` for the RNN, which
/// then writes only through `dgx`.
fn rows_backward(c: &Call, n: usize, dout: &Tensor, w_hh: &Tensor, dgx: &Tensor, dgh: &Tensor, dh0: &Tensor) {
    /// # Safety
    /// Contiguous CPU tensors of kind R and of the call's shapes.
    unsafe fn go<R: super::rows::Gemm>(c: &Call, n: usize, ts: [&Tensor; 5]) {
        let [dout, w_hh, dgx, dgh, dh0] = ts;
        let [t1, b, h] = [0, 1, 2].map(|d| c.hs.size()[d] as usize);
        let (dgx, dgh) = (dgx.data_ptr() as *mut R, dgh.data_ptr() as *mut R);
        let (hs, saved) = (slice(&c.hs), slice(&c.saved));
        super::rows::backward::<R>(c.cell, n, slice(dout), hs, saved, slice(w_hh), dgx, dgh, slice(dh0), t1 - 1, b, h)
    }
    let ts = [dout, w_hh, dgx, dgh, dh0];
    // SAFETY: the caller's buffers are contiguous CPU tensors of one kind, alive for the call.
    unsafe {
        match c.hs.kind() {
            Kind::Double => go::<f64>(c, n, ts),
            _ => go::<f32>(c, n, ts),
        }
    }
}

/// A tensor's memory as a slice (the tensor must be contiguous, on the CPU, of kind `R`, and outlive the slice).
#[allow(clippy::mut_from_ref)]
unsafe fn slice<R: Real>(t: &Tensor) -> &mut [R] {
    debug_assert!(t.is_contiguous() && t.kind() == R::KIND);
    if t.numel() == 0 {
        // An empty tensor's data pointer may be null, which a slice must never be.
        return &mut [];
    }
    std::slice::from_raw_parts_mut(t.data_ptr() as *mut R, t.numel())
}

/// Step t of the forward pass: gates from `gx[t]` and `gh`, h_{t+1} into `hs`, what backward needs into `saved`.
#[allow(clippy::too_many_arguments)]
fn step_forward<R: Real>(
    cell: CellKind,
    gx: &Tensor,
    gh: &Tensor,
    hs: &Tensor,
    saved: &Tensor,
    t: i64,
    b: i64,
    h: i64,
) {
    let (b, h, t) = (b as usize, h as usize, t as usize);
    let g = gh.size()[1] as usize;
    // SAFETY: every tensor is contiguous, on the CPU, of kind R, alive for this call, and the ranges are disjoint.
    let (gx, gh, hs, saved) = unsafe { (slice::<R>(gx), slice::<R>(gh), slice::<R>(hs), slice::<R>(saved)) };
    let (prev, next) = hs.split_at_mut((t + 1) * b * h);
    let prev = &prev[t * b * h..];
    let next = &mut next[..b * h];
    let gx = &gx[t * b * g..(t + 1) * b * g];
    match cell {
        CellKind::Gru => gru_forward_rows(gx, gh, prev, next, &mut saved[t * b * 4 * h..(t + 1) * b * 4 * h], b, h),
        _ => rnn_forward_rows(gx, gh, next),
    }
}

/// Step t of the backward pass: ∂L/∂h_t (output gradient + what came back from step t + 1) → the gates'
/// gradients `dgx[t]`, `dgh[t]` and the direct part of ∂L/∂h_{t−1} into `carry`.
#[allow(clippy::too_many_arguments)]
fn step_backward<R: Real>(
    c: &Call,
    dout: &Tensor,
    dh_next: &Tensor,
    carry: &Tensor,
    dgx: &Tensor,
    dgh: &Tensor,
    t: i64,
    b: i64,
    h: i64,
) {
    let (b, h, t) = (b as usize, h as usize, t as usize);
    let n = b * h;
    // SAFETY: as in step_forward; dgh aliases dgx for the RNN, which then only writes through dgx.
    unsafe {
        let dout = &slice::<R>(dout)[t * n..(t + 1) * n];
        let dh_next = slice::<R>(dh_next);
        let carry = slice::<R>(carry);
        let hs = slice::<R>(&c.hs);
        match c.cell {
            CellKind::Gru => {
                let g = 3 * h;
                let saved = &slice::<R>(&c.saved)[t * b * 4 * h..(t + 1) * b * 4 * h];
                let prev = &hs[t * n..(t + 1) * n];
                let dgx = &mut slice::<R>(dgx)[t * b * g..(t + 1) * b * g];
                let dgh = &mut slice::<R>(dgh)[t * b * g..(t + 1) * b * g];
                gru_backward_rows(dout, dh_next, saved, prev, dgx, dgh, carry, b, h)
            }
            _ => {
                let out = &hs[(t + 1) * n..(t + 2) * n];
                let dgx = &mut slice::<R>(dgx)[t * n..(t + 1) * n];
                rnn_backward_rows(dout, dh_next, out, dgx);
                carry.iter_mut().for_each(|v| *v = R::default());
            }
        }
    }
}

/// Whether the CPU has AVX2 and FMA: the `*_wide` copies of the gate loops, compiled for them, then run (the loops
/// vectorise 8 floats wide).
fn wide() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The gate loops compiled for AVX2 and FMA (call only when [`wide`] is true). On other targets, the plain loops.
macro_rules! wide_copy {
    ($wide:ident = $plain:ident($($arg:ident: $ty:ty),*)) => {
        #[allow(clippy::too_many_arguments)]
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
        unsafe fn $wide<R: Real>($($arg: $ty),*) {
            $plain($($arg),*)
        }
    };
}

wide_copy!(gru_forward_wide = gru_forward(gx: &[R], gh: &[R], prev: &[R], next: &mut [R], saved: &mut [R], b: usize, h: usize));
wide_copy!(rnn_forward_wide = rnn_forward(gx: &[R], gh: &[R], next: &mut [R]));
wide_copy!(gru_backward_wide = gru_backward(dout: &[R], dh_next: &[R], saved: &[R], prev: &[R], dgx: &mut [R], dgh: &mut [R], carry: &mut [R], b: usize, h: usize));
wide_copy!(rnn_backward_wide = rnn_backward(dout: &[R], dh_next: &[R], out: &[R], da: &mut [R]));

/// The gate loops of one step over `b` rows, in their AVX2+FMA copy when the CPU has it (for [`super::rows`]).
pub(super) fn gru_forward_rows<R: Real>(
    gx: &[R],
    gh: &[R],
    prev: &[R],
    next: &mut [R],
    sv: &mut [R],
    b: usize,
    h: usize,
) {
    if wide() {
        // SAFETY: AVX2 and FMA are present.
        unsafe { gru_forward_wide(gx, gh, prev, next, sv, b, h) }
    } else {
        gru_forward(gx, gh, prev, next, sv, b, h)
    }
}

pub(super) fn rnn_forward_rows<R: Real>(gx: &[R], gh: &[R], next: &mut [R]) {
    if wide() {
        // SAFETY: AVX2 and FMA are present.
        unsafe { rnn_forward_wide(gx, gh, next) }
    } else {
        rnn_forward(gx, gh, next)
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn gru_backward_rows<R: Real>(
    dout: &[R],
    dh_next: &[R],
    saved: &[R],
    prev: &[R],
    dgx: &mut [R],
    dgh: &mut [R],
    carry: &mut [R],
    b: usize,
    h: usize,
) {
    if wide() {
        // SAFETY: AVX2 and FMA are present.
        unsafe { gru_backward_wide(dout, dh_next, saved, prev, dgx, dgh, carry, b, h) }
    } else {
        gru_backward(dout, dh_next, saved, prev, dgx, dgh, carry, b, h)
    }
}

pub(super) fn rnn_backward_rows<R: Real>(dout: &[R], dh_next: &[R], out: &[R], da: &mut [R]) {
    if wide() {
        // SAFETY: AVX2 and FMA are present.
        unsafe { rnn_backward_wide(dout, dh_next, out, da) }
    } else {
        rnn_backward(dout, dh_next, out, da)
    }
}

/// GRU gates of one step (PyTorch's order r, z, n): h' = (1 − z) n + z h, n = tanh(x_n + r (W_hn h + b_hn)).
#[inline(always)]
fn gru_forward<R: Real>(gx: &[R], gh: &[R], prev: &[R], next: &mut [R], saved: &mut [R], b: usize, h: usize) {
    for i in 0..b {
        let (gx, gh) = (&gx[i * 3 * h..(i + 1) * 3 * h], &gh[i * 3 * h..(i + 1) * 3 * h]);
        let (xr, xz, xn) = (&gx[..h], &gx[h..2 * h], &gx[2 * h..]);
        let (hr, hz, hn) = (&gh[..h], &gh[h..2 * h], &gh[2 * h..]);
        let (prev, next) = (&prev[i * h..(i + 1) * h], &mut next[i * h..(i + 1) * h]);
        let sv = &mut saved[i * 4 * h..(i + 1) * 4 * h];
        let (sr, rest) = sv.split_at_mut(h);
        let (sz, rest) = rest.split_at_mut(h);
        let (sn, sgh) = rest.split_at_mut(h);
        for j in 0..h {
            let r = (xr[j] + hr[j]).sigmoid();
            let z = (xz[j] + hz[j]).sigmoid();
            let ghn = hn[j];
            let n = (xn[j] + r * ghn).tanh();
            next[j] = n + z * (prev[j] - n);
            sr[j] = r;
            sz[j] = z;
            sn[j] = n;
            sgh[j] = ghn;
        }
    }
}

#[inline(always)]
fn rnn_forward<R: Real>(gx: &[R], gh: &[R], next: &mut [R]) {
    for ((o, &a), &b) in next.iter_mut().zip(gx).zip(gh) {
        *o = (a + b).tanh();
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gru_backward<R: Real>(
    dout: &[R],
    dh_next: &[R],
    saved: &[R],
    prev: &[R],
    dgx: &mut [R],
    dgh: &mut [R],
    carry: &mut [R],
    b: usize,
    h: usize,
) {
    for i in 0..b {
        let row = i * h..(i + 1) * h;
        let (dout, dh_next, prev) = (&dout[row.clone()], &dh_next[row.clone()], &prev[row.clone()]);
        let carry = &mut carry[row];
        let sv = &saved[i * 4 * h..(i + 1) * 4 * h];
        let (sr, sz, sn, sgh) = (&sv[..h], &sv[h..2 * h], &sv[2 * h..3 * h], &sv[3 * h..]);
        let dgx = &mut dgx[i * 3 * h..(i + 1) * 3 * h];
        let (xr, rest) = dgx.split_at_mut(h);
        let (xz, xn) = rest.split_at_mut(h);
        let dgh = &mut dgh[i * 3 * h..(i + 1) * 3 * h];
        let (hr, rest) = dgh.split_at_mut(h);
        let (hz, hn) = rest.split_at_mut(h);
        for j in 0..h {
            let (r, z, n, ghn) = (sr[j], sz[j], sn[j], sgh[j]);
            let dh = dout[j] + dh_next[j];
            let da_n = dh * (R::ONE - z) * (R::ONE - n * n);
            let da_z = dh * (prev[j] - n) * z * (R::ONE - z);
            let da_r = da_n * ghn * r * (R::ONE - r);
            xr[j] = da_r;
            xz[j] = da_z;
            xn[j] = da_n;
            hr[j] = da_r;
            hz[j] = da_z;
            hn[j] = da_n * r;
            carry[j] = dh * z;
        }
    }
}

#[inline(always)]
fn rnn_backward<R: Real>(dout: &[R], dh_next: &[R], out: &[R], da: &mut [R]) {
    for (((d, &o), &n), &y) in da.iter_mut().zip(dout).zip(dh_next).zip(out) {
        *d = (o + n) * (R::ONE - y * y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_exp_and_tanh_are_within_a_few_ulp() {
        let mut worst = (0f64, 0f64);
        for k in -40_000..=40_000 {
            let x = k as f32 * 2e-3;
            let e = (exp(x) as f64 - (x as f64).exp()).abs() / (x as f64).exp();
            let t = (x as f64).tanh();
            let te = (tanh(x) as f64 - t).abs() / t.abs().max(1e-30);
            worst = (worst.0.max(e), worst.1.max(if x == 0.0 { 0.0 } else { te }));
        }
        assert!(worst.0 < 3e-7 && worst.1 < 3e-7, "relative errors: exp {:e}, tanh {:e}", worst.0, worst.1);
        assert_eq!(tanh(0.0), 0.0);
        assert!(exp(-200.0) >= 0.0 && exp(200.0).is_finite());
        assert!((Real::sigmoid(-100.0f32)).abs() < 1e-30 && (Real::sigmoid(100.0f32) - 1.0).abs() < 1e-7);
    }
}
