//! The recurrences of the fused path split over the rows of the batch, one group of rows per thread.
//!
//! The rows of a batch never interact in a recurrent layer, so each thread can carry its own rows through every
//! step with its own single-threaded GEMMs: no step waits on another thread. One libtorch GEMM of a `[64, 128]`
//! state runs at about the same speed on one thread as on two (the second thread mostly waits), so splitting the
//! rows is what puts the second core to work; the groups run on libtorch's own OpenMP pool. The GEMMs are BLAS's
//! `sgemm_`/`dgemm_`, called directly (also with one thread: no per-step dispatch through libtorch); they are
//! looked up at run time in the loaded libtorch together with MKL's `MKL_Set_Num_Threads_Local` (which keeps each
//! call on its own thread). Where either is missing (a libtorch built without MKL) this path is off and the
//! per-step libtorch GEMM is used. MKL gives every row the same bits whatever the group sizes (tested), so the
//! split changes no result.
use super::gates::{self, Backward, Forward, Real};
use crate::config::CellKind;
use anyhow::{bail, ensure, Result};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Mutex, OnceLock};

/// Fortran BLAS `?gemm_`: C = alpha op(A) op(B) + beta C, column-major, every argument by reference.
type GemmFn<R> = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const c_int,
    *const c_int,
    *const c_int,
    *const R,
    *const R,
    *const c_int,
    *const R,
    *const c_int,
    *const R,
    *mut R,
    *const c_int,
);

pub struct Blas {
    sgemm: GemmFn<f32>,
    dgemm: GemmFn<f64>,
    /// `MKL_Set_Num_Threads_Local(n)`: threads for BLAS calls from this thread (0: back to the global setting).
    /// The C entry point; the lower-case `mkl_set_num_threads_local` symbol is the Fortran one (by reference).
    set_local: unsafe extern "C" fn(c_int) -> c_int,
}

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// A symbol of the loaded libraries (glibc's RTLD_DEFAULT is the null handle).
fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym only reads the NUL-terminated name.
    let p = unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// The BLAS entry points, when the loaded libtorch exports them and they compute a known product correctly (an
/// ILP64 build would misread the 32-bit sizes: then the path stays off).
fn blas() -> Option<&'static Blas> {
    static BLAS: OnceLock<Option<Blas>> = OnceLock::new();
    BLAS.get_or_init(|| {
        let (s, d, l) = (symbol(c"sgemm_")?, symbol(c"dgemm_")?, symbol(c"MKL_Set_Num_Threads_Local")?);
        // SAFETY: the symbols have these C signatures in every LP64 BLAS and in MKL.
        let blas = unsafe {
            Blas {
                sgemm: std::mem::transmute::<*mut c_void, GemmFn<f32>>(s),
                dgemm: std::mem::transmute::<*mut c_void, GemmFn<f64>>(d),
                set_local: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(c_int) -> c_int>(l),
            }
        };
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]] (row-major, through the column-major call).
        let (a, b, mut c) = ([1.0f64, 2.0, 3.0, 4.0], [5.0f64, 6.0, 7.0, 8.0], [0.0f64; 4]);
        // SAFETY: 2×2 matrices, leading dimension 2.
        let p = RowProduct {
            w_transposed: false,
            m: 2,
            n: 2,
            k: 2,
            a: a.as_ptr(),
            w: b.as_ptr(),
            beta: 0.0,
            c: c.as_mut_ptr(),
        };
        unsafe { gemm_rows(&blas, p) };
        (c == [19.0, 22.0, 43.0, 50.0]).then_some(blas)
    })
    .as_ref()
}

/// A float the row path computes in.
pub trait Gemm: Real + Send + Sync {
    /// # Safety
    /// The pointers must address matrices of the given shapes.
    unsafe fn call(blas: &Blas, args: GemmArgs<Self>);
}

