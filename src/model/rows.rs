//! The recurrences of [`super::fused`] split over the rows of the batch, one group of rows per thread.
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
use super::fused::Real;
use crate::config::CellKind;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

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

pub(super) struct Blas {
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
        unsafe { gemm_rows(&blas, false, 2, 2, 2, a.as_ptr(), b.as_ptr(), 0.0, c.as_mut_ptr()) };
        (c == [19.0, 22.0, 43.0, 50.0]).then_some(blas)
    })
    .as_ref()
}

/// A float the row path computes in.
pub(super) trait Gemm: Real + Send + Sync {
    /// # Safety
    /// The pointers must address matrices of the given shapes.
    unsafe fn call(blas: &Blas, args: GemmArgs<Self>);
}

/// The arguments of one column-major `?gemm_` call.
pub(super) struct GemmArgs<R> {
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
///
/// # Safety
/// The pointers must address matrices of these shapes.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_rows<R: Gemm>(
    blas: &Blas,
    w_transposed: bool,
    m: usize,
    n: usize,
    k: usize,
    a: *const R,
    w: *const R,
    beta: R,
    c: *mut R,
) {
    // Row-major C is column-major Cᵀ = Bᵀ Aᵀ: W (or its transpose) first, A second.
    let (m, n, k) = (m as c_int, n as c_int, k as c_int);
    let (ta, lda) = if w_transposed { (b'T' as c_char, k) } else { (b'N' as c_char, n) };
    R::call(blas, GemmArgs { ta, tb: b'N' as c_char, m: n, n: m, k, a: w, lda, b: a, ldb: k, beta, c, ldc: n });
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

/// Runs `f(r0, r1)` for every group of rows, each on its own thread with single-threaded BLAS calls: on
/// libtorch's OpenMP pool when libgomp is loaded, else on scoped threads.
fn in_groups(b: usize, n: usize, f: impl Fn(usize, usize) + Sync) {
    let blas = blas().expect("split() checked for BLAS");
    let gs = groups(b, n);
    let run = |i: usize| {
        // SAFETY: plain calls into MKL's thread-local setting.
        let before = unsafe { (blas.set_local)(1) };
        f(gs[i].0, gs[i].1);
        unsafe { (blas.set_local)(before) };
    };
    if n == 1 {
        run(0);
        return;
    }
    let Some(omp) = omp() else {
        std::thread::scope(|s| {
            for i in 1..n {
                s.spawn(move || run(i));
            }
            run(0);
        });
        return;
    };
    struct Team<'a> {
        run: &'a (dyn Fn(usize) + Sync),
        omp: &'static Omp,
        groups: usize,
    }
    extern "C" fn body(data: *mut c_void) {
        // SAFETY: `data` is the Team below, alive until GOMP_parallel returns.
        let team = unsafe { &*(data as *const Team) };
        let (id, size) = unsafe { ((team.omp.thread_num)() as usize, (team.omp.num_threads)().max(1) as usize) };
        // The pool may give fewer threads than asked for: each takes every size-th group.
        for i in (id..team.groups).step_by(size) {
            (team.run)(i);
        }
    }
    let team = Team { run: &run, omp, groups: n };
    // SAFETY: `body` only reads the Team, which outlives the parallel region.
    unsafe { (omp.parallel)(body, &team as *const Team as *mut c_void, n as u32, 0) };
}

