//! Drift check for the generated gRPC code under `flows/station/src/proto/`.
//!
//! The Rust code for `proto/**/*.proto` is committed, so that building keystation needs
//! neither `protoc` nor a build script (see `flows/station/src/proto/mod.rs`). This test regenerates it
//! in a temporary directory with protox (a protobuf compiler in pure Rust, which bundles
//! `google/protobuf/empty.proto`) and tonic-prost-build, and fails if the committed files
//! differ. With `KEYSTATION_REGENERATE_PROTO=1` it rewrites them instead:
//!
//! ```sh
//! KEYSTATION_REGENERATE_PROTO=1 cargo test --test proto_codegen
//! ```
#![cfg(feature = "grpc")]

use std::{
    error::Error,
    fs, io,
    path::{Path, PathBuf},
};

/// The `.proto` files, relative to the package root; each yields one generated file.
const PROTOS: &[&str] = &["proto/defguard/worker/v1/worker.proto", "proto/worker/worker.proto"];

/// The files prost-build writes (one per protobuf package), relative to `flows/station/src/proto/`.
const GENERATED: &[&str] = &["defguard.worker.v1.rs", "worker.rs"];

/// Setting this variable to `1` makes the test rewrite `flows/station/src/proto/` instead of failing.
const REGENERATE_VAR: &str = "KEYSTATION_REGENERATE_PROTO";

const STALE: &str = "generated code is stale: run \
     `KEYSTATION_REGENERATE_PROTO=1 cargo test --test proto_codegen` and commit flows/station/src/proto";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Generates the Rust code for [`PROTOS`] into `out_dir`.
///
/// This is the one place the code generator is configured; keep it the only one.
fn generate(out_dir: &Path) -> Result<(), Box<dyn Error>> {
    let root = root();
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    // Source info is kept so that the comments in the .proto files become doc comments.
    let descriptors = protox::compile(&files, [root.join("proto")])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Client `connect` constructors need tonic's `channel` feature, which `grpc` enables.
        .build_transport(true)
        .out_dir(out_dir)
        .compile_fds(descriptors)?;
    Ok(())
}

/// Lists the `.rs` files in `dir`, sorted.
fn rust_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rs") && name != "mod.rs" {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Describes the first difference between two texts, for the failure message.
fn first_difference(committed: &str, fresh: &str) -> String {
    let mut committed_lines = committed.lines();
    let mut fresh_lines = fresh.lines();
    for line in 1.. {
        match (committed_lines.next(), fresh_lines.next()) {
            (None, None) => break,
            (a, b) if a == b => {}
            (a, b) => {
                return format!(
                    "line {line}:\n  committed: {}\n  generated: {}",
                    a.unwrap_or("<end of file>"),
                    b.unwrap_or("<end of file>")
                );
            }
        }
    }
    "line endings or trailing newline differ".to_owned()
}

#[test]
fn generated_code_is_current() -> Result<(), Box<dyn Error>> {
    let fresh_dir = tempfile::tempdir()?;
    generate(fresh_dir.path()).map_err(|err| format!("code generation failed: {err}"))?;

    let mut expected: Vec<String> = GENERATED.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(
        rust_files(fresh_dir.path())?,
        expected,
        "the generator wrote other files than tests/proto_codegen.rs expects; \
         update GENERATED and flows/station/src/proto/mod.rs"
    );

    let committed_dir = root().join("flows/station/src/proto");
    let regenerate = std::env::var(REGENERATE_VAR).is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for name in GENERATED {
        let fresh = fs::read_to_string(fresh_dir.path().join(name))?;
        let committed_path = committed_dir.join(name);
        let committed = fs::read_to_string(&committed_path).unwrap_or_default();
        if committed == fresh {
            continue;
        }
        if regenerate {
            fs::write(&committed_path, &fresh)?;
        } else {
            stale.push(format!(
                "flows/station/src/proto/{name}: {}",
                first_difference(&committed, &fresh)
            ));
        }
    }
    assert!(stale.is_empty(), "{STALE}\n{}", stale.join("\n"));

    // Files left over from a renamed package would still compile if someone includes them.
    let leftovers: Vec<String> = rust_files(&committed_dir)?
        .into_iter()
        .filter(|name| !GENERATED.contains(&name.as_str()))
        .collect();
    assert!(
        leftovers.is_empty(),
        "flows/station/src/proto holds files the generator does not write: {leftovers:?}; delete them"
    );
    Ok(())
}