/// The arguments of one column-major `?gemm_` call.
pub struct GemmArgs<R> {
    ta: c_char,
    tb: c_char,
    m: c_int,
    n: c_int,
    k: c_int,
    a: *const R,
    lda: c_int,
    b: *const R,
    ldb: c_int,
    beta: R,
    c: *mut R,
    ldc: c_int,
}

macro_rules! gemm_impl {
    ($t:ty, $f:ident) => {
        impl Gemm for $t {
            unsafe fn call(blas: &Blas, g: GemmArgs<$t>) {
                let one: $t = 1.0;
                (blas.$f)(&g.ta, &g.tb, &g.m, &g.n, &g.k, &one, g.a, &g.lda, g.b, &g.ldb, &g.beta, g.c, &g.ldc)
            }
        }
    };
}
gemm_impl!(f32, sgemm);
gemm_impl!(f64, dgemm);

/// Row-major `C[m, n] = A[m, k] · B + beta C`, where B is `W[n, k]` transposed (`w_transposed`, the forward's
/// `h · W_hhᵀ`) or `W[k, n]` as it is (the backward's `dgh · W_hh`). All leading dimensions are the row lengths.
struct RowProduct<R> {
    w_transposed: bool,
    m: usize,
    n: usize,
    k: usize,
    a: *const R,
    w: *const R,
    beta: R,
    c: *mut R,
}

/// Computes `p` with BLAS.
///
/// # Safety
/// The pointers must address matrices of `p`'s shapes.
unsafe fn gemm_rows<R: Gemm>(blas: &Blas, p: RowProduct<R>) {
    // Row-major C is column-major Cᵀ = Bᵀ Aᵀ: W (or its transpose) first, A second.
    let (m, n, k) = (p.m as c_int, p.n as c_int, p.k as c_int);
    let (ta, lda) = if p.w_transposed { (b'T' as c_char, k) } else { (b'N' as c_char, n) };
    let (a, b, beta, c) = (p.w, p.a, p.beta, p.c);
    R::call(blas, GemmArgs { ta, tb: b'N' as c_char, m: n, n: m, k, a, lda, b, ldb: k, beta, c, ldc: n });
}

/// Raw pointers handed to the threads of one call; each thread touches only its own rows.
#[derive(Clone, Copy)]
struct Ptr<R>(*mut R);
// SAFETY: the threads of one call write disjoint rows and the call outlives them (scoped threads).
unsafe impl<R> Send for Ptr<R> {}
unsafe impl<R> Sync for Ptr<R> {}

impl<R> Ptr<R> {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not its field).
    fn get(self) -> *mut R {
        self.0
    }
}

thread_local! {
    static GROUPS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Overrides, on this thread, how many row groups [`split`] makes: `Some(0)` turns the row path off (libtorch's
/// GEMM at every step), None chooses by the thread count. For tests and benchmarks.
pub fn set_groups(n: Option<usize>) {
    GROUPS.with(|g| g.set(n));
}

/// How many groups of rows (at least 16 each, at most one per thread) the recurrence of a batch of `b` runs in,
/// or None when the row path is off or there is no BLAS to call.
pub(super) fn split(b: usize, threads: usize) -> Option<usize> {
    blas()?;
    match GROUPS.with(|g| g.get()) {
        Some(0) => None,
        Some(n) => Some(n.min(b.max(1))),
        None => Some(threads.min(b / 16).max(1)),
    }
}

/// Whether the row path can run here (the loaded libtorch exports MKL's BLAS).
pub fn available() -> bool {
    blas().is_some()
}

/// The row ranges of `n` groups of a batch of `b`.
fn groups(b: usize, n: usize) -> Vec<(usize, usize)> {
    (0..n).map(|i| (i * b / n, (i + 1) * b / n)).collect()
}

/// libgomp's entry points: the OpenMP thread pool libtorch itself runs on. Its idle threads spin for a while
/// after each libtorch call; threads of our own would compete with them for the cores, a parallel region of
/// that pool puts them to work instead.
struct Omp {
    /// `GOMP_parallel(fn, data, num_threads, flags)`: what `#pragma omp parallel` compiles to.
    parallel: unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, u32, u32),
    thread_num: unsafe extern "C" fn() -> c_int,
    num_threads: unsafe extern "C" fn() -> c_int,
}

fn omp() -> Option<&'static Omp> {
    static OMP: OnceLock<Option<Omp>> = OnceLock::new();
    OMP.get_or_init(|| {
        let (p, t, n) = (symbol(c"GOMP_parallel")?, symbol(c"omp_get_thread_num")?, symbol(c"omp_get_num_threads")?);
        type Parallel = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, u32, u32);
        // SAFETY: libgomp's ABI (GCC's code for `#pragma omp parallel` calls exactly this).
        unsafe {
            Some(Omp {
                parallel: std::mem::transmute::<*mut c_void, Parallel>(p),
                thread_num: std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> c_int>(t),
                num_threads: std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> c_int>(n),
            })
        }
    })
    .as_ref()
}

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

