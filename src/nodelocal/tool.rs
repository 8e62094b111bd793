//! Runs the firewall tools (`nft`, `iptables-*-save`, `iptables-*-restore`): rule text on
//! stdin, their listing on stdout, their complaint on stderr turned into a [`SetupError`].

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::error::SetupError;

/// Longer than iptables' own lock wait (`-w 5`), so its message, not ours, says why.
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

/// What a tool printed, and whether it succeeded.
pub(super) struct Ran {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tool args…` with `stdin`; only failing to start it (or it hanging) is an error.
pub(super) async fn run(
    tool: &'static str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Ran, SetupError> {
    let unavailable = |source| SetupError::ToolUnavailable { tool, source };
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(unavailable)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits early closes its stdin; its stderr then says why.
        let _ = pipe.write_all(text.as_bytes()).await;
    }
    let output = tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            unavailable(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {TOOL_TIMEOUT:?}"),
            ))
        })?
        .map_err(unavailable)?;
    Ok(Ran {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Runs a tool that must succeed; returns its stdout.
pub(super) async fn run_ok(
    tool: &'static str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, SetupError> {
    let ran = run(tool, args, stdin).await?;
    if ran.success {
        Ok(ran.stdout)
    } else {
        Err(failure(tool, &ran))
    }
}

/// The error for a tool that exited non-zero: its first lines of stderr, and whether it
/// was the xtables lock (node-cache counts that apart).
pub(super) fn failure(tool: &'static str, ran: &Ran) -> SetupError {
    let text = if ran.stderr.trim().is_empty() {
        &ran.stdout
    } else {
        &ran.stderr
    };
    let message = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(4)
        .collect::<Vec<_>>()
        .join(" | ");
    if message.contains("xtables lock") {
        SetupError::XtablesLock { tool, message }
    } else {
        SetupError::ToolFailed { tool, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(stderr: &str) -> Ran {
        Ran {
            success: false,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn the_lock_is_told_apart_from_other_failures() {
        let lock = failure(
            "iptables-legacy-restore",
            &ran("Another app is currently holding the xtables lock. Stopped waiting after 5s.\n"),
        );
        assert!(matches!(lock, SetupError::XtablesLock { .. }), "{lock}");
        let other = failure(
            "nft",
            &ran("Error: Could not process rule: Operation not permitted\n\nline 2\n"),
        );
        assert!(matches!(other, SetupError::ToolFailed { .. }));
        assert_eq!(
            other.to_string(),
            "nft failed: Error: Could not process rule: Operation not permitted | line 2"
        );
    }

    #[tokio::test]
    async fn a_missing_tool_is_unavailable_not_failed() {
        let err = run("clusterdns-no-such-tool", &[], None)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, SetupError::ToolUnavailable { .. }), "{err}");
    }

    #[tokio::test]
    async fn stdin_reaches_the_tool_and_stdout_comes_back() {
        let out = run_ok("cat", &[], Some("table inet x {}\n")).await.unwrap();
        assert_eq!(out, "table inet x {}\n");
        let err = run_ok("sh", &["-c", "echo nope >&2; exit 3"], None)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "sh failed: nope");
    }
}
