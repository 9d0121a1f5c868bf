//! The trained runs the playground serves: every run folder under the results root that holds a checkpoint,
//! loaded once, one per group of seeds (the lowest seed), sorted by panel and cell.
use crate::experiments::generate::commands::Generator;
use crate::experiments::imdb::SentimentPredictor;
use crate::experiments::names::NamesPredictor;
use crate::experiments::seq2seq::predict::Seq2seqPredictor;
use crate::experiments::tagging::TaggerPredictor;
use crate::results::{checkpoint, read_meta, Meta, Status};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::Device;

/// The playground's panels, in page order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Panel {
    Names,
    Sentiment,
    Tags,
    Seq2seq,
    Generate,
}

impl Panel {
    pub const ALL: [Panel; 5] = [Panel::Names, Panel::Sentiment, Panel::Tags, Panel::Seq2seq, Panel::Generate];

    /// The panel of an experiment's runs (None: not served).
    fn of(experiment: &str) -> Option<Panel> {
        Some(match experiment {
            "names" | "names-distance" => Panel::Names,
            "imdb" => Panel::Sentiment,
            "tagging" => Panel::Tags,
            "seq2seq" | "translate" => Panel::Seq2seq,
            "generate" | "shakespeare" => Panel::Generate,
            _ => return None,
        })
    }

    /// What trains runs for this panel.
    pub fn make(self) -> &'static str {
        match self {
            Panel::Names => "make names",
            Panel::Sentiment => "make imdb",
            Panel::Tags => "make tagging",
            Panel::Seq2seq => "make seq2seq (dates, reversal) or make translate",
            Panel::Generate => "make generate (names, reviews) or make shakespeare",
        }
    }
}

/// A loaded model of one of the panels.
pub enum Predictor {
    Names(NamesPredictor),
    Sentiment(SentimentPredictor),
    Tags(TaggerPredictor),
    Seq2seq(Seq2seqPredictor),
    Generate(Generator),
}

/// What the page shows about a model.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    pub id: usize,
    pub panel: Panel,
    pub experiment: String,
    pub run: String,
    /// The run without its seed (`gru-dot`), as the page labels it.
    pub label: String,
    /// rnn, gru or lstm (colours the page like the charts).
    pub cell: String,
    /// The run's test score: its name and value.
    pub score_name: String,
    pub score: Option<f64>,
    /// Seq2seq: dates, reverse or translate; generate: names, shakespeare or reviews.
    pub task: String,
    /// Names and generate-names runs: the languages.
    pub languages: Vec<String>,
    /// Text language models: units the experiment found interpretable (`layer:state:unit`, what they follow).
    pub units: Vec<(String, String)>,
}

/// One served model: what the page shows, and the model behind a lock (libtorch modules are not shareable).
pub struct Entry {
    pub info: Info,
    pub model: Mutex<Predictor>,
}

/// Every served model, and the run folders that could not be loaded (with why).
pub struct Catalog {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    pub skipped: Vec<String>,
}

/// The first test score a run recorded, by the panel's preference.
fn score(m: &Meta, panel: Panel) -> (String, Option<f64>) {
    let keys: &[&str] = match panel {
        Panel::Seq2seq => &["bleu", "test_acc"],
        Panel::Generate => &["test_bpc", "test_loss"],
        _ => &["test_acc"],
    };
    for k in keys {
        if let Some(&v) = m.result.get(*k) {
            return (k.to_string(), Some(v));
        }
    }
    (keys[0].to_string(), None)
}

/// The units a Shakespeare run found most interpretable (its cells.csv), as (`layer:state:unit`, feature).
fn units(run: &Path) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Row {
        feature: String,
        layer: usize,
        state: String,
        unit: usize,
    }
    crate::results::read_csv::<Row>(&run.join("cells.csv"))
        .map(|rows| rows.into_iter().map(|r| (format!("{}:{}:{}", r.layer, r.state, r.unit), r.feature)).collect())
        .unwrap_or_default()
}

