//! The README holds up on its own: its links stay inside the repository, what it says
//! `.ci/run` does is what `.ci/run` does, and the dig output it shows is what dig prints.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{EPHEMERAL_HTTP, free_port, wait_until};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

#[test]
fn readme_links_point_inside_the_repository() {
    let text = readme();
    let root = repo().canonicalize().unwrap();
    let mut checked = 0;
    for link in text.split("](").skip(1).filter_map(|s| s.split(')').next()) {
        if link.starts_with("http://") || link.starts_with("https://") || link.starts_with('#') {
            continue;
        }
        let path = repo().join(link.split('#').next().unwrap());
        let resolved = path
            .canonicalize()
            .unwrap_or_else(|_| panic!("README links to {link}, which does not exist"));
        assert!(
            resolved.starts_with(&root),
            "README links to {link}, outside the repository"
        );
        checked += 1;
    }
    assert!(
        checked > 0,
        "no relative link found: the test reads nothing"
    );
}

#[test]
fn readme_names_every_step_of_ci() {
    let text = readme();
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    let steps: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["cargo ", "benches/", "tests/"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(steps.len() >= 3, "{steps:?}");
    for step in steps {
        // The command and its first argument, e.g. `cargo clippy`, `benches/load/run.sh --quick`
        // (a script's argument that is a path of the build, `target/…`, is not named).
        let named: Vec<&str> = step
            .split_whitespace()
            .take(2)
            .filter(|w| !w.starts_with("target/"))
            .collect();
        assert!(
            text.contains(&named.join(" ")),
            "README does not say that .ci/run runs `{step}`"
        );
    }
}

/// Every line dig prints for the README's dig line is in the README's output block,
/// but for those that change from run to run (version, query ID, time, server port).
#[test]
fn readme_shows_what_dig_prints() {
    if !crate::harness::dig_available() {
        return;
    }
    let text = readme();
    let shown: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("; <<>> DiG"))
        .take_while(|l| !l.starts_with("```"))
        .map(mask)
        .collect();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--config")
        .arg(repo().join("config/clusterdns.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(EPHEMERAL_HTTP)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    wait_until(Duration::from_secs(10), || {
        let out = Command::new("dig")
            .args(["@127.0.0.1", "-p", &port.to_string()])
            .arg("kubernetes.default.svc.cluster.local")
            .output()
            .unwrap();
        printed = String::from_utf8_lossy(&out.stdout).to_string();
        printed.contains("ANSWER SECTION")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(printed.contains("ANSWER SECTION"), "{printed}");
    let varying = ["; <<>> DiG", ";; Query time:", ";; SERVER:", ";; WHEN:"];
    for line in printed.lines().filter(|l| !l.trim().is_empty()) {
        if varying.iter().any(|v| line.starts_with(v)) {
            continue;
        }
        assert!(
            shown.contains(&mask(line)),
            "dig prints {line:?}, which the README does not show:\n{printed}"
        );
    }
}

/// The query ID, which changes with every query.
fn mask(line: &str) -> String {
    match line.split_once(", id: ") {
        Some((head, _)) => format!("{head}, id: N"),
        None => line.to_owned(),
    }
}
