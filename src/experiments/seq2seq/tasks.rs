//! The synthetic seq2seq tasks: dates → ISO (exact match) and reversing Brown sentences (token accuracy by
//! source length), their test decoding, samples, attention weights and charts.
use super::{decode, label, Seq2seq};
use crate::charts::bars_by_cell;
use crate::config::CellKind;
use crate::model::Seq2Seq;
use crate::plot::{cell_color, Bars, Figure, Heatmap, Panel, Series};
use crate::results::{rows, Meta};
use crate::stats::mean_std;
use crate::sweep::{Cfg, Trained};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Device;

/// Source-length buckets (tokens) for accuracy by length.
const BUCKETS: [(usize, usize); 6] = [(1, 10), (11, 20), (21, 30), (31, 45), (46, 60), (61, 999)];
/// Test examples whose attention weights are kept for the heatmaps.
const SHOWN: usize = 3;
const BY_LENGTH: &str = "by_length.csv";
pub(super) const ATTENTION: &str = "attention.csv";

#[derive(Serialize, Deserialize)]
struct LengthRow {
    bucket: String,
    n: usize,
    token_acc: f64,
    exact_match: f64,
}

/// One attention weight of a shown example: output step `t` (its token) on source step `s` (its token).
#[derive(Serialize, Deserialize)]
pub(super) struct AttentionRow {
    pub example: usize,
    pub t: usize,
    pub output: String,
    pub s: usize,
    pub source: String,
    pub weight: f64,
}

/// One example's attention: `[output][source]` weights and the labels of both sides.
pub(super) struct Grid {
    pub values: Vec<Vec<f64>>,
    pub sources: Vec<String>,
    pub outputs: Vec<String>,
}

/// The attention of each example in `rows` (rows come grouped by example), pieces named by `label`.
pub(super) fn attention_grids(rows: &[AttentionRow], label: impl Fn(&str) -> String) -> Vec<(usize, Grid)> {
    let mut examples: Vec<usize> = rows.iter().map(|r| r.example).collect();
    examples.dedup();
    examples
        .into_iter()
        .map(|ex| {
            let r: Vec<&AttentionRow> = rows.iter().filter(|r| r.example == ex).collect();
            let (nt, ns) = (r.iter().map(|r| r.t).max().unwrap_or(0) + 1, r.iter().map(|r| r.s).max().unwrap_or(0) + 1);
            let mut g = Grid {
                values: vec![vec![0.0; ns]; nt],
                sources: vec![String::new(); ns],
                outputs: vec![String::new(); nt],
            };
            for a in &r {
                g.values[a.t][a.s] = a.weight;
                g.sources[a.s] = label(&a.source);
                g.outputs[a.t] = label(&a.output);
            }
            (ex, g)
        })
        .collect()
}

