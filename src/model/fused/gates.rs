//! The gate arithmetic of one step over a group of rows: plain loops over slices (no tensors, no threads), the
//! leaf of the fused path. Float32 uses a vectorised exp (AVX2+FMA copies of the loops where the CPU has them)
//! accurate to a few units in the last place; float64 uses the standard library.
//!
//! Layouts (PyTorch's gate order): GRU gates r, z, n with h' = (1 − z) n + z h and n = tanh(x_n + r (W_hn h +
//! b_hn)); LSTM gates i, f, g, o with c' = f c + i g and h' = o tanh(c'); the vanilla RNN h' = tanh(x + W_hh h +
//! b). Per step and row a GRU keeps r, z, n and W_hn h + b_hn for its backward pass, an LSTM i, f, g, o
//! ([`saved_width`]; its cell states are kept beside the hidden states); the RNN keeps nothing but its output.
use crate::config::CellKind;

/// A float the gate loops run on.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
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

/// Values per row and step a cell keeps for its backward pass (GRU: r, z, n, W_hn h + b_hn; LSTM: i, f, g, o;
/// RNN: none).
pub fn saved_width(cell: CellKind, h: usize) -> usize {
    match cell {
        CellKind::Gru | CellKind::Lstm => 4 * h,
        CellKind::Rnn => 0,
    }
}

/// One forward step over a group of `prev.len() / h` rows.
pub struct Forward<'a, R> {
    /// `[rows, G]` the input projections with b_ih.
    pub gx: &'a [R],
    /// `[rows, G]` W_hh h_{t−1} + b_hh.
    pub gh: &'a [R],
    /// `[rows, H]` h_{t−1}.
    pub prev: &'a [R],
    /// `[rows, H]` h_t, written.
    pub next: &'a mut [R],
    /// `[rows, saved_width]`, written.
    pub saved: &'a mut [R],
    /// LSTM: `[rows, H]` c_{t−1}, and c_t (written).
    pub c: Option<(&'a [R], &'a mut [R])>,
    pub h: usize,
}

