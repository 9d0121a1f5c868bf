//! Karpathy's char-rnn on the complete works of Shakespeare, whole works held out: validation and test loss in
//! nats and bits per character, the learning curve against wall time, samples as training goes and at three
//! temperatures, and the post's pictures — the cells that track the position in the line, stage directions in
//! brackets and speakers' names in capitals (found by correlation), each drawn over a test passage with the
//! model's five most likely next characters, and the gate-saturation scatter per layer (Karpathy, Johnson &
//! Fei-Fei 2015).
use super::{lm, Generate};
use crate::config::CellKind;
use crate::data::shakespeare::{Alphabet, Texts};
use crate::data::Split;
use crate::model::lm::Pick;
use crate::model::{LanguageModel, LayerTrace};
use crate::plot::{cell_color, cell_width, Bars, CharGrid, Figure, Panel, Series, BASELINE_GREY, OTHER};
use crate::results::{rows, Meta, RunDir};
use crate::rng::Rng;
use crate::sample::sample_text;
use crate::stats::correlation;
use crate::sweep::{Cfg, Trained};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

pub const CURVE: &str = "curve.csv";
const CELLS: &str = "cells.csv";
const SATURATION: &str = "saturation.csv";
/// The features interpretable cells are sought for, with their file names.
const FEATURES: [(&str, &str); 3] = [
    ("line_position", "characters since the start of the line"),
    ("brackets", "inside [brackets] (stage directions)"),
    ("speaker", "in a speaker's name in capitals (FIRST CITIZEN.)"),
];

/// What a Shakespeare run keeps between its hooks.
#[derive(Debug)]
pub struct ShakespeareRun {
    pub texts: Texts,
    /// The validation split (for the learning curve).
    pub val: Split,
    started: Option<Instant>,
    /// Seconds spent in the hooks (left out of the curve's wall time).
    hook_s: f64,
    curve: Vec<CurveRow>,
    log: String,
}

impl ShakespeareRun {
    pub fn new(texts: Texts, val: Split) -> Self {
        ShakespeareRun { texts, val, started: None, hook_s: 0.0, curve: Vec::new(), log: String::new() }
    }
}

/// One point of the learning curve: training seconds so far (hooks left out) and the validation loss.
#[derive(Debug, Serialize, Deserialize)]
pub struct CurveRow {
    pub step: usize,
    pub seconds: f64,
    pub val_nats_per_char: f64,
}

/// A cell found for a feature.
#[derive(Debug, Serialize, Deserialize)]
pub struct CellRow {
    pub feature: String,
    pub layer: usize,
    /// `h` (hidden state) or `c` (an LSTM's cell state).
    pub state: String,
    pub unit: usize,
    pub correlation: f64,
}

/// How often one gate unit saturates over the test passage.
#[derive(Debug, Serialize, Deserialize)]
pub struct SaturationRow {
    pub layer: usize,
    pub gate: String,
    pub unit: usize,
    /// Fractions of the steps with the gate below 0.1 and above 0.9.
    pub left: f64,
    pub right: f64,
}

/// During training: the validation loss for the learning curve, and a sample (the post's evolution of samples).
pub fn during(
    cfg: &Cfg<Generate>,
    st: &mut ShakespeareRun,
    m: &LanguageModel,
    step: usize,
    run: &mut RunDir,
) -> Result<()> {
    let t0 = Instant::now();
    let started = *st.started.get_or_insert(t0);
    let seconds = t0.duration_since(started).as_secs_f64() - st.hook_s;
    // The training stream's carried state is kept aside while the validation text is read.
    let carried = m.take_state();
    let device = m.rnn.weights[0][0].device();
    let (loss, _) = crate::train::evaluate(m, &st.val, cfg.train.batch_size, device);
    m.put_state(carried);
    st.curve.push(CurveRow { step, seconds, val_nats_per_char: loss });
    run.write_csv(CURVE, &st.curve)?;
    let mut rng = Rng::derived(cfg.train.seed, "sample");
    let how = Pick::Sample { temperature: 0.8, top_k: None };
    let text = sample_text(m, &st.texts.alphabet, "\n", 300, how, &mut rng)?;
    st.log += &format!(
        "--- step {step} ({seconds:.0} s of training, validation {loss:.3} nats/char; temperature 0.8) ---{text}\n\n"
    );
    run.write("samples_during_training.txt", st.log.as_bytes())?;
    st.hook_s += t0.elapsed().as_secs_f64();
    Ok(())
}

