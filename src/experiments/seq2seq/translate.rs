//! Translation of held-out Bible books (en → fr by default) — scored as sacreBLEU does (corpus BLEU, 13a, and chrF,
//! lower-cased) overall and by source length (≤ 10, 11–20, 21–30, 31–40, 41–50, > 50 words): Bahdanau et al.'s
//! Figure 2, where the encoder–decoder without attention loses its quality as sentences grow and attention keeps
//! it.
//!
//! Per run: `by_length.csv` (BLEU and chrF per bucket), `translations.txt` (source, reference and output, a few per
//! bucket), `attention.csv` (weights of a few test verses), `split.yaml` (which books went where, held-out sources
//! seen in training), and the tokenizers `predict` needs. Charts: `bleu_vs_length` (one line per cell and
//! attention, mean ± std over seeds, no attention dashed), `bleu` (bars), `attention_<i>` (heatmaps of real test
//! verses).
use super::tasks::{attention_grids, AttentionRow, ATTENTION};
use super::{decode, label, Seq2seq};
use crate::bleu::{bleu_from, bleu_stats, chrf_from, chrf_stats, BleuStats};
use crate::charts::bars_by_cell;
use crate::config::CellKind;
use crate::data::parallel::{words, Pair, SplitReport, Vocab};
use crate::model::Seq2Seq;
use crate::plot::{cell_color, Bars, Figure, Heatmap, Panel, Series};
use crate::results::{rows, Meta, RunDir};
use crate::stats::mean_std;
use crate::sweep::{Cfg, Trained};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Device;

/// Source-length buckets in words (as Bahdanau et al. count them), with their names and summary keys.
pub const BUCKETS: [(usize, usize, &str, &str); 6] = [
    (0, 10, "≤ 10", "bleu_le10"),
    (11, 20, "11–20", "bleu_11_20"),
    (21, 30, "21–30", "bleu_21_30"),
    (31, 40, "31–40", "bleu_31_40"),
    (41, 50, "41–50", "bleu_41_50"),
    (51, usize::MAX, "> 50", "bleu_gt50"),
];
const BY_LENGTH: &str = "by_length.csv";
/// Test verses shown per bucket in translations.txt (the attention of one per bucket is kept).
const PER_BUCKET: usize = 3;

/// What a translation run keeps for its evaluation.
#[derive(Debug)]
pub struct TranslateRun {
    pub source: Vocab,
    pub target: Vocab,
    /// The test pairs in row order.
    pub test: Vec<Pair>,
    pub report: SplitReport,
}

/// One bucket's scores (`by_length.csv`).
#[derive(Debug, Serialize, Deserialize)]
pub struct BucketRow {
    pub bucket: String,
    pub n: usize,
    pub bleu: f64,
    pub chrf: f64,
}

/// The bucket of a source of `n` words.
pub fn bucket_of(n: usize) -> usize {
    BUCKETS.iter().position(|b| n >= b.0 && n <= b.1).unwrap_or(BUCKETS.len() - 1)
}

/// A token's name as a label: a word-initial piece without its `▁`, a piece inside a word after `·`.
pub fn piece_label(name: &str) -> String {
    match name.strip_prefix('▁') {
        Some(w) => w.to_string(),
        None if name.starts_with('<') => name.to_string(),
        None => format!("·{name}"),
    }
}

