//! The fused training path of the vanilla RNN, the GRU and the LSTM on the CPU (`model.impl: fused`).
//!
//! Forward, per layer and direction: the input projections of all steps in one GEMM, then per step one GEMM for
//! the hidden projection and one pass over the gates ([`gates`]), which keeps what the backward pass needs.
//! Backward (the approach cuDNN takes): the chain over steps carries only ∂L/∂h (per step one GEMM and one
//! pass), and the weight gradients are two GEMMs over all steps afterwards. The recurrence runs in groups of the
//! batch's rows, one per thread ([`rows`]); without BLAS to call directly it runs on libtorch's GEMM per step.
//!
//! tch has no custom autograd functions, so the backward is split. A fused call runs on a detached copy of its
//! input and returns a leaf that requires grad; the model's head and loss stay in autograd. [`Tape::backward`]
//! runs after `loss.backward()` has filled the leaves' gradients: for each call, last first, the hand-written
//! backward through time; the weight gradients are added to the variables' gradients in place, and one small
//! backward of `Σ x·∂L/∂x` (plus `w·∂L/∂w` for a weight with no gradient yet) carries ∂L/∂x through whatever
//! made the input (dropout, the reversal of a bidirectional layer, the previous layer's leaf, the embedding).
//!
//! Module layers: [`gates`] (the arithmetic of one step, a leaf) ← [`rows`] (threads and BLAS) ← here (tensors).
//! Every tensor's memory is handed to them as a slice checked for its device, kind, layout and length.
pub mod gates;
pub mod rows;

use crate::config::CellKind;
use anyhow::{ensure, Result};
use gates::Real;
use rows::{BackwardBuffers, Dims, ForwardBuffers, Gemm};
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
    /// LSTM: `[T + 1, B, H]` c_0 .. c_T; the initial cell state as given, when it needs a gradient; the final
    /// cell state returned (a leaf: its gradient, if the model uses it, starts the chain of ∂L/∂c).
    cs: Option<Tensor>,
    c0: Option<Tensor>,
    c_last: Option<Tensor>,
    /// `[T, B, S]` what the gates kept ([`gates::saved_width`]).
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
    pool: RefCell<Pool>,
}

/// Work buffers: flat `free` ones (each with whether it was returned since the last step ended), and the flat
/// buffers whose views [`Tape::buffer`] has handed out.
#[derive(Default)]
struct Pool {
    free: Vec<(Tensor, bool)>,
    lent: Vec<Tensor>,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Tape({} calls)", self.calls.borrow().len())
    }
}

/// Whether the fused path runs this cell on this device (the CPU, float32 or float64).
pub fn covers(_cell: CellKind, x: &Tensor) -> bool {
    x.device() == tch::Device::Cpu && matches!(x.kind(), Kind::Float | Kind::Double)
}

/// One layer and direction as the tape sees it: the cell, its weights `[w_ih, w_hh, b_ih, b_hh]` and its group
/// (the layer: its directions' inputs come from one graph, which is backpropagated once).
pub struct Layer<'a> {
    pub cell: CellKind,
    pub w: &'a [Tensor; 4],
    pub group: usize,
}

/// `loss.backward()` that keeps the graph: the backward of the fused calls then carries ∂L/∂x through whatever
/// made their inputs, even where autograd already went (a decoder's target embeddings also feed its output layer).
pub fn backward_keeping_graph(loss: &Tensor) -> Result<()> {
    extern "C" {
        fn free(p: *mut std::ffi::c_void);
    }
    // SAFETY: torch-sys's C API; the error string it returns is ours to free.
    unsafe {
        torch_sys::at_backward(loss.as_ptr() as *mut torch_sys::C_tensor, 1, 0);
        let err = torch_sys::get_and_reset_last_err();
        if !err.is_null() {
            let msg = std::ffi::CStr::from_ptr(err).to_string_lossy().into_owned();
            free(err as *mut std::ffi::c_void);
            anyhow::bail!("backward: {}", msg.lines().next().unwrap_or(""));
        }
    }
    Ok(())
}

