//! The names data on ../shared/data and the `names` binary's predict command.
mod common;
use rnnlab::data::names::{fold, Corpus, NamesConfig, SplitKind};
use std::collections::HashSet;
use std::process::Command;

#[test]
fn loads_all_20074_names_in_18_sorted_languages() {
    let c = Corpus::load(&common::test_data().join("names")).unwrap();
    assert_eq!(c.report.lines, 20_074);
    assert_eq!(c.names.len(), 20_074 - c.report.empty);
    assert_eq!(c.classes.len(), 18);
    assert_eq!(c.classes.first().map(String::as_str), Some("Arabic"));
    assert_eq!(c.classes.last().map(String::as_str), Some("Vietnamese"));
    let russian = c.classes.iter().position(|l| l == "Russian").unwrap() as i64;
    assert_eq!(c.labels.iter().filter(|&&l| l == russian).count(), 9408 - c.report.empty);
    assert!(c.names.iter().all(|n| fold(n).1.is_empty()), "every name is in the alphabet after folding");
    assert!(c.report.dropped.contains_key(&'-'), "hyphens are dropped, as in the tutorial");
    assert!(c.report.cross_language.iter().any(|(n, l)| n == "Abel" && l.len() > 1));
    assert_eq!(c.deduped().names.len(), c.names.len() - c.report.repeated);
}

#[test]
fn stratified_split_is_deterministic_disjoint_and_80_10_10_per_language() {
    let c = Corpus::load(&common::test_data().join("names")).unwrap();
    let (tr, va, te) = c.split(SplitKind::Stratified, 3);
    assert_eq!((tr.clone(), va.clone(), te.clone()), c.split(SplitKind::Stratified, 3));
    assert_ne!(te, c.split(SplitKind::Stratified, 4).2);
    let all: HashSet<usize> = tr.iter().chain(&va).chain(&te).copied().collect();
    assert_eq!(all.len(), c.names.len(), "splits overlap or miss rows");
    for class in 0..18 {
        let n = |v: &[usize]| v.iter().filter(|&&i| c.labels[i] == class).count() as f64;
        let total = n(&tr) + n(&va) + n(&te);
        assert!((n(&te) - total * 0.1).abs() <= 0.5 && (n(&va) - total * 0.1).abs() <= 0.5, "class {class}");
    }
}

#[test]
fn test_names_labelled_only_otherwise_in_training_are_marked() {
    let cfg = NamesConfig { dir: common::test_data().join("names"), ..Default::default() };
    let (ds, test) = cfg.dataset(1).unwrap();
    let c = Corpus::load(&cfg.dir).unwrap();
    let (tr, _, te) = c.split(SplitKind::Stratified, 1);
    assert_eq!(test.names.len(), ds.test.unwrap().len());
    // Recomputed here by brute force: in training, never with its own language, at least once with another.
    for (j, &i) in te.iter().enumerate() {
        let langs: Vec<i64> = tr.iter().filter(|&&t| c.names[t] == c.names[i]).map(|&t| c.labels[t]).collect();
        let expected = !langs.is_empty() && !langs.contains(&c.labels[i]);
        assert_eq!(test.only_elsewhere[j], expected, "{} ({})", c.names[i], c.classes[c.labels[i] as usize]);
    }
    // The data's known trait: most Scottish surnames are also English ones.
    let scottish = c.classes.iter().position(|l| l == "Scottish").unwrap() as i64;
    let of: Vec<usize> = (0..te.len()).filter(|&j| c.labels[te[j]] == scottish).collect();
    let elsewhere = of.iter().filter(|&&j| test.only_elsewhere[j]).count();
    assert!(elsewhere * 2 > of.len(), "{elsewhere} of {} Scottish test names", of.len());
}

#[test]
fn tutorial_split_matches_pytorch_random_split_with_seed_2024() {
    let c = Corpus::load(&common::test_data().join("names")).unwrap();
    let (tr, va, te) = c.split(SplitKind::Tutorial, 0);
    assert_eq!((tr.len(), va.len(), te.len()), (17_063, 0, 3_011));
    // torch.utils.data.random_split(range(20074), [.85, .15], generator=torch.Generator().manual_seed(2024))
    assert_eq!(&tr[..5], &[13246, 2613, 18490, 11470, 8047]);
    assert_eq!(&te[..3], &[11643, 2085, 11484]);
}

