//! Surname → language, 18 languages — expected result: LSTM 0.848 ± 0.007 and GRU 0.846 ± 0.002 test accuracy
//! (macro-F1 0.56, 0.56), the vanilla RNN 0.807 ± 0.002; the majority-class baseline is 0.469. With k filler
//! steps after each name (`names-distance`) the vanilla RNN falls to the baseline by k = 50 while GRU (0.798)
//! and LSTM (0.770) hold at k = 200 (0.809 / 0.811 at k = 0).
//!
//! The PyTorch tutorial "Classifying Names with a Character-Level RNN" prints no accuracy; this reports test
//! accuracy, macro-F1, confusion matrices and per-class accuracy for RNN, GRU and LSTM over several seeds.
//! [`predict`] prints the top languages of names typed on the command line.
use crate::charts::{baseline, metric_vs, training_curves};
use crate::config::CellKind;
use crate::data::names::{self, NamesConfig, TestNames};
use crate::data::{Dataset, Example, Pad, Split};
use crate::plot::{cell_color, cell_width, BarStack, Bars, Figure, Heatmap, Panel, Series, BASELINE_GREY, OTHER};
use crate::results::checkpoint::learned_prior;
use crate::results::rows::SplitName;
use crate::results::summary::{mean_of, table, Column};
use crate::results::{checkpoint, rows, Meta, Tag};
use crate::rng::Rng;
use crate::stats::{
    balanced_accuracy, confusion, macro_f1, mean_std, per_class_precision, per_class_recall, row_normalise, shift_prior,
};
use crate::sweep::{Cfg, Columns, Experiment, Finish, Trained};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Device;

/// Name-length buckets (characters) for accuracy by length.
const LENGTH_BUCKETS: [(usize, usize); 5] = [(1, 4), (5, 6), (7, 8), (9, 10), (11, 99)];
const CONFUSION: &str = "confusion.csv";
const BY_LENGTH: &str = "by_length.csv";
const CEILING: &str = "recall_ceiling.csv";
const TRADEOFF: &str = "prior_tradeoff.csv";
/// How far the prior correction goes: the prediction is argmax p(language | name) / prior^τ (0: as trained,
/// 1: every language equally likely a priori).
const TAUS: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

#[derive(Default)]
pub struct Names;

#[derive(Serialize, Deserialize)]
struct ConfusionRow {
    true_language: String,
    predicted_language: String,
    count: u64,
}

/// Per language: how many test names the training split labels only as other languages.
#[derive(Serialize, Deserialize)]
struct CeilingRow {
    language: String,
    n_test: usize,
    only_elsewhere: usize,
    /// 1 − only_elsewhere / n_test: the best recall of a classifier that agrees with its training data.
    recall_ceiling: f64,
}

/// Test metrics with the prior divided out to the power τ.
#[derive(Serialize, Deserialize)]
struct TradeoffRow {
    tau: f64,
    acc: f64,
    macro_f1: f64,
    balanced_acc: f64,
}

#[derive(Serialize, Deserialize)]
struct LengthRow {
    name_length: String,
    n: usize,
    acc: f64,
}

impl Experiment for Names {
    type Data = NamesConfig;
    type Own = ();
    /// The test names in row order (for accuracy by name length and the recall ceiling).
    type PerRun = TestNames;

    fn columns(&self) -> Columns {
        let results = [
            "test_acc",
            "macro_f1",
            "balanced_acc",
            "uniform_acc",
            "uniform_macro_f1",
            "uniform_balanced_acc",
            "majority_acc",
            "ceiling_balanced_acc",
            "val_acc",
            "best_epoch",
            "n_params",
            "train_s",
            "train_seq_per_s",
        ];
        Columns { keys: vec!["model", "distance", "balance"], results: results.to_vec() }
    }

    fn tags(&self, cfg: &Cfg<Self>) -> Vec<(String, Tag)> {
        vec![("distance".into(), Tag::from(cfg.data.distance))]
    }