/// Sets or clears the CPU's flush-to-zero and denormals-are-zero modes (x86_64 MXCSR bits FTZ and DAZ) on the
/// calling thread and on every thread of libtorch's OpenMP pool (`threads` of them; the pool's threads keep the
/// mode for later calls). With them, a subnormal float (below 1.2e-38 in float32) counts as zero: results
/// change where such values occur, and arithmetic on them no longer takes the slow path that Intel CPUs take
/// (measured in docs/performance.md). Returns false when the pool was not reached (libtorch without libgomp):
/// then only the calling thread has the mode.
pub fn set_flush_denormals(on: bool, threads: usize) -> Result<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        #[allow(deprecated)]
        fn set(on: bool) {
            use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
            // SAFETY: reads and writes this thread's SSE control register; only the two mode bits change.
            unsafe { _mm_setcsr(if on { _mm_getcsr() | FTZ_DAZ } else { _mm_getcsr() & !FTZ_DAZ }) };
        }
        extern "C" fn body(data: *mut c_void) {
            // SAFETY: `data` points at the bool below, alive until GOMP_parallel returns.
            set(unsafe { *(data as *const bool) });
        }
        set(on);
        let Some(omp) = omp() else { return Ok(false) };
        // SAFETY: `body` only reads the bool, which outlives the parallel region, and never unwinds.
        unsafe { (omp.parallel)(body, &on as *const bool as *mut c_void, threads.max(1) as u32, 0) };
        Ok(true)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        ensure!(!on, "flushing denormals is implemented for x86_64 CPUs only (this one is {})", std::env::consts::ARCH);
        let _ = threads;
        Ok(true)
    }
}

/// Whether each thread of libtorch's OpenMP pool (`threads` of them, by OpenMP thread number; the calling thread
/// is number 0) flushes subnormals ([`set_flush_denormals`]); empty without libgomp or off x86_64.
pub fn flushing_threads(threads: usize) -> Vec<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        struct Seen {
            omp: &'static Omp,
            flags: Mutex<Vec<bool>>,
        }
        extern "C" fn body(data: *mut c_void) {
            // SAFETY: `data` is the Seen below, alive until GOMP_parallel returns.
            let seen = unsafe { &*(data as *const Seen) };
            #[allow(deprecated)]
            // SAFETY: reads this thread's SSE control register.
            let csr = unsafe { std::arch::x86_64::_mm_getcsr() };
            let id = unsafe { (seen.omp.thread_num)() } as usize;
            let mut flags = seen.flags.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = flags.get_mut(id) {
                *f = csr & FTZ_DAZ == FTZ_DAZ;
            }
        }
        let Some(omp) = omp() else { return Vec::new() };
        let seen = Seen { omp, flags: Mutex::new(vec![false; threads.max(1)]) };
        // SAFETY: `body` only reads the Seen, which outlives the parallel region, and never unwinds.
        unsafe { (omp.parallel)(body, &seen as *const Seen as *mut c_void, threads.max(1) as u32, 0) };
        seen.flags.into_inner().unwrap_or_else(|e| e.into_inner())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = threads;
        Vec::new()
    }
}

