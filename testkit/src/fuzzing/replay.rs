//! The fuzz targets' corpora and crash inputs, replayed on the stable toolchain: each
//! file under `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the
//! target's body, so a crash once found stays fixed.

use std::path::{Path, PathBuf};

use super::TARGETS;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

fn replay(kind: &str, target: &str) -> usize {
    let (_, body) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target");
    let files = inputs(kind, target);
    for file in &files {
        let input = std::fs::read(file).expect("readable");
        if std::panic::catch_unwind(|| body(&input)).is_err() {
            panic!("{target}: {} fails", file.display());
        }
    }
    files.len()
}

fn corpus(target: &str) {
    let n = replay("corpus", target);
    assert!(n > 0, "{target}: its seed corpus is empty");
}

#[test]
fn corpus_query_chain() {
    corpus("query_chain");
}

#[test]
fn corpus_upstream_answer() {
    corpus("upstream_answer");
}

#[test]
fn corpus_tcp_framing() {
    corpus("tcp_framing");
}

#[test]
fn corpus_cluster_file() {
    corpus("cluster_file");
}

#[test]
fn corpus_config() {
    corpus("config");
}

#[test]
fn regressions() {
    for (target, _) in TARGETS {
        replay("regressions", target);
    }
}

/// Every target has its directories, so a crash input has a place to go.
#[test]
fn every_target_has_a_corpus_directory() {
    for (target, _) in TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        assert!(dir.is_dir(), "{} is missing", dir.display());
    }
}