fn load(panel: Panel, run: &Path, device: Device) -> Result<(Predictor, String, Vec<String>)> {
    Ok(match panel {
        Panel::Names => {
            let p = NamesPredictor::load(run, device)?;
            let langs = p.classes().to_vec();
            (Predictor::Names(p), "names".into(), langs)
        }
        Panel::Sentiment => (Predictor::Sentiment(SentimentPredictor::load(run, device)?), "imdb".into(), vec![]),
        Panel::Tags => (Predictor::Tags(TaggerPredictor::load(run, device)?), "brown".into(), vec![]),
        Panel::Seq2seq => {
            let p = Seq2seqPredictor::load(run, device)?;
            let task = format!("{:?}", p.data.task).to_lowercase();
            (Predictor::Seq2seq(p), task, vec![])
        }
        Panel::Generate => {
            let p = Generator::load(run, device)?;
            let (task, langs) = (format!("{:?}", p.data.task).to_lowercase(), p.languages().to_vec());
            (Predictor::Generate(p), task, langs)
        }
    })
}

impl Catalog {
    /// Finds and loads the runs under `root` (`<root>/<experiment>/<run>/model.safetensors`, finished).
    pub fn load(root: &Path, device: Device) -> Result<Catalog> {
        if !root.is_dir() {
            anyhow::bail!(
                "no results folder at {}: train something first (make names) or pass --results DIR",
                root.display()
            );
        }
        // (panel, experiment, run without seed) → (seed, run folder, meta): the lowest seed of each group.
        let mut groups: BTreeMap<(Panel, String, String), (u64, PathBuf, Meta)> = BTreeMap::new();
        let mut experiments: Vec<PathBuf> = std::fs::read_dir(root)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        experiments.sort();
        for exp in experiments.iter().filter(|p| p.is_dir()) {
            let mut runs: Vec<PathBuf> = std::fs::read_dir(exp)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            runs.sort();
            for run in runs.into_iter().filter(|r| r.join(checkpoint::WEIGHTS).is_file()) {
                let Ok(meta) = read_meta(&run) else { continue };
                let Some(panel) = Panel::of(&meta.experiment) else { continue };
                if meta.status != Status::Finished {
                    continue;
                }
                let suffix = format!("-s{}", meta.seed);
                let label = meta.run.strip_suffix(&suffix).unwrap_or(&meta.run).to_string();
                let key = (panel, meta.experiment.clone(), label);
                if groups.get(&key).is_none_or(|(seed, _, _)| meta.seed < *seed) {
                    groups.insert(key, (meta.seed, run, meta));
                }
            }
        }
        // Page order: by panel and experiment, then RNN, GRU, LSTM (as on the charts), then the rest of the name.
        let rank = |m: &Meta| m.cell().map_or(3, |c| c as usize);
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups
            .sort_by(|a, b| (a.0 .0, &a.0 .1, rank(&a.1 .2), &a.0 .2).cmp(&(b.0 .0, &b.0 .1, rank(&b.1 .2), &b.0 .2)));
        let (mut entries, mut skipped) = (Vec::new(), Vec::new());
        for ((panel, experiment, label), (_, run, meta)) in groups {
            match load(panel, &run, device) {
                Ok((model, task, languages)) => {
                    let (score_name, score) = score(&meta, panel);
                    let info = Info {
                        id: entries.len(),
                        panel,
                        experiment,
                        run: meta.run.clone(),
                        label,
                        cell: meta.cell().map(|c| format!("{c:?}").to_lowercase()).unwrap_or_default(),
                        score_name,
                        score,
                        units: if panel == Panel::Generate { units(&run) } else { vec![] },
                        task,
                        languages,
                    };
                    entries.push(Entry { info, model: Mutex::new(model) });
                }
                Err(e) => skipped.push(format!("{}: {e:#}", run.display())),
            }
        }
        Ok(Catalog { root: root.to_path_buf(), entries, skipped })
    }

    /// The models of one panel.
    pub fn of(&self, panel: Panel) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.info.panel == panel)
    }
}
