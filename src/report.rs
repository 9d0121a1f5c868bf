//! `results/index.html`: one static page with every experiment's charts, a table from its summary CSV
//! (mean ± std over seeds per point), the config and run metadata, and the result it should reach.
//!
//! The page checks itself when opened: a small script counts images that failed to load and tables without
//! rows and writes the counts into `#selfcheck` (the browser test reads them).
use crate::results::{list_runs, Meta};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// An experiment the report knows about.
pub struct Section {
    pub dir: &'static str,
    pub title: &'static str,
    pub make: &'static str,
    pub expected: &'static str,
    pub summary: &'static str,
}

pub const SECTIONS: [Section; 8] = [
    Section {
        dir: "demo",
        title: "Offline demo: memory over distance (synthetic task)",
        make: "make demo",
        expected: "The vanilla RNN falls to chance (25 %) at L = 200 while GRU and LSTM stay at 100 %.",
        summary: "summary.csv",
    },
    Section {
        dir: "names",
        title: "Names → language (18 languages)",
        make: "make names",
        expected: "LSTM 0.850 and GRU 0.845 test accuracy, the vanilla RNN 0.805; the majority class is 0.469.",
        summary: "summary.csv",
    },
    Section {
        dir: "names_distance",
        title: "Names with k filler steps before the readout",
        make: "make names-distance",
        expected: "The vanilla RNN falls to the majority class by k = 20; GRU and LSTM (chrono init) hold ~0.8 up to k = 200.",
        summary: "summary.csv",
    },
    Section {
        dir: "imdb",
        title: "IMDB sentiment, first 400 tokens",
        make: "make imdb",
        expected: "GRU 0.886 and LSTM 0.871 test accuracy from raw text; the vanilla RNN 0.640.",
        summary: "summary.csv",
    },
    Section {
        dir: "sweep_imdb",
        title: "IMDB: accuracy vs sequence length (three modes)",
        make: "make sweep-imdb",
        expected: "In distance mode the vanilla RNN is at chance once 50 filler steps separate the evidence from the readout; with this budget GRU and LSTM give out soon after, the bag of words not at all.",
        summary: "sweep.csv",
    },
    Section {
        dir: "vanishing",
        title: "Vanishing and exploding gradients",
        make: "make vanishing",
        expected: "After training the vanilla RNN's gradient shrinks ×0.83 per step of distance; GRU's ×0.99, LSTM's ×0.94–0.96.",
        summary: "decay_rates.csv",
    },
    Section {
        dir: "generate",
        title: "Generation: names per language, IMDB review text",
        make: "make generate",
        expected: "Names: validation perplexity ~6.3 per character for GRU/LSTM (7.5 RNN), most samples new; review samples go from noise to words.",
        summary: "summary.csv",
    },
    Section {
        dir: "bench",
        title: "Benchmark: speed and memory",
        make: "make bench",
        expected: "Throughput per model and implementation, peak memory, the ratio to PyTorch eager (1.0–1.2× here) at about equal accuracy.",
        summary: "bench.csv",
    },
];