/// The forward recurrence over rows: `gx` `[T, B, G]` (input projections with b_ih), `w_hh` `[G, H]`, `b_hh`
/// `[G]`, `hs` `[T + 1, B, H]` (h_0 filled in), `saved` `[T, B, 4H]` for the GRU.
///
/// # Safety
/// The slices' shapes must be as stated; `hs` and `saved` are written.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn forward<R: Gemm>(
    cell: CellKind,
    n: usize,
    gx: &[R],
    w_hh: &[R],
    b_hh: &[R],
    hs: &mut [R],
    saved: &mut [R],
    t_len: usize,
    b: usize,
    h: usize,
) {
    let blas = blas().expect("split() checked for BLAS");
    let g = b_hh.len();
    let (hs, saved) = (Ptr(hs.as_mut_ptr()), Ptr(saved.as_mut_ptr()));
    in_groups(b, n, |r0, r1| {
        let m = r1 - r0;
        let mut gh = vec![R::default(); m * g];
        for t in 0..t_len {
            for row in gh.chunks_mut(g) {
                row.copy_from_slice(b_hh);
            }
            // SAFETY: rows r0..r1 of steps t and t + 1 belong to this group alone.
            unsafe {
                let prev = hs.get().add((t * b + r0) * h);
                gemm_rows(blas, true, m, g, h, prev, w_hh.as_ptr(), R::ONE, gh.as_mut_ptr());
                let prev = std::slice::from_raw_parts(prev, m * h);
                let next = std::slice::from_raw_parts_mut(hs.get().add(((t + 1) * b + r0) * h), m * h);
                let gx = &gx[(t * b + r0) * g..(t * b + r1) * g];
                match cell {
                    CellKind::Gru => {
                        let sv = std::slice::from_raw_parts_mut(saved.get().add((t * b + r0) * 4 * h), m * 4 * h);
                        super::fused::gru_forward_rows(gx, &gh, prev, next, sv, m, h)
                    }
                    _ => super::fused::rnn_forward_rows(gx, &gh, next),
                }
            }
        }
    });
}

/// The backward chain over rows: from ∂L/∂outputs `dout` `[T, B, H]`, the gates' gradients `dgx`, `dgh`
/// `[T, B, G]` (the same buffer for the RNN, whose two are equal) and ∂L/∂h_0 into `dh0` `[B, H]`.
///
/// # Safety
/// The slices' shapes must be as stated; `dgx`, `dgh` and `dh0` are written.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn backward<R: Gemm>(
    cell: CellKind,
    n: usize,
    dout: &[R],
    hs: &[R],
    saved: &[R],
    w_hh: &[R],
    dgx: *mut R,
    dgh: *mut R,
    dh0: &mut [R],
    t_len: usize,
    b: usize,
    h: usize,
) {
    let blas = blas().expect("split() checked for BLAS");
    let g = cell.gates() as usize * h;
    let (dgx, dgh, dh0) = (Ptr(dgx), Ptr(dgh), Ptr(dh0.as_mut_ptr()));
    in_groups(b, n, |r0, r1| {
        let m = r1 - r0;
        // ∂L/∂h_t from the steps after t (zero after the last step) and the direct part of ∂L/∂h_{t-1}.
        let (mut dh_next, mut carry) = (vec![R::default(); m * h], vec![R::default(); m * h]);
        for t in (0..t_len).rev() {
            let rows_h = (t * b + r0) * h..(t * b + r1) * h;
            // SAFETY: rows r0..r1 of step t belong to this group alone.
            unsafe {
                let dgx_t = std::slice::from_raw_parts_mut(dgx.get().add((t * b + r0) * g), m * g);
                match cell {
                    CellKind::Gru => {
                        let dgh_t = std::slice::from_raw_parts_mut(dgh.get().add((t * b + r0) * g), m * g);
                        let sv = &saved[(t * b + r0) * 4 * h..(t * b + r1) * 4 * h];
                        super::fused::gru_backward_rows(
                            &dout[rows_h.clone()],
                            &dh_next,
                            sv,
                            &hs[rows_h],
                            dgx_t,
                            dgh_t,
                            &mut carry,
                            m,
                            h,
                        );
                        // ∂L/∂h_{t-1} = the direct path + the gates' path through W_hh.
                        dh_next.copy_from_slice(&carry);
                        gemm_rows(blas, false, m, h, g, dgh_t.as_ptr(), w_hh.as_ptr(), R::ONE, dh_next.as_mut_ptr());
                    }
                    _ => {
                        let out = &hs[((t + 1) * b + r0) * h..((t + 1) * b + r1) * h];
                        super::fused::rnn_backward_rows(&dout[rows_h], &dh_next, out, dgx_t);
                        gemm_rows(
                            blas,
                            false,
                            m,
                            h,
                            g,
                            dgx_t.as_ptr(),
                            w_hh.as_ptr(),
                            R::default(),
                            dh_next.as_mut_ptr(),
                        );
                    }
                }
            }
        }
        // SAFETY: rows r0..r1 of dh0 belong to this group alone.
        unsafe { std::slice::from_raw_parts_mut(dh0.get().add(r0 * h), m * h).copy_from_slice(&dh_next) };
    });
}