/// Runs `f(r0, r1)` for every group of rows, each on its own thread with single-threaded BLAS calls: on
/// libtorch's OpenMP pool when libgomp is loaded, else on scoped threads. A panic in a group (which must not
/// unwind through the OpenMP runtime) is caught there and returned as an error once every group has ended.
pub fn in_groups(b: usize, n: usize, f: impl Fn(usize, usize) + Sync) -> Result<()> {
    let blas = blas().expect("split() checked for BLAS");
    let gs = groups(b, n);
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let run = |i: usize| {
        // SAFETY: plain calls into MKL's thread-local setting.
        let before = unsafe { (blas.set_local)(1) };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(gs[i].0, gs[i].1)));
        unsafe { (blas.set_local)(before) };
        if let Err(p) = r {
            let mut slot = failed.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(format!("rows {}..{}: {}", gs[i].0, gs[i].1, panic_message(&*p)));
        }
    };
    match (n, omp()) {
        (1, _) => run(0),
        (_, None) => std::thread::scope(|s| {
            for i in 1..n {
                s.spawn(move || run(i));
            }
            run(0);
        }),
        (_, Some(omp)) => {
            struct Team<'a> {
                run: &'a (dyn Fn(usize) + Sync),
                omp: &'static Omp,
                groups: usize,
            }
            extern "C" fn body(data: *mut c_void) {
                // SAFETY: `data` is the Team below, alive until GOMP_parallel returns.
                let team = unsafe { &*(data as *const Team) };
                let (id, size) =
                    unsafe { ((team.omp.thread_num)() as usize, (team.omp.num_threads)().max(1) as usize) };
                // The pool may give fewer threads than asked for: each takes every size-th group.
                for i in (id..team.groups).step_by(size) {
                    (team.run)(i);
                }
            }
            let team = Team { run: &run, omp, groups: n };
            // SAFETY: `body` only reads the Team, which outlives the parallel region; `run` never unwinds.
            unsafe { (omp.parallel)(body, &team as *const Team as *mut c_void, n as u32, 0) };
        }
    }
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(what) => bail!("the fused recurrence failed in a thread ({what})"),
        None => Ok(()),
    }
}

/// The sizes of one fused call: steps, batch rows, hidden units.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub t: usize,
    pub b: usize,
    pub h: usize,
}

/// What the forward recurrence reads and writes: `gx` `[T, B, G]` (input projections with b_ih), `w_hh`
/// `[G, H]`, `b_hh` `[G]`, `hs` `[T + 1, B, H]` (h_0 filled in), `saved` `[T, B, S]` ([`gates::saved_width`]),
/// and for the LSTM `cs` `[T + 1, B, H]` (c_0 filled in).
pub struct ForwardBuffers<'a, R> {
    pub gx: &'a [R],
    pub w_hh: &'a [R],
    pub b_hh: &'a [R],
    pub hs: &'a mut [R],
    pub saved: &'a mut [R],
    pub cs: Option<&'a mut [R]>,
}

/// What the backward chain reads and writes: `dout` `[T, B, H]` (∂L/∂outputs), `hs` and `saved` as the forward
/// left them, `w_hh`; written: `dgx` `[T, B, G]`, `dgh` (GRU: `[T, B, G]`; the RNN's and the LSTM's equal `dgx`),
/// `dh0` `[B, H]`. The LSTM also reads its cell states `cs` `[T + 1, B, H]` and carries ∂L/∂c in `dc` `[B, H]`:
/// ∂L/∂c_T in, ∂L/∂c_0 out.
pub struct BackwardBuffers<'a, R> {
    pub dout: &'a [R],
    pub hs: &'a [R],
    pub saved: &'a [R],
    pub w_hh: &'a [R],
    pub dgx: &'a mut [R],
    pub dgh: Option<&'a mut [R]>,
    pub dh0: &'a mut [R],
    pub cell: Option<(&'a [R], &'a mut [R])>,
}

