//! Stamps the binary with the commit it was built from and the compiler, for
//! `--version` and the `coredns_build_info` metric.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    // A build without the repository (the container build's context has no .git) is
    // told the commit through the environment.
    let commit = match std::env::var("CLUSTERDNS_COMMIT") {
        Ok(commit) if !commit.is_empty() => commit,
        _ => git_commit(),
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = output(&rustc, &["--version"]).unwrap_or_else(|| "rustc".into());
    println!("cargo:rustc-env=CLUSTERDNS_COMMIT={commit}");
    println!("cargo:rustc-env=CLUSTERDNS_RUSTC={rustc}");
    // Rebuild when the commit moves, not when the index does: `git status` rewrites
    // .git/index, and watching it rebuilt the release binary after every status.
    for path in git_paths() {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=CLUSTERDNS_COMMIT");
}

/// HEAD and the ref it points at (or packed-refs), wherever this checkout keeps them (a
/// worktree's .git is a file). None outside a repository: a path that does not exist
/// would make cargo run this script on every build.
fn git_paths() -> Vec<String> {
    let mut paths = Vec::new();
    if let Some(head) = output("git", &["rev-parse", "--git-path", "HEAD"]) {
        paths.push(head);
    }
    if let Some(name) = output("git", &["symbolic-ref", "-q", "HEAD"])
        && let Some(file) = output("git", &["rev-parse", "--git-path", &name])
    {
        paths.push(file);
    }
    if let Some(packed) = output("git", &["rev-parse", "--git-path", "packed-refs"]) {
        paths.push(packed);
    }
    paths.retain(|p| std::path::Path::new(p).exists());
    paths
}

/// The commit built from. Not marked dirty: that would mean watching the index, which
/// every `git status` touches.
fn git_commit() -> String {
    output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
}
