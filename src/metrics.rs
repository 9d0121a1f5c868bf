//! Numbers computed from predictions and run folders: confusion matrices, macro-F1, summaries over runs.
use crate::run::{write_atomic, Meta};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// `m[true][pred]` counts.
pub fn confusion(truth: &[i64], pred: &[i64], classes: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; classes]; classes];
    for (&t, &p) in truth.iter().zip(pred) {
        m[t as usize][p as usize] += 1;
    }
    m
}

/// Per-class recall (accuracy on the class's examples); NaN for classes without examples.
pub fn per_class_recall(m: &[Vec<u64>]) -> Vec<f64> {
    m.iter().enumerate().map(|(i, row)| row[i] as f64 / row.iter().sum::<u64>() as f64).collect()
}

/// Unweighted mean of per-class F1 over classes present in the truth.
pub fn macro_f1(m: &[Vec<u64>]) -> f64 {
    let f1s: Vec<f64> = (0..m.len())
        .filter_map(|c| {
            let tp = m[c][c] as f64;
            let support: u64 = m[c].iter().sum();
            let predicted: u64 = m.iter().map(|row| row[c]).sum();
            if support == 0 {
                return None;
            }
            let p = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
            let r = tp / support as f64;
            Some(if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 })
        })
        .collect();
    f1s.iter().sum::<f64>() / f1s.len().max(1) as f64
}

/// Rows normalised to sum to 1.
pub fn row_normalise(m: &[Vec<u64>]) -> Vec<Vec<f64>> {
    m.iter()
        .map(|row| {
            let s = row.iter().sum::<u64>().max(1) as f64;
            row.iter().map(|&v| v as f64 / s).collect()
        })
        .collect()
}

/// The final numbers a classifier run reports (in `meta.yaml`), as summary columns.
pub const CLASSIFIER_RESULTS: [&str; 10] = [
    "test_acc",
    "test_loss",
    "val_acc",
    "n_train",
    "n_val",
    "n_test",
    "best_epoch",
    "n_params",
    "train_s",
    "train_seq_per_s",
];

/// Writes `summary.csv`: one row per run with `experiment, run, status`, the given tags and results, `seed`,
/// `wall_s`. Missing values are left empty.
pub fn write_summary(path: &Path, metas: &[Meta], tags: &[&str], results: &[&str]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["experiment", "run", "status"];
    header.extend(tags);
    header.push("seed");
    header.extend(results);
    header.push("wall_s");
    w.write_record(&header)?;
    for m in metas {
        let mut row = vec![m.experiment.clone(), m.run.clone(), m.status.name().to_string()];
        row.extend(tags.iter().map(|t| m.tags.get(*t).cloned().unwrap_or_default()));
        row.push(m.seed.to_string());
        row.extend(results.iter().map(|r| m.result.get(*r).map(|v| v.to_string()).unwrap_or_default()));
        row.push(format!("{:.1}", m.wall_s));
        w.write_record(&row)?;
    }
    write_atomic(path, &w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?)
}

/// Groups `(key, value)` pairs and returns `key → (mean, std, n)`.
pub fn aggregate<K: Ord + Clone>(pairs: impl IntoIterator<Item = (K, f64)>) -> BTreeMap<K, (f64, f64, usize)> {
    let mut groups: BTreeMap<K, Vec<f64>> = BTreeMap::new();
    for (k, v) in pairs {
        groups.entry(k).or_default().push(v);
    }
    groups
        .into_iter()
        .map(|(k, v)| {
            let (m, s) = crate::plot::mean_std(&v);
            (k, (m, s, v.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_and_confusion() {
        let m = confusion(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], 3);
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]);
        // F1: class0 p=1/2 r=1/2 → 0.5; class1 p=2/3 r=1 → 0.8; class2 → 0.
        assert!((macro_f1(&m) - (0.5 + 0.8 + 0.0) / 3.0).abs() < 1e-12);
        assert_eq!(per_class_recall(&m), vec![0.5, 1.0, 0.0]);
    }
}
