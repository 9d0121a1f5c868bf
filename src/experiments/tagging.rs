//! Part-of-speech tagging on the Brown corpus (synced many-to-many: one tag per word) — expected result:
//! two-directional LSTM 0.975 and GRU 0.974 token accuracy (0.874 / 0.869 on unseen words), one-directional
//! 0.954–0.957, the most-frequent-tag baseline 0.940 (`make tagging`).
//!
//! RNN, GRU and LSTM, one- and two-directional, on a split by document (or holding out genres), with the 12
//! universal tags (or the fine Brown tags). Reported per run: token accuracy, accuracy on words never seen in
//! training (OOV), per-tag precision/recall/F1, a confusion matrix, accuracy by position in the sentence and by
//! sentence length, and the most-frequent-tag baseline on the same split. [`predict`] tags a sentence.
use crate::charts::baseline;
use crate::config::CellKind;
use crate::data::brown::{self, spelling, BrownConfig, Tagged};
use crate::data::{Dataset, Example, Pad, Split};
use crate::model::Model;
use crate::plot::{cell_color, Bars, Figure, Heatmap, Panel, Series};
use crate::results::summary::{mean_of, table, Column};
use crate::results::{checkpoint, rows, Meta, RunDir};
use crate::stats::{confusion, macro_f1, mean_std, per_class_f1, per_class_precision, per_class_recall, row_normalise};
use crate::sweep::{Cfg, Columns, Experiment, Finish, Trained};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Device, Tensor};

/// Buckets of the position in the sentence (1-based) and of the sentence's length, in words.
const POSITIONS: [(usize, usize); 7] = [(1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 40), (41, 999)];
const LENGTHS: [(usize, usize); 6] = [(1, 10), (11, 20), (21, 30), (31, 40), (41, 60), (61, 999)];
const CONFUSION: &str = "confusion.csv";
const BY_POSITION: &str = "by_position.csv";
const BY_LENGTH: &str = "by_length.csv";
const PER_TAG: &str = "per_tag.csv";

#[derive(Default)]
pub struct Tagging;

#[derive(Serialize, Deserialize)]
struct ConfusionRow {
    true_tag: String,
    predicted_tag: String,
    count: u64,
}

/// Accuracy in a bucket (`by_position.csv`, `by_length.csv`).
#[derive(Serialize, Deserialize)]
struct BucketRow {
    bucket: String,
    tokens: usize,
    acc: f64,
}

#[derive(Serialize, Deserialize)]
struct TagRow {
    tag: String,
    support: u64,
    precision: f64,
    recall: f64,
    f1: f64,
}

fn bucket_name((lo, hi): (usize, usize)) -> String {
    match (lo, hi) {
        (lo, 999) => format!("{lo}+"),
        (lo, hi) if lo == hi => lo.to_string(),
        (lo, hi) => format!("{lo}-{hi}"),
    }
}

/// Accuracy per bucket of `key` (positions or lengths) over (key, right) pairs.
fn buckets(items: &[(usize, bool)], edges: &[(usize, usize)]) -> Vec<BucketRow> {
    edges
        .iter()
        .map(|&(lo, hi)| {
            let inside: Vec<bool> = items.iter().filter(|(k, _)| (lo..=hi).contains(k)).map(|p| p.1).collect();
            let right = inside.iter().filter(|r| **r).count();
            BucketRow {
                bucket: bucket_name((lo, hi)),
                tokens: inside.len(),
                acc: right as f64 / inside.len().max(1) as f64,
            }
        })
        .collect()
}

/// Predicted tag ids (1-based) for every sentence of `split`, in row order.
fn predict_split(m: &crate::model::Tagger, split: &Split, batch_size: usize) -> Result<Vec<Vec<i64>>> {
    let device = split.tokens.device();
    let mut out = Vec::with_capacity(split.len());
    for idx in split.batches(batch_size, None, false) {
        let b = split.batch(&idx, device);
        let pred = m.predict(&b).to_device(Device::Cpu);
        for (k, &i) in idx.iter().enumerate() {
            let n = split.lengths[i as usize];
            out.push(Vec::<i64>::try_from(pred.get(k as i64).narrow(0, 0, n))?);
        }
    }
    Ok(out)
}

impl Experiment for Tagging {
    type Data = BrownConfig;
    type Own = ();
    /// What the run's data set was made from (its vocabulary and the OOV marks, for `after`).
    type PerRun = Option<Tagged>;

