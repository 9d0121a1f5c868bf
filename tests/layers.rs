//! The module layers of `src/lib.rs` hold: every module uses only modules listed before it (no cycles).
use std::collections::BTreeMap;
use std::path::Path;

/// The layer of each module, from the `Layers` line of lib.rs's docs (`[`a`], [`b`] → [`c`]`: a and b are layer 0).
fn layers() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let docs: String = lib.lines().filter_map(|l| l.strip_prefix("//!")).collect::<Vec<_>>().join(" ");
    let chain = docs.split("Layers, each using only those above it:").nth(1).expect("a Layers line in lib.rs");
    let chain = chain.split('.').next().unwrap();
    let mut out = BTreeMap::new();
    for (i, level) in chain.split('→').enumerate() {
        for name in level.split('`').skip(1).step_by(2) {
            out.insert(name.to_string(), i);
        }
    }
    out
}

/// The modules named by `crate::x` in code (comments, where docs may point anywhere, are skipped).
fn uses(text: &str) -> Vec<String> {
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    code.split("crate::")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn modules_use_only_the_layers_before_them() {
    let layers = layers();
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let mut checked = 0;
    for e in walk(src) {
        let rel = e.strip_prefix(src).unwrap().to_string_lossy().to_string();
        let module = rel.split(['/', '.']).next().unwrap().to_string();
        // The binaries (src/bin) sit on top of the library and may use any of it.
        if module == "lib" || module == "bin" {
            continue;
        }
        let own = *layers
            .get(&module)
            .unwrap_or_else(|| panic!("src/{rel}: module `{module}` is not in lib.rs's Layers line"));
        for used in uses(&std::fs::read_to_string(&e).unwrap()) {
            let theirs =
                *layers.get(&used).unwrap_or_else(|| panic!("src/{rel} uses crate::{used}, not in the Layers line"));
            assert!(
                used == module || theirs < own,
                "src/{rel} (layer {own}: {module}) uses crate::{used} (layer {theirs}): only layers before it are allowed"
            );
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} files checked");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}