    /// Prints what folding and splitting do to the data, and what bucketing saves.
    fn check(&self, cfgs: &[&Cfg<Self>]) -> Result<()> {
        let Some(cfg) = cfgs.first() else { return Ok(()) };
        let corpus = names::Corpus::load(&cfg.data.dir)?;
        let r = &corpus.report;
        let dropped: Vec<String> = r.dropped.iter().map(|(c, n)| format!("{c:?}×{n}")).collect();
        let examples: Vec<String> =
            r.cross_language.iter().take(3).map(|(n, l)| format!("{n}: {}", l.join("/"))).collect();
        crate::progress::say!(
            "names: {} lines, {} languages; folding changed {} names and dropped {} ({}); {} names appear under 2+ \
             languages (e.g. {}); {} repeated (name, language) lines{}",
            r.lines,
            corpus.classes.len(),
            r.changed,
            dropped.len(),
            dropped.join(" "),
            r.cross_language.len(),
            examples.join(", "),
            r.repeated,
            if cfg.data.dedupe {
                " (dropped: data.dedupe)"
            } else {
                " (kept, as in the tutorial; data.dedupe drops them)"
            }
        );
        let (ds, _) = cfg.data.dataset(0)?;
        let bs = cfg.train.batch_size;
        let pad =
            |bucket| ds.train.padding_fraction(&ds.train.batches(bs, Some(&mut Rng::derived(0, "batches")), bucket));
        crate::progress::say!(
            "names: padded steps per training epoch: {:.1} % with bucketing, {:.1} % without (train.bucket: {})",
            100.0 * pad(true),
            100.0 * pad(false),
            cfg.train.bucket
        );
        Ok(())
    }

    fn dataset(&self, cfg: &Cfg<Self>) -> Result<(Dataset, TestNames)> {
        cfg.data.dataset(cfg.train.seed)
    }