    fn columns(&self) -> Columns {
        let results = [
            "test_acc",
            "oov_acc",
            "macro_f1",
            "mft_acc",
            "mft_oov_acc",
            "n_test_tokens",
            "n_oov",
            "val_acc",
            "best_epoch",
            "n_params",
            "train_s",
            "train_seq_per_s",
        ];
        Columns { keys: vec!["model", "variant"], results: results.to_vec() }
    }

    /// Reads the corpus once and writes what the tag mapping does (tag_mapping.csv beside the runs).
    fn check(&self, cfgs: &[&Cfg<Self>]) -> Result<()> {
        let Some(cfg) = cfgs.first() else { return Ok(()) };
        let docs = brown::corpus(&cfg.data.path)?;
        let report = brown::mapping_report(&docs);
        let unknown: Vec<&str> = report.iter().filter(|r| r.universal == "?").map(|r| r.base_tag.as_str()).collect();
        let sentences: usize = docs.iter().map(|d| d.sentences.len()).sum();
        let tokens: u64 = report.iter().map(|r| r.tokens).sum();
        let raw: usize = report.iter().map(|r| r.raw_tags).sum();
        crate::progress::say!(
            "brown: {} documents, {sentences} sentences, {tokens} tokens; {raw} raw tags → {} base tags → {} universal \
             tags{}",
            docs.len(),
            report.len(),
            brown::UNIVERSAL.len(),
            if unknown.is_empty() { String::new() } else { format!("; no universal tag for {}", unknown.join(" ")) }
        );
        if !unknown.is_empty() && cfg.data.tags == brown::TagSet::Universal {
            bail!("{}: base tags without a universal tag: {}", cfg.data.path.display(), unknown.join(" "));
        }
        Ok(())
    }

    fn dataset(&self, cfg: &Cfg<Self>) -> Result<(Dataset, Option<Tagged>)> {
        let tagged = cfg.data.tagged(cfg.train.seed)?;
        Ok((tagged.data.shallow_clone(), Some(tagged)))
    }

    /// Test predictions → per_tag.csv, confusion.csv, by_position.csv, by_length.csv; accuracy on unseen words;
    /// the most-frequent-tag baseline on the same split; the vocabulary for `predict`.
    fn after(&self, cfg: &Cfg<Self>, t: Trained<Option<Tagged>>) -> Result<()> {
        let Model::Tagger(m) = t.model else { bail!("tagging trains taggers: set model.kind: tagger") };
        let tg = t.state.as_ref().context("no data set")?;
        let test = t.data.test.as_ref().context("no test split")?;
        let pred = predict_split(m, test, cfg.train.batch_size)?;
        let names = &t.data.shape.classes;
        let k = names.len();
        // The most frequent tag overall, for words the baseline has not seen.
        let mut overall = vec![0u64; k + 1];
        for c in tg.train_tags.values() {
            overall.iter_mut().zip(c).for_each(|(o, c)| *o += c);
        }
        let argmax = |c: &[u64]| (1..c.len()).max_by_key(|&i| (c[i], std::cmp::Reverse(i))).unwrap_or(1) as i64;
        let fallback = argmax(&overall);
        let (mut truth, mut guess) = (Vec::new(), Vec::new());
        let (mut at_pos, mut at_len) = (Vec::new(), Vec::new());
        let (mut oov, mut oov_right, mut mft, mut mft_oov) = (0usize, 0usize, 0usize, 0usize);
        for (sentence, p) in tg.test.iter().zip(&pred) {
            for (i, ((word, tag), &g)) in sentence.iter().zip(p).enumerate() {
                let right = *tag == g;
                truth.push(tag - 1);
                guess.push(g - 1);
                at_pos.push((i + 1, right));
                at_len.push((sentence.len(), right));
                let lw = word.to_lowercase();
                let seen = tg.vocab.contains_key(&lw);
                let base = tg.train_tags.get(&lw).map_or(fallback, |c| argmax(c));
                mft += (base == *tag) as usize;
                if !seen {
                    oov += 1;
                    oov_right += right as usize;
                    mft_oov += (base == *tag) as usize;
                }
            }
        }
        let n = truth.len();
        let cm = confusion(&truth, &guess, k);
        let rows: Vec<ConfusionRow> = (0..k)
            .flat_map(|a| (0..k).map(move |b| (a, b)))
            .map(|(a, b)| ConfusionRow { true_tag: names[a].clone(), predicted_tag: names[b].clone(), count: cm[a][b] })
            .collect();
        t.run.write_csv(CONFUSION, &rows)?;
        let (p, r, f) = (per_class_precision(&cm), per_class_recall(&cm), per_class_f1(&cm));
        let per_tag: Vec<TagRow> = (0..k)
            .map(|c| TagRow {
                tag: names[c].clone(),
                support: cm[c].iter().sum(),
                precision: p[c],
                recall: r[c],
                f1: f[c],
            })
            .collect();
        t.run.write_csv(PER_TAG, &per_tag)?;
        t.run.write_csv(BY_POSITION, &buckets(&at_pos, &POSITIONS))?;
        t.run.write_csv(BY_LENGTH, &buckets(&at_len, &LENGTHS))?;
        let res = &mut t.run.meta.result;
        res.insert("n_test_tokens".into(), n as f64);
        res.insert("n_oov".into(), oov as f64);
        res.insert("oov_acc".into(), oov_right as f64 / oov.max(1) as f64);
        res.insert("macro_f1".into(), macro_f1(&cm));
        res.insert("mft_acc".into(), mft as f64 / n.max(1) as f64);
        res.insert("mft_oov_acc".into(), mft_oov as f64 / oov.max(1) as f64);
        write_vocabulary(t.run, tg)
    }