/// After training: samples at three temperatures, the interpretable cells and the gates' saturation on a test
/// passage, and their pictures in the run folder.
pub fn after(cfg: &Cfg<Generate>, t: Trained<Option<super::RunState>>) -> Result<()> {
    let m = lm(t.model)?;
    let st = match t.state.as_ref() {
        Some(super::RunState::Shakespeare(s)) => s,
        _ => anyhow::bail!("no Shakespeare texts kept for this run"),
    };
    let a = &st.texts.alphabet;
    t.run.write("works.yaml", serde_yaml::to_string(&st.texts.split)?.as_bytes())?;
    let res = &mut t.run.meta.result;
    for split in ["val", "test"] {
        if let Some(&loss) = t.outcome.result.get(&format!("{split}_loss")) {
            res.insert(format!("{split}_nats_per_char"), loss);
            res.insert(format!("{split}_bits_per_char"), loss / std::f64::consts::LN_2);
        }
    }
    res.insert("unknown_test_chars".into(), st.texts.split.unknown_test as f64);
    let mut samples = String::new();
    for &temp in &cfg.own.temperatures {
        let mut rng = Rng::derived(cfg.train.seed, "sample");
        let text =
            sample_text(m, a, "\n", cfg.own.sample_chars, Pick::Sample { temperature: temp, top_k: None }, &mut rng)?;
        samples += &format!("--- temperature {temp} ---{text}\n\n");
    }
    t.run.write("samples.txt", samples.as_bytes())?;
    let passage = passage(&st.texts.test, cfg.own.trace_chars);
    inspect(m, a, &passage, cfg.model.cell, t.run)
}

/// A stretch of the test text that starts a line and holds a stage direction and a speaker's name.
fn passage(test: &str, n: usize) -> String {
    let chars: Vec<char> = test.chars().collect();
    let start = test.find('[').map_or(0, |b| test[..b].chars().count()).saturating_sub(n / 4);
    let start = (start..chars.len()).find(|&i| i == 0 || chars[i - 1] == '\n').unwrap_or(0);
    chars[start..(start + n).min(chars.len())].iter().collect()
}

/// The three features of every character of a passage.
fn features(chars: &[char]) -> [Vec<f64>; 3] {
    let lines: Vec<&[char]> = chars.split(|c| *c == '\n').collect();
    let mut line_pos = Vec::new();
    let mut speaker = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let letters = line.iter().filter(|c| c.is_alphabetic()).count();
        let is_speaker = letters >= 2
            && line.last() == Some(&'.')
            && line.iter().all(|c| c.is_uppercase() || matches!(c, ' ' | '.' | '\'' | '-'));
        for (i, _) in line.iter().enumerate() {
            line_pos.push(i as f64);
            speaker.push(is_speaker as u8 as f64);
        }
        if k + 1 < lines.len() {
            // The line break itself: position 0 of the next line's count, not in a name.
            line_pos.push(line.len() as f64);
            speaker.push(0.0);
        }
    }
    let mut inside = false;
    let brackets = chars
        .iter()
        .map(|&c| {
            if c == '[' {
                inside = true;
            }
            let v = inside as u8 as f64;
            if c == ']' {
                inside = false;
            }
            v
        })
        .collect();
    [line_pos, brackets, speaker]
}