    /// Test predictions → confusion.csv, by_length.csv, and macro-F1 / majority baseline in meta.
    fn after(&self, cfg: &Cfg<Self>, t: Trained<TestNames>) -> Result<()> {
        let Some(m) = t.model.classifier() else { return Ok(()) };
        let ds = t.data;
        let test = ds.test.as_ref().context("no test split")?;
        let probs = m.predict_proba(test, cfg.train.batch_size);
        let pred: Vec<i64> = Vec::try_from(probs.argmax(-1, false))?;
        let truth = test.label_vec();
        let classes = &ds.shape.classes;
        let k = classes.len();
        let cm = confusion(&truth, &pred, k);
        let rows: Vec<ConfusionRow> = (0..k)
            .flat_map(|t| (0..k).map(move |p| (t, p)))
            .map(|(t, p)| ConfusionRow {
                true_language: classes[t].clone(),
                predicted_language: classes[p].clone(),
                count: cm[t][p],
            })
            .collect();
        t.run.write_csv(CONFUSION, &rows)?;
        let mut by_len = Vec::new();
        for (lo, hi) in LENGTH_BUCKETS {
            let idx: Vec<usize> =
                (0..truth.len()).filter(|&i| (lo..=hi).contains(&t.state.names[i].chars().count())).collect();
            let correct = idx.iter().filter(|&&i| pred[i] == truth[i]).count();
            let label = if hi >= 99 { format!("{lo}+") } else { format!("{lo}-{hi}") };
            by_len.push(LengthRow { name_length: label, n: idx.len(), acc: correct as f64 / idx.len().max(1) as f64 });
        }
        t.run.write_csv(BY_LENGTH, &by_len)?;
        let ceiling: Vec<CeilingRow> = (0..k)
            .map(|c| {
                let of: Vec<usize> = (0..truth.len()).filter(|&i| truth[i] == c as i64).collect();
                let elsewhere = of.iter().filter(|&&i| t.state.only_elsewhere[i]).count();
                CeilingRow {
                    language: classes[c].clone(),
                    n_test: of.len(),
                    only_elsewhere: elsewhere,
                    recall_ceiling: 1.0 - elsewhere as f64 / of.len().max(1) as f64,
                }
            })
            .collect();
        t.run.write_csv(CEILING, &ceiling)?;
        let ceiling_balanced = ceiling.iter().map(|r| r.recall_ceiling).sum::<f64>() / k.max(1) as f64;
        t.run.meta.result.insert("ceiling_balanced_acc".into(), ceiling_balanced);
        let train_labels = ds.train.label_vec();
        let majority = (0..k as i64).max_by_key(|c| train_labels.iter().filter(|l| *l == c).count()).unwrap_or(0);
        let majority_acc = truth.iter().filter(|&&t| t == majority).count() as f64 / truth.len() as f64;
        t.run.meta.result.insert("macro_f1".into(), macro_f1(&cm));
        t.run.meta.result.insert("balanced_acc".into(), balanced_accuracy(&cm));
        // The same predictions with the learned prior divided out to the power τ; τ = 1 is the uniform prior
        // (what `names predict --prior uniform` prints).
        let learned = learned_prior(&ds.shape.class_counts, &cfg.train);
        let p: Vec<Vec<f64>> = Vec::try_from(probs.to_kind(tch::Kind::Double))?;
        let mut tradeoff = Vec::new();
        for tau in TAUS {
            let target: Vec<f64> = learned.iter().map(|l| l.powf(1.0 - tau)).collect();
            let shifted: Vec<i64> = p
                .iter()
                .map(|row| {
                    let q = shift_prior(row, &learned, &target);
                    (0..k).max_by(|&a, &b| q[a].total_cmp(&q[b])).unwrap_or(0) as i64
                })
                .collect();
            let cm = confusion(&truth, &shifted, k);
            let acc = (0..k).map(|c| cm[c][c]).sum::<u64>() as f64 / truth.len().max(1) as f64;
            tradeoff.push(TradeoffRow { tau, acc, macro_f1: macro_f1(&cm), balanced_acc: balanced_accuracy(&cm) });
        }
        t.run.write_csv(TRADEOFF, &tradeoff)?;
        let uniform = tradeoff.last().context("TAUS ends at 1")?;
        t.run.meta.result.insert("uniform_acc".into(), uniform.acc);
        t.run.meta.result.insert("uniform_macro_f1".into(), uniform.macro_f1);
        t.run.meta.result.insert("uniform_balanced_acc".into(), uniform.balanced_acc);
        t.run.meta.result.insert("majority_acc".into(), majority_acc);
        Ok(())
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (root, dir, cfg, runs) = (f.root, &f.dir, f.cfg, f.runs);
        if cfg.sweep.sweeps("data.distance") {
            distance_charts(dir, runs)?;
            let cols = Column::per_value(runs, "distance", "k", "test_acc");
            return Ok(table("test accuracy", runs, &["model"], &cols) + "charts: accuracy_vs_distance\n");
        }
        // With several balance settings swept, the charts show the first one's runs (the table shows all).
        let first = runs.first().map(|m| m.tag("balance").to_string()).unwrap_or_default();
        let charted: Vec<Meta> = runs.iter().filter(|m| m.tag("balance") == first).cloned().collect();
        plain_charts(root, dir, &charted)?;
        let cols = [
            Column::new("test acc", "test_acc"),
            Column::new("macro-F1", "macro_f1"),
            Column::new("balanced acc", "balanced_acc"),
            Column::new("uniform prior: acc", "uniform_acc"),
            Column::new("macro-F1", "uniform_macro_f1"),
            Column::new("balanced acc", "uniform_balanced_acc"),
            Column::new("ceiling", "ceiling_balanced_acc"),
        ];
        let rows: &[&str] = if first.is_empty() { &["model"] } else { &["balance", "model"] };
        let note = if first.is_empty() { String::new() } else { format!(" (of the balance = {first} runs)") };
        Ok(table("names", runs, rows, &cols)
            + &format!(
                "charts{note}: training_curves, confusion_<model>, per_class_recall_precision, accuracy_by_length, \
                 prior_tradeoff\n"
            ))
    }
}

