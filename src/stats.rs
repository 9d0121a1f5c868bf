//! Plain numbers: mean ± std, grouping, confusion matrices, F1, correlation and a log-linear fit. No I/O.
use std::collections::BTreeMap;

/// Mean and sample standard deviation (std 0 for one value, NaN for none).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let s = if v.len() > 1 { (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (m, s)
}

/// `mean ± std` with 3 decimals, or `mean (n = 1)` for a single value, so one seed never reads as a measured
/// zero spread; `-` for none.
pub fn fmt_mean_std(v: &[f64]) -> String {
    match v.len() {
        0 => "-".into(),
        1 => format!("{:.3} (n = 1)", v[0]),
        _ => {
            let (m, s) = mean_std(v);
            format!("{m:.3} ± {s:.3}")
        }
    }
}

/// Groups `(key, value)` pairs and returns `key → (mean, std, n)`.
pub fn aggregate<K: Ord>(pairs: impl IntoIterator<Item = (K, f64)>) -> BTreeMap<K, (f64, f64, usize)> {
    let mut groups: BTreeMap<K, Vec<f64>> = BTreeMap::new();
    for (k, v) in pairs {
        groups.entry(k).or_default().push(v);
    }
    groups
        .into_iter()
        .map(|(k, v)| {
            let (m, s) = mean_std(&v);
            (k, (m, s, v.len()))
        })
        .collect()
}

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

/// Per-class precision (share of the class's predictions that are right); NaN for classes never predicted.
pub fn per_class_precision(m: &[Vec<u64>]) -> Vec<f64> {
    (0..m.len()).map(|c| m[c][c] as f64 / m.iter().map(|row| row[c]).sum::<u64>() as f64).collect()
}

/// Per-class F1 (NaN for classes without examples; 0 when never right).
pub fn per_class_f1(m: &[Vec<u64>]) -> Vec<f64> {
    (0..m.len())
        .map(|c| {
            let tp = m[c][c] as f64;
            let support: u64 = m[c].iter().sum();
            let predicted: u64 = m.iter().map(|row| row[c]).sum();
            if support == 0 {
                return f64::NAN;
            }
            let p = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
            let r = tp / support as f64;
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        })
        .collect()
}

/// Unweighted mean of per-class F1 over classes present in the truth.
pub fn macro_f1(m: &[Vec<u64>]) -> f64 {
    let f1s: Vec<f64> = per_class_f1(m).into_iter().filter(|v| !v.is_nan()).collect();
    f1s.iter().sum::<f64>() / f1s.len().max(1) as f64
}

/// Balanced accuracy: the mean recall over the classes present in the truth.
pub fn balanced_accuracy(m: &[Vec<u64>]) -> f64 {
    let r: Vec<f64> = per_class_recall(m).into_iter().filter(|v| !v.is_nan()).collect();
    r.iter().sum::<f64>() / r.len().max(1) as f64
}

/// Class probabilities `p` from a model whose outputs reflect the prior `from`, corrected to the prior `to`
/// (Bayes: p'(c) ∝ p(c) · to_c / from_c), normalised.
pub fn shift_prior(p: &[f64], from: &[f64], to: &[f64]) -> Vec<f64> {
    let q: Vec<f64> = p.iter().zip(from).zip(to).map(|((p, f), t)| if *f > 0.0 { p * t / f } else { 0.0 }).collect();
    let s: f64 = q.iter().sum();
    q.iter().map(|v| v / s.max(1e-300)).collect()
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

/// Pearson correlation of two equally long series (0 when either is constant).
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va > 0.0 && vb > 0.0 {
        cov / (va * vb).sqrt()
    } else {
        0.0
    }
}

/// Least-squares slope of log10(value) against x and its R², over points with value > 0.
/// A slope of −0.3 per step means the value shrinks ×0.5 per step.
pub fn decay_fit(points: &[(i64, f64)]) -> (f64, f64) {
    let p: Vec<(f64, f64)> =
        points.iter().filter(|p| p.1 > 0.0 && p.1.is_finite()).map(|&(d, v)| (d as f64, v.log10())).collect();
    let n = p.len() as f64;
    if p.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let (mx, my) = (p.iter().map(|q| q.0).sum::<f64>() / n, p.iter().map(|q| q.1).sum::<f64>() / n);
    let sxy: f64 = p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
    let sxx: f64 = p.iter().map(|q| (q.0 - mx).powi(2)).sum();
    let syy: f64 = p.iter().map(|q| (q.1 - my).powi(2)).sum();
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 };
    (slope, r2)
}

/// "1 seed", "3 seeds": for titles and legends.
pub fn seeds(n: usize) -> String {
    if n == 1 {
        "1 seed".to_string()
    } else {
        format!("{n} seeds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_confusion_and_balanced_accuracy() {
        let m = confusion(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], 3);
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]);
        // F1: class0 p=1/2 r=1/2 → 0.5; class1 p=2/3 r=1 → 0.8; class2 → 0.
        assert!((macro_f1(&m) - (0.5 + 0.8 + 0.0) / 3.0).abs() < 1e-12);
        assert_eq!(per_class_recall(&m), vec![0.5, 1.0, 0.0]);
        let p = per_class_precision(&m);
        assert_eq!(&p[..2], &[0.5, 2.0 / 3.0]);
        assert!(p[2].is_nan(), "class 2 is never predicted: {p:?}");
        assert!((balanced_accuracy(&m) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn prior_correction_on_a_hand_made_softmax() {
        // Trained on 90 % class 0: p = (0.6, 0.4). Under a uniform prior, class 1 wins: (0.6/0.9, 0.4/0.1) ∝ (2/3, 4).
        let p = shift_prior(&[0.6, 0.4], &[0.9, 0.1], &[0.5, 0.5]);
        assert!((p[0] - (2.0 / 3.0) / (2.0 / 3.0 + 4.0)).abs() < 1e-12 && (p[0] + p[1] - 1.0).abs() < 1e-12);
        // The same prior back and forth is the identity; a zero prior drops the class.
        let q = shift_prior(
            &shift_prior(&[0.2, 0.3, 0.5], &[0.5, 0.3, 0.2], &[0.1, 0.1, 0.8]),
            &[0.1, 0.1, 0.8],
            &[0.5, 0.3, 0.2],
        );
        assert!(q.iter().zip([0.2, 0.3, 0.5]).all(|(a, b)| (a - b).abs() < 1e-12), "{q:?}");
        assert_eq!(shift_prior(&[0.5, 0.5], &[0.5, 0.5], &[1.0, 0.0]), vec![1.0, 0.0]);
    }

    #[test]
    fn one_value_says_n_1() {
        assert_eq!(fmt_mean_std(&[0.9214]), "0.921 (n = 1)");
        assert_eq!(fmt_mean_std(&[0.5, 0.7]), "0.600 ± 0.141");
        assert_eq!(fmt_mean_std(&[]), "-");
    }
}