    fn finish(&self, f: &Finish<Self>) -> Result<String> {
        let (root, dir, cfg, runs) = (f.root, &f.dir, f.cfg, f.runs);
        if let Ok(docs) = brown::corpus(&cfg.data.path) {
            crate::results::write_csv(&dir.join("tag_mapping.csv"), &brown::mapping_report(&docs))?;
        }
        charts(root, dir, runs)?;
        let cols = [
            Column::new("accuracy", "test_acc"),
            Column::new("OOV accuracy", "oov_acc"),
            Column::new("macro-F1", "macro_f1"),
            Column::new("most frequent tag", "mft_acc"),
            Column::new("MFT on OOV", "mft_oov_acc"),
        ];
        Ok(table("tagging, test tokens", runs, &["variant", "model"], &cols)
            + "charts: accuracy, by_position, by_length, confusion_<variant>_<model>, per_tag_f1; tag_mapping.csv\n")
    }
}

/// words.txt (id 2 upwards, one word a line) and chars.txt: what `predict` needs to encode a sentence.
fn write_vocabulary(run: &mut RunDir, tg: &Tagged) -> Result<()> {
    let mut words: Vec<(&String, &i64)> = tg.vocab.iter().collect();
    words.sort_by_key(|w| *w.1);
    run.write("words.txt", (words.iter().map(|w| w.0.as_str()).collect::<Vec<_>>().join("\n") + "\n").as_bytes())?;
    let mut chars: Vec<(&char, &i64)> = tg.chars.iter().collect();
    chars.sort_by_key(|c| *c.1);
    run.write("chars.txt", chars.iter().map(|c| c.0.to_string() + "\n").collect::<String>().as_bytes())
}

fn label(m: &Meta) -> String {
    let cell = m.cell().map_or("?", |c| c.label());
    if m.tag("variant") == "bi" {
        format!("Bi{cell}")
    } else {
        cell.to_string()
    }
}

