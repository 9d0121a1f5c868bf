//! `train.flush_denormals`: the mode reaches libtorch's worker threads, not only the calling one, and is undone.
//! Its own test binary: the mode is process-wide for the OpenMP pool, and other tests compare bits.
use rnnlab::model::fused::rows::flushing_threads;
use rnnlab::train::flush_denormals;
use tch::{Device, Kind, Tensor};

/// How many of `n` copies of a subnormal survive a multiplication by 2 (`n` large: libtorch splits it over
/// its threads; small: the calling thread alone).
fn surviving(n: i64) -> i64 {
    let tiny = Tensor::full([n], 1e-40, (Kind::Float, Device::Cpu));
    (tiny * 2.0).ne(0.0).sum(Kind::Int64).int64_value(&[])
}

#[test]
fn flushing_denormals_reaches_every_thread_and_can_be_undone() {
    tch::set_num_threads(2);
    let (big, small) = (1 << 20, 100);
    assert_eq!((surviving(big), surviving(small)), (big, small), "subnormals survive by default");
    assert_eq!(flushing_threads(2), [false, false]);
    flush_denormals(true).unwrap();
    assert_eq!(flushing_threads(2), [true, true], "the calling thread and the pool's other thread flush");
    assert_eq!((surviving(big), surviving(small)), (0, 0), "libtorch's arithmetic sees them as zero");
    flush_denormals(false).unwrap();
    assert_eq!(flushing_threads(2), [false, false], "off again everywhere");
    assert_eq!((surviving(big), surviving(small)), (big, small));
}
