//! Replays every committed fuzz input (the seed corpora under `fuzz/corpus/<target>/` and the crash
//! inputs kept under `fuzz/regressions/<target>/`) through the targets' harness functions, as an
//! ordinary test: no nightly toolchain, no sanitizer build. The coverage-guided campaign is
//! `fuzz/run.sh`; a crash it finds is fixed, and its input committed under `fuzz/regressions/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => panic!("reading {}: {e}", dir.display()),
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = names_in(dir)
        .into_iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_target_has_a_harness_and_a_seed_corpus() {
    let fuzz = fuzz_dir();
    let harnesses: BTreeSet<String> = scm_fuzz::TARGETS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    let targets: BTreeSet<String> = names_in(&fuzz.join("fuzz_targets"))
        .into_iter()
        .filter_map(|f| f.strip_suffix(".rs").map(str::to_owned))
        .collect();
    assert_eq!(
        targets, harnesses,
        "fuzz/fuzz_targets/*.rs and scm_fuzz::TARGETS must name the same targets"
    );
    for name in &harnesses {
        let seeds = files_in(&fuzz.join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seed");
        let source =
            std::fs::read_to_string(fuzz.join("fuzz_targets").join(format!("{name}.rs"))).unwrap();
        assert!(
            source.contains(&format!("scm_fuzz::{name}(")),
            "fuzz/fuzz_targets/{name}.rs does not call scm_fuzz::{name}: the campaign and the \
             replay would run different code"
        );
    }
    for dir in ["corpus", "regressions"] {
        for name in names_in(&fuzz.join(dir)) {
            assert!(
                harnesses.contains(&name),
                "fuzz/{dir}/{name}/ belongs to no fuzz target"
            );
        }
    }
}

#[test]
fn every_committed_seed_and_crash_input_replays_without_a_finding() {
    let fuzz = fuzz_dir();
    let mut replayed = 0usize;
    let mut findings = Vec::new();
    for (name, harness) in scm_fuzz::TARGETS {
        for dir in ["corpus", "regressions"] {
            for file in files_in(&fuzz.join(dir).join(name)) {
                let data = std::fs::read(&file).unwrap();
                replayed += 1;
                if let Err(cause) = catch_unwind(AssertUnwindSafe(|| harness(&data))) {
                    let why = cause
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| cause.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    findings.push(format!("{name}: {}: {why}", file.display()));
                }
            }
        }
    }
    println!(
        "replayed {replayed} inputs through {} fuzz targets",
        scm_fuzz::TARGETS.len()
    );
    assert!(replayed >= scm_fuzz::TARGETS.len(), "nothing replayed");
    assert!(
        findings.is_empty(),
        "fuzz inputs that fail:\n{}",
        findings.join("\n")
    );
}