fn charts(root: &Path, dir: &Path, metas: &[Meta]) -> Result<()> {
    let all: Vec<&Meta> = metas.iter().collect();
    let mut variants: Vec<String> = metas.iter().map(|m| m.tag("variant")).collect();
    variants.sort();
    variants.dedup();
    // Accuracy and OOV accuracy per model and direction, with the most-frequent-tag baseline.
    let mut series = Vec::new();
    for cell in CellKind::ALL {
        let of = |v: &str, key: &str| -> (f64, f64) {
            let x: Vec<f64> = metas
                .iter()
                .filter(|m| m.cell() == Some(cell) && m.tag("variant") == v)
                .filter_map(|m| m.result.get(key).copied())
                .collect();
            mean_std(&x)
        };
        let cats: Vec<(f64, f64)> =
            variants.iter().flat_map(|v| [of(v, "test_acc"), of(v, "oov_acc")]).collect::<Vec<_>>();
        if cats.iter().all(|c| c.0.is_nan()) {
            continue;
        }
        series.push((
            cell.label().to_string(),
            cell_color(cell),
            cats.iter().map(|c| c.0).collect::<Vec<f64>>(),
            cats.iter().map(|c| c.1).collect(),
        ));
    }
    let categories: Vec<String> =
        variants.iter().flat_map(|v| [format!("{v}: all words"), format!("{v}: unseen words")]).collect();
    let (mft, mft_oov) = (mean_of(&all, "mft_acc"), mean_of(&all, "mft_oov_acc"));
    // The axis starts a little below the lowest bar or baseline, so that differences of a point show.
    let lowest = series.iter().flat_map(|s| s.2.iter().copied()).chain([mft, mft_oov]).filter(|v| v.is_finite());
    let lo = ((lowest.fold(1.0, f64::min) - 0.05) * 10.0).floor().max(0.0) / 10.0;
    Bars {
        title: "Brown POS tagging: test accuracy (mean ± std over seeds)".into(),
        y_label: "token accuracy".into(),
        categories,
        series,
        hlines: vec![
            (mft, format!("most frequent tag per word: {mft:.3}")),
            (mft_oov, format!("most frequent tag, unseen words: {mft_oov:.3}")),
        ],
        y_range: Some((lo, 1.0)),
        log_y: false,
        size: (1300, 750),
    }
    .save(&dir.join("accuracy"))?;
    // Accuracy by position and by sentence length: one line per model and direction.
    for (file, stem, title, x_label) in [
        (BY_POSITION, "by_position", "accuracy by position in the sentence", "position of the word (bucket)"),
        (BY_LENGTH, "by_length", "accuracy by sentence length", "sentence length in words (bucket)"),
    ] {
        let mut series = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut groups: BTreeMap<String, Vec<&Meta>> = BTreeMap::new();
        for m in metas {
            groups.entry(label(m)).or_default().push(m);
        }
        for (name, ms) in &groups {
            let mut acc: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            for m in ms {
                let rows: Vec<BucketRow> = rows::own(root, m, file)?;
                names = rows.iter().map(|r| format!("{} ({})", r.bucket, r.tokens)).collect();
                for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.tokens > 0) {
                    acc.entry(i).or_default().push(r.acc);
                }
            }
            let cell = ms[0].cell().unwrap_or(CellKind::Lstm);
            let pts = acc.iter().map(|(i, v)| (*i as f64, mean_std(v).0)).collect();
            let s = Series::new(name.clone(), cell_color(cell), pts).markers();
            series.push(if name.starts_with("Bi") { s.width(3) } else { s.dashed().width(2) });
        }
        series.push(baseline(&format!("most frequent tag ({mft:.3})"), mft, 0.0, names.len().saturating_sub(1) as f64));
        let x_label = format!(
            "{x_label}: {}",
            names.iter().enumerate().map(|(i, n)| format!("{i} = {n}")).collect::<Vec<_>>().join(", ")
        );
        let panel = Panel { x_label, y_label: "token accuracy".into(), series, ..Default::default() };
        let mut fig =
            Figure::new(format!("Brown POS tagging: {title} (solid: two directions; dashed: one)"), vec![panel]);
        fig.size = (1400, 750);
        fig.save(&dir.join(stem))?;
    }
    // Confusion and per-tag F1 of the best-scoring model (by mean test accuracy).
    let mut groups: BTreeMap<String, Vec<&Meta>> = BTreeMap::new();
    for m in metas {
        groups.entry(format!("{}_{}", m.tag("variant"), m.tag("model"))).or_default().push(m);
    }
    let best = groups.iter().max_by(|a, b| mean_of(a.1, "test_acc").total_cmp(&mean_of(b.1, "test_acc")));
    if let Some((key, ms)) = best {
        let mut total: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut tags: Vec<String> = Vec::new();
        for m in ms {
            let rows: Vec<ConfusionRow> = rows::own(root, m, CONFUSION)?;
            for r in rows {
                if !tags.contains(&r.true_tag) {
                    tags.push(r.true_tag.clone());
                }
                *total.entry((r.true_tag, r.predicted_tag)).or_default() += r.count;
            }
        }
        let cm: Vec<Vec<u64>> =
            tags.iter().map(|a| tags.iter().map(|b| total[&(a.clone(), b.clone())]).collect()).collect();
        Heatmap {
            title: format!(
                "{}: test confusion (rows = true tag, each row sums to 1; {})",
                label(ms[0]),
                crate::stats::seeds(ms.len())
            ),
            x_label: "predicted tag".into(),
            y_label: "true tag".into(),
            x_ticks: tags.clone(),
            y_ticks: tags.clone(),
            values: row_normalise(&cm),
            log: false,
            bar_label: "fraction of the tag's tokens".into(),
            annotate: true,
            size: (1200, 1000),
        }
        .save(&dir.join(format!("confusion_{key}")))?;
        let f1 = per_class_f1(&cm);
        let support: Vec<u64> = cm.iter().map(|r| r.iter().sum()).collect();
        Bars {
            title: format!("{}: F1 per tag on the test set ({} pooled)", label(ms[0]), crate::stats::seeds(ms.len())),
            y_label: "F1".into(),
            categories: tags.iter().zip(&support).map(|(t, s)| format!("{t} ({s})")).collect(),
            series: vec![(label(ms[0]), cell_color(ms[0].cell().unwrap_or(CellKind::Lstm)), f1, vec![])],
            hlines: vec![],
            y_range: Some((0.0, 1.05)),
            log_y: false,
            size: (1200, 700),
        }
        .save(&dir.join("per_tag_f1"))?;
    }
    Ok(())
}