fn check_len(name: &str, got: usize, want: usize, d: Dims) -> Result<()> {
    ensure!(got == want, "fused recurrence: {name} holds {got} values, {want} expected for {d:?}");
    Ok(())
}

impl<R> ForwardBuffers<'_, R> {
    fn check(&self, cell: CellKind, d: Dims) -> Result<()> {
        let g = cell.gates() as usize * d.h;
        check_len("gx", self.gx.len(), d.t * d.b * g, d)?;
        check_len("w_hh", self.w_hh.len(), g * d.h, d)?;
        check_len("b_hh", self.b_hh.len(), g, d)?;
        check_len("hs", self.hs.len(), (d.t + 1) * d.b * d.h, d)?;
        check_len("saved", self.saved.len(), d.t * d.b * gates::saved_width(cell, d.h), d)?;
        match (&self.cs, cell) {
            (Some(cs), CellKind::Lstm) => check_len("cs", cs.len(), (d.t + 1) * d.b * d.h, d),
            (None, CellKind::Gru | CellKind::Rnn) => Ok(()),
            _ => bail!("fused recurrence: cell states are for the LSTM only"),
        }
    }
}

impl<R> BackwardBuffers<'_, R> {
    fn check(&self, cell: CellKind, d: Dims) -> Result<()> {
        let g = cell.gates() as usize * d.h;
        check_len("dout", self.dout.len(), d.t * d.b * d.h, d)?;
        check_len("hs", self.hs.len(), (d.t + 1) * d.b * d.h, d)?;
        check_len("saved", self.saved.len(), d.t * d.b * gates::saved_width(cell, d.h), d)?;
        check_len("w_hh", self.w_hh.len(), g * d.h, d)?;
        check_len("dgx", self.dgx.len(), d.t * d.b * g, d)?;
        check_len("dh0", self.dh0.len(), d.b * d.h, d)?;
        match (&self.dgh, cell) {
            (Some(dgh), CellKind::Gru) => check_len("dgh", dgh.len(), d.t * d.b * g, d)?,
            (None, CellKind::Rnn | CellKind::Lstm) => {}
            _ => bail!("fused recurrence: a separate dgh is for the GRU only"),
        }
        match (&self.cell, cell) {
            (Some((cs, dc)), CellKind::Lstm) => {
                check_len("cs", cs.len(), (d.t + 1) * d.b * d.h, d)?;
                check_len("dc", dc.len(), d.b * d.h, d)
            }
            (None, CellKind::Gru | CellKind::Rnn) => Ok(()),
            _ => bail!("fused recurrence: cell states are for the LSTM only"),
        }
    }
}

