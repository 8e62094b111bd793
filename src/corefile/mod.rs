//! Corefile import: reads a CoreDNS Corefile and writes the clusterdns config (TOML) that
//! answers the same. Nothing is dropped silently: each directive or option is either
//! translated, known to be built in, or reported with its line and what to do instead.
//!
//! ```text
//!   Corefile text ──lexer──> tokens ──parse──> server blocks ──servers──> clusterdns blocks
//!                                       ──translate──> keys + findings ──render──> TOML
//! ```

pub mod cli;
pub mod lexer;
pub mod parse;
mod plugins;
mod render;
mod servers;
#[cfg(test)]
mod tests;
pub mod translate;
mod values;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use parse::{Corefile, Directive, ServerBlock};
pub use translate::{Finding, Severity, Translation};

/// A Corefile that cannot be read, with the line and column of the trouble.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{line}:{column}: {reason}")]
pub struct CorefileError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl CorefileError {
    pub(crate) fn at(line: usize, column: usize, reason: impl Into<String>) -> Self {
        CorefileError {
            line,
            column,
            reason: reason.into(),
        }
    }
}

/// Why an import did not produce a config.
#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{source}", path.display())]
    Syntax {
        path: PathBuf,
        source: CorefileError,
    },
    /// Directives or options clusterdns cannot honour (each finding names its line).
    #[error("{}: {} directive(s) or option(s) cannot be translated", path.display(), findings.len())]
    Unsupported {
        path: PathBuf,
        findings: Vec<Finding>,
    },
}

/// Reads and parses a Corefile, with `{$VAR}` taken from `env`.
pub fn read(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Corefile, ImportError> {
    let syntax = |source| ImportError::Syntax {
        path: path.to_owned(),
        source,
    };
    let tokens = lexer::tokens(text, env).map_err(syntax)?;
    parse::parse(&tokens).map_err(syntax)
}

/// Translates the Corefile at `path` to clusterdns TOML. Without `lenient`, anything
/// clusterdns cannot honour fails the import; with it, the TOML is still written and
/// says, at the top, what was left out. Warnings (behaviour that differs a little) never
/// fail the import; they are in [`Translation::findings`] either way.
pub fn import(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    lenient: bool,
) -> Result<Translation, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let corefile = read(path, &text, env)?;
    let translation = translate::translate(&corefile, &path.display().to_string());
    let unsupported: Vec<Finding> = translation
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Unsupported)
        .cloned()
        .collect();
    if !lenient && !unsupported.is_empty() {
        return Err(ImportError::Unsupported {
            path: path.to_owned(),
            findings: unsupported,
        });
    }
    Ok(translation)
}