/// Columns that identify a point (grouped on); everything numeric else is averaged.
const KEYS: [&str; 13] = [
    "framework",
    "protocol",
    "model",
    "phase",
    "impl",
    "variant",
    "mode",
    "seq_len",
    "distance",
    "task",
    "bptt",
    "quantity",
    "when",
];
/// The order of a table's rows: the most significant key first.
const SORT_BY: [&str; 13] = [
    "framework",
    "protocol",
    "task",
    "mode",
    "variant",
    "quantity",
    "when",
    "seq_len",
    "distance",
    "bptt",
    "phase",
    "impl",
    "model",
];
const SKIP: [&str; 4] = ["experiment", "run", "seed", "status"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.01 || v == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

/// A table from a CSV: rows grouped by the key columns present, numbers as mean ± std (n).
fn table(path: &Path) -> Result<String> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers: Vec<String> = r.headers()?.iter().map(String::from).collect();
    let keys: Vec<usize> =
        headers.iter().enumerate().filter(|(_, h)| KEYS.contains(&h.as_str())).map(|(i, _)| i).collect();
    let status = headers.iter().position(|h| h == "status");
    let mut groups: BTreeMap<Vec<String>, Vec<Vec<String>>> = BTreeMap::new();
    let mut order: Vec<Vec<String>> = Vec::new();
    for rec in r.records() {
        let rec: Vec<String> = rec?.iter().map(String::from).collect();
        let k: Vec<String> = keys.iter().map(|&i| rec[i].clone()).collect();
        if !groups.contains_key(&k) {
            order.push(k.clone());
        }
        groups.entry(k).or_default().push(rec);
    }
    // Points in order: by SORT_BY (models as RNN, GRU, LSTM, bag of words), numbers as numbers.
    let pos = |name: &str| headers.iter().position(|h| h == name).and_then(|i| keys.iter().position(|&k| k == i));
    let by: Vec<usize> = SORT_BY.iter().filter_map(|n| pos(n)).collect();
    let model = pos("model");
    order.sort_by(|a, b| {
        by.iter()
            .map(|&j| {
                let (x, y) = (&a[j], &b[j]);
                if Some(j) == model {
                    let rank = |m: &str| ["rnn", "gru", "lstm", "bow"].iter().position(|&k| k == m).unwrap_or(9);
                    return rank(x).cmp(&rank(y)).then(x.cmp(y));
                }
                match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) => x.total_cmp(&y),
                    _ => x.cmp(y),
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let values: Vec<usize> = (0..headers.len())
        .filter(|i| !keys.contains(i) && !SKIP.contains(&headers[*i].as_str()))
        .filter(|&i| groups.values().flatten().any(|r| r[i].parse::<f64>().is_ok()))
        .collect();
    let mut h = String::from("<table><thead><tr>");
    for &i in &keys {
        write!(h, "<th>{}</th>", esc(&headers[i]))?;
    }
    h += "<th>runs</th>";
    for &i in &values {
        write!(h, "<th>{}</th>", esc(&headers[i]))?;
    }
    h += "</tr></thead><tbody>";
    for k in &order {
        let rows = &groups[k];
        h += "<tr>";
        for v in k {
            write!(h, "<td>{}</td>", esc(v))?;
        }
        let st: BTreeMap<&str, usize> =
            rows.iter().filter_map(|r| status.map(|s| r[s].as_str())).fold(BTreeMap::new(), |mut m, s| {
                *m.entry(s).or_default() += 1;
                m
            });
        let st: Vec<String> =
            st.iter().map(|(s, n)| if *s == "finished" { n.to_string() } else { format!("{n} {s}") }).collect();
        write!(h, "<td>{}</td>", if st.is_empty() { rows.len().to_string() } else { st.join(", ") })?;
        for &i in &values {
            let nums: Vec<f64> =
                rows.iter().filter_map(|r| r[i].parse::<f64>().ok()).filter(|v| v.is_finite()).collect();
            let cell = match nums.len() {
                0 => String::new(),
                1 => fmt_num(nums[0]),
                // Equal over the runs (sizes, counts, epochs): the value alone.
                _ if nums.iter().all(|v| (v - nums[0]).abs() <= 1e-9 * nums[0].abs().max(1.0)) => fmt_num(nums[0]),
                _ => {
                    let (m, s) = crate::stats::mean_std(&nums);
                    format!("{} ± {}", fmt_num(m), fmt_num(s))
                }
            };
            write!(h, "<td>{cell}</td>")?;
        }
        h += "</tr>";
    }
    h += "</tbody></table>";
    Ok(h)
}

fn meta_block(metas: &[Meta]) -> String {
    let mut commits: Vec<&str> = metas.iter().filter_map(|m| m.commit.as_deref()).collect();
    commits.sort();
    commits.dedup();
    let wall: f64 = metas.iter().map(|m| m.wall_s).sum();
    let threads: Vec<String> =
        metas.iter().map(|m| m.threads.to_string()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let devices: Vec<&str> = metas
        .iter()
        .map(|m| m.device.as_str())
        .filter(|d| !d.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let first = metas.iter().map(|m| m.started.as_str()).min().unwrap_or("");
    let last = metas.iter().filter_map(|m| m.finished.as_deref()).max().unwrap_or("");
    let m0 = &metas[0];
    format!(
        "<p class=meta>{} runs · commit {} · rnnlab {} · tch {} · libtorch {} · device {} · threads {} · total run time {:.1} min · {} → {}</p>",
        metas.len(),
        esc(&commits.join(", ")),
        esc(&m0.rnnlab_version),
        esc(&m0.tch_version),
        esc(&m0.libtorch_version),
        esc(&devices.join(", ")),
        threads.join(", "),
        wall / 60.0,
        esc(first),
        esc(last)
    )
}

/// Writes `<root>/index.html`; returns the number of experiments found.
pub fn write(root: &Path) -> Result<usize> {
    let mut body = String::new();
    let mut nav = String::new();
    let mut found = 0;
    for s in &SECTIONS {
        let dir = root.join(s.dir);
        write!(nav, "<a href=\"#{}\">{}</a>", s.dir, esc(s.title))?;
        write!(
            body,
            "<section id=\"{}\"><h2>{}</h2><p class=expected><b>Expected:</b> {}</p>",
            s.dir,
            esc(s.title),
            esc(s.expected)
        )?;
        let summary = dir.join(s.summary);
        if !summary.exists() {
            write!(body, "<p class=missing>Not run yet: <code>{}</code></p></section>", esc(s.make))?;
            continue;
        }
        found += 1;
        let metas = list_runs(root, s.dir)?;
        if !metas.is_empty() {
            body += &meta_block(&metas);
        }
        let mut charts: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".png"))
            .collect();
        charts.sort();
        body += "<div class=charts>";
        for c in &charts {
            let svg = c.trim_end_matches(".png").to_string() + ".svg";
            write!(body, "<figure><a href=\"{0}/{2}\"><img src=\"{0}/{1}\" alt=\"{1}\" loading=lazy></a><figcaption>{1} (<a href=\"{0}/{2}\">SVG</a>)</figcaption></figure>", s.dir, esc(c), esc(&svg))?;
        }
        body += "</div>";
        write!(body, "<h3>{} (mean ± std over seeds)</h3>", esc(s.summary))?;
        body += &table(&summary)?;
        if let Some(m) = metas.iter().find(|m| m.status.is_complete()) {
            let cfg = std::fs::read_to_string(dir.join(&m.run).join("config.yaml")).unwrap_or_default();
            write!(body, "<details><summary>config of run {} (one point; the others differ only in the swept keys)</summary><pre>{}</pre></details>", esc(&m.run), esc(&cfg))?;
        }
        body += "</section>";
    }
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rnnlab results</title>
<style>
body {{ font-family: sans-serif; margin: 0 2rem 4rem; color: #222; }}
nav a {{ margin-right: 1rem; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
figure {{ margin: 0; width: 600px; }} figure img {{ width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; font-size: 0.85rem; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }} th {{ background: #f3f3f3; }}
.missing {{ color: #a00; }} .meta {{ color: #555; font-size: 0.85rem; }} .expected {{ background: #f6f8ff; padding: .4rem; }}
pre {{ background: #f7f7f7; padding: .5rem; font-size: 0.8rem; }}
</style></head><body>
<h1>rnnlab results</h1>
<p>RNN red, GRU blue, LSTM green in every chart. Click a chart for its SVG. Generated {generated} from {root}.</p>
<nav>{nav}</nav>
{body}
<p id="selfcheck">checking…</p>
<script>
window.addEventListener('load', () => {{
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const empty = [...document.querySelectorAll('table')].filter(t => t.querySelectorAll('tbody tr').length === 0).length;
  const el = document.getElementById('selfcheck');
  el.dataset.images = imgs.length; el.dataset.broken = broken.length; el.dataset.tables = document.querySelectorAll('table').length; el.dataset.empty = empty;
  el.textContent = `page check: ${{imgs.length}} images, ${{broken.length}} failed to load ${{broken.join(' ')}}; ${{el.dataset.tables}} tables, ${{empty}} without rows`;
}});
</script>
</body></html>
"#,
        generated = crate::results::now(),
        root = esc(&root.display().to_string()),
    );
    crate::results::write_atomic(&root.join("index.html"), html.as_bytes())?;
    Ok(found)
}
