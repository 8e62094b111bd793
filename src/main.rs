//! The `clusterdns` command: reads the config, starts the server, stops on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clusterdns::app::Server;
use clusterdns::config::Config;

/// The DNS server of a Kubernetes cluster.
///
/// With no --config it serves the built-in sample cluster on 127.0.0.1:5353, so
/// `dig @127.0.0.1 -p 5353 kubernetes.default.svc.cluster.local` answers on a laptop.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file (TOML). Without it, the built-in sample cluster is served.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to answer on, UDP and TCP (repeatable); replaces `listen` of the config.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Cluster file (kubectl YAML or JSON) to serve; replaces `[source]` of the config.
    #[arg(long, value_name = "PATH")]
    cluster_file: Option<PathBuf>,
    /// Check the configuration (and the cluster file it names) and exit.
    #[arg(long)]
    validate: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("clusterdns: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if !cli.listen.is_empty() {
        config.listen = cli.listen.clone();
    }
    if let Some(file) = &cli.cluster_file {
        config.source.file = Some(file.clone());
        config.source.sample = false;
    }
    if cli.validate {
        return validate(&config);
    }
    // Many clients over TCP need many descriptors; take what the hard limit allows.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clusterdns: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

fn validate(config: &Config) -> ExitCode {
    if let Some(path) = &config.source.file {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("clusterdns: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        match clusterdns::source::file::parse(path, &text, true) {
            Ok(objects) => println!("{}: {} objects", path.display(), objects.len()),
            Err(e) => {
                eprintln!("clusterdns: invalid cluster file: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!("configuration OK");
    ExitCode::SUCCESS
}

async fn run(config: Config) -> ExitCode {
    let server = match Server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("clusterdns: {e}");
            return ExitCode::FAILURE;
        }
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.stop().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