/// Decodes the test verses (greedy, or beam search with `model.beam`) and scores them.
pub fn evaluate(m: &Seq2Seq, cfg: &Cfg<Seq2seq>, t: Trained<Option<TranslateRun>>) -> Result<()> {
    let tr = t.state.as_ref().context("no translation data kept for this run")?;
    let test = t.data.test.as_ref().context("no test split")?;
    let (targets, sources) = (&t.data.shape.classes, &t.data.shape.source_tokens);
    let device = test.tokens.device();
    let tokens = test.tokens.to_device(Device::Cpu);
    let mut outputs = vec![String::new(); test.len()];
    let mut shown: Vec<(usize, Vec<String>, Vec<String>, tch::Tensor)> = Vec::new();
    let show: Vec<usize> = (0..BUCKETS.len())
        .filter_map(|b| (0..tr.test.len()).find(|&i| bucket_of(words(&tr.test[i].source)) == b))
        .collect();
    for idx in test.batches(cfg.train.batch_size, None, true) {
        let batch = test.batch(&idx, device);
        // Room for a translation twice as long as its source.
        let max_len = 2 * batch.tokens.size()[1] + 10;
        for (k, (pred, alpha)) in decode(m, &batch, max_len).into_iter().enumerate() {
            let i = idx[k] as usize;
            let names: Vec<String> =
                pred.iter().map(|&id| targets.get(id as usize).cloned().unwrap_or_default()).collect();
            outputs[i] = tr.target.decode(&names);
            if let (true, Some(a)) = (show.contains(&i), alpha) {
                let src: Vec<i64> = Vec::try_from(tokens.get(i as i64).narrow(0, 0, test.lengths[i]))?;
                let src_names = src.iter().map(|&id| sources.get(id as usize).cloned().unwrap_or_default()).collect();
                shown.push((i, src_names, names, a.to_device(Device::Cpu).to_kind(tch::Kind::Double)));
            }
        }
    }
    let refs: Vec<&str> = tr.test.iter().map(|p| p.target.as_str()).collect();
    let mut rows = Vec::new();
    let (mut all_b, mut all_c) = (BleuStats::default(), [[0usize; 3]; 6]);
    let mut text = String::new();
    for (b, &(_, _, name, key)) in BUCKETS.iter().enumerate() {
        let members: Vec<usize> = (0..tr.test.len()).filter(|&i| bucket_of(words(&tr.test[i].source)) == b).collect();
        let (mut sb, mut sc) = (BleuStats::default(), [[0usize; 3]; 6]);
        for &i in &members {
            sb += bleu_stats(&outputs[i], refs[i], true);
            add(&mut sc, chrf_stats(&outputs[i], refs[i], true));
        }
        all_b += sb;
        add(&mut all_c, sc);
        let (bleu, chrf) = (bleu_from(&sb), chrf_from(&sc));
        rows.push(BucketRow { bucket: name.into(), n: members.len(), bleu, chrf });
        if !members.is_empty() {
            t.run.meta.result.insert(key.into(), bleu);
        }
        text += &format!("=== source {name} words: {} verses, BLEU {bleu:.1}, chrF {chrf:.1} ===\n\n", members.len());
        for &i in members.iter().take(PER_BUCKET) {
            text += &format!(
                "  source:    {}\n  reference: {}\n  output:    {}\n\n",
                tr.test[i].source, refs[i], outputs[i]
            );
        }
    }
    t.run.write_csv(BY_LENGTH, &rows)?;
    t.run.write("translations.txt", text.as_bytes())?;
    write_attention(t.run, &shown)?;
    write_vocabularies(t.run, tr)?;
    t.run.write("split.yaml", serde_yaml::to_string(&tr.report)?.as_bytes())?;
    let res = &mut t.run.meta.result;
    res.insert("bleu".into(), bleu_from(&all_b));
    res.insert("chrf".into(), chrf_from(&all_c));
    res.insert("n_test".into(), tr.test.len() as f64);
    res.insert("test_sources_in_train".into(), tr.report.test_sources_in_train as f64);
    Ok(())
}

fn add(total: &mut [[usize; 3]; 6], s: [[usize; 3]; 6]) {
    for (t, s) in total.iter_mut().zip(s) {
        for k in 0..3 {
            t[k] += s[k];
        }
    }
}

