//! features.md must stay in step with the manifests: every cargo feature of the root
//! package and every dependency of every workspace crate is named there (as `name`), so
//! that each has its documented reason.

#![allow(clippy::expect_used)]

use std::path::Path;

fn manifest(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn section_keys(table: &toml::Table, section: &str) -> Vec<String> {
    table
        .get(section)
        .and_then(|v| v.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn every_feature_and_dependency_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("features.md")).expect("features.md exists");
    let mut missing = Vec::new();

    let root_manifest = manifest(&root.join("Cargo.toml"));
    for feature in section_keys(&root_manifest, "features") {
        if feature != "default" && !doc.contains(&format!("`{feature}`")) {
            missing.push(format!("feature {feature}"));
        }
    }

    let mut manifests = vec![
        root.join("Cargo.toml"),
        root.join("fuzz/Cargo.toml"),
        root.join("tests/peers/Cargo.toml"),
    ];
    for entry in std::fs::read_dir(root.join("backends")).expect("backends/ exists") {
        manifests.push(entry.expect("readable backends/").path().join("Cargo.toml"));
    }
    for path in manifests {
        let m = manifest(&path);
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for dep in section_keys(&m, section) {
                if !dep.starts_with("keystation") && !doc.contains(&format!("`{dep}`")) {
                    missing.push(format!("{section} {dep} (from {})", path.display()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "features.md does not mention: {missing:#?}");
}
