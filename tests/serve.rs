//! The playground (`serve`): trains its own tiny runs (names × 3 cells, IMDB × 3 cells, dates with attention),
//! serves them, and checks that the API answers as the CLI does, that bad and generated input gets a 4xx with a
//! message while the server keeps serving (also under 200 concurrent requests), and — in headless Chromium
//! driven through the DevTools protocol — that typing a surname and a review into the page shows the CLI's answer.
mod common;
use rnnlab::rng::Rng;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

const SURNAMES: [&str; 3] = ["Nakamura", "Dovesky", "O'Neal"];

/// The tiny runs and the server on them, made once for every test of this file.
fn served() -> &'static (PathBuf, SocketAddr) {
    static SERVED: OnceLock<(PathBuf, SocketAddr)> = OnceLock::new();
    SERVED.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let data = common::test_data();
        let train = |bin: &str, config: &str, sets: &[String]| {
            let mut c = Command::new(bin);
            c.args([
                "--config",
                &format!("{}/configs/{config}", env!("CARGO_MANIFEST_DIR")),
                "--threads",
                "1",
                "--out",
            ])
            .arg(&root);
            for s in sets {
                c.args(["--set", s]);
            }
            let out = c.output().unwrap();
            assert!(out.status.success(), "{bin} {config}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let cells = "sweep.model.cell=[rnn,gru,lstm]".to_string();
        train(
            env!("CARGO_BIN_EXE_names"),
            "names.yaml",
            &[
                format!("data.dir={}", data.join("names").display()),
                cells.clone(),
                "sweep.train.seed=[0]".into(),
                "train.epochs=1".into(),
            ],
        );
        train(
            env!("CARGO_BIN_EXE_imdb"),
            "quick/imdb.yaml",
            &[
                format!("data.path={}", data.join("aclImdb_labeled.tar.gz").display()),
                "data.max_train=1000".into(),
                "data.max_test=300".into(),
                "data.length=100".into(),
                "train.epochs=1".into(),
                cells,
                "sweep.train.seed=[0]".into(),
            ],
        );
        train(
            env!("CARGO_BIN_EXE_seq2seq"),
            "quick/seq2seq.yaml",
            &[
                "data.dates.n_train=1000".into(),
                "train.epochs=1".into(),
                "sweep.model.cell=[gru]".into(),
                "sweep.attention={additive: {model.attention: additive}}".into(),
            ],
        );
        let catalog = rnnlab::serve::Catalog::load(&root, tch::Device::Cpu).unwrap();
        assert!(catalog.skipped.is_empty(), "{:?}", catalog.skipped);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                rnnlab::serve::serve(listener, Arc::new(catalog)).await.unwrap();
            })
        });
        (root, rx.recv().unwrap())
    })
}

/// One HTTP/1.1 request: the status and the body.
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn post(path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let (status, text) = request(served().1, "POST", path, body.to_string().as_bytes());
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}")))
}

