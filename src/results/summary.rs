//! Across runs: `summary.csv` (one row per run) and the terminal table (mean ± std over seeds per point).
use super::{tags, write_atomic, Meta};
use crate::stats::mean_std;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

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

/// Writes `summary.csv`: one row per run with `experiment, run, status`, the key columns (`keys` and every tag
/// of any run: each swept key is a column), `seed`, the `results` and `wall_s`. Missing values are left empty.
pub fn write_summary(path: &Path, metas: &[Meta], keys: &[&str], results: &[&str]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["experiment", "run", "status"];
    let tags = tags::ordered(keys.iter().copied().chain(metas.iter().flat_map(|m| m.tags.keys().map(String::as_str))));
    header.extend(&tags);
    header.push("seed");
    header.extend(results);
    header.push("wall_s");
    w.write_record(&header)?;
    for m in metas {
        let mut row = vec![m.experiment.clone(), m.run.clone(), m.status.name().to_string()];
        row.extend(tags.iter().map(|t| m.tag(t)));
        row.push(m.seed.to_string());
        row.extend(results.iter().map(|r| m.result.get(*r).map(|v| v.to_string()).unwrap_or_default()));
        row.push(format!("{:.1}", m.wall_s));
        w.write_record(&row)?;
    }
    write_atomic(path, &w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?)
}

/// Sort rank of a `model` value: RNN, GRU, LSTM, then the bag of words, then anything else.
pub fn model_rank(m: &str) -> usize {
    ["rnn", "gru", "lstm", "bow"].iter().position(|&k| k == m).unwrap_or(9)
}

/// How a `model` value reads in tables and legends.
pub fn model_label(m: &str) -> String {
    match m {
        "bow" => "bag of words".into(),
        other => other.to_uppercase(),
    }
}

/// One column of a terminal table: `result` over the runs whose tag `filter.0` is `filter.1` (all when None).
pub struct Column {
    pub header: String,
    pub filter: Option<(String, String)>,
    pub result: String,
}

impl Column {
    pub fn new(header: &str, result: &str) -> Self {
        Column { header: header.into(), filter: None, result: result.into() }
    }

    /// One column per value of `tag` (numbers in numeric order), headed `{label}={value}`.
    pub fn per_value(metas: &[Meta], tag: &str, label: &str, result: &str) -> Vec<Column> {
        let mut values: Vec<&super::Tag> = metas.iter().filter_map(|m| m.tags.get(tag)).collect();
        values.sort_by(|a, b| a.order(b));
        values.dedup();
        values
            .into_iter()
            .map(|v| Column {
                header: format!("{label}={v}"),
                filter: Some((tag.into(), v.to_string())),
                result: result.into(),
            })
            .collect()
    }
}

