//! The fused training path of the vanilla RNN, the GRU and the LSTM on the CPU (`model.impl: fused`).
//!
//! Forward, per layer and direction: the input projections of all steps in one GEMM, then per step one GEMM for
//! the hidden projection and one pass over the gates ([`gates`]), which keeps what the backward pass needs.
//! Backward (the approach cuDNN takes): the chain over steps carries only ∂L/∂h (per step one GEMM and one
//! pass), and the weight gradients are two GEMMs over all steps afterwards. The recurrence runs in groups of the
//! batch's rows, one per thread ([`rows`]); without BLAS to call directly it runs on libtorch's GEMM per step.
//!
//! tch has no custom autograd functions; `node.cpp` (compiled by build.rs against libtorch's headers) makes one. A
//! recorded call's outputs get one node of autograd's graph, with edges to the call's input, initial state and
//! weights, which owns what the call kept ([`Pending`]); when `loss.backward()` reaches it, the engine calls
//! [`call_backward`] on this thread, and the gradients it returns go on through the graph as any node's do (into
//! the weights' accumulators, through dropout, the reversal of a bidirectional layer, the previous layer, the
//! embedding). One backward pass, nothing retained.
//!
//! Module layers: [`gates`] (the arithmetic of one step, a leaf) ← [`rows`] (threads and BLAS) ← here (tensors).
//! Every tensor's memory is handed to them as a slice checked for its device, kind, layout and length.
pub mod gates;
pub mod rows;

use crate::config::CellKind;
use anyhow::{ensure, Result};
use gates::Real;
use rows::{BackwardBuffers, Dims, ForwardBuffers, Gemm};
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tch::{Kind, Tensor};
use torch_sys::C_tensor;

/// What a fused call keeps for its backward pass (owned by its node in libtorch's autograd graph).
struct Call {
    cell: CellKind,
    /// Which inputs have an edge in the graph: the input `x`, h_0, c_0 (the weights' edges are autograd's to skip).
    needs: [bool; 3],
    /// `[T·B, I]` the detached input, time-major.
    x: Tensor,
    /// `[T + 1, B, H]`: h_0 .. h_T.
    hs: Tensor,
    /// LSTM: `[T + 1, B, H]` c_0 .. c_T.
    cs: Option<Tensor>,
    /// `[T, B, S]` what the gates kept ([`gates::saved_width`]).
    saved: Tensor,
    /// The weights, detached.
    w: [Tensor; 4],
}

/// A recorded call as its autograd node holds it, with the tape's pool and count of live calls.
struct Pending {
    call: Call,
    pool: Arc<Mutex<Pool>>,
    live: Arc<AtomicUsize>,
}

impl Drop for Pending {
    /// After the call's backward (or with its graph, unused): its buffers go back to the pool, and the step ends
    /// for the pool when no recorded call is left.
    fn drop(&mut self) {
        recycle(&self.pool, [self.call.x.shallow_clone(), self.call.saved.shallow_clone()]);
        if self.live.fetch_sub(1, Ordering::Relaxed) == 1 {
            end_step(&self.pool);
        }
    }
}

/// The work buffers of one recurrent stack's fused calls, reused from step to step (fresh buffers of tens of MB
/// each step cost page faults: ~15 % of a step), and how many recorded calls still await their backward pass.
#[derive(Default)]
pub struct Tape {
    pool: Arc<Mutex<Pool>>,
    live: Arc<AtomicUsize>,
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
        write!(f, "Tape({} calls)", self.live.load(Ordering::Relaxed))
    }
}

/// Whether the fused path runs this cell on this device (the CPU, float32 or float64).
pub fn covers(_cell: CellKind, x: &Tensor) -> bool {
    x.device() == tch::Device::Cpu && matches!(x.kind(), Kind::Float | Kind::Double)
}

/// One layer and direction as the tape sees it: the cell and its weights `[w_ih, w_hh, b_ih, b_hh]`.
pub struct Layer<'a> {
    pub cell: CellKind,
    pub w: &'a [Tensor; 4],
}

extern "C" {
    fn free(p: *mut std::ffi::c_void);
    fn strdup(s: *const c_char) -> *mut c_char;
}

/// torch-sys's last error, if its C API just failed (the string is ours to free).
fn last_error(what: &str) -> Result<()> {
    // SAFETY: torch-sys's C API; the error string it returns is malloc'd and ours.
    unsafe {
        let err = torch_sys::get_and_reset_last_err();
        if !err.is_null() {
            let msg = CStr::from_ptr(err).to_string_lossy().into_owned();
            free(err as *mut std::ffi::c_void);
            anyhow::bail!("{what}: {}", msg.lines().next().unwrap_or(""));
        }
    }
    Ok(())
}