/// The forward recurrence of `cell` over `n` groups of rows (see [`ForwardBuffers`]); the sizes are checked
/// against `d` before any thread starts.
pub fn forward<R: Gemm>(cell: CellKind, d: Dims, n: usize, buf: ForwardBuffers<R>) -> Result<()> {
    buf.check(cell, d)?;
    let blas = blas().expect("split() checked for BLAS");
    let (b, h, g, sw) = (d.b, d.h, buf.b_hh.len(), gates::saved_width(cell, d.h));
    let (gx, w_hh, b_hh) = (buf.gx, buf.w_hh, buf.b_hh);
    let (hs, saved) = (Ptr(buf.hs.as_mut_ptr()), Ptr(buf.saved.as_mut_ptr()));
    let cs = buf.cs.map(|c| Ptr(c.as_mut_ptr()));
    in_groups(b, n, |r0, r1| {
        let m = r1 - r0;
        let mut gh = vec![R::default(); m * g];
        for t in 0..d.t {
            for row in gh.chunks_mut(g) {
                row.copy_from_slice(b_hh);
            }
            // SAFETY: the lengths were checked; rows r0..r1 of steps t and t + 1 belong to this group alone.
            unsafe {
                let prev = hs.get().add((t * b + r0) * h);
                let (w, c) = (w_hh.as_ptr(), gh.as_mut_ptr());
                gemm_rows(blas, RowProduct { w_transposed: true, m, n: g, k: h, a: prev, w, beta: R::ONE, c });
                let c = cs.map(|c| {
                    let prev = std::slice::from_raw_parts(c.get().add((t * b + r0) * h), m * h);
                    (prev, std::slice::from_raw_parts_mut(c.get().add(((t + 1) * b + r0) * h), m * h))
                });
                gates::forward(
                    cell,
                    Forward {
                        gx: &gx[(t * b + r0) * g..(t * b + r1) * g],
                        gh: &gh,
                        prev: std::slice::from_raw_parts(prev, m * h),
                        next: std::slice::from_raw_parts_mut(hs.get().add(((t + 1) * b + r0) * h), m * h),
                        saved: std::slice::from_raw_parts_mut(saved.get().add((t * b + r0) * sw), m * sw),
                        c,
                        h,
                    },
                );
            }
        }
    })
}

/// The backward chain of `cell` over `n` groups of rows (see [`BackwardBuffers`]): per step the gates' gradients
/// and ∂L/∂h_{t−1} = the direct path + the gates' path through W_hh; the sizes are checked against `d` first.
pub fn backward<R: Gemm>(cell: CellKind, d: Dims, n: usize, buf: BackwardBuffers<R>) -> Result<()> {
    buf.check(cell, d)?;
    let blas = blas().expect("split() checked for BLAS");
    let (b, h, g, sw) = (d.b, d.h, cell.gates() as usize * d.h, gates::saved_width(cell, d.h));
    let (dout, hs, saved, w_hh) = (buf.dout, buf.hs, buf.saved, buf.w_hh);
    let dgx = Ptr(buf.dgx.as_mut_ptr());
    let dgh = buf.dgh.map(|s| Ptr(s.as_mut_ptr()));
    let dh0 = Ptr(buf.dh0.as_mut_ptr());
    let cell_bufs = buf.cell.map(|(cs, dc)| (cs, Ptr(dc.as_mut_ptr())));
    in_groups(b, n, |r0, r1| {
        let m = r1 - r0;
        // ∂L/∂h_t from the steps after t (zero after the last step) and the direct part of ∂L/∂h_{t−1}.
        let (mut dh_next, mut carry) = (vec![R::default(); m * h], vec![R::default(); m * h]);
        // The LSTM's ∂L/∂c, from ∂L/∂c_T.
        // SAFETY: rows r0..r1 of dc belong to this group alone.
        let mut dc: Vec<R> = cell_bufs
            .map(|(_, dc)| unsafe { std::slice::from_raw_parts(dc.get().add(r0 * h), m * h).to_vec() })
            .unwrap_or_default();
        for t in (0..d.t).rev() {
            let rows_h = (t * b + r0) * h..(t * b + r1) * h;
            let next_h = ((t + 1) * b + r0) * h..((t + 1) * b + r1) * h;
            let (rows_h_prev, next_c) = (rows_h.clone(), next_h.clone());
            // SAFETY: the lengths were checked; rows r0..r1 of step t belong to this group alone.
            unsafe {
                let dgx_t = std::slice::from_raw_parts_mut(dgx.get().add((t * b + r0) * g), m * g);
                let dgh_t = dgh.map(|p| std::slice::from_raw_parts_mut(p.get().add((t * b + r0) * g), m * g));
                let hidden_side = dgh_t.as_ref().map_or(dgx_t.as_ptr(), |s| s.as_ptr());
                let has_carry = dgh_t.is_some();
                gates::backward(
                    cell,
                    Backward {
                        dout: &dout[rows_h.clone()],
                        dh_next: &dh_next,
                        saved: &saved[(t * b + r0) * sw..(t * b + r1) * sw],
                        prev: &hs[rows_h],
                        out: &hs[next_h],
                        dgx: dgx_t,
                        hidden: dgh_t.map(|s| (s, carry.as_mut_slice())),
                        cell: cell_bufs
                            .map(|(cs, _)| (&cs[rows_h_prev.clone()], &cs[next_c.clone()], dc.as_mut_slice())),
                        h,
                    },
                );
                // The GRU's direct path to h_{t−1} plus the gates' path through W_hh; the RNN has only the latter.
                let beta = if has_carry {
                    dh_next.copy_from_slice(&carry);
                    R::ONE
                } else {
                    R::default()
                };
                let (a, w, c) = (hidden_side, w_hh.as_ptr(), dh_next.as_mut_ptr());
                gemm_rows(blas, RowProduct { w_transposed: false, m, n: h, k: g, a, w, beta, c });
            }
        }
        // SAFETY: rows r0..r1 of dh0 (and dc) belong to this group alone.
        unsafe { std::slice::from_raw_parts_mut(dh0.get().add(r0 * h), m * h).copy_from_slice(&dh_next) };
        if let Some((_, dc_out)) = cell_bufs {
            unsafe { std::slice::from_raw_parts_mut(dc_out.get().add(r0 * h), m * h).copy_from_slice(&dc) };
        }
    })
}