/// The attention weights of the shown verses (source pieces × output pieces).
fn write_attention(run: &RunDir, shown: &[(usize, Vec<String>, Vec<String>, tch::Tensor)]) -> Result<()> {
    let mut att = Vec::new();
    for (i, src, out, a) in shown {
        for (tt, o) in out.iter().enumerate().take(a.size()[0] as usize) {
            for (s, w) in src.iter().enumerate() {
                let weight = a.double_value(&[tt as i64, s as i64]);
                att.push(AttentionRow { example: *i, t: tt, output: o.clone(), s, source: w.clone(), weight });
            }
        }
    }
    if att.is_empty() {
        return Ok(());
    }
    run.write_csv(ATTENTION, &att)
}

/// What `predict` needs to encode a sentence and decode a translation: the BPE tokenizers (words need only the
/// names in model.yaml).
fn write_vocabularies(run: &RunDir, tr: &TranslateRun) -> Result<()> {
    for (side, v) in [("source", &tr.source), ("target", &tr.target)] {
        if let Vocab::Bpe(t) = v {
            let path = run.path.join(format!("{side}.tokenizer.json"));
            let json = t.to_string(false).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            run.write(&format!("{side}.tokenizer.json"), json.as_bytes())?;
        }
    }
    Ok(())
}