/// `loss.backward()` with libtorch's error as an `Err` (tch's panics): a fused call's backward that fails (a
/// kernel error) fails the step, not the process.
pub fn backward(loss: &Tensor) -> Result<()> {
    // SAFETY: torch-sys's C API on a live tensor.
    unsafe { torch_sys::at_backward(loss.as_ptr() as *mut torch_sys::C_tensor, 0, 0) };
    last_error("backward")
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

/// The pool, also after a panic elsewhere while it was held (its lists stay valid).
fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

/// A work buffer of this shape (contents undefined): the front of the smallest free buffer that holds it, or a
/// new one. Bucketed batches change length every step, so a buffer serves any shape that fits, not only its own.
fn buffer(pool: &Mutex<Pool>, shape: &[i64], like: &Tensor) -> Tensor {
    let n: i64 = shape.iter().product();
    let (kind, device) = (like.kind(), like.device());
    if n == 0 {
        return Tensor::empty(shape, (kind, device));
    }
    let mut pool = lock(pool);
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

/// Returns work buffers from [`buffer`] to the pool. A buffer already there (an alias: the RNN's and LSTM's
/// hidden-side gate gradients are their input side's) is not added twice, or two later calls of [`buffer`] would
/// share its memory.
fn recycle(pool: &Mutex<Pool>, ts: impl IntoIterator<Item = Tensor>) {
    let mut pool = lock(pool);
    for t in ts {
        if let Some(i) = pool.lent.iter().position(|b| b.data_ptr() == t.data_ptr()) {
            let base = pool.lent.swap_remove(i);
            pool.free.push((base, true));
        }
    }
    let excess = pool.free.len().saturating_sub(32);
    pool.free.drain(..excess);
}

/// Ends a training step for the pool: buffers not taken during the step are freed (a long batch's buffers do not
/// outlive the steps that need them), and buffers still lent out are left to their holders.
fn end_step(pool: &Mutex<Pool>) {
    let mut pool = lock(pool);
    pool.free.retain(|(_, used)| *used);
    pool.free.iter_mut().for_each(|(_, used)| *used = false);
    pool.lent.clear();
}

impl Tape {
    /// Whether no recorded call awaits its backward pass (a call's graph that is dropped unused counts as done).
    pub fn is_empty(&self) -> bool {
        self.live.load(Ordering::Relaxed) == 0
    }

    /// Bytes of work buffers the pool keeps between steps.
    pub fn pooled_bytes(&self) -> usize {
        lock(&self.pool).free.iter().map(|(t, _)| t.numel() * t.kind().elt_size_in_bytes()).sum()
    }

    /// The recorded calls that await their backward pass (one per layer and direction that ran fused).
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    fn buffer(&self, shape: &[i64], like: &Tensor) -> Tensor {
        buffer(&self.pool, shape, like)
    }

    fn recycle(&self, ts: impl IntoIterator<Item = Tensor>) {
        recycle(&self.pool, ts)
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
        // The outputs become a node's in autograd's graph, with edges to whatever made the inputs.
        let out = out.detach();
        let c_last = cs.as_ref().map(|c| c.get(t_len).detach());
        let needs = [x.requires_grad(), h0.is_some_and(Tensor::requires_grad), c0.is_some_and(Tensor::requires_grad)];
        let call = Call { cell, needs, x: xs, hs, cs, saved, w: w.each_ref().map(Tensor::detach) };
        let inputs = [Some(x), h0, c0, Some(&w[0]), Some(&w[1]), Some(&w[2]), Some(&w[3])];
        let outputs: Vec<&Tensor> = std::iter::once(&out).chain(c_last.as_ref()).collect();
        self.live.fetch_add(1, Ordering::Relaxed);
        attach(&inputs, &outputs, Pending { call, pool: self.pool.clone(), live: self.live.clone() })?;
        let last = out.select(1, t_len - 1);
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
}

type BackwardFn = unsafe extern "C" fn(*mut c_void, *mut *mut C_tensor, i64, *mut *mut C_tensor, i64) -> *mut c_char;
type DropFn = unsafe extern "C" fn(*mut c_void);

extern "C" {
    /// `node.cpp`: makes `outputs` the outputs of a new autograd node with edges to `inputs` that owns `ctx`.
    fn rnnlab_fused_attach(
        inputs: *const *mut C_tensor,
        n_inputs: i64,
        outputs: *const *mut C_tensor,
        n_outputs: i64,
        ctx: *mut c_void,
        backward: BackwardFn,
        drop: DropFn,
    ) -> *mut c_char;
}

/// Makes `outputs` (x's results, not requiring grad) the outputs of one node of autograd's graph, with an edge to
/// each input that requires grad (`[x, h_0, c_0, w_ih, w_hh, b_ih, b_hh]`); its backward is [`call_backward`] on
/// what `pending` keeps, and the node owns `pending` until the graph frees it.
fn attach(inputs: &[Option<&Tensor>; 7], outputs: &[&Tensor], pending: Pending) -> Result<()> {
    let ins: Vec<*mut C_tensor> =
        inputs.iter().map(|t| t.map_or(std::ptr::null_mut(), |t| t.as_ptr() as *mut C_tensor)).collect();
    let outs: Vec<*mut C_tensor> = outputs.iter().map(|t| t.as_ptr() as *mut C_tensor).collect();
    let ctx = Box::into_raw(Box::new(pending)) as *mut c_void;
    // SAFETY: live tensors for the call; the node takes `ctx` and frees it through `drop_pending`.
    let err = unsafe {
        rnnlab_fused_attach(ins.as_ptr(), 7, outs.as_ptr(), outs.len() as i64, ctx, backward_pending, drop_pending)
    };
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a malloc'd C string from node.cpp.
    let msg = unsafe { CStr::from_ptr(err).to_string_lossy().into_owned() };
    unsafe { free(err as *mut c_void) };
    anyhow::bail!("fused recurrence: attaching to autograd's graph: {msg}")
}

/// The node's backward (called by autograd's engine on this thread): `grads` are borrowed, `out` gets owned
/// tensors or null. Errors and panics come back as a malloc'd message, which the node raises as libtorch's error.
unsafe extern "C" fn backward_pending(
    ctx: *mut c_void,
    grads: *mut *mut C_tensor,
    n_grads: i64,
    out: *mut *mut C_tensor,
    n_out: i64,
) -> *mut c_char {
    let run = || -> Result<()> {
        let p = &*(ctx as *const Pending);
        ensure!(n_out == 7 && (1..=2).contains(&n_grads), "fused recurrence: {n_grads} gradients for {n_out} inputs");
        let borrowed = |i: usize| {
            let t = *grads.add(i);
            (i < n_grads as usize && !t.is_null()).then(|| std::mem::ManuallyDrop::new(Tensor::from_ptr(t)))
        };
        let (dout, dc) = (borrowed(0), borrowed(1));
        if dout.is_none() && dc.is_none() {
            return Ok(());
        }
        let grads = tch::no_grad(|| call_backward(&p.pool, &p.call, dout.as_deref(), dc.as_deref()))?;
        for (i, g) in grads.into_iter().enumerate() {
            if let Some(g) = g {
                *out.add(i) = std::mem::ManuallyDrop::new(g).as_ptr() as *mut C_tensor;
            }
        }
        Ok(())
    };
    let msg = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(())) => return std::ptr::null_mut(),
        Ok(Err(e)) => format!("{e:#}"),
        Err(p) => format!("fused recurrence: backward panicked: {}", rows::panic_message(&*p)),
    };
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    strdup(msg.as_ptr())
}

/// The node's destructor of what the call kept.
unsafe extern "C" fn drop_pending(ctx: *mut c_void) {
    drop(Box::from_raw(ctx as *mut Pending));
}

/// The backward pass of one call, from ∂L/∂outputs `[B, T, H]` and (LSTM) ∂L/∂c_T `[B, H]` (None where the model
/// did not use them): the gradients of its inputs in [`attach`]'s order, ∂L/∂x `[B, T, I]`, ∂L/∂h_0, ∂L/∂c_0 (each
/// where it has an edge), ∂L/∂[w_ih, w_hh, b_ih, b_hh].
fn call_backward(
    pool: &Mutex<Pool>,
    c: &Call,
    dout: Option<&Tensor>,
    dc_last: Option<&Tensor>,
) -> Result<[Option<Tensor>; 7]> {
    let (t_len, b, h) = (c.hs.size()[0] - 1, c.hs.size()[1], c.hs.size()[2]);
    let g = c.w[0].size()[0];
    let (kind, device) = (c.hs.kind(), c.hs.device());
    let mut d = buffer(pool, &[t_len, b, h], &c.hs);
    match dout {
        Some(g) => d.copy_(&g.transpose(0, 1)),
        None => _ = d.zero_(),
    }
    let dout = d;
    let dgx = buffer(pool, &[t_len, b, g], &c.hs);
    // The GRU's hidden-side gate gradients differ from the input side's in the new gate (× r); the RNN's do not.
    let dgh = if c.cell == CellKind::Gru { buffer(pool, &[t_len, b, g], &c.hs) } else { dgx.shallow_clone() };
    let dh0 = Tensor::zeros([b, h], (kind, device));
    // ∂L/∂c starts from ∂L/∂c_T where the model used the final cell state, and ends as ∂L/∂c_0.
    let dc = c.cs.as_ref().map(|_| {
        let mut dc = Tensor::zeros([b, h], (kind, device));
        if let Some(g) = dc_last {
            dc.copy_(g);
        }
        dc
    });
    let dims = Dims { t: t_len as usize, b: b as usize, h: h as usize };
    match kind {
        Kind::Double => chain::<f64>(c, dims, [&dout, &c.w[1], &dgx, &dgh, &dh0], dc.as_ref())?,
        _ => chain::<f32>(c, dims, [&dout, &c.w[1], &dgx, &dgh, &dh0], dc.as_ref())?,
    }
    let (dgx2, dgh2) = (dgx.view([t_len * b, g]), dgh.view([t_len * b, g]));
    let h_prev = c.hs.narrow(0, 0, t_len).reshape([t_len * b, h]);
    let db_ih = dgx2.sum_dim_intlist([0].as_slice(), false, kind);
    // The RNN's and the LSTM's hidden-side gate gradients are the input side's: so are their bias gradients (a
    // copy: each weight's accumulator may keep the tensor it gets as the gradient, and clipping scales it in place).
    let db_hh = if c.cell == CellKind::Gru { dgh2.sum_dim_intlist([0].as_slice(), false, kind) } else { db_ih.copy() };
    let dx = c.needs[0].then(|| dgx2.mm(&c.w[0]).view([t_len, b, -1]).transpose(0, 1));
    let (dw_ih, dw_hh) = weight_grads(&dgx2, &dgh2, &c.x, &h_prev)?;
    let grads =
        [dx, c.needs[1].then_some(dh0), dc.filter(|_| c.needs[2]), Some(dw_ih), Some(dw_hh), Some(db_ih), Some(db_hh)];
    recycle(pool, [dout, dgx, dgh]);
    Ok(grads)
}

/// ∂L/∂W_ih = dG_xᵀ · x and ∂L/∂W_hh = dG_hᵀ · h_prev (`[T·B, G]` gate gradients, `[T·B, I]` inputs, `[T·B, H]`
/// previous states): split over the gate rows ([`rows::weight_grads`]), or libtorch's GEMM without BLAS to call.
fn weight_grads(dgx: &Tensor, dgh: &Tensor, x: &Tensor, h_prev: &Tensor) -> Result<(Tensor, Tensor)> {
    let g = dgx.size()[1];
    let Some(n) = rows::split(g as usize, tch::get_num_threads() as usize) else {
        return Ok((dgx.tr().mm(x), dgh.tr().mm(h_prev)));
    };
    let opts = (dgx.kind(), dgx.device());
    let (dw_ih, dw_hh) = (Tensor::empty([g, x.size()[1]], opts), Tensor::empty([g, h_prev.size()[1]], opts));
    let ts = [dgx, dgh, &x.contiguous(), &h_prev.contiguous(), &dw_ih, &dw_hh];
    match dgx.kind() {
        Kind::Double => weight_grads_as::<f64>(ts, n)?,
        _ => weight_grads_as::<f32>(ts, n)?,
    }
    Ok((dw_ih, dw_hh))
}

/// [`weight_grads`] in `R` on `[dgx, dgh, x, h_prev, dw_ih, dw_hh]`, the last two written; one parallel region
/// for both products where the two sides' gate gradients are one tensor (RNN, LSTM).
fn weight_grads_as<R: Gemm>(ts: [&Tensor; 6], n: usize) -> Result<()> {
    let [dgx, dgh, x, h_prev, dw_ih, dw_hh] = ts;
    let (r, g, i, h) =
        (dgx.size()[0] as usize, dgx.size()[1] as usize, x.size()[1] as usize, h_prev.size()[1] as usize);
    // SAFETY: the tensors are alive for the call; the two gradients are fresh and touched by nothing else.
    unsafe {
        let ih = rows::WeightGrad { x: slice::<R>(x, r * i, "x")?, k: i, dw: slice(dw_ih, g * i, "dw_ih")? };
        let hh = rows::WeightGrad { x: slice::<R>(h_prev, r * h, "h_prev")?, k: h, dw: slice(dw_hh, g * h, "dw_hh")? };
        if dgx.data_ptr() == dgh.data_ptr() {
            rows::weight_grads(slice::<R>(dgx, r * g, "dgx")?, r, g, &mut [ih, hh], n)
        } else {
            rows::weight_grads(slice::<R>(dgx, r * g, "dgx")?, r, g, &mut [ih], n)?;
            rows::weight_grads(slice::<R>(dgh, r * g, "dgh")?, r, g, &mut [hh], n)
        }
    }
}

/// The backward chain through time on `[dout, w_hh, dgx, dgh, dh0]` (`dgh` is `dgx` for the RNN): over row
/// groups, or with libtorch's GEMM per step.
fn chain<R: Gemm>(c: &Call, d: Dims, ts: [&Tensor; 5], dc: Option<&Tensor>) -> Result<()> {
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
            let hidden =
                if gru { Some((slice(&dgh_t, d.b * g, "dgh[t]")?, slice(&carry, d.b * d.h, "carry")?)) } else { None };
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
