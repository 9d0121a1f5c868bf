//! The report page in a real headless browser: every image loads and every table has rows.
use std::path::Path;
use std::process::Command;

fn chromium() -> String {
    let bin = std::env::var("RNNLAB_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = Command::new(&bin).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "{bin} not found: `make test` installs Debian's chromium (or set RNNLAB_CHROMIUM)");
    bin
}

fn run(bin: &str, args: &[&str], out: &Path) {
    let o = Command::new(bin).args(args).arg("--out").arg(out).output().unwrap();
    assert!(o.status.success(), "{bin} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn report_page_loads_every_image_and_fills_every_table() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let demo_cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/demo.yaml");
    let small = [
        "--set",
        "sweep.data.length=[5,12]",
        "--set",
        "train.epochs=2",
        "--set",
        "data.n_train=200",
        "--set",
        "data.n_val=50",
        "--set",
        "data.n_test=50",
    ];
    run(env!("CARGO_BIN_EXE_demo"), &[&["--config", demo_cfg][..], &small].concat(), &out);
    run(env!("CARGO_BIN_EXE_report"), &[], &out);
    let page = out.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Not run yet: <code>make names</code>"), "missing experiments are listed with their target");
    // The page opens on the lesson: the demo's headline figure with its sentence, then the sections.
    let lesson = html.find("id=lesson").expect("a lesson section");
    assert!(lesson < html.find("<section id=\"demo\">").unwrap());
    assert!(html.contains("demo/accuracy_vs_length.png") && html.contains("the class is the first token"));
    // Every chart links its SVG, its data and a run's config.
    assert!(html.contains("<a href=\"demo/summary.csv\">data</a>") && html.contains("/config.yaml\">config</a>"));
    let profile = dir.path().join("profile");
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
        "--virtual-time-budget=10000",
    ];
    // The page's own check, at a desktop and at a phone's width.
    let check = |width: u32| -> String {
        let dom = Command::new(&browser)
            .args(common)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={width},3000"))
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&dom.stdout).to_string();
        dom.split("id=\"selfcheck\"")
            .nth(1)
            .unwrap_or_else(|| panic!("no #selfcheck in the rendered page:\n{dom}"))
            .to_string()
    };
    let attr = |check: &str, name: &str| -> i64 {
        let key = format!("data-{name}=\"");
        let rest =
            check.split(&key).nth(1).unwrap_or_else(|| panic!("the page script did not run (no {key}):\n{check}"));
        rest.split('"').next().unwrap().parse().unwrap()
    };
    let desk = check(1400);
    let (images, broken, tables, empty) =
        (attr(&desk, "images"), attr(&desk, "broken"), attr(&desk, "tables"), attr(&desk, "empty"));
    assert!(images >= 4, "expected the lesson's figure and the demo's 3 charts, the page has {images} images");
    assert_eq!(broken, 0, "{}", &desk[..desk.len().min(400)]);
    assert!(tables >= 1);
    assert_eq!(empty, 0, "tables without rows");
    let phone = check(390);
    assert_eq!(attr(&phone, "overflow"), 0, "the page is wider than a 390-pixel phone screen");
    // Screenshots for people to look at (kept under target/): desktop and phone.
    for (name, size) in [("report-test.png", "1400,2400"), ("report-test-phone.png", "390,2400")] {
        let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join(name);
        let s = Command::new(&browser)
            .args(common)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={size}"))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        assert!(s.status.success() && shot.exists(), "screenshot failed: {}", String::from_utf8_lossy(&s.stderr));
    }
}