/// The translation charts: BLEU against source length (Figure 2's picture), BLEU per cell and attention, the
/// attention of the best attending run on real test verses.
pub fn charts(root: &Path, dir: &Path, metas: &[Meta]) -> Result<()> {
    let runs: Vec<&Meta> =
        metas.iter().filter(|m| m.tag("task") == "translate" && m.result.contains_key("bleu")).collect();
    if runs.is_empty() {
        return Ok(());
    }
    bleu_vs_length(root, dir, &runs)?;
    // One bar group per attention, or per `variant` when the sweep has one (its points differ in more than that).
    let variants: Vec<String> = runs
        .iter()
        .map(|m| m.tag("variant"))
        .filter(|v| !v.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let (group, present, prefix): (&str, Vec<&str>, &str) = if variants.is_empty() {
        let a = ["none", "additive", "dot"].into_iter().filter(|a| runs.iter().any(|m| m.tag("attention") == *a));
        ("attention", a.collect(), "attention: ")
    } else {
        ("variant", variants.iter().map(String::as_str).collect(), "")
    };
    Bars {
        title: "Translation of held-out books: corpus BLEU (mean ± std over seeds)".into(),
        y_label: "BLEU (sacreBLEU 13a, lower-cased)".into(),
        categories: present.iter().map(|a| format!("{prefix}{a}")).collect(),
        series: bars_by_cell(&runs, group, &present, "bleu"),
        hlines: vec![],
        y_range: None,
        log_y: false,
        size: (1100, 700),
    }
    .save(&dir.join("bleu"))?;
    attention_maps(root, dir, &runs)
}

fn bleu_vs_length(root: &Path, dir: &Path, runs: &[&Meta]) -> Result<()> {
    // A sweep's `variant` (tokens, decoder...) is a point of its own, never averaged with another as a seed.
    let mut groups: BTreeMap<(usize, String, String, String), Vec<&Meta>> = BTreeMap::new();
    for m in runs {
        let rank = m.cell().map_or(9, |c| c as usize);
        groups.entry((rank, m.tag("attention"), m.tag("decoder"), m.tag("variant"))).or_default().push(m);
    }
    let decoders = groups.keys().map(|k| k.2.clone()).collect::<std::collections::BTreeSet<_>>().len();
    let variants: Vec<String> =
        groups.keys().map(|k| k.3.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let mut counts = vec![0usize; BUCKETS.len()];
    let mut series = Vec::new();
    // x: each bucket at its mean source length in words; the last one at 60.
    let mid = |b: usize| if b + 1 == BUCKETS.len() { 60.0 } else { (BUCKETS[b].0.max(1) + BUCKETS[b].1) as f64 / 2.0 };
    for ((_, attention, decoder, variant), ms) in &groups {
        let mut per: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for m in ms {
            for (b, r) in rows::own::<BucketRow>(root, m, BY_LENGTH)?.into_iter().enumerate().filter(|(_, r)| r.n > 0) {
                per.entry(b).or_default().push(r.bleu);
                counts[b] = r.n;
            }
        }
        let n = ms.len();
        let pts: Vec<(f64, f64)> = per.iter().map(|(b, v)| (mid(*b), mean_std(v).0)).collect();
        let band: Vec<(f64, f64, f64)> = if n > 1 {
            per.iter().map(|(b, v)| (mid(*b), mean_std(v).0 - mean_std(v).1, mean_std(v).0 + mean_std(v).1)).collect()
        } else {
            vec![]
        };
        let cell = ms[0].cell().unwrap_or(CellKind::Lstm);
        let seeds = if n == 1 { "1 seed".to_string() } else { format!("mean ± std, {n} seeds") };
        let mut dec = if decoders > 1 && !decoder.is_empty() { format!(", {decoder} decoder") } else { String::new() };
        if !variant.is_empty() {
            dec += &format!(" [{variant}]");
        }
        // Variants of one cell: the cell's colour in its own shade.
        let shade = variants.iter().position(|v| v == variant).unwrap_or(0);
        let color = crate::plot::shade(cell_color(cell), shade);
        let s = Series::new(format!("{}{dec} ({seeds})", label(ms[0])), color, pts).band(band).markers();
        series.push(match attention.as_str() {
            "none" => s.dashed().width(2),
            "dot" => s.width(2),
            _ => s.width(4),
        });
    }
    let ticks: Vec<String> = BUCKETS.iter().zip(&counts).map(|(b, n)| format!("{} ({n})", b.2)).collect();
    let panel = Panel {
        x_label: format!("source length in words — buckets (test verses): {}", ticks.join(", ")),
        y_label: "BLEU (sacreBLEU 13a, lower-cased)".into(),
        x_ticks: (0..BUCKETS.len()).map(mid).collect(),
        series,
        ..Default::default()
    };
    let mut fig = Figure::new(
        "Translating held-out books: BLEU by source length (dashed: no attention — one context vector)",
        vec![panel],
    );
    fig.size = (1400, 800);
    fig.save(&dir.join("bleu_vs_length"))
}

/// Heatmaps of the attention of the best attending run (highest BLEU, first seed on ties) on its shown verses.
fn attention_maps(root: &Path, dir: &Path, runs: &[&Meta]) -> Result<()> {
    let best =
        runs.iter().filter(|m| m.tag("attention") != "none" && m.dir(root).join(ATTENTION).exists()).max_by(|a, b| {
            let key = |m: &Meta| m.result.get("bleu").copied().unwrap_or(0.0) - m.seed as f64 * 1e-9;
            key(a).total_cmp(&key(b))
        });
    let Some(m) = best else { return Ok(()) };
    let rows: Vec<AttentionRow> = rows::own(root, m, ATTENTION)?;
    for (k, (ex, g)) in attention_grids(&rows, piece_label).into_iter().enumerate() {
        let (ns, nt) = (g.sources.len(), g.outputs.len());
        let (w, h) = ((400 + 26 * ns).clamp(900, 2600) as u32, (250 + 22 * nt).clamp(600, 2600) as u32);
        Heatmap {
            title: format!(
                "{}: where each output piece (row) looks in the source (column), test verse {}",
                label(m),
                ex + 1
            ),
            x_label: format!("source ({ns} pieces)"),
            y_label: "output".into(),
            x_ticks: g.sources,
            y_ticks: g.outputs,
            values: g.values,
            log: false,
            bar_label: "attention weight α".into(),
            annotate: false,
            size: (w, h),
        }
        .save(&dir.join(format!("attention_{}", k + 1)))?;
    }
    Ok(())
}