/// `names predict --top 5` of `run`: per name, (language, probability as printed).
fn cli_names(run: &Path, prior: &str) -> Vec<Vec<(String, String)>> {
    let out = Command::new(env!("CARGO_BIN_EXE_names"))
        .args(["predict", "--top", "5", "--prior", prior, "--run"])
        .arg(run)
        .args(SURNAMES)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .collect::<Vec<_>>()
        .chunks(6)
        .map(|c| {
            c[1..]
                .iter()
                .map(|l| {
                    let mut w = l.split_whitespace();
                    (w.next().unwrap().to_string(), w.next().unwrap().to_string())
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_names_panel_answers_as_names_predict_with_the_belief_after_each_letter() {
    let (root, _) = served();
    for prior in ["uniform", "data"] {
        let cli: Vec<_> =
            ["rnn", "gru", "lstm"].iter().map(|c| cli_names(&root.join(format!("names/{c}-s0")), prior)).collect();
        for (i, name) in SURNAMES.iter().enumerate() {
            let (status, j) = post("/api/names", &serde_json::json!({ "text": name, "prior": prior }));
            assert_eq!(status, 200, "{j}");
            let models = j["models"].as_array().unwrap();
            let cells: Vec<&str> = models.iter().map(|m| m["model"]["cell"].as_str().unwrap()).collect();
            assert_eq!(cells, ["rnn", "gru", "lstm"], "one card per cell, in the charts' order");
            for (m, cli) in models.iter().zip(&cli) {
                let top: Vec<(String, String)> = m["answer"]["top"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| (t["language"].as_str().unwrap().to_string(), format!("{:.3}", t["p"].as_f64().unwrap())))
                    .collect();
                assert_eq!(top, cli[i], "{name} ({prior}), {}", m["model"]["run"]);
                // The belief after the last letter is the answer itself; one row per letter, each a distribution.
                let belief = m["answer"]["belief"].as_array().unwrap();
                assert_eq!(belief.len(), name.chars().count());
                let last: Vec<f64> =
                    belief.last().unwrap().as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                let langs = m["answer"]["languages"].as_array().unwrap();
                let k = langs.iter().position(|l| l.as_str() == Some(&top[0].0)).unwrap();
                assert_eq!(format!("{:.3}", last[k]), top[0].1);
                for row in belief {
                    let s: f64 = row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
                    assert!((s - 1.0).abs() < 1e-6, "{s}");
                }
            }
        }
    }
}

#[test]
fn the_sentiment_panel_gives_p_positive_its_curve_and_a_saliency_per_word() {
    let review = "A moving and beautifully acted film , though the ending drags . I would see it again .";
    let (status, j) = post("/api/sentiment", &serde_json::json!({ "text": review }));
    assert_eq!(status, 200, "{j}");
    let models = j["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    for m in models {
        let a = &m["answer"];
        let p = a["p_positive"].as_f64().unwrap();
        let curve: Vec<f64> = a["curve"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let sal: Vec<f64> = a["saliency"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let n = a["words"].as_array().unwrap().len();
        assert_eq!((curve.len(), sal.len()), (n, n));
        assert!((0.0..=1.0).contains(&p));
        // The curve's last point is the review's answer (read after its last word), from a different code path.
        assert!((curve[n - 1] - p).abs() < 1e-4, "{} vs {p}", curve[n - 1]);
        assert!(sal.iter().all(|s| s.is_finite() && *s > 0.0), "{sal:?}");
    }
    // Longer than the model reads: the rest is counted, not read.
    let long = "good ".repeat(150);
    let (status, j) = post("/api/sentiment", &serde_json::json!({ "text": long }));
    assert_eq!(status, 200);
    assert_eq!(j["models"][0]["answer"]["cut"], 50);
}

#[test]
fn the_seq2seq_panel_answers_as_seq2seq_predict_with_its_attention() {
    let (root, _) = served();
    let run = root.join("seq2seq/dates-gru-additive-s0");
    let cli = rnnlab::experiments::seq2seq::predict::predict(&run, "March 3, 1999", None, tch::Device::Cpu).unwrap();
    let (status, j) = post("/api/seq2seq", &serde_json::json!({ "text": "March 3, 1999", "task": "dates" }));
    assert_eq!(status, 200, "{j}");
    let a = &j["models"][0]["answer"];
    assert_eq!(a["output"].as_str().unwrap(), cli.output);
    let att = a["attention"].as_array().unwrap();
    let cli_att = cli.attention.unwrap();
    assert_eq!(att.len(), cli_att.len());
    assert!((att[0][0].as_f64().unwrap() - cli_att[0][0]).abs() < 1e-12);
    assert_eq!(att[0].as_array().unwrap().len(), "March 3, 1999".len());
}

#[test]
fn bad_input_gets_a_4xx_with_a_message_and_the_server_keeps_serving() {
    let addr = served().1;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("/api/names", br#"{"text": "   "}"#.to_vec(), 422, "type a surname"),
        ("/api/names", format!(r#"{{"text": "{}"}}"#, "a".repeat(20_000)).into_bytes(), 413, "at most 40"),
        ("/api/names", br#"{"text": "R2-D2"}"#.to_vec(), 422, "not in the alphabet"),
        ("/api/names", br#"{"text": "Smith", "prior": "flat"}"#.to_vec(), 422, "expected uniform, data or model"),
        ("/api/names", br#"{"text": 7}"#.to_vec(), 400, "not valid JSON of the expected shape"),
        ("/api/names", br#"{"text": "Smith", "colour": 1}"#.to_vec(), 400, "unknown field"),
        ("/api/names", b"{not json".to_vec(), 400, "not valid JSON"),
        ("/api/sentiment", format!(r#"{{"text": "{}"}}"#, "x".repeat(20_000)).into_bytes(), 413, "at most 10000"),
        ("/api/sentiment", br#"{"text": "!!! ???"}"#.to_vec(), 422, "nothing to read"),
        ("/api/tags", br#"{"text": "The cat ."}"#.to_vec(), 404, "make tagging"),
        ("/api/generate", br#"{"language": "Russian"}"#.to_vec(), 404, "make generate"),
        ("/api/seq2seq", br#"{"text": "hello", "task": "translate"}"#.to_vec(), 404, "no trained \"translate\" model"),
        ("/api/nothing", b"{}".to_vec(), 404, "the API is under /api"),
    ];
    for (path, body, want, msg) in &cases {
        let (status, text) = request(addr, "POST", path, body);
        assert_eq!(status, *want, "{path} {}: {text}", String::from_utf8_lossy(&body[..body.len().min(60)]));
        let j: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        assert!(j["error"].as_str().unwrap().contains(msg), "{path}: {text}");
    }
    // A hundred generated garbage bodies per endpoint: random bytes, truncated and bit-flipped valid requests.
    let mut rng = Rng::new(3);
    let valid = br#"{"text": "Nakamura", "prior": "data", "top": 3}"#;
    let mut n = 0;
    for path in ["/api/names", "/api/sentiment", "/api/tags", "/api/seq2seq", "/api/generate"] {
        for k in 0..100 {
            let body: Vec<u8> = match k % 3 {
                0 => (0..rng.below(200)).map(|_| rng.below(256) as u8).collect(),
                1 => valid[..rng.below(valid.len() as u64) as usize].to_vec(),
                _ => {
                    let mut b = valid.to_vec();
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] ^= 1 << rng.below(8);
                    b
                }
            };
            let (status, text) = request(addr, "POST", path, &body);
            assert!((200..500).contains(&status) && status != 0, "{path} {body:?}: {status} {text}");
            n += 1;
        }
    }
    assert_eq!(n, 500);
    let (status, text) = request(addr, "GET", "/api/runs", b"");
    assert_eq!(status, 200, "{text}");
}

#[test]
fn two_hundred_concurrent_requests_all_get_the_same_answer() {
    let addr = served().1;
    let one = move |name: &str| request(addr, "POST", "/api/names", format!(r#"{{"text": "{name}"}}"#).as_bytes());
    let want = one("Nakamura");
    assert_eq!(want.0, 200);
    let threads: Vec<_> =
        (0..20).map(|_| std::thread::spawn(move || (0..10).map(|_| one("Nakamura")).collect::<Vec<_>>())).collect();
    let got: Vec<(u16, String)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(got.len(), 200);
    assert!(got.iter().all(|g| *g == want));
}

/// The first element matching `selector`, waiting up to 60 s for it to appear.
async fn wait_for(page: &chromiumoxide::Page, selector: &str) -> chromiumoxide::Element {
    for _ in 0..600 {
        if let Ok(e) = page.find_element(selector).await {
            return e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no {selector} on the page after 60 s");
}

/// Clicks the first element matching `selector` once the browser can (it may exist before it is laid out and
/// visible: Chrome then refuses the click), waiting up to 60 s; returns it.
async fn click_when_ready(page: &chromiumoxide::Page, selector: &str) -> chromiumoxide::Element {
    let mut last = String::new();
    for _ in 0..600 {
        if let Ok(e) = page.find_element(selector).await {
            match e.click().await {
                Ok(_) => return e,
                Err(err) => last = err.to_string(),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("could not click {selector} within 60 s (last error: {last})");
}

async fn text_of(e: &chromiumoxide::Element) -> String {
    e.inner_text().await.unwrap().unwrap_or_default()
}

#[test]
fn in_a_browser_a_typed_surname_and_review_show_the_cli_answer() {
    use chromiumoxide::browser::{Browser, BrowserConfig};
    use chromiumoxide::handler::viewport::Viewport;
    use chromiumoxide::page::ScreenshotParams;
    use futures::StreamExt;
    let (root, addr) = served().clone();
    let bin = std::env::var("RNNLAB_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let path = which(&bin)
        .unwrap_or_else(|| panic!("{bin} not found: `make test` installs Debian's chromium (or set RNNLAB_CHROMIUM)"));
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playground");
    std::fs::create_dir_all(&shots).unwrap();
    let cli: Vec<String> = ["rnn", "gru", "lstm"]
        .iter()
        .map(|c| cli_names(&root.join(format!("names/{c}-s0")), "uniform")[0][0].0.clone())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for ((width, height, mobile), name) in [((1280, 900, false), "desktop"), ((390, 844, true), "phone")] {
        rt.block_on(async {
            let profile = tempfile::tempdir().unwrap();
            let viewport =
                Viewport { width, height, emulating_mobile: mobile, has_touch: mobile, ..Default::default() };
            let config = BrowserConfig::builder()
                .chrome_executable(&path)
                .no_sandbox()
                .user_data_dir(profile.path())
                .viewport(viewport)
                .window_size(width, height)
                .request_timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap();
            let (mut browser, mut handler) = Browser::launch(config).await.unwrap();
            let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
            let page = browser.new_page(format!("http://{addr}/")).await.unwrap();
            click_when_ready(&page, "#names-input").await.type_str(SURNAMES[0]).await.unwrap();
            click_when_ready(&page, "#names-form button").await;
            wait_for(&page, ".names-top").await;
            let mut shown = Vec::new();
            for e in page.find_elements(".names-top .bar:first-child .l").await.unwrap() {
                shown.push(text_of(&e).await);
            }
            assert_eq!(shown, cli, "the page's top language per cell (rnn, gru, lstm) is the CLI's");
            let png = page.screenshot(ScreenshotParams::builder().full_page(true).build()).await.unwrap();
            std::fs::write(shots.join(format!("names-{name}.png")), &png).unwrap();
            click_when_ready(&page, "#tab-sentiment").await;
            click_when_ready(&page, "#sentiment-input")
                .await
                .type_str("A moving and beautifully acted film. I would see it again.")
                .await
                .unwrap();
            click_when_ready(&page, "#sentiment-form button").await;
            let p = text_of(&wait_for(&page, ".sentiment-p").await).await;
            assert!(p.ends_with("% positive"), "{p}");
            assert_eq!(page.find_elements(".sentiment-p").await.unwrap().len(), 3);
            let png = page.screenshot(ScreenshotParams::builder().full_page(true).build()).await.unwrap();
            std::fs::write(shots.join(format!("sentiment-{name}.png")), &png).unwrap();
            // A panel without runs says what trains them.
            click_when_ready(&page, "#tab-tags").await;
            let empty = text_of(&wait_for(&page, "#tags .empty").await).await;
            assert!(empty.contains("make tagging"), "{empty}");
            browser.close().await.unwrap();
            let _ = browser.wait().await;
            events.abort();
        });
    }
    eprintln!("screenshots in {}", shots.display());
}

fn which(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        return Some(PathBuf::from(bin));
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(bin)).find(|p| p.is_file())
}