/// A table for the terminal: one row per distinct value of the `rows` tags (models as RNN, GRU, LSTM, bag of
/// words), one column per [`Column`]; each cell the mean ± std over the runs (seeds). When every cell holds one
/// run, the title says so and the cells show the value alone (a single seed has no spread to show).
///
/// A tag that varies between the runs and is neither among `rows` nor a column's filter (a sweep's `variant`, say)
/// is added to them, so
/// runs of different points are never averaged as if they were seeds.
pub fn table(title: &str, metas: &[Meta], rows: &[&str], columns: &[Column]) -> String {
    let varying: Vec<&str> = metas
        .iter()
        .flat_map(|m| m.tags.keys())
        .map(String::as_str)
        .filter(|t| *t != "seed" && !rows.contains(t))
        .filter(|t| !columns.iter().any(|c| c.filter.as_ref().is_some_and(|(f, _)| f == t)))
        .filter(|t| metas.iter().map(|m| m.tag(t)).collect::<std::collections::BTreeSet<_>>().len() > 1)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows: Vec<&str> = rows.iter().copied().chain(varying).collect();
    let rows = rows.as_slice();
    let mut groups: BTreeMap<Vec<(usize, String)>, Vec<&Meta>> = BTreeMap::new();
    for m in metas.iter().filter(|m| m.status.is_complete()) {
        let key = rows
            .iter()
            .map(|t| {
                let v = m.tag(t);
                (if *t == "model" { model_rank(&v) } else { 0 }, v)
            })
            .collect();
        groups.entry(key).or_default().push(m);
    }
    let cell_values = |runs: &[&Meta], c: &Column| -> Vec<f64> {
        runs.iter()
            .filter(|m| c.filter.as_ref().is_none_or(|(t, v)| m.tag(t) == *v))
            .filter_map(|m| m.result.get(&c.result).copied())
            .collect()
    };
    let single = groups.values().all(|runs| columns.iter().all(|c| cell_values(runs, c).len() <= 1));
    let mut lines: Vec<Vec<String>> =
        vec![rows.iter().map(|r| r.to_string()).chain(columns.iter().map(|c| c.header.clone())).collect()];
    for (key, runs) in &groups {
        let mut line: Vec<String> =
            key.iter().zip(rows).map(|((_, v), t)| if *t == "model" { model_label(v) } else { v.clone() }).collect();
        for c in columns {
            let v = cell_values(runs, c);
            line.push(match v.len() {
                0 => "-".into(),
                1 if single => format!("{:.3}", v[0]),
                _ => crate::stats::fmt_mean_std(&v),
            });
        }
        lines.push(line);
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let n = groups.values().flat_map(|r| r.iter().map(|m| m.seed)).collect::<std::collections::BTreeSet<_>>().len();
    let how =
        if single { "1 run each: no spread measured".to_string() } else { format!("mean ± std over up to {n} seeds") };
    let mut out = format!("{title} ({how})\n");
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(
                |(i, c)| {
                    if i < rows.len() {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                },
            )
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

/// Mean and std of `result` over runs, grouped by the value of tag `x` (parsed as a number).
pub fn by_tag(metas: &[&Meta], x: &str, result: &str) -> BTreeMap<i64, (f64, f64, usize)> {
    crate::stats::aggregate(metas.iter().filter_map(|m| {
        let xv = m.number(x)?;
        Some(((xv * 1e6).round() as i64, *m.result.get(result)?))
    }))
}

/// Mean of `result` over the runs (NaN when none has it).
pub fn mean_of(metas: &[&Meta], result: &str) -> f64 {
    mean_std(&metas.iter().filter_map(|m| m.result.get(result).copied()).collect::<Vec<_>>()).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(variant: &str, seed: u64, bleu: f64) -> Meta {
        let yaml = format!(
            "experiment: translate\nrun: {variant}-s{seed}\nstatus: finished\nseed: {seed}\ndevice: cpu\nthreads: 1\n\
             rnnlab_version: x\ntch_version: x\nlibtorch_version: x\ncommit: null\nhost: h\nstarted: t\n\
             finished: t\nwall_s: 1.0\ntags: {{model: gru, variant: {variant}, seed: {seed}}}\nresult: {{bleu: {bleu}}}\n"
        );
        serde_yaml::from_str(&yaml).unwrap()
    }

    #[test]
    fn runs_of_different_variants_are_not_averaged_as_seeds() {
        let metas = [meta("bpe", 0, 8.0), meta("words", 0, 10.0), meta("bpe", 1, 9.0)];
        let t = table("t", &metas, &["model"], &[Column::new("BLEU", "bleu")]);
        assert!(t.contains("variant"), "{t}");
        let line =
            |v: &str| t.lines().find(|l| l.contains(v)).unwrap_or_else(|| panic!("no {v} row in\n{t}")).to_string();
        assert!(line("bpe").contains("8.500"), "{t}");
        // A tag the columns split on stays a column.
        let cols = Column::per_value(&metas, "variant", "v", "bleu");
        let t = table("t", &metas, &["model"], &cols);
        assert_eq!(t.lines().count(), 3, "one header, one GRU row:\n{t}");
        assert!(line("words").contains("10.000"), "{t}");
    }
}
