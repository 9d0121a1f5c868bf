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
    let dom = Command::new(&browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let check =
        dom.split("id=\"selfcheck\"").nth(1).unwrap_or_else(|| panic!("no #selfcheck in the rendered page:\n{dom}"));
    let attr = |name: &str| -> i64 {
        let key = format!("data-{name}=\"");
        let rest =
            check.split(&key).nth(1).unwrap_or_else(|| panic!("the page script did not run (no {key}):\n{check}"));
        rest.split('"').next().unwrap().parse().unwrap()
    };
    let (images, broken, tables, empty) = (attr("images"), attr("broken"), attr("tables"), attr("empty"));
    assert!(images >= 3, "expected the demo's 3 charts, the page has {images} images");
    assert_eq!(broken, 0, "{}", &check[..check.len().min(400)]);
    assert!(tables >= 1);
    assert_eq!(empty, 0, "tables without rows");
    // A screenshot for people to look at (kept under target/).
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-test.png");
    let s = Command::new(&browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1400,2400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(s.status.success() && shot.exists(), "screenshot failed: {}", String::from_utf8_lossy(&s.stderr));
}
