//! `clusterdns nodelocal setup|cleanup`: the network setup run once from the command
//! line, to debug it, from an init container, or to uninstall.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::settings::NetworkSettings;
use super::setup::{self, Change, NetworkSetup};

#[derive(Debug, clap::Subcommand)]
pub enum NodelocalCommand {
    /// Create the link with its addresses and program the steering rules once, then exit.
    Setup {
        /// Config file whose `[nodelocal]` table holds the settings (defaults without).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Remove the steering rules (from every backend) and the link, for uninstall;
    /// nothing to remove is fine.
    Cleanup {
        /// Config file whose `[nodelocal]` table holds the settings (defaults without).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

impl NodelocalCommand {
    /// The config file named, whose `[nodelocal]` table the caller reads.
    pub fn config(&self) -> Option<&Path> {
        let (NodelocalCommand::Setup { config } | NodelocalCommand::Cleanup { config }) = self;
        config.as_deref()
    }
}

/// Runs the command with the settings of [`NodelocalCommand::config`] (read by the
/// caller: the config is the roof's); exit code 1 when a step failed.
pub fn run(command: &NodelocalCommand, settings: NetworkSettings) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clusterdns: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (report, errors) = match command {
        NodelocalCommand::Setup { .. } => runtime.block_on(run_setup(settings)),
        NodelocalCommand::Cleanup { .. } => runtime.block_on(run_cleanup(settings)),
    };
    print!("{report}");
    if errors.is_empty() {
        return ExitCode::SUCCESS;
    }
    for (label, e) in errors {
        eprintln!("clusterdns: nodelocal [{label}]: {e}");
    }
    ExitCode::FAILURE
}

type Errors = Vec<(&'static str, String)>;

async fn run_setup(settings: NetworkSettings) -> (String, Errors) {
    let name = settings.link_name.clone();
    let mut setup = NetworkSetup::new(settings);
    let done = setup.reconcile().await;
    let mut report = String::new();
    if let Some(link) = &done.link {
        let d = &link.details;
        let _ = write!(report, "link {name}: ");
        if d.is_empty() {
            report.push_str("as configured");
        }
        if d.created {
            report.push_str("created");
        }
        if !d.added.is_empty() {
            let _ = write!(report, " added {}", list(&d.added));
        }
        if !d.removed.is_empty() {
            let _ = write!(report, " removed {}", list(&d.removed));
        }
        report.push('\n');
    }
    if let Some(rules) = &done.rules {
        let change = match rules.change {
            Change::Unchanged => "as configured",
            Change::Installed => "written",
            Change::Repaired => "repaired",
        };
        let _ = writeln!(report, "rules ({}): {change}", rules.backend.label());
    }
    let errors = done
        .errors
        .iter()
        .map(|e| (e.error_type().label(), e.to_string()))
        .collect();
    (report, errors)
}

async fn run_cleanup(settings: NetworkSettings) -> (String, Errors) {
    let cleaned = setup::cleanup(&settings).await;
    let mut report = String::new();
    for (backend, family) in &cleaned.rules {
        let family = family.map_or("ipv4 and ipv6", |f| f.label());
        let _ = writeln!(report, "removed rules ({}, {family})", backend.label());
    }
    if cleaned.link {
        let _ = writeln!(report, "removed link {}", settings.link_name);
    }
    if report.is_empty() {
        report.push_str("nothing to remove\n");
    }
    let errors = cleaned
        .errors
        .iter()
        .map(|e| (e.error_type().label(), e.to_string()))
        .collect();
    (report, errors)
}

fn list(addresses: &[std::net::IpAddr]) -> String {
    let text: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    text.join(", ")
}