/// One weight gradient of [`weight_grads`]: `dw` `[g, k]` = dGᵀ · `x`, with `x` `[r, k]`.
pub struct WeightGrad<'a, R> {
    pub x: &'a [R],
    pub k: usize,
    pub dw: &'a mut [R],
}

/// The weight gradients ∂L/∂W = dGᵀ · X of one call from its gate gradients `dg` `[r, g]` (all steps' rows),
/// the `g` rows of every product split over `n` threads, each a single-threaded GEMM over all `r` rows. MKL's
/// own two-thread product of this shape splits the `r` rows and adds the partial sums, and on an imdb LSTM step its
/// threads spent a quarter of the time waiting for each other in `sched_yield` (docs/performance.md); here no
/// thread waits on another's sums, and each value's bits do not depend on `n`.
pub fn weight_grads<R: Gemm>(dg: &[R], r: usize, g: usize, grads: &mut [WeightGrad<R>], n: usize) -> Result<()> {
    check_len("dg", dg.len(), r * g, Dims { t: 1, b: r, h: g })?;
    for w in grads.iter() {
        check_len("x", w.x.len(), r * w.k, Dims { t: 1, b: r, h: w.k })?;
        check_len("dw", w.dw.len(), g * w.k, Dims { t: 1, b: g, h: w.k })?;
    }
    let blas = blas().expect("split() checked for BLAS");
    let grads: Vec<(&[R], usize, Ptr<R>)> = grads.iter_mut().map(|w| (w.x, w.k, Ptr(w.dw.as_mut_ptr()))).collect();
    in_groups(g, n, |g0, g1| {
        for &(x, k, dw) in &grads {
            // Row-major dW[g0..g1] = dG[:, g0..g1]ᵀ · X is column-major dWᵀ = Xᵀ · dG[:, g0..g1] (X as stored, the
            // dG block transposed); rows g0..g1 of dW belong to this group alone.
            let (kk, m, rr) = (k as c_int, (g1 - g0) as c_int, r as c_int);
            // SAFETY: the lengths were checked above.
            unsafe {
                R::call(
                    blas,
                    GemmArgs {
                        ta: b'N' as c_char,
                        tb: b'T' as c_char,
                        m: kk,
                        n: m,
                        k: rr,
                        a: x.as_ptr(),
                        lda: kk,
                        b: dg.as_ptr().add(g0),
                        ldb: g as c_int,
                        beta: R::default(),
                        c: dw.get().add(g0 * k),
                        ldc: kk,
                    },
                )
            };
        }
    })
}

/// What a caught panic said (its `&str` or `String` payload).
pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default()
}