fn plain_charts(root: &Path, dir: &Path, metas: &[Meta]) -> Result<()> {
    let all: Vec<&Meta> = metas.iter().collect();
    let base = mean_of(&all, "majority_acc");
    let base_label = format!("majority class (Russian), {:.1} %", base * 100.0);
    let seeds = metas.iter().map(|m| m.seed).collect::<std::collections::BTreeSet<_>>().len();
    // Training curves: every run, coloured by model.
    let title = format!("Names: validation accuracy per epoch ({seeds} seeds per model)");
    let mut fig = training_curves(root, metas, "distance", "k", SplitName::Val, &title)?;
    let epochs = metas.iter().filter_map(|m| m.result.get("best_epoch")).fold(1.0f64, |a, b| a.max(*b));
    let max_epoch = fig.panels.iter().flat_map(|p| &p.series).flat_map(|s| &s.points).fold(epochs, |a, p| a.max(p.0));
    for p in &mut fig.panels {
        p.title = "18 languages, stratified split".into();
        p.y_range = Some((0.4, 0.92));
        p.series.push(baseline(&base_label, base, 1.0, max_epoch));
    }
    fig.save(&dir.join("training_curves"))?;
    // Confusion matrix per model, summed over seeds, rows normalised; recall and precision per language.
    let mut recall_bars: Vec<(String, plotters::style::RGBColor, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut precision_bars = recall_bars.clone();
    let mut classes: Vec<String> = Vec::new();
    let mut support: Vec<u64> = Vec::new();
    for cell in CellKind::ALL {
        let runs: Vec<&Meta> = metas.iter().filter(|m| m.cell() == Some(cell)).collect();
        if runs.is_empty() {
            continue;
        }
        let mut total: BTreeMap<(String, String), u64> = BTreeMap::new();
        let (mut recalls, mut precisions): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (Vec::new(), Vec::new());
        for m in &runs {
            let rows: Vec<ConfusionRow> = rows::own(root, m, CONFUSION)?;
            classes = rows
                .iter()
                .map(|r| r.true_language.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let k = classes.len();
            let mut cm = vec![vec![0u64; k]; k];
            for r in &rows {
                let (t, p) = (
                    classes.binary_search(&r.true_language).unwrap(),
                    classes.binary_search(&r.predicted_language).unwrap(),
                );
                cm[t][p] += r.count;
                *total.entry((r.true_language.clone(), r.predicted_language.clone())).or_default() += r.count;
            }
            recalls.push(per_class_recall(&cm));
            precisions.push(per_class_precision(&cm).into_iter().map(|p| if p.is_nan() { 0.0 } else { p }).collect());
        }
        let k = classes.len();
        let cm: Vec<Vec<u64>> =
            classes.iter().map(|t| classes.iter().map(|p| total[&(t.clone(), p.clone())]).collect()).collect();
        support = cm.iter().map(|row| row.iter().sum()).collect();
        Heatmap {
            title: format!(
                "{}: test confusion (rows = true language, each row sums to 1; {}, accuracy {:.3})",
                cell.label(),
                crate::stats::seeds(runs.len()),
                mean_of(&runs, "test_acc")
            ),
            x_label: "predicted language (first 3 letters)".into(),
            y_label: "true language".into(),
            x_ticks: classes.iter().map(|c| c.chars().take(3).collect()).collect(),
            y_ticks: classes.clone(),
            values: row_normalise(&cm),
            log: false,
            bar_label: "fraction of the true language's names".into(),
            annotate: true,
            size: (1300, 1050),
        }
        .save(&dir.join(format!("confusion_{}", cell.name())))?;
        let per = |v: &[Vec<f64>]| -> (Vec<f64>, Vec<f64>) {
            (0..k).map(|c| mean_std(&v.iter().map(|r| r[c]).collect::<Vec<_>>())).unzip()
        };
        let label = format!("{} (mean ± std over {})", cell.label(), crate::stats::seeds(runs.len()));
        let ((rm, rs), (pm, ps)) = (per(&recalls), per(&precisions));
        recall_bars.push((label.clone(), cell_color(cell), rm, rs));
        precision_bars.push((label, cell_color(cell), pm, ps));
    }
    // The recall a classifier that agrees with its training data can reach (per seed's split, mean over seeds).
    let mut by_seed: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for m in metas {
        if let std::collections::btree_map::Entry::Vacant(e) = by_seed.entry(m.seed) {
            let rows: Vec<CeilingRow> = rows::own(root, m, CEILING)?;
            e.insert(rows.iter().map(|r| r.recall_ceiling).collect());
        }
    }
    if !by_seed.is_empty() && by_seed.values().all(|v| v.len() == classes.len()) {
        let (m, s) = (0..classes.len()).map(|c| mean_std(&by_seed.values().map(|v| v[c]).collect::<Vec<_>>())).unzip();
        recall_bars.push(("ceiling: test names not labelled otherwise in training".into(), BASELINE_GREY, m, s));
    }
    // Each language's share of the test names (the split is stratified: the data's shares).
    let n: u64 = support.iter().sum();
    let categories: Vec<String> = classes
        .iter()
        .zip(&support)
        .map(|(c, s)| format!("{} {:.0}%", c.chars().take(4).collect::<String>(), 100.0 * *s as f64 / n.max(1) as f64))
        .collect();
    let panel = |title: &str, series| Bars {
        title: title.into(),
        y_label: "fraction".into(),
        categories: categories.clone(),
        series,
        hlines: vec![],
        y_range: Some((0.0, 1.05)),
        log_y: false,
        size: (1400, 750),
    };
    BarStack {
        title: "Names: per language (with its share of the data), test set".into(),
        panels: vec![
            panel("recall: the share of the language's names classified as it", recall_bars),
            panel("precision: the share of names classified as the language that are right", precision_bars),
        ],
        size: (1500, 1100),
    }
    .save(&dir.join("per_class_recall_precision"))?;
    // Accuracy by name length.
    let mut series = Vec::new();
    let mut buckets = Vec::new();
    for cell in CellKind::ALL {
        let runs: Vec<&Meta> = metas.iter().filter(|m| m.cell() == Some(cell)).collect();
        if runs.is_empty() {
            continue;
        }
        let mut accs: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for m in &runs {
            let rows: Vec<LengthRow> = rows::own(root, m, BY_LENGTH)?;
            buckets = rows.iter().map(|r| format!("{} chars (n={})", r.name_length, r.n)).collect();
            for (i, r) in rows.iter().enumerate() {
                accs.entry(i).or_default().push(r.acc);
            }
        }
        let (means, stds) = accs.values().map(|v| mean_std(v)).unzip();
        series.push((cell.label().to_string(), cell_color(cell), means, stds));
    }
    Bars {
        title: "Names: test accuracy by name length (mean ± std over seeds)".into(),
        y_label: "test accuracy".into(),
        categories: buckets,
        series,
        hlines: vec![(base, base_label)],
        y_range: Some((0.0, 1.05)),
        log_y: false,
        size: (1200, 750),
    }
    .save(&dir.join("accuracy_by_length"))?;
    prior_tradeoff_chart(root, dir, metas)
}

/// Accuracy against balanced accuracy as the prior correction goes from none (τ = 0) to the uniform prior (τ = 1),
/// one line per model (mean over seeds), with the targets of the class-balance issue and the recall ceiling.
fn prior_tradeoff_chart(root: &Path, dir: &Path, metas: &[Meta]) -> Result<()> {
    let mut series = Vec::new();
    let mut ceiling = Vec::new();
    for cell in CellKind::ALL {
        let runs: Vec<&Meta> = metas.iter().filter(|m| m.cell() == Some(cell)).collect();
        if runs.is_empty() {
            continue;
        }
        let mut by_tau: BTreeMap<i64, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for m in &runs {
            // Runs made before this file existed have none: they are left out of the chart.
            if !m.dir(root).join(TRADEOFF).exists() {
                continue;
            }
            for r in rows::own::<TradeoffRow>(root, m, TRADEOFF)? {
                let e = by_tau.entry((r.tau * 100.0).round() as i64).or_default();
                e.0.push(r.balanced_acc);
                e.1.push(r.acc);
            }
            ceiling.extend(m.result.get("ceiling_balanced_acc").copied());
        }
        if by_tau.is_empty() {
            continue;
        }
        let pts = by_tau.values().map(|(b, a)| (mean_std(b).0, mean_std(a).0)).collect();
        let label = format!("{} ({}), τ = 0 left … 1 right", cell.label(), crate::stats::seeds(runs.len()));
        series.push(Series::new(label, cell_color(cell), pts).markers().width(cell_width(cell)));
    }
    let (x0, x1, y0, y1) = (0.3, 0.9, 0.65, 0.9);
    series.push(
        Series::new(
            "target: accuracy ≥ 0.82, balanced accuracy ≥ 0.70",
            BASELINE_GREY,
            vec![(0.70, 0.82), (0.70, y1), (x1, y1), (x1, 0.82), (0.70, 0.82)],
        )
        .dashed()
        .width(2),
    );
    if !ceiling.is_empty() {
        let c = mean_std(&ceiling).0;
        let label = format!("ceiling {c:.3} (names the training split labels otherwise)");
        series.push(Series::new(label, OTHER[0], vec![(c, y0), (c, y1)]).dashed().width(2));
    }
    let panel = Panel {
        x_label: "balanced accuracy (mean recall over the 18 languages)".into(),
        y_label: "accuracy".into(),
        x_range: Some((x0, x1)),
        y_range: Some((y0, y1)),
        series,
        ..Default::default()
    };
    Figure::new("Names: dividing out the training prior (p / prior^τ) trades accuracy for balance", vec![panel])
        .save(&dir.join("prior_tradeoff"))
}

fn distance_charts(dir: &Path, metas: &[Meta]) -> Result<()> {
    let base = mean_of(&metas.iter().collect::<Vec<_>>(), "majority_acc");
    let ks: Vec<f64> = metas.iter().filter_map(|m| m.number("distance")).collect();
    let (k0, k1) = ks.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &k| (a.min(k), b.max(k)));
    let mut series = metric_vs(metas, "distance", "test_acc");
    series.push(baseline(&format!("majority class, {:.1} %", base * 100.0), base, k0, k1));
    let panel = Panel {
        x_label: "k = filler steps between the name's last letter and the readout".into(),
        y_label: "test accuracy".into(),
        y_range: Some((0.3, 0.95)),
        series,
        ..Default::default()
    };
    Figure::new("Names: test accuracy when the evidence sits k steps before the readout", vec![panel])
        .save(&dir.join("accuracy_vs_distance"))
}

/// Which class prior `names predict` reports probabilities under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Prior {
    /// Every language equally likely before reading the name: what "which language does this name look like"
    /// asks, whatever the data's mix (47 % Russian).
    Uniform,
    /// The training data's mix of languages: right when the names come from the same population as the data.
    Data,
    /// As the model was trained (no correction).
    Model,
}