/// The cells most correlated with each feature, drawn over the passage with the top-5 next characters, and the
/// gate-saturation scatter.
fn inspect(m: &LanguageModel, a: &Alphabet, passage: &str, cell: CellKind, run: &mut RunDir) -> Result<()> {
    let chars: Vec<char> = passage.chars().collect();
    let ids: Vec<i64> = a.encode(passage);
    let device = m.rnn.weights[0][0].device();
    let x = Tensor::from_slice(&ids).view([1, -1]).to_device(device);
    let (trace, probs) = tch::no_grad(|| {
        let inputs = m.inputs(&x, None);
        let trace = m.rnn.trace(&inputs);
        let (logits, _) = m.run(&x, None, None, false);
        (trace, logits.get(0).softmax(-1, Kind::Double).to_device(Device::Cpu))
    });
    // Every unit's activation over the passage: (layer, state, unit) → values.
    let mut units: Vec<(usize, &str, usize, Vec<f64>)> = Vec::new();
    for (l, lt) in trace.iter().enumerate() {
        let states: Vec<(&str, &Tensor)> =
            std::iter::once(("h", &lt.h)).chain(lt.c.as_ref().map(|c| ("c", c))).collect();
        for (name, t) in states {
            let v: Vec<Vec<f64>> = Vec::try_from(t.tr().contiguous().to_kind(Kind::Double).to_device(Device::Cpu))?;
            units.extend(v.into_iter().enumerate().map(|(u, vals)| (l, name, u, vals)));
        }
    }
    let feats = features(&chars);
    let (top_p, top_i) = probs.topk(5, -1, true, true);
    let (top_p, top_i): (Vec<Vec<f64>>, Vec<Vec<i64>>) = (Vec::try_from(top_p)?, Vec::try_from(top_i)?);
    let mut rows = Vec::new();
    for ((key, what), f) in FEATURES.iter().zip(&feats) {
        let best = units
            .iter()
            .map(|u| (u, correlation(&u.3, f)))
            .filter(|(_, r)| r.is_finite())
            .max_by(|p, q| p.1.abs().total_cmp(&q.1.abs()))
            .context("no unit to correlate")?;
        let ((layer, state, unit, vals), r) = (best.0, best.1);
        rows.push(CellRow {
            feature: key.to_string(),
            layer: *layer + 1,
            state: state.to_string(),
            unit: *unit,
            correlation: r,
        });
        // A red cell is positive: flip the sign so the picture shows the feature in red.
        let scale = vals.iter().fold(1e-9f64, |mm, v| mm.max(v.abs())) * r.signum();
        let shown = chars.len().min(640);
        let cells = (0..shown)
            .map(|i| {
                let preds = top_i[i].iter().zip(&top_p[i]).map(|(&k, &p)| (a.char(k + 1), p)).collect();
                (chars[i], vals[i] / scale, preds)
            })
            .collect();
        CharGrid {
            title: format!("{}: layer {} {state}-unit {unit} over a held-out passage — correlation {r:+.2} with \"{what}\"", cell.label(), layer + 1),
            caption: "each character on the unit's activation (red high, blue low); under it the model's five most likely next characters (darker: likelier)".into(),
            cells,
            width: 80,
        }
        .save(&run.path.join(format!("cell_{key}")))?;
    }
    run.write_csv(CELLS, &rows)?;
    saturation(&trace, cell, run)
}

