//! The registry (`rnnlab::experiments::REGISTRY`) is the one place an experiment is named: everything that lists
//! experiments agrees with it — the README's table, the configs, the binaries, the make targets, and the
//! headline numbers in each config's header and module doc.
use rnnlab::experiments::{readme_table, REGISTRY};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_readme_table_is_the_registry() {
    let readme = read("README.md");
    let table = readme_table();
    assert!(
        readme.contains(&table),
        "README.md's table of experiments differs from the registry; replace it with (target/release/report \
         --readme-table):\n{table}"
    );
}

#[test]
fn every_entry_has_its_config_binary_and_make_target() {
    let makefile = read("Makefile");
    let mut names: Vec<&str> = REGISTRY.iter().map(|d| d.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), REGISTRY.len(), "two registry entries share a name");
    for d in REGISTRY {
        assert!(root().join(format!("src/bin/{}.rs", d.binary)).exists(), "{}: no src/bin/{}.rs", d.name, d.binary);
        assert!(makefile.lines().any(|l| l.starts_with(&format!("{}:", d.name))), "{}: no make target", d.name);
        if d.name == "bench" {
            continue;
        }
        let config = read(&d.config().display().to_string());
        // A config of a binary that runs several entries says which one it is.
        let declared =
            config.lines().find_map(|l| l.strip_prefix("experiment:")).map(|v| v.split('#').next().unwrap().trim());
        let expected = if d.name == d.binary { None } else { Some(d.name) };
        assert_eq!(declared.filter(|v| *v != d.binary), expected, "{}: the `experiment:` key of its config", d.name);
        if let Some(q) = d.quick_config() {
            let quick = read(&q.display().to_string());
            let base = format!("extends: ../{}.yaml", d.name);
            assert!(q == d.config() || quick.contains(&base), "{}: {} should start with `{base}`", d.name, q.display());
        }
    }
}

/// The numbers of a result (`0.251`, `6.32`, `×0.835`), as written.
fn numbers(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| w.contains('.') && w.chars().filter(|c| *c == '.').count() == 1)
        .map(String::from)
        .collect()
}

#[test]
fn configs_and_module_docs_state_the_registrys_numbers() {
    for d in REGISTRY.iter().filter(|d| d.name != "bench") {
        let header: String = read(&d.config().display().to_string())
            .lines()
            .take_while(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let module = d.binary.replace('-', "_");
        let file = if root().join(format!("src/experiments/{module}.rs")).exists() {
            format!("src/experiments/{module}.rs")
        } else {
            format!("src/experiments/{module}/mod.rs")
        };
        let doc: String = read(&file).lines().take_while(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
        for n in numbers(d.expected) {
            assert!(
                header.contains(&n),
                "{}: {} in the registry, not in the header of {}",
                d.name,
                n,
                d.config().display()
            );
            assert!(
                doc.contains(&n),
                "{}: {} in the registry, not in the doc of src/experiments/{module}.rs",
                d.name,
                n
            );
        }
    }
}