impl Prior {
    /// One line saying what the printed probabilities mean.
    pub fn meaning(self) -> &'static str {
        match self {
            Prior::Uniform => {
                "probabilities with every language equally likely a priori (--prior data: the data's mix)"
            }
            Prior::Data => "probabilities under the training data's mix of languages (47 % Russian)",
            Prior::Model => "the model's probabilities, uncorrected",
        }
    }
}

/// A names classifier loaded once from its run folder (what `names predict` and the playground ask).
pub struct NamesPredictor {
    loaded: checkpoint::Loaded,
    data: NamesConfig,
}

impl NamesPredictor {
    pub fn load(run: &Path, device: Device) -> Result<Self> {
        let loaded = checkpoint::load(run, device)?;
        if loaded.model.classifier().is_none() {
            bail!("{} holds no classifier", run.display());
        }
        let data: NamesConfig = checkpoint::config_section(run, "data")?;
        Ok(NamesPredictor { loaded, data })
    }

    /// The languages, in the order of the probabilities.
    pub fn classes(&self) -> &[String] {
        &self.loaded.spec.shape.classes
    }

    /// Per name, the probability of every language, corrected from the prior the model learned to `prior` (Bayes'
    /// rule). A name with a character outside the alphabet (accents fold as in training) is an error naming it.
    pub fn probs(&self, input: &[String], prior: Prior) -> Result<Vec<Vec<f64>>> {
        let run = &self.loaded.dir;
        let classes = self.classes();
        let learned = &self.loaded.spec.prior;
        if learned.len() != classes.len() && prior != Prior::Model {
            bail!(
                "{}: model.yaml has no class prior (trained before it was recorded); use --prior model",
                run.display()
            );
        }
        let counts = &self.loaded.spec.shape.class_counts;
        let target: Vec<f64> = match prior {
            Prior::Uniform => vec![1.0 / classes.len() as f64; classes.len()],
            Prior::Data => counts.iter().map(|&c| c as f64 / counts.iter().sum::<i64>().max(1) as f64).collect(),
            Prior::Model => learned.clone(),
        };
        let mut examples = Vec::new();
        for raw in input {
            let mut tokens =
                names::encode(&names::strip_accents(raw)).with_context(|| format!("cannot classify {raw:?}"))?;
            tokens.extend(std::iter::repeat_n(names::FILLER, self.data.distance));
            examples.push(Example { tokens, label: 0 });
        }
        let device = self.loaded.vs.device();
        let split = Split::new("input", &examples, Pad::Post).to_device(device);
        let model = self.loaded.model.classifier().expect("checked at load");
        let probs = model.predict_proba(&split, 256);
        (0..input.len())
            .map(|i| {
                let p: Vec<f64> = Vec::try_from(probs.get(i as i64).to_kind(tch::Kind::Double))?;
                Ok(if prior == Prior::Model { p } else { shift_prior(&p, learned, &target) })
            })
            .collect()
    }

    /// The belief after each letter: the probabilities of every prefix of `name` (its first 1, 2, … letters).
    pub fn belief(&self, name: &str, prior: Prior) -> Result<Vec<Vec<f64>>> {
        let chars: Vec<char> = name.chars().collect();
        let prefixes: Vec<String> = (1..=chars.len()).map(|n| chars[..n].iter().collect()).collect();
        self.probs(&prefixes, prior)
    }
}

/// Indices of `p` from the most to the least likely.
pub fn ranked(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
    order
}

/// `names predict`: the `top` most likely languages of each name with a run's checkpoint, as printed lines. The
/// probabilities are corrected from the prior the model learned to `prior` (Bayes' rule).
pub fn predict(run: &Path, top: usize, prior: Prior, input: &[String], device: Device) -> Result<String> {
    let model = NamesPredictor::load(run, device)?;
    let probs = model.probs(input, prior)?;
    let mut out = String::new();
    for (raw, p) in input.iter().zip(&probs) {
        out += &format!("{raw}\n");
        for &c in ranked(p).iter().take(top) {
            out += &format!("  {:<12} {:.3}\n", model.classes()[c], p[c]);
        }
    }
    Ok(out)
}