/// Decodes the test set: exact match, token accuracy (overall and by source length), a few samples and the
/// attention weights of the first examples.
pub(super) fn evaluate<S>(m: &Seq2Seq, cfg: &Cfg<Seq2seq>, t: Trained<S>) -> Result<()> {
    let test = t.data.test.as_ref().context("no test split")?;
    let (targets, sources) = (&t.data.shape.classes, &t.data.shape.source_tokens);
    let device = test.tokens.device();
    let truth_lens = test.target_lengths.clone().unwrap_or_default();
    let labels = test.labels.to_device(Device::Cpu);
    let tokens = test.tokens.to_device(Device::Cpu);
    let (mut per_len, mut samples, mut att) = (Vec::new(), String::new(), Vec::new());
    let (mut right_tokens, mut all_tokens, mut exact) = (0usize, 0usize, 0usize);
    for idx in test.batches(cfg.train.batch_size, None, false) {
        let batch = test.batch(&idx, device);
        for (k, (pred, alpha)) in decode(m, &batch, batch.targets.size()[1] + 10).into_iter().enumerate() {
            let i = idx[k] as usize;
            let truth: Vec<i64> = Vec::<i64>::try_from(labels.get(i as i64).narrow(0, 0, truth_lens[i] - 1))?;
            let right = truth.iter().zip(&pred).filter(|(a, b)| a == b).count();
            let is_exact = pred == truth;
            right_tokens += right;
            all_tokens += truth.len();
            exact += is_exact as usize;
            let src_len = test.lengths[i] as usize;
            per_len.push((src_len, right, truth.len(), is_exact));
            let word = |ids: &[i64], names: &[String]| -> Vec<String> {
                ids.iter().map(|&t| names.get(t as usize).cloned().unwrap_or("?".into())).collect()
            };
            let sep = if cfg.data.task == super::Task::Dates { "" } else { " " };
            let src: Vec<i64> = Vec::try_from(tokens.get(i as i64).narrow(0, 0, src_len as i64))?;
            if i < 10 {
                samples += &format!(
                    "{}\n  → {}\n  ✓ {}\n",
                    word(&src, sources).join(sep),
                    word(&pred, targets).join(sep),
                    word(&truth, targets).join(sep)
                );
            }
            if let (true, Some(a)) = (i < SHOWN, alpha) {
                let a = a.to_device(Device::Cpu).to_kind(tch::Kind::Double);
                let (src_names, out_names) = (word(&src, sources), word(&pred, targets));
                for (tt, o) in out_names.iter().enumerate().take(a.size()[0] as usize) {
                    for (s, w) in src_names.iter().enumerate() {
                        let weight = a.double_value(&[tt as i64, s as i64]);
                        att.push(AttentionRow { example: i, t: tt, output: o.clone(), s, source: w.clone(), weight });
                    }
                }
            }
        }
    }
    let rows: Vec<LengthRow> = BUCKETS
        .iter()
        .map(|&(lo, hi)| {
            let v: Vec<&(usize, usize, usize, bool)> = per_len.iter().filter(|p| (lo..=hi).contains(&p.0)).collect();
            let (r, n): (usize, usize) = v.iter().fold((0, 0), |(a, b), p| (a + p.1, b + p.2));
            LengthRow {
                bucket: if hi == 999 { format!("{lo}+") } else { format!("{lo}-{hi}") },
                n: v.len(),
                token_acc: r as f64 / n.max(1) as f64,
                exact_match: v.iter().filter(|p| p.3).count() as f64 / v.len().max(1) as f64,
            }
        })
        .collect();
    t.run.write_csv(BY_LENGTH, &rows)?;
    if !att.is_empty() {
        t.run.write_csv(ATTENTION, &att)?;
    }
    t.run.write("samples.txt", samples.as_bytes())?;
    let res = &mut t.run.meta.result;
    res.insert("exact_match".into(), exact as f64 / per_len.len().max(1) as f64);
    res.insert("token_acc".into(), right_tokens as f64 / all_tokens.max(1) as f64);
    if let Some(last) = rows.iter().rev().find(|r| r.n > 0) {
        res.insert("token_acc_longest".into(), last.token_acc);
    }
    Ok(())
}

