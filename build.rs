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
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-env-changed=CLUSTERDNS_COMMIT");
}

fn git_commit() -> String {
    let commit =
        output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some();
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}