/// A tensor's memory as a slice of `len` values: checked to be a contiguous CPU tensor of kind `R`.
///
/// # Safety
/// The tensor must outlive the slice, and nothing else may touch its memory meanwhile.
#[allow(clippy::mut_from_ref)]
unsafe fn slice<'a, R: Real>(t: &'a Tensor, len: usize, what: &str) -> Result<&'a mut [R]> {
    ensure!(
        t.device() == tch::Device::Cpu && t.is_contiguous() && t.kind() == R::KIND && t.numel() == len,
        "fused recurrence: {what} is not a contiguous CPU {:?} tensor of {len} values ({:?} {:?}, {} values)",
        R::KIND,
        t.device(),
        t.kind(),
        t.numel()
    );
    if len == 0 {
        // An empty tensor's data pointer may be null, which a slice must never be.
        return Ok(&mut []);
    }
    Ok(std::slice::from_raw_parts_mut(t.data_ptr() as *mut R, len))
}

impl Tape {
    /// Forgets the calls of a step that will not be backpropagated.
    pub fn clear(&self) {
        let calls: Vec<Call> = self.calls.borrow_mut().drain(..).collect();
        if !calls.is_empty() {
            self.recycle(calls.into_iter().flat_map(|c| [c.x, c.saved]));
            self.end_step();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.calls.borrow().is_empty()
    }

    /// Bytes of work buffers the pool keeps between steps.
    pub fn pooled_bytes(&self) -> usize {
        self.pool.borrow().free.iter().map(|(t, _)| t.numel() * t.kind().elt_size_in_bytes()).sum()
    }

    /// The calls recorded since the last forward pass (one per layer and direction that ran fused).
    pub fn len(&self) -> usize {
        self.calls.borrow().len()
    }

    /// A work buffer of this shape (contents undefined): the front of the smallest free buffer that holds it, or
    /// a new one. Bucketed batches change length every step, so a buffer serves any shape that fits, not only its
    /// own.
    fn buffer(&self, shape: &[i64], like: &Tensor) -> Tensor {
        let n: i64 = shape.iter().product();
        let (kind, device) = (like.kind(), like.device());
        if n == 0 {
            return Tensor::empty(shape, (kind, device));
        }
        let mut pool = self.pool.borrow_mut();
        let fits = |t: &Tensor| t.kind() == kind && t.device() == device && t.numel() as i64 >= n;
        let best = pool.free.iter().enumerate().filter(|(_, (t, _))| fits(t)).min_by_key(|(_, (t, _))| t.numel());
        let base = match best.map(|(i, _)| i) {
            Some(i) => pool.free.swap_remove(i).0,
            None => Tensor::empty([n], (kind, device)),
        };
        let view = base.narrow(0, 0, n).view(shape);
        pool.lent.push(base);
        view
    }

    /// Returns work buffers from [`buffer`](Self::buffer) to the pool. A buffer already there (an alias: the
    /// RNN's and LSTM's hidden-side gate gradients are their input side's) is not added twice, or two later
    /// calls of [`buffer`](Self::buffer) would share its memory.
    fn recycle(&self, ts: impl IntoIterator<Item = Tensor>) {
        let mut pool = self.pool.borrow_mut();
        for t in ts {
            if let Some(i) = pool.lent.iter().position(|b| b.data_ptr() == t.data_ptr()) {
                let base = pool.lent.swap_remove(i);
                pool.free.push((base, true));
            }
        }
        let excess = pool.free.len().saturating_sub(32);
        pool.free.drain(..excess);
    }

    /// Ends a training step for the pool: buffers not taken during the step are freed (a long batch's buffers do
    /// not outlive the steps that need them), and buffers still lent out are left to their holders.
    fn end_step(&self) {
        let mut pool = self.pool.borrow_mut();
        pool.free.retain(|(_, used)| *used);
        pool.free.iter_mut().for_each(|(_, used)| *used = false);
        pool.lent.clear();
    }

    /// One layer, one direction: `x` `[B, T, I]`, initial state `[B, H]` (zeros when None; the LSTM's cell state
    /// `c0` too). Returns the outputs `[B, T, H]`, the final state `[B, H]` and the LSTM's final cell state. With
    /// `record`, the call is kept for [`backward`](Self::backward) and the outputs are a leaf requiring grad.
    pub fn forward(
        &self,
        l: Layer,
        x: &Tensor,
        (h0, c0): (Option<&Tensor>, Option<&Tensor>),
        record: bool,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let (b, t_len, i) = (x.size()[0], x.size()[1], x.size()[2]);
        let (w, cell) = (l.w, l.cell);
        let (h, g) = (w[1].size()[1], w[0].size()[0]);
        let d = Dims { t: t_len as usize, b: b as usize, h: h as usize };
        let lstm = cell == CellKind::Lstm;
        let (xs, hs, saved, cs) = tch::no_grad(|| -> Result<_> {
            let mut xs = self.buffer(&[t_len, b, i], x);
            xs.copy_(&x.detach().transpose(0, 1));
            let xs = xs.view([t_len * b, i]);
            // All input projections at once: [T·B, G].
            let gx = self.buffer(&[t_len * b, g], x);
            let _ = w[2].detach().addmm_out(&gx, &xs, &w[0].detach().tr());
            let hs = Tensor::zeros([t_len + 1, b, h], (x.kind(), x.device()));
            if let Some(h0) = h0 {
                hs.get(0).copy_(&h0.detach());
            }
            let saved = self.buffer(&[t_len, b, gates::saved_width(cell, d.h) as i64], x);
            let cs = lstm.then(|| {
                let cs = Tensor::zeros([t_len + 1, b, h], (x.kind(), x.device()));
                if let Some(c0) = c0 {
                    cs.get(0).copy_(&c0.detach());
                }
                cs
            });
            let (w_hh, b_hh) = (w[1].detach().contiguous(), w[3].detach().contiguous());
            match x.kind() {
                Kind::Double => self.recurrence::<f64>(cell, d, [&gx, &w_hh, &b_hh, &hs, &saved], cs.as_ref())?,
                _ => self.recurrence::<f32>(cell, d, [&gx, &w_hh, &b_hh, &hs, &saved], cs.as_ref())?,
            }
            self.recycle([gx]);
            Ok((xs, hs, saved, cs))
        })?;
        let out = hs.narrow(0, 1, t_len).transpose(0, 1);
        if !record {
            let last = hs.get(t_len);
            let c_last = cs.as_ref().map(|c| c.get(t_len));
            self.recycle([xs, saved]);
            return Ok((out, last, c_last));
        }
        let out = out.set_requires_grad(true);
        let last = out.select(1, t_len - 1);
        let c_last = cs.as_ref().map(|c| c.get(t_len).detach().set_requires_grad(true));
        self.calls.borrow_mut().push(Call {
            group: l.group,
            cell,
            input: x.shallow_clone(),
            x: xs,
            h0: h0.filter(|h| h.requires_grad()).map(Tensor::shallow_clone),
            hs,
            cs,
            c0: c0.filter(|c| c.requires_grad()).map(Tensor::shallow_clone),
            c_last: c_last.as_ref().map(Tensor::shallow_clone),
            saved,
            w: [w[0].shallow_clone(), w[1].shallow_clone(), w[2].shallow_clone(), w[3].shallow_clone()],
            out: out.shallow_clone(),
        });
        Ok((out, last, c_last))
    }

    /// The forward recurrence on `[gx, w_hh, b_hh, hs, saved]`: over row groups with direct BLAS calls, or with
    /// libtorch's GEMM per step when there is no BLAS to call (or `rows::set_groups(Some(0))`).
    fn recurrence<R: Gemm>(&self, cell: CellKind, d: Dims, ts: [&Tensor; 5], cs: Option<&Tensor>) -> Result<()> {
        let [gx, w_hh, b_hh, hs, saved] = ts;
        let g = cell.gates() as usize * d.h;
        let sw = gates::saved_width(cell, d.h);
        if let Some(n) = rows::split(d.b, tch::get_num_threads() as usize) {
            // SAFETY: the tensors are alive for the call and touched by nothing else meanwhile.
            let buf: ForwardBuffers<R> = unsafe {
                ForwardBuffers {
                    gx: slice(gx, d.t * d.b * g, "gx")?,
                    w_hh: slice(w_hh, g * d.h, "w_hh")?,
                    b_hh: slice(b_hh, g, "b_hh")?,
                    hs: slice(hs, (d.t + 1) * d.b * d.h, "hs")?,
                    saved: slice(saved, d.t * d.b * sw, "saved")?,
                    cs: match cs {
                        Some(c) => Some(slice(c, (d.t + 1) * d.b * d.h, "cs")?),
                        None => None,
                    },
                }
            };
            return rows::forward(cell, d, n, buf);
        }
        let gh = self.buffer(&[d.b as i64, g as i64], gx);
        let (w_hh_t, b_hh) = (w_hh.tr(), b_hh.shallow_clone());
        let gx3 = gx.view([d.t as i64, d.b as i64, g as i64]);
        for t in 0..d.t as i64 {
            let _ = b_hh.addmm_out(&gh, &hs.get(t), &w_hh_t);
            let (gx_t, prev, next, sv) = (gx3.get(t), hs.get(t), hs.get(t + 1), saved.get(t));
            let cells = cs.map(|c| (c.get(t), c.get(t + 1)));
            // SAFETY: as above; the slices are disjoint views of their tensors, and `gh` is written only by
            // libtorch before this step's slices exist.
            unsafe {
                let c = match &cells {
                    Some((cp, cn)) => Some((&*slice::<R>(cp, d.b * d.h, "c[t-1]")?, slice(cn, d.b * d.h, "c[t]")?)),
                    None => None,
                };
                gates::forward(
                    cell,
                    gates::Forward::<R> {
                        gx: slice(&gx_t, d.b * g, "gx[t]")?,
                        gh: slice(&gh, d.b * g, "gh")?,
                        prev: slice(&prev, d.b * d.h, "h[t-1]")?,
                        next: slice(&next, d.b * d.h, "h[t]")?,
                        saved: slice(&sv, d.b * sw, "saved[t]")?,
                        c,
                        h: d.h,
                    },
                );
            }
        }
        self.recycle([gh]);
        Ok(())
    }

    /// After `loss.backward()`: the backward pass of every recorded call, the last layer first (see the module
    /// docs).
    pub fn backward(&self) -> Result<()> {
        let mut calls: Vec<Call> = self.calls.borrow_mut().drain(..).collect();
        while let Some(group) = calls.last().map(|c| c.group) {
            let split = calls.iter().position(|c| c.group == group).unwrap_or(0);
            let mut terms: Vec<Tensor> = Vec::new();
            for c in calls.drain(split..) {
                let dout = c.out.grad();
                if !dout.defined() {
                    continue;
                }
                let (dw, dx, dh0, dc0) = tch::no_grad(|| self.call_backward(&c, &dout))?;
                self.recycle([c.x.shallow_clone(), c.saved.shallow_clone()]);
                for (w, dw) in c.w.iter().zip(&dw) {
                    // Added to the gradient autograd keeps (the same bits as autograd's own accumulation, without
                    // a pass through the engine); a weight without one yet gets it through autograd.
                    let grad = w.grad();
                    if grad.defined() {
                        let _ = tch::no_grad(|| grad.shallow_clone().g_add_(dw));
                    } else {
                        terms.push((w * dw).sum(Kind::Double));
                    }
                }
                if let Some(dx) = dx {
                    terms.push((&c.input * dx).sum(Kind::Double));
                }
                if let Some(h0) = &c.h0 {
                    terms.push((h0 * dh0).sum(Kind::Double));
                }
                if let (Some(c0), Some(dc0)) = (&c.c0, dc0) {
                    terms.push((c0 * dc0).sum(Kind::Double));
                }
            }
            if !terms.is_empty() {
                Tensor::stack(&terms, 0).sum(Kind::Double).backward();
            }
        }
        self.end_step();
        Ok(())
    }

    /// ∂L/∂[w_ih, w_hh, b_ih, b_hh], ∂L/∂x `[B, T, I]` (when the input needs it), ∂L/∂h_0 `[B, H]` and the
    /// LSTM's ∂L/∂c_0 of one call.
    #[allow(clippy::type_complexity)]
    fn call_backward(&self, c: &Call, dout: &Tensor) -> Result<([Tensor; 4], Option<Tensor>, Tensor, Option<Tensor>)> {
        let (t_len, b, h) = (c.hs.size()[0] - 1, c.hs.size()[1], c.hs.size()[2]);
        let g = c.w[0].size()[0];
        let (kind, device) = (c.hs.kind(), c.hs.device());
        let mut d = self.buffer(&[t_len, b, h], &c.hs);
        d.copy_(&dout.transpose(0, 1));
        let dout = d;
        let dgx = self.buffer(&[t_len, b, g], &c.hs);
        // The GRU's hidden-side gate gradients differ from the input side's in the new gate (× r); the RNN's do not.
        let dgh = if c.cell == CellKind::Gru { self.buffer(&[t_len, b, g], &c.hs) } else { dgx.shallow_clone() };
        let dh0 = Tensor::zeros([b, h], (kind, device));
        // ∂L/∂c starts from ∂L/∂c_T where the model used the final cell state, and ends as ∂L/∂c_0.
        let dc = c.cs.as_ref().map(|_| match c.c_last.as_ref().map(Tensor::grad).filter(Tensor::defined) {
            Some(g) => g.copy(),
            None => Tensor::zeros([b, h], (kind, device)),
        });
        let w_hh = c.w[1].detach().contiguous();
        let dims = Dims { t: t_len as usize, b: b as usize, h: h as usize };
        match kind {
            Kind::Double => self.chain::<f64>(c, dims, [&dout, &w_hh, &dgx, &dgh, &dh0], dc.as_ref())?,
            _ => self.chain::<f32>(c, dims, [&dout, &w_hh, &dgx, &dgh, &dh0], dc.as_ref())?,
        }
        let (dgx2, dgh2) = (dgx.view([t_len * b, g]), dgh.view([t_len * b, g]));
        let h_prev = c.hs.narrow(0, 0, t_len).reshape([t_len * b, h]);
        let db_ih = dgx2.sum_dim_intlist([0].as_slice(), false, kind);
        // The RNN's and the LSTM's hidden-side gate gradients are the input side's: so are their bias gradients.
        let db_hh = if c.cell == CellKind::Gru {
            dgh2.sum_dim_intlist([0].as_slice(), false, kind)
        } else {
            db_ih.shallow_clone()
        };
        let dw = [dgx2.tr().mm(&c.x), dgh2.tr().mm(&h_prev), db_ih, db_hh];
        let dx = c.input.requires_grad().then(|| dgx2.mm(&c.w[0].detach()).view([t_len, b, -1]).transpose(0, 1));
        self.recycle([dout, dgx, dgh]);
        Ok((dw, dx, dh0, dc))
    }

    /// The backward chain through time on `[dout, w_hh, dgx, dgh, dh0]` (`dgh` is `dgx` for the RNN): over row
    /// groups, or with libtorch's GEMM per step.
    fn chain<R: Gemm>(&self, c: &Call, d: Dims, ts: [&Tensor; 5], dc: Option<&Tensor>) -> Result<()> {
        let [dout, w_hh, dgx, dgh, dh0] = ts;
        let g = c.cell.gates() as usize * d.h;
        let (sw, gru) = (gates::saved_width(c.cell, d.h), c.cell == CellKind::Gru);
        if let Some(n) = rows::split(d.b, tch::get_num_threads() as usize) {
            // SAFETY: the tensors are alive for the call and touched by nothing else meanwhile (`dgh` is a second
            // buffer for the GRU only).
            let buf: BackwardBuffers<R> = unsafe {
                BackwardBuffers {
                    dout: slice(dout, d.t * d.b * d.h, "dout")?,
                    hs: slice(&c.hs, (d.t + 1) * d.b * d.h, "hs")?,
                    saved: slice(&c.saved, d.t * d.b * sw, "saved")?,
                    w_hh: slice(w_hh, g * d.h, "w_hh")?,
                    dgx: slice(dgx, d.t * d.b * g, "dgx")?,
                    dgh: if gru { Some(slice(dgh, d.t * d.b * g, "dgh")?) } else { None },
                    dh0: slice(dh0, d.b * d.h, "dh0")?,
                    cell: match (&c.cs, dc) {
                        (Some(cs), Some(dc)) => {
                            Some((&*slice::<R>(cs, (d.t + 1) * d.b * d.h, "cs")?, slice(dc, d.b * d.h, "dc")?))
                        }
                        _ => None,
                    },
                }
            };
            return rows::backward(c.cell, d, n, buf);
        }
        // dh0 holds ∂L/∂h_t from the step after t as the chain walks back, and ends as ∂L/∂h_0.
        let carry = Tensor::zeros([d.b as i64, d.h as i64], (dout.kind(), dout.device()));
        for t in (0..d.t as i64).rev() {
            let (dout_t, prev, out, sv) = (dout.get(t), c.hs.get(t), c.hs.get(t + 1), c.saved.get(t));
            let (dgx_t, dgh_t) = (dgx.get(t), dgh.get(t));
            // SAFETY: as above; the slices are disjoint views, gone before libtorch writes `dh0` below.
            unsafe {
                let hidden = if gru {
                    Some((slice(&dgh_t, d.b * g, "dgh[t]")?, slice(&carry, d.b * d.h, "carry")?))
                } else {
                    None
                };
                let cells = match (&c.cs, dc) {
                    (Some(cs), Some(dc)) => Some((cs.get(t), cs.get(t + 1), dc)),
                    _ => None,
                };
                let cell = match &cells {
                    Some((cp, cn, dc)) => Some((
                        &*slice::<R>(cp, d.b * d.h, "c[t-1]")?,
                        &*slice::<R>(cn, d.b * d.h, "c[t]")?,
                        slice(dc, d.b * d.h, "dc")?,
                    )),
                    None => None,
                };
                gates::backward(
                    c.cell,
                    gates::Backward::<R> {
                        dout: slice(&dout_t, d.b * d.h, "dout[t]")?,
                        dh_next: slice(dh0, d.b * d.h, "dh_next")?,
                        saved: slice(&sv, d.b * sw, "saved[t]")?,
                        prev: slice(&prev, d.b * d.h, "h[t-1]")?,
                        out: slice(&out, d.b * d.h, "h[t]")?,
                        dgx: slice(&dgx_t, d.b * g, "dgx[t]")?,
                        hidden,
                        cell,
                        h: d.h,
                    },
                );
            }
            // ∂L/∂h_{t−1} = the direct path (the GRU's; zero for the RNN) + the gates' path through W_hh.
            let _ = carry.addmm_out(dh0, &dgh_t, w_hh);
        }
        Ok(())
    }
}