/// The charts of the dates and reverse runs.
pub(super) fn charts(root: &Path, dir: &Path, metas: &[Meta]) -> Result<()> {
    let attentions = ["none", "additive", "dot"];
    for (task, key, title) in [
        ("dates", "exact_match", "Dates → ISO: exact match on the test set"),
        ("reverse", "token_acc", "Reversing Brown sentences: token accuracy on the test set"),
    ] {
        let runs: Vec<&Meta> = metas.iter().filter(|m| m.tag("task") == task).collect();
        if runs.is_empty() {
            continue;
        }
        let present: Vec<&str> =
            attentions.iter().copied().filter(|a| runs.iter().any(|m| m.tag("attention") == *a)).collect();
        let series = bars_by_cell(&runs, "attention", &present, key);
        Bars {
            title: format!("{title} (mean ± std over seeds)"),
            y_label: key.replace('_', " "),
            categories: present.iter().map(|a| format!("attention: {a}")).collect(),
            series,
            hlines: vec![],
            y_range: Some((0.0, 1.05)),
            log_y: false,
            size: (1100, 700),
        }
        .save(&dir.join(if task == "dates" { "exact_match".to_string() } else { format!("{key}_{task}") }))?;
    }
    // Token accuracy by source length (reverse): one line per cell and attention.
    let reverse: Vec<&Meta> = metas.iter().filter(|m| m.tag("task") == "reverse").collect();
    if !reverse.is_empty() {
        let mut groups: BTreeMap<(usize, String), Vec<&Meta>> = BTreeMap::new();
        for m in &reverse {
            let rank = m.cell().map_or(9, |c| c as usize);
            groups.entry((rank, m.tag("attention").to_string())).or_default().push(m);
        }
        let mut names = Vec::new();
        let mut series = Vec::new();
        for ((_, attention), ms) in &groups {
            let mut acc: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            for m in ms {
                let rows: Vec<LengthRow> = rows::own(root, m, BY_LENGTH)?;
                names = rows.iter().map(|r| format!("{} ({})", r.bucket, r.n)).collect();
                for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.n > 0) {
                    acc.entry(i).or_default().push(r.token_acc);
                }
            }
            let cell = ms[0].cell().unwrap_or(CellKind::Lstm);
            let n = ms.len();
            // Each bucket sits at its middle length (the last one ends at data.reverse.max_len).
            let max_len = crate::results::read_config::<Cfg<Seq2seq>>(root, ms[0])?.data.reverse.max_len;
            let mid = |i: usize| (BUCKETS[i].0 + BUCKETS[i].1.min(max_len.max(BUCKETS[i].0))) as f64 / 2.0;
            let pts = acc.iter().map(|(i, v)| (mid(*i), mean_std(v).0)).collect();
            let seeds = if n == 1 { "1 seed".to_string() } else { format!("{n} seeds, mean") };
            let s = Series::new(format!("{} ({seeds})", label(ms[0])), cell_color(cell), pts).markers();
            series.push(match attention.as_str() {
                "none" => s.dashed().width(2),
                "dot" => s.width(2),
                _ => s.width(4),
            });
        }
        let x_label = format!("source length in words, bucket middles (test sentences: {})", names.join(", "));
        let panel = Panel {
            x_label,
            y_label: "token accuracy".into(),
            y_range: Some((0.0, 1.02)),
            series,
            ..Default::default()
        };
        let mut fig = Figure::new(
            "Reversing sentences: accuracy by length (dashed: no attention — one context vector)",
            vec![panel],
        );
        fig.size = (1400, 750);
        fig.save(&dir.join("accuracy_vs_length"))?;
    }
    // Attention heatmaps: the first seed of the best attending run per task.
    for task in ["dates", "reverse"] {
        let best = metas
            .iter()
            .filter(|m| m.tag("task") == task && m.tag("attention") != "none")
            .filter(|m| m.dir(root).join(ATTENTION).exists())
            .max_by(|a, b| {
                let key = |m: &Meta| m.result.get("token_acc").copied().unwrap_or(0.0) - m.seed as f64 * 1e-9;
                key(a).total_cmp(&key(b))
            });
        let Some(m) = best else { continue };
        let rows: Vec<AttentionRow> = rows::own(root, m, ATTENTION)?;
        // A space is drawn as "␣" so that it shows as a tick label.
        let visible = |t: &str| if t == " " { "␣".to_string() } else { t.to_string() };
        for (k, (ex, g)) in attention_grids(&rows, visible).into_iter().enumerate() {
            Heatmap {
                title: format!(
                    "{}: where each output step (row) looks in the source (column), test example {}",
                    label(m),
                    ex + 1
                ),
                x_label: "source".into(),
                y_label: "output".into(),
                x_ticks: g.sources,
                y_ticks: g.outputs,
                values: g.values,
                log: false,
                bar_label: "attention weight α".into(),
                annotate: false,
                size: (1300, if task == "dates" { 600 } else { 1000 }),
            }
            .save(&dir.join(format!("attention_{task}_{}", k + 1)))?;
        }
    }
    Ok(())
}