/// One backward step over a group of rows: from ∂L/∂h_t (the output's and the next step's) to the gates'
/// gradients and the direct part of ∂L/∂h_{t−1}.
pub struct Backward<'a, R> {
    /// `[rows, H]` ∂L/∂h_t through the output.
    pub dout: &'a [R],
    /// `[rows, H]` ∂L/∂h_t through step t + 1.
    pub dh_next: &'a [R],
    /// `[rows, saved_width]` what the forward step kept.
    pub saved: &'a [R],
    /// `[rows, H]` h_{t−1} (the GRU) and h_t (the RNN).
    pub prev: &'a [R],
    pub out: &'a [R],
    /// `[rows, G]` ∂L/∂(input-side gate pre-activations), written.
    pub dgx: &'a mut [R],
    /// GRU: `[rows, G]` ∂L/∂(hidden-side pre-activations) (they differ in the new gate) and `[rows, H]` the direct
    /// part of ∂L/∂h_{t−1}, written. The RNN's and the LSTM's hidden sides equal their input sides and have no
    /// direct part.
    pub hidden: Option<(&'a mut [R], &'a mut [R])>,
    /// LSTM: `[rows, H]` c_{t−1} and c_t, and ∂L/∂c: from step t + 1 in, to step t − 1 out.
    pub cell: Option<(&'a [R], &'a [R], &'a mut [R])>,
    pub h: usize,
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

/// `$wide`: the loop `$plain` compiled for AVX2 and FMA (call only when [`wide`] is true; elsewhere the plain loop).
macro_rules! wide_copy {
    ($wide:ident = $plain:ident($arg:ty)) => {
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
        unsafe fn $wide<R: Real>(s: $arg) {
            $plain(s)
        }
    };
}

wide_copy!(gru_forward_wide = gru_forward(Forward<R>));
wide_copy!(lstm_forward_wide = lstm_forward(Forward<R>));
wide_copy!(rnn_forward_wide = rnn_forward(Forward<R>));
wide_copy!(gru_backward_wide = gru_backward(Backward<R>));
wide_copy!(lstm_backward_wide = lstm_backward(Backward<R>));
wide_copy!(rnn_backward_wide = rnn_backward(Backward<R>));

/// The forward step of `cell`, in its AVX2+FMA copy when the CPU has it.
pub fn forward<R: Real>(cell: CellKind, s: Forward<R>) {
    // SAFETY (the wide copies): AVX2 and FMA are present.
    match (cell, wide()) {
        (CellKind::Gru, true) => unsafe { gru_forward_wide(s) },
        (CellKind::Gru, false) => gru_forward(s),
        (CellKind::Lstm, true) => unsafe { lstm_forward_wide(s) },
        (CellKind::Lstm, false) => lstm_forward(s),
        (CellKind::Rnn, true) => unsafe { rnn_forward_wide(s) },
        (CellKind::Rnn, false) => rnn_forward(s),
    }
}

/// The backward step of `cell`, in its AVX2+FMA copy when the CPU has it.
pub fn backward<R: Real>(cell: CellKind, s: Backward<R>) {
    // SAFETY (the wide copies): AVX2 and FMA are present.
    match (cell, wide()) {
        (CellKind::Gru, true) => unsafe { gru_backward_wide(s) },
        (CellKind::Gru, false) => gru_backward(s),
        (CellKind::Lstm, true) => unsafe { lstm_backward_wide(s) },
        (CellKind::Lstm, false) => lstm_backward(s),
        (CellKind::Rnn, true) => unsafe { rnn_backward_wide(s) },
        (CellKind::Rnn, false) => rnn_backward(s),
    }
}

#[inline(always)]
fn gru_forward<R: Real>(s: Forward<R>) {
    let h = s.h;
    for (i, (prev, next)) in s.prev.chunks_exact(h).zip(s.next.chunks_exact_mut(h)).enumerate() {
        let (gx, gh) = (&s.gx[i * 3 * h..(i + 1) * 3 * h], &s.gh[i * 3 * h..(i + 1) * 3 * h]);
        let (xr, xz, xn) = (&gx[..h], &gx[h..2 * h], &gx[2 * h..]);
        let (hr, hz, hn) = (&gh[..h], &gh[h..2 * h], &gh[2 * h..]);
        let sv = &mut s.saved[i * 4 * h..(i + 1) * 4 * h];
        let (sr, rest) = sv.split_at_mut(h);
        let (sz, rest) = rest.split_at_mut(h);
        let (sn, sgh) = rest.split_at_mut(h);
        // One simple loop per quantity: they vectorise where one loop over all nine slices did not.
        sr.iter_mut().zip(xr).zip(hr).for_each(|((s, &a), &b)| *s = (a + b).sigmoid());
        sz.iter_mut().zip(xz).zip(hz).for_each(|((s, &a), &b)| *s = (a + b).sigmoid());
        sgh.copy_from_slice(hn);
        sn.iter_mut().zip(xn).zip(sr.iter().zip(hn)).for_each(|((s, &a), (&r, &g))| *s = (a + r * g).tanh());
        next.iter_mut().zip(prev).zip(sn.iter().zip(sz.iter())).for_each(|((o, &p), (&n, &z))| *o = n + z * (p - n));
    }
}

/// LSTM gates of one step (PyTorch's order i, f, g, o): c' = f c + i g, h' = o tanh(c').
#[inline(always)]
fn lstm_forward<R: Real>(s: Forward<R>) {
    let h = s.h;
    let Some((c_prev, c_next)) = s.c else { return };
    let rows = c_prev.chunks_exact(h).zip(c_next.chunks_exact_mut(h)).zip(s.next.chunks_exact_mut(h));
    for (i, ((cp, cn), next)) in rows.enumerate() {
        let (gx, gh) = (&s.gx[i * 4 * h..(i + 1) * 4 * h], &s.gh[i * 4 * h..(i + 1) * 4 * h]);
        let sv = &mut s.saved[i * 4 * h..(i + 1) * 4 * h];
        // The gates first, one simple loop per gate (i, f, o sigmoid, g tanh), then the cell: loops over two or
        // three slices vectorise where one loop over nine did not.
        for (k, ((sv, gx), gh)) in sv.chunks_exact_mut(h).zip(gx.chunks_exact(h)).zip(gh.chunks_exact(h)).enumerate() {
            if k == 2 {
                sv.iter_mut().zip(gx).zip(gh).for_each(|((s, &a), &b)| *s = (a + b).tanh());
            } else {
                sv.iter_mut().zip(gx).zip(gh).for_each(|((s, &a), &b)| *s = (a + b).sigmoid());
            }
        }
        let (si, sv) = sv.split_at(h);
        let (sf, sv) = sv.split_at(h);
        let (sg, so) = sv.split_at(h);
        let gates = si.iter().zip(sf).zip(sg.iter().zip(so));
        for (((cn, next), &cp), ((&ig, &fg), (&gg, &og))) in cn.iter_mut().zip(next.iter_mut()).zip(cp).zip(gates) {
            let c = fg * cp + ig * gg;
            *cn = c;
            *next = og * c.tanh();
        }
    }
}

#[inline(always)]
fn rnn_forward<R: Real>(s: Forward<R>) {
    for ((o, &a), &b) in s.next.iter_mut().zip(s.gx).zip(s.gh) {
        *o = (a + b).tanh();
    }
}

#[inline(always)]
fn gru_backward<R: Real>(s: Backward<R>) {
    let h = s.h;
    let Some((dgh, carry)) = s.hidden else { return };
    let rows = s.dout.chunks_exact(h).zip(s.dh_next.chunks_exact(h)).zip(s.prev.chunks_exact(h));
    for (i, ((dout, dh_next), prev)) in rows.enumerate() {
        let carry = &mut carry[i * h..(i + 1) * h];
        let sv = &s.saved[i * 4 * h..(i + 1) * 4 * h];
        let (sr, sz, sn, sgh) = (&sv[..h], &sv[h..2 * h], &sv[2 * h..3 * h], &sv[3 * h..]);
        let dgx = &mut s.dgx[i * 3 * h..(i + 1) * 3 * h];
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

/// The LSTM's step backward: from ∂L/∂h_t and ∂L/∂c_t to the gates' gradients (both sides alike) and ∂L/∂c_{t−1}
/// = ∂L/∂c_t f (in place).
#[inline(always)]
fn lstm_backward<R: Real>(s: Backward<R>) {
    let h = s.h;
    let Some((c_prev, c_now, dc)) = s.cell else { return };
    let rows =
        s.dout.chunks_exact(h).zip(s.dh_next.chunks_exact(h)).zip(c_prev.chunks_exact(h).zip(c_now.chunks_exact(h)));
    for (i, ((dout, dh_next), (c_prev, sc))) in rows.enumerate() {
        let dc = &mut dc[i * h..(i + 1) * h];
        let sv = &s.saved[i * 4 * h..(i + 1) * 4 * h];
        let (si, sf, sg, so) = (&sv[..h], &sv[h..2 * h], &sv[2 * h..3 * h], &sv[3 * h..]);
        let dgx = &mut s.dgx[i * 4 * h..(i + 1) * 4 * h];
        let (xi, rest) = dgx.split_at_mut(h);
        let (xf, rest) = rest.split_at_mut(h);
        let (xg, xo) = rest.split_at_mut(h);
        for j in 0..h {
            let (ig, fg, gg, og) = (si[j], sf[j], sg[j], so[j]);
            let tc = sc[j].tanh();
            let dh = dout[j] + dh_next[j];
            let dct = dc[j] + dh * og * (R::ONE - tc * tc);
            xi[j] = dct * gg * ig * (R::ONE - ig);
            xf[j] = dct * c_prev[j] * fg * (R::ONE - fg);
            xg[j] = dct * ig * (R::ONE - gg * gg);
            xo[j] = dh * tc * og * (R::ONE - og);
            dc[j] = dct * fg;
        }
    }
}

#[inline(always)]
fn rnn_backward<R: Real>(s: Backward<R>) {
    for (((d, &o), &n), &y) in s.dgx.iter_mut().zip(s.dout).zip(s.dh_next).zip(s.out) {
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