/// A tagger loaded once from its run folder, with its vocabularies (what `tagging predict` and the playground ask).
pub struct TaggerPredictor {
    loaded: checkpoint::Loaded,
    vocab: HashMap<String, i64>,
    chars: HashMap<char, i64>,
}

/// One word of a tagged sentence.
#[derive(Clone, Debug, Serialize)]
pub struct WordTag {
    pub word: String,
    pub tag: String,
    /// The word was not in the training vocabulary (the tag comes from its spelling and context).
    pub unknown: bool,
}

impl TaggerPredictor {
    pub fn load(run: &Path, device: Device) -> Result<Self> {
        let loaded = checkpoint::load(run, device)?;
        if !matches!(loaded.model, Model::Tagger(_)) {
            bail!("{} holds no tagger", run.display());
        }
        let read =
            |f: &str| std::fs::read_to_string(run.join(f)).with_context(|| format!("{}: {f} missing", run.display()));
        let vocab = read("words.txt")?.lines().enumerate().map(|(i, w)| (w.to_string(), i as i64 + 2)).collect();
        let chars = read("chars.txt")?
            .lines()
            .enumerate()
            .filter_map(|(i, c)| Some((c.chars().next()?, i as i64 + 2)))
            .collect();
        Ok(TaggerPredictor { loaded, vocab, chars })
    }

    /// Each word of `sentence` (split on spaces, punctuation apart) with its tag.
    pub fn tag(&self, sentence: &str) -> Result<Vec<WordTag>> {
        let Model::Tagger(m) = &self.loaded.model else { unreachable!("checked at load") };
        let words = tokenize(sentence);
        if words.is_empty() {
            bail!("nothing to tag: give a sentence, e.g. \"The old man sat by the fire .\"");
        }
        let tokens: Vec<i64> =
            words.iter().map(|w| self.vocab.get(&w.to_lowercase()).copied().unwrap_or(brown::UNK)).collect();
        let spell: Vec<i64> = (1..=words.len() as i64).collect();
        let mut table = vec![0i64; brown::MAX_CHARS];
        table.extend(words.iter().flat_map(|w| spelling(w, &self.chars)));
        let table = Tensor::from_slice(&table).view([words.len() as i64 + 1, brown::MAX_CHARS as i64]);
        let device = self.loaded.vs.device();
        let split = Split::new("input", &[Example { tokens: tokens.clone(), label: 0 }], Pad::Post)
            .with_spellings(&[spell], &table)
            .to_device(device);
        let split = Split { labels: split.tokens.zeros_like(), ..split };
        let pred = &predict_split(m, &split, 1)?[0];
        let names = &self.loaded.spec.shape.classes;
        Ok(words
            .into_iter()
            .zip(pred)
            .zip(&tokens)
            .map(|((word, &t), &id)| WordTag { word, tag: names[(t - 1) as usize].clone(), unknown: id == brown::UNK })
            .collect())
    }
}

/// `tagging predict`: each word of `sentence` (split on spaces, punctuation apart) with its tag, from a run's
/// checkpoint.
pub fn predict(run: &Path, sentence: &str, device: Device) -> Result<String> {
    let tagged = TaggerPredictor::load(run, device)?.tag(sentence)?;
    Ok(tagged
        .iter()
        .map(|t| {
            let note = if t.unknown { "  (not seen in training)" } else { "" };
            format!("{:<16} {}{note}\n", t.word, t.tag)
        })
        .collect())
}

/// Words of a sentence: split on whitespace, with leading and trailing punctuation as words of their own.
pub fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in s.split_whitespace() {
        let start = w.find(|c: char| c.is_alphanumeric()).unwrap_or(w.len());
        let end = w
            .rfind(|c: char| c.is_alphanumeric())
            .map_or(start, |e| e + w[e..].chars().next().map_or(1, char::len_utf8));
        out.extend(w[..start].chars().map(String::from));
        if start < end {
            out.push(w[start..end].to_string());
        }
        out.extend(w[end.max(start)..].chars().map(String::from));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sentences_split_into_words_and_punctuation() {
        assert_eq!(
            super::tokenize("\"Hello, world!\" he said."),
            ["\"", "Hello", ",", "world", "!", "\"", "he", "said", "."]
        );
        assert_eq!(super::tokenize("It's 1,000 dollars"), ["It's", "1,000", "dollars"]);
    }
}
