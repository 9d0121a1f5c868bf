//! The training loop and run folders: learning, reproducibility, divergence, reuse of finished runs.
mod common;
use common::{point, train};
use rnnlab::config::CellKind;
use rnnlab::data::{Batch, Dataset};
use rnnlab::experiments::demo::Demo;
use rnnlab::model::{Classifier, Objective, Stats};
use rnnlab::results::{read_meta, Meta, Opened, RunDir, Status};
use rnnlab::sweep::{run_point, Cfg, Columns, Experiment, Finish, RunOptions};
use rnnlab::train::fit;
use std::cell::Cell;
use std::path::Path;
use tch::{nn, Device};

#[test]
fn a_tiny_model_learns_the_shortest_task() {
    let dir = tempfile::tempdir().unwrap();
    let meta = train(dir.path(), &point("gru", CellKind::Gru, 6, false), false).unwrap();
    assert_eq!(meta.status, Status::Finished);
    let acc = meta.result["test_acc"];
    assert!(acc > 0.95, "GRU on the L=6 task reached only {acc} (chance is 0.25)");
}

#[test]
fn same_seed_gives_identical_csv_bytes() {
    // Separate processes, as users run them (libtorch's generator is global to a process), with dropout on so
    // that training itself draws random numbers.
    let run = |out: &Path, seed: u64| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/configs/demo.yaml"), "--out"])
            .arg(out)
            .args(["--set", "sweep.data.length=[8]", "--set", "sweep.model.cell=[lstm]", "--set", "train.epochs=2"])
            .args([
                "--set",
                "data.n_train=300",
                "--set",
                "data.n_val=60",
                "--set",
                "data.n_test=60",
                "--set",
                "model.dropout=0.3",
            ])
            .args(["--set", &format!("sweep.train.seed=[{seed}]")])
            // A fixed thread count: the default shares the cores with other live runs (other tests).
            .args(["--threads", "1"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(a.path(), 7);
    run(b.path(), 7);
    for f in ["metrics.csv", "steps.csv", "grad_norms.csv", "config.yaml"] {
        let x = std::fs::read(a.path().join("demo/lstm-L8-s7").join(f)).unwrap();
        let y = std::fs::read(b.path().join("demo/lstm-L8-s7").join(f)).unwrap();
        assert!(!x.is_empty(), "{f} is empty");
        assert!(x == y, "{f} differs between two runs with the same seed");
    }
    // A different seed changes the numbers.
    run(c.path(), 8);
    let x = std::fs::read(a.path().join("demo/lstm-L8-s7/metrics.csv")).unwrap();
    assert!(x != std::fs::read(c.path().join("demo/lstm-L8-s8/metrics.csv")).unwrap());
}

/// Wraps a model and turns its loss into NaN from training step `at` on.
struct NanFrom<'a> {
    inner: &'a Classifier,
    at: usize,
    step: Cell<usize>,
}

impl Objective for NanFrom<'_> {
    fn stats(&self, batch: &Batch, train: bool) -> Stats {
        let mut s = self.inner.stats(batch, train);
        if train {
            self.step.set(self.step.get() + 1);
            if self.step.get() >= self.at {
                s.loss = &s.loss * f64::NAN;
            }
        }
        s
    }
}

#[test]
fn a_nan_loss_marks_the_run_diverged_and_keeps_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = point("nan", CellKind::Rnn, 5, false).cfg;
    let ds: Dataset = p.data.dataset(1);
    let per_epoch = ds.train.len().div_ceil(32); // 19 steps
    let Opened::New(mut run) = RunDir::open(dir.path(), "t", "nan", "x", 1, Default::default(), false).unwrap() else {
        panic!()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let model = Classifier::new(&vs.root(), &p.model, ds.shape.vocab, 4);
    let at = per_epoch + 5; // in epoch 2
    let nan = NanFrom { inner: &model, at, step: Cell::new(0) };
    let out = fit(&nan, &vs, &ds, &p.train, 0.01, &mut run, None).unwrap();
    assert_eq!(out.status, Status::Diverged);
    // Detected at the next host sync (every log_every steps, or the epoch's end).
    assert!(out.steps >= at && out.steps < at + p.train.log_every, "stopped at step {}", out.steps);
    let meta = read_meta(&dir.path().join("t/nan")).unwrap();
    assert_eq!(meta.status, Status::Diverged);
    assert!(meta.message.as_deref().unwrap().contains(&format!("step {at}")), "{:?}", meta.message);
    let metrics = std::fs::read_to_string(dir.path().join("t/nan/metrics.csv")).unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    assert!(lines[0].starts_with("experiment,run,model,variant,seed,epoch,step,split,loss,acc,status"), "{}", lines[0]);
    // Epoch 1 (train + val + test rows) survives, then one diverged row.
    assert_eq!(lines.len(), 1 + 3 + 1, "{metrics}");
    assert!(lines[1].contains(",1,19,train,") && lines[1].ends_with(",ok"));
    assert!(lines[4].contains(&format!(",2,{at},train,NaN,")) && lines[4].ends_with(",diverged"), "{}", lines[4]);
    let steps = std::fs::read_to_string(dir.path().join("t/nan/steps.csv")).unwrap();
    assert!(steps.lines().count() > at, "steps.csv lost rows");
    // The next run carries on normally.
    let meta = train(dir.path(), &point("after", CellKind::Gru, 1, false), false).unwrap();
    assert_eq!(meta.status, Status::Finished);
}

