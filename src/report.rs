//! `results/index.html`: one static page with every experiment of the registry (`crate::experiments::REGISTRY`):
//! its lead charts first, then the others, a table from its summary CSV (mean ± std over seeds per point), the
//! config and run metadata, and the result it should reach; it opens on the lesson (`LESSON`).
//!
//! The page checks itself when opened: a small script counts images that failed to load and tables without
//! rows and writes the counts into `#selfcheck` (the browser test reads them).
use crate::experiments::{LESSON, REGISTRY};
use crate::results::{list_runs, Meta};
use crate::sweep::Descriptor;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Columns that identify a point (grouped on); everything numeric else is averaged.
const KEYS: [&str; 17] = [
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
    "attention",
    "balance",
    "clip",
    "forget_bias",
];
/// The order of a table's rows: the most significant key first.
const SORT_BY: [&str; 17] = [
    "framework",
    "protocol",
    "task",
    "attention",
    "balance",
    "clip",
    "forget_bias",
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
    // A summary (`experiment, run, status, <keys>, seed, <results>`) says its keys; other tables use KEYS.
    let (status_at, seed_at) = (headers.iter().position(|h| h == "status"), headers.iter().position(|h| h == "seed"));
    let keys: Vec<usize> = match (status_at, seed_at) {
        (Some(a), Some(b)) if a < b => (a + 1..b).collect(),
        _ => headers.iter().enumerate().filter(|(_, h)| KEYS.contains(&h.as_str())).map(|(i, _)| i).collect(),
    };
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

/// A chart's links: its SVG, the experiment's summary CSV (what it was drawn from) and the config of a run.
fn links(root: &Path, d: &Descriptor, stem: &str) -> Result<String> {
    let (dir, summary) = (d.name, d.summary);
    let run = list_runs(root, dir)?.into_iter().find(|m| m.status.is_complete());
    let cfg = run.map_or(String::new(), |m| format!(" · <a href=\"{dir}/{}/config.yaml\">config</a>", esc(&m.run)));
    Ok(format!("(<a href=\"{dir}/{stem}.svg\">SVG</a> · <a href=\"{dir}/{summary}\">data</a>{cfg})"))
}

/// Writes `<root>/index.html`; returns the number of experiments found.
pub fn write(root: &Path) -> Result<usize> {
    if !root.is_dir() {
        anyhow::bail!(
            "results folder {} does not exist: run an experiment first (make demo), or pass --out DIR",
            root.display()
        );
    }
    let mut body = String::new();
    let mut nav = String::new();
    let mut found = 0;
    // The lesson first: the first lead chart of each experiment of LESSON that has it.
    let mut lead = String::new();
    for d in LESSON.iter().filter_map(|n| REGISTRY.iter().find(|d| d.name == *n)) {
        let Some(c) = d.lead.first().filter(|c| d.folder(root).join(format!("{}.png", c.stem)).exists()) else {
            continue;
        };
        write!(
            lead,
            "<figure class=lead><a href=\"#{0}\"><img src=\"{0}/{1}.png\" alt=\"{2}\"></a><figcaption><b>{2}.</b> {3} {4}</figcaption></figure>",
            d.name,
            c.stem,
            esc(d.title),
            esc(c.look),
            links(root, d, c.stem)?
        )?;
    }
    if !lead.is_empty() {
        body += "<section id=lesson><h2>The lesson, in figures</h2>";
        body += &lead;
        body += "</section>";
    }
    for d in REGISTRY {
        let dir = d.folder(root);
        write!(nav, "<a href=\"#{}\">{}</a>", d.name, esc(d.title))?;
        write!(
            body,
            "<section id=\"{}\"><h2>{}</h2><p class=expected><b>Expected</b> (<code>{}</code>): {}</p>",
            d.name,
            esc(d.title),
            esc(d.measured_by),
            esc(d.expected)
        )?;
        let summary = dir.join(d.summary);
        if !summary.exists() {
            write!(body, "<p class=missing>Not run yet: <code>make {}</code></p></section>", esc(d.name))?;
            continue;
        }
        found += 1;
        let metas = list_runs(root, d.name)?;
        if !metas.is_empty() {
            body += &meta_block(&metas);
        }
        // The lead charts first (with what to look at), then the others by name.
        let mut charts: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .filter_map(|n| n.strip_suffix(".png").map(String::from))
            .collect();
        charts.sort_by_key(|c| (d.lead.iter().position(|l| l.stem == c).unwrap_or(usize::MAX), c.clone()));
        body += "<div class=charts>";
        for stem in &charts {
            let look = d.lead.iter().find(|l| l.stem == stem).map_or(String::new(), |l| format!(": {}", esc(l.look)));
            write!(
                body,
                "<figure><a href=\"{0}/{1}.png\"><img src=\"{0}/{1}.png\" alt=\"{1}\" loading=lazy></a><figcaption><b>{1}</b>{2} {3}</figcaption></figure>",
                d.name,
                esc(stem),
                look,
                links(root, d, stem)?
            )?;
        }
        body += "</div>";
        write!(body, "<h3>{} (mean ± std over seeds)</h3><div class=wide>", esc(d.summary))?;
        body += &table(&summary)?;
        body += "</div>";
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
body {{ font-family: sans-serif; margin: 0 auto 4rem; padding: 0 1rem; max-width: 1300px; color: #222; }}
nav {{ display: flex; flex-wrap: wrap; gap: .3rem 1rem; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
figure {{ margin: 0; width: 100%; max-width: 600px; }} figure img {{ width: 100%; height: auto; border: 1px solid #ddd; }}
figure.lead {{ max-width: 1000px; margin: 1rem 0 2rem; }} figcaption {{ font-size: .9rem; }}
.wide, pre {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; font-size: 0.85rem; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }} th {{ background: #f3f3f3; }}
.missing {{ color: #a00; }} .meta {{ color: #555; font-size: 0.85rem; }} .expected {{ background: #f6f8ff; padding: .4rem; }}
pre {{ background: #f7f7f7; padding: .5rem; font-size: 0.8rem; }}
</style></head><body>
<h1>rnnlab results</h1>
<p>RNN red, GRU blue, LSTM green in every chart. Each chart links its SVG, the CSV it was drawn from and a run's config. Generated {generated} from {root}.</p>
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
  el.dataset.overflow = document.documentElement.scrollWidth > window.innerWidth + 1 ? 1 : 0;
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

/// Copies the lesson's figures that exist under `root` into `dest` as `<name>-<chart>.png` (for the README;
/// `make figures`) and writes `dest/README.md` saying which command made each. Returns the files copied.
pub fn figures(root: &Path, dest: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut copied = Vec::new();
    let mut readme = String::from(
        "# Figures\n\nCopied from real runs by `make figures` (`report --figures`); each was drawn by the command \
         beside it, on the machine that ran it.\n\n",
    );
    for d in LESSON.iter().filter_map(|n| REGISTRY.iter().find(|d| d.name == *n)) {
        let Some(c) = d.lead.first() else { continue };
        let src = d.folder(root).join(format!("{}.png", c.stem));
        if !src.exists() {
            continue;
        }
        let name = format!("{}-{}.png", d.name, c.stem);
        let bytes = std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
        crate::files::write_atomic(&dest.join(&name), &bytes)?;
        writeln!(readme, "- `{name}`: `make {}` → `{}`", d.name, src.display())?;
        copied.push(name);
    }
    if copied.is_empty() {
        anyhow::bail!(
            "no headline figure under {}: run the experiments first (make all, or e.g. make demo)",
            root.display()
        );
    }
    crate::files::write_atomic(&dest.join("README.md"), readme.as_bytes())?;
    Ok(copied)
}