#[test]
fn missing_or_empty_folders_are_clear_errors() {
    let e = format!("{:#}", Corpus::load(std::path::Path::new("/nonexistent/names")).unwrap_err());
    assert!(e.contains("/nonexistent/names") && e.contains("make data"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = format!("{:#}", Corpus::load(empty.path()).unwrap_err());
    assert!(e.contains("no .txt files"), "{e}");
    std::fs::write(empty.path().join("Klingon.txt"), "\n\n").unwrap();
    let e = format!("{:#}", Corpus::load(empty.path()).unwrap_err());
    assert!(e.contains("Klingon.txt holds no names"), "{e}");
}

#[test]
fn distance_mode_appends_filler_the_model_must_read() {
    let cfg = NamesConfig { dir: common::test_data().join("names"), distance: 5, ..Default::default() };
    let (ds, test_names) = cfg.dataset(0).unwrap();
    let test = ds.test.unwrap();
    assert_eq!(test.len(), test_names.names.len());
    for (len, name) in test.lengths.iter().zip(&test_names.names) {
        assert_eq!(*len as usize, name.chars().count() + 5);
    }
}

#[test]
fn predict_prints_the_top_3_languages_with_probabilities() {
    let out = tempfile::tempdir().unwrap();
    let names = common::test_data().join("names");
    let bin = env!("CARGO_BIN_EXE_names");
    let train = Command::new(bin)
        .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/configs/names.yaml"), "--out"])
        .arg(out.path())
        .arg("--set")
        .arg(format!("data.dir={}", names.display()))
        .args(["--set", "sweep.model.cell=[gru]", "--set", "sweep.train.seed=[0]", "--set", "train.epochs=2"])
        .output()
        .unwrap();
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let run = out.path().join("names/gru-s0");
    // The prior trade-off: τ = 0 is the model as trained (its test accuracy), τ = 1 the uniform prior, which
    // raises the balanced accuracy.
    let meta = std::fs::read_to_string(run.join("meta.yaml")).unwrap();
    let result = |key: &str| -> f64 {
        let line = meta.lines().find(|l| l.trim_start().starts_with(&format!("{key}:"))).unwrap();
        line.split(':').nth(1).unwrap().trim().parse().unwrap()
    };
    let curve = std::fs::read_to_string(run.join("prior_tradeoff.csv")).unwrap();
    let rows: Vec<Vec<f64>> =
        curve.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(curve.lines().next().unwrap(), "tau,acc,macro_f1,balanced_acc");
    let (first, last) = (&rows[0], rows.last().unwrap());
    assert!(first[0] == 0.0 && (first[1] - result("test_acc")).abs() < 1e-12, "{curve}");
    assert!(last[0] == 1.0 && last[1] == result("uniform_acc") && last[3] == result("uniform_balanced_acc"), "{curve}");
    assert!(last[3] > first[3], "the uniform prior should raise the balanced accuracy:\n{curve}");
    let p = Command::new(bin)
        .args(["predict", "--run"])
        .arg(&run)
        .args(["Dovesky", "Nakamura", "Ślusàrski"])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let text = String::from_utf8_lossy(&p.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3 * 4, "{text}");
    let probs: Vec<f64> = lines[1..4].iter().map(|l| l.split_whitespace().last().unwrap().parse().unwrap()).collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]) && probs.iter().sum::<f64>() <= 1.0 + 1e-6, "{text}");
    assert!(lines[1].trim_start().starts_with("Russian"), "2 epochs should already call Dovesky Russian:\n{text}");
    let bad = Command::new(bin).args(["predict", "--run"]).arg(&run).arg("R2-D2").output().unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("\"R2-D2\"") && err.contains("'2'") && err.contains("not in the alphabet"), "{err}");
}