/// The fraction of steps each gate unit spends below 0.1 and above 0.9, per layer, and its scatter.
fn saturation(trace: &[LayerTrace], cell: CellKind, run: &mut RunDir) -> Result<()> {
    let mut rows = Vec::new();
    for (l, lt) in trace.iter().enumerate() {
        for (gate, g) in &lt.gates {
            let steps = g.size()[0] as f64;
            let left: Vec<f64> = Vec::try_from(
                g.lt(0.1).to_kind(Kind::Double).sum_dim_intlist([0].as_slice(), false, Kind::Double) / steps,
            )?;
            let right: Vec<f64> = Vec::try_from(
                g.gt(0.9).to_kind(Kind::Double).sum_dim_intlist([0].as_slice(), false, Kind::Double) / steps,
            )?;
            rows.extend((0..left.len()).map(|u| SaturationRow {
                layer: l + 1,
                gate: gate.to_string(),
                unit: u,
                left: left[u],
                right: right[u],
            }));
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    run.write_csv(SATURATION, &rows)?;
    saturation_chart(&rows, cell, &run.path.join("gate_saturation"))
}

/// Karpathy et al.'s Figure 3: one point per gate unit, right- against left-saturated fraction, a panel per layer.
fn saturation_chart(rows: &[SaturationRow], cell: CellKind, stem: &Path) -> Result<()> {
    let layers = rows.iter().map(|r| r.layer).max().unwrap_or(0);
    let gates: Vec<String> = rows.iter().map(|r| r.gate.clone()).fold(Vec::new(), |mut v, g| {
        if !v.contains(&g) {
            v.push(g);
        }
        v
    });
    let name = |g: &str| match g {
        "i" => "input gate",
        "f" => "forget gate",
        "o" => "output gate",
        "r" => "reset gate",
        "z" => "update gate",
        _ => "gate",
    };
    let panels = (1..=layers)
        .map(|l| {
            let mut series: Vec<Series> = gates
                .iter()
                .enumerate()
                .map(|(k, g)| {
                    let pts = rows.iter().filter(|r| r.layer == l && &r.gate == g).map(|r| (r.right, r.left)).collect();
                    Series::new(name(g), OTHER[k % OTHER.len()], pts).scatter().width(4)
                })
                .collect();
            series.push(Series::new("", BASELINE_GREY, vec![(0.0, 1.0), (1.0, 0.0)]).dashed().width(1));
            Panel {
                title: format!("layer {l}"),
                x_label: "fraction of steps right-saturated (> 0.9)".into(),
                y_label: "fraction left-saturated (< 0.1)".into(),
                x_range: Some((0.0, 1.0)),
                y_range: Some((0.0, 1.0)),
                series,
                ..Default::default()
            }
        })
        .collect();
    let mut fig =
        Figure::new(format!("{}: how often each gate unit saturates over a held-out passage", cell.label()), panels);
    fig.size = (700 * layers.max(1) as u32 + 300, 700);
    fig.save(stem)
}

/// The experiment's charts from every Shakespeare run: the learning curves against wall time, test bits per
/// character per model, and the best gated run's pictures (copied).
pub fn charts(root: &Path, dir: &Path, metas: &[Meta]) -> Result<()> {
    let runs: Vec<&Meta> = metas.iter().filter(|m| m.tag("task") == "shakespeare").collect();
    if runs.is_empty() {
        return Ok(());
    }
    let label = |m: &Meta| {
        let cell = m.cell().map_or("?".to_string(), |c| c.label().to_string());
        let params = m.result.get("n_params").map_or(String::new(), |p| format!(", {:.2} M parameters", p / 1e6));
        format!("{cell}, {}{params}", m.tag("size"))
    };
    let mut series = Vec::new();
    for m in &runs {
        let Some(cell) = m.cell() else { continue };
        let path = m.dir(root).join(CURVE);
        if !path.exists() {
            continue;
        }
        let pts =
            rows::own::<CurveRow>(root, m, CURVE)?.iter().map(|r| (r.seconds / 60.0, r.val_nats_per_char)).collect();
        let s = Series::new(label(m), cell_color(cell), pts).markers().width(cell_width(cell).min(4));
        series.push(if m.tag("size").starts_with("equal_params") { s.dashed() } else { s });
    }
    let panel = Panel {
        x_label: "training time (minutes, on the machine that ran it)".into(),
        y_label: "validation loss (nats per character)".into(),
        series,
        ..Default::default()
    };
    let mut fig = Figure::new("Shakespeare, held-out works: validation loss against wall time", vec![panel]);
    fig.size = (1400, 750);
    fig.save(&dir.join("loss_vs_time"))?;
    let sizes: Vec<String> = runs.iter().map(|m| m.tag("size")).fold(Vec::new(), |mut v, s| {
        if !v.contains(&s) {
            v.push(s);
        }
        v
    });
    let cats: Vec<&str> = sizes.iter().map(String::as_str).collect();
    Bars {
        title: "Shakespeare: test loss on held-out works (lower is better; mean ± std over seeds)".into(),
        y_label: "test bits per character".into(),
        categories: sizes.clone(),
        series: crate::charts::bars_by_cell(&runs, "size", &cats, "test_bits_per_char"),
        hlines: vec![(1.45 / std::f64::consts::LN_2, "target: 1.45 nats = 2.09 bits per character".into())],
        y_range: None,
        log_y: false,
        size: (1100, 700),
    }
    .save(&dir.join("test_loss"))?;
    // The best gated run's pictures, beside the charts.
    let best = runs
        .iter()
        .filter(|m| m.cell().is_some_and(|c| c != CellKind::Rnn))
        .filter(|m| m.result.contains_key("test_nats_per_char"))
        .min_by(|a, b| a.result["test_nats_per_char"].total_cmp(&b.result["test_nats_per_char"]));
    if let Some(m) = best {
        let from = m.dir(root);
        for f in ["cell_line_position", "cell_brackets", "cell_speaker", "gate_saturation"] {
            for ext in ["png", "svg"] {
                let src = from.join(format!("{f}.{ext}"));
                if src.exists() {
                    crate::files::write_atomic(&dir.join(format!("{f}.{ext}")), &std::fs::read(&src)?)?;
                }
            }
        }
        for f in ["samples.txt", "samples_during_training.txt"] {
            if from.join(f).exists() {
                crate::files::write_atomic(&dir.join(f), &std::fs::read(from.join(f))?)?;
            }
        }
    }
    Ok(())
}