/// The demo experiment, counting the data sets it is asked for (one per run actually trained).
#[derive(Default)]
struct Counting {
    loads: Cell<usize>,
}

impl Experiment for Counting {
    type Data = <Demo as Experiment>::Data;
    type Own = ();
    type PerRun = ();
    fn columns(&self) -> Columns {
        Demo.columns()
    }
    fn dataset(&self, cfg: &Cfg<Self>) -> anyhow::Result<(Dataset, ())> {
        self.loads.set(self.loads.get() + 1);
        Ok((cfg.data.dataset(cfg.train.seed), ()))
    }
    fn finish(&self, _: &Finish<Self>) -> anyhow::Result<String> {
        Ok(String::new())
    }
}

fn counted(root: &Path, e: &Counting, epochs: usize, overwrite: bool) -> anyhow::Result<Meta> {
    let p = point("r", CellKind::Gru, epochs, false);
    run_point(e, &p, root, "t", &RunOptions { overwrite, ..Default::default() })
}

#[test]
fn finished_runs_are_reused_and_never_overwritten_silently() {
    let dir = tempfile::tempdir().unwrap();
    let e = Counting::default();
    let first = counted(dir.path(), &e, 1, false).unwrap();
    let again = counted(dir.path(), &e, 1, false).unwrap();
    assert_eq!(e.loads.get(), 1, "a finished run with the same config must not be redone");
    assert_eq!(first.finished, again.finished);
    // Different config: refused, results untouched.
    let before = std::fs::read(dir.path().join("t/r/metrics.csv")).unwrap();
    let msg = format!("{:#}", counted(dir.path(), &e, 2, false).unwrap_err());
    assert!(msg.contains("different config") && msg.contains("--overwrite"), "{msg}");
    assert_eq!(before, std::fs::read(dir.path().join("t/r/metrics.csv")).unwrap());
    // With overwrite it is redone.
    let redone = counted(dir.path(), &e, 2, true).unwrap();
    assert_eq!(redone.result["steps"], 2.0 * 19.0);
    // An interrupted run (status running) is restarted.
    let path = dir.path().join("t/r/meta.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace("status: finished", "status: running");
    std::fs::write(&path, text).unwrap();
    let loads = e.loads.get();
    counted(dir.path(), &e, 2, false).unwrap();
    assert_eq!(e.loads.get(), loads + 1);
    // A run still being written by a live process (holding the run's lock) is left alone.
    let lock = dir.path().join("t/.locks/r");
    let mut other = std::process::Command::new("flock").arg(&lock).args(["sleep", "30"]).spawn().unwrap();
    while std::fs::File::open(&lock).unwrap().try_lock().is_ok() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::write(&lock, other.id().to_string()).unwrap();
    let err = counted(dir.path(), &e, 2, false).unwrap_err();
    other.kill().unwrap();
    other.wait().unwrap();
    let msg = format!("{err:#}");
    assert!(msg.contains("being written by another process") && msg.contains(&other.id().to_string()), "{msg}");
}

/// (split, loss, acc) of every row of a run's metrics.csv, in order.
fn epochs(path: &Path) -> Vec<(String, f64, f64)> {
    let mut rows = csv::Reader::from_path(path).unwrap();
    let head = rows.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    rows.records()
        .map(|r| r.unwrap())
        .map(|r| (r[col("split")].to_string(), r[col("loss")].parse().unwrap(), r[col("acc")].parse().unwrap()))
        .collect()
}

#[test]
fn lr_decay_shrinks_the_steps_epoch_by_epoch() {
    // With a decay of 1e-9 the weights stop moving after epoch 1: epochs 2 and 3 see the same model, so their
    // mean training losses agree (dropout is off; only the batch order differs). Without decay they do not.
    let train_losses = |decay: f64| -> Vec<f64> {
        let dir = tempfile::tempdir().unwrap();
        let mut p = point("r", CellKind::Gru, 3, false);
        p.cfg.train.lr_decay = decay;
        train(dir.path(), &p, false).unwrap();
        epochs(&dir.path().join("t/r/metrics.csv")).into_iter().filter(|r| r.0 == "train").map(|r| r.1).collect()
    };
    let frozen = train_losses(1e-9);
    assert!((frozen[1] - frozen[2]).abs() < 1e-5, "{frozen:?}");
    let constant = train_losses(1.0);
    assert!((constant[1] - constant[2]).abs() > 1e-3, "{constant:?}");
}

#[test]
fn weight_averaging_changes_what_is_evaluated_not_how_training_goes() {
    // Train and val losses per epoch, val accuracy of the best epoch (by val loss), val accuracy of the kept weights.
    let run = |average: f64| -> (Vec<f64>, Vec<f64>, f64, f64) {
        let dir = tempfile::tempdir().unwrap();
        let mut p = point("r", CellKind::Gru, 4, false);
        p.cfg.train.average = average;
        let meta = train(dir.path(), &p, false).unwrap();
        let (mut train, mut val, mut best) = (vec![], vec![], (f64::INFINITY, 0f64));
        for (split, loss, acc) in epochs(&dir.path().join("t/r/metrics.csv")) {
            match split.as_str() {
                "train" => train.push(loss),
                "val" => {
                    val.push(loss);
                    if loss < best.0 {
                        best = (loss, acc);
                    }
                }
                _ => {}
            }
        }
        (train, val, best.1, meta.result["val_acc"])
    };
    let (train0, val0, ..) = run(0.0);
    let (train1, val1, best, kept) = run(0.9);
    // The live weights are restored after each evaluation: training itself is unchanged, bit for bit.
    assert_eq!(train0, train1);
    // What is evaluated (and kept) is the average, not the live weights.
    assert!(val0.iter().zip(&val1).all(|(a, b)| a != b), "{val0:?} vs {val1:?}");
    assert_eq!(best, kept, "the kept weights are not those of the best evaluated epoch");
}

#[test]
fn balanced_epochs_draw_every_class_equally_and_cover_the_big_ones() {
    use rnnlab::data::Balanced;
    use rnnlab::rng::Rng;
    // 900 rows of class 0, 90 of class 1, 10 of class 2.
    let labels: Vec<i64> = (0..1000)
        .map(|i| {
            if i < 900 {
                0
            } else if i < 990 {
                1
            } else {
                2
            }
        })
        .collect();
    let mut b = Balanced::new(&labels, 3);
    let mut rng = Rng::new(5);
    let mut seen0 = std::collections::HashSet::new();
    for epoch in 0..3 {
        let rows = b.epoch(1000, &mut rng);
        let count = |c: i64| rows.iter().filter(|&&r| labels[r as usize] == c).count();
        assert_eq!([count(0), count(1), count(2)], [334, 334, 334], "epoch {epoch}");
        // A big class's rows come without repeats until its queue is used up (in the third epoch, at row 900).
        let zeros: Vec<i64> = rows.iter().copied().filter(|&r| labels[r as usize] == 0).collect();
        if epoch < 2 {
            assert_eq!(zeros.iter().collect::<std::collections::HashSet<_>>().len(), 334, "epoch {epoch}");
        }
        seen0.extend(zeros);
    }
    // Three epochs of 334 cover all 900 rows of class 0 (no row starved).
    assert_eq!(seen0.len(), 900);
}

#[test]
fn class_weights_weigh_the_loss_as_specified() {
    use rnnlab::config::ClassWeights;
    use rnnlab::model::class_stats;
    use tch::{Kind, Tensor};
    let counts = [80i64, 15, 5];
    let inv = ClassWeights::Inverse.of(&counts);
    // Inverse: w ∝ 1/n, mean 1 over the rows.
    assert!(
        (inv[0] * 80.0 - inv[2] * 5.0).abs() < 1e-9
            && (inv.iter().zip(counts).map(|(w, n)| w * n as f64).sum::<f64>() - 100.0).abs() < 1e-9
    );
    let sq = ClassWeights::Sqrt.of(&counts);
    assert!((sq[0] / sq[2] - (5.0f64 / 80.0).sqrt()).abs() < 1e-12);
    assert_eq!(ClassWeights::None.of(&counts), vec![1.0; 3]);
    // The weighted loss is Σ w_y · CE / Σ w_y.
    let logits = Tensor::from_slice(&[2.0f32, 0.0, -1.0, 0.5, 0.5, 0.0, -1.0, 1.0, 3.0]).view([3, 3]);
    let targets = Tensor::from_slice(&[0i64, 1, 2]);
    let ce: Vec<f64> =
        Vec::try_from(logits.log_softmax(-1, Kind::Double).gather(1, &targets.view([3, 1]), false).view([3]) * -1.0)
            .unwrap();
    let w = Tensor::from_slice(&inv).to_kind(Kind::Float);
    let got = class_stats(&logits, &targets, Some(&w)).loss.double_value(&[]);
    let want = (inv[0] * ce[0] + inv[1] * ce[1] + inv[2] * ce[2]) / (inv[0] + inv[1] + inv[2]);
    assert!((got - want).abs() < 1e-5, "weighted loss {got} vs {want}");
    let plain = class_stats(&logits, &targets, None).loss.double_value(&[]);
    assert!((plain - ce.iter().sum::<f64>() / 3.0).abs() < 1e-5 && (plain - got).abs() > 1e-3);
}
