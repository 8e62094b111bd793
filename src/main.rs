//! The `clusterdns` command: reads the config, starts the server, reloads it when the
//! config file changes (or on SIGHUP), and on SIGTERM/SIGINT goes lameduck then exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use clusterdns::app::Server;
use clusterdns::config::Config;
use clusterdns::logging::{self, LogFormat};
use clusterdns::reload::ConfigWatcher;
use tokio::signal::unix::{SignalKind, signal};

/// jemalloc returns freed memory to the system and fragments less than glibc's malloc
/// under the churn of listing a large cluster (measured with `cargo bench --bench
/// kube_sync`: see the commit that made this change).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read by jemalloc at start (it looks this symbol up; the type is a
/// plain pointer to a NUL-terminated string): purge freed pages after a second from a
/// background thread rather than keeping them, and two arenas, not eight per core — a
/// DNS server allocates little once its zone is loaded. Measured with
/// `cargo bench --bench kube_sync`: 101 MB resident once synced instead of 111 MB.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 70] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2\0";

/// How often the config file is checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// The DNS server of a Kubernetes cluster.
///
/// With no --config it serves the built-in sample cluster on 127.0.0.1:5353, so
/// `dig @127.0.0.1 -p 5353 kubernetes.default.svc.cluster.local` answers on a laptop.
/// The config file is re-read when it changes or on SIGHUP; SIGTERM and SIGINT stop the
/// server gracefully (lameduck: /ready turns 503 while DNS is still answered).
#[derive(Debug, Parser)]
#[command(version = clusterdns::version::LONG, about, long_about)]
struct Cli {
    /// Configuration file (TOML). Without it, the built-in sample cluster is served. With
    /// a `[nodelocal]` table it runs the NodeLocal mode: a node's DNS cache at
    /// 169.254.20.10 and the kube-dns ClusterIP (see config/nodelocal.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to answer DNS on, UDP and TCP (repeatable); replaces `listen` of the config.
    #[arg(long, value_name = "ADDR:PORT", value_parser = dns_addr)]
    listen: Vec<SocketAddr>,
    /// Cluster file (kubectl YAML or JSON) or folder of them to serve; replaces `[source]`.
    #[arg(long, value_name = "PATH")]
    cluster_file: Option<PathBuf>,
    /// Kubeconfig to reach the Kubernetes API with; replaces `[source]` by the API and
    /// `[kubernetes] kubeconfig`.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Address of /health, or "" for off; replaces `[health] listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    health_listen: Option<EndpointAddr>,
    /// Address of /ready, or "" for off; replaces `[ready] listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    ready_listen: Option<EndpointAddr>,
    /// Address of /metrics, or "" for off; replaces `[metrics] listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<EndpointAddr>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Check the configuration (and the cluster file it names) and exit.
    #[arg(long)]
    validate: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The NodeLocal mode's network: its link and steering rules, set up or removed once.
    #[command(subcommand)]
    Nodelocal(clusterdns::nodelocal::cli::NodelocalCommand),
    /// Print the clusterdns config (TOML) equivalent to a CoreDNS Corefile.
    ImportCorefile(clusterdns::corefile::cli::ImportArgs),
    /// Why a name answers as it does: the zone, the name's shape, what was found or the
    /// first missing link, the name a search-path expansion most likely meant.
    Explain(clusterdns::explain::ExplainArgs),
}

impl Cli {
    /// Whether a listen address is given on the command line.
    fn moves_listeners(&self) -> bool {
        !self.listen.is_empty()
            || self.health_listen.is_some()
            || self.ready_listen.is_some()
            || self.metrics_listen.is_some()
    }

    /// Applies the command line over a config (also after each reload).
    fn apply(&self, config: &mut Config) {
        if !self.listen.is_empty() {
            config.listen = self.listen.clone();
        }
        if let Some(file) = &self.cluster_file {
            config.source.file = Some(file.clone());
            config.source.sample = false;
        }
        if let Some(path) = &self.kubeconfig {
            config.kubernetes.kubeconfig = Some(path.clone());
            config.source.file = None;
            config.source.sample = false;
        }
        if let Some(EndpointAddr(a)) = self.health_listen {
            config.health.listen = a;
        }
        if let Some(EndpointAddr(a)) = self.ready_listen {
            config.ready.listen = a;
        }
        if let Some(EndpointAddr(a)) = self.metrics_listen {
            config.metrics.listen = a;
        }
    }
}

/// A DNS address on the command line; the error repeats what was given.
fn dns_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an address (IP:PORT or [IPv6]:PORT)"))
}

/// An HTTP endpoint's address on the command line: `ADDR:PORT`, or `""` for off, as in
/// the config file.
#[derive(Debug, Clone, Copy)]
struct EndpointAddr(Option<SocketAddr>);

impl std::str::FromStr for EndpointAddr {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(EndpointAddr(None));
        }
        text.parse().map(|a| EndpointAddr(Some(a))).map_err(|_| {
            format!("{text:?} is not an address (IP:PORT or [IPv6]:PORT), nor \"\" for off")
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    if let Some(Command::Nodelocal(command)) = &cli.command {
        // The `[nodelocal]` table of the file (its defaults without a file or table).
        let config = match command.config().map(Config::load).transpose() {
            Ok(c) => c.and_then(|c| c.nodelocal).unwrap_or_default(),
            Err(e) => {
                eprintln!("clusterdns: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        };
        return clusterdns::nodelocal::cli::run(command, config.network());
    }
    if let Some(Command::Explain(args)) = &cli.command {
        return clusterdns::explain::run(args);
    }
    if let Some(Command::ImportCorefile(args)) = &cli.command {
        return clusterdns::corefile::cli::run(args);
    }
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
    if config.nodelocal.is_some() && cli.moves_listeners() {
        eprintln!(
            "clusterdns: invalid configuration with the command line: the NodeLocal mode listens where [nodelocal] says (addresses, cluster_ips, dns_port, health_listen, metrics_listen), not --listen or --*-listen"
        );
        return ExitCode::from(2);
    }
    cli.apply(&mut config);
    // The command line may contradict the file (e.g. put two endpoints on one address).
    if let Err(r) = config.check() {
        eprintln!(
            "clusterdns: invalid configuration with the command line: {}: {}",
            r.path(),
            r.reason
        );
        return ExitCode::from(2);
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
    runtime.block_on(run(cli, config))
}

fn validate(config: &Config) -> ExitCode {
    if let Some(path) = &config.source.file {
        let mut source =
            clusterdns::source::file::ClusterFile::new(path.clone(), config.file_selection());
        match source.poll() {
            Ok(poll) if poll.errors.is_empty() => {
                println!("{}: {} objects", path.display(), poll.events.len())
            }
            Ok(poll) => {
                for e in poll.errors {
                    eprintln!("clusterdns: invalid cluster file: {e}");
                }
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("clusterdns: invalid cluster file: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!("configuration OK");
    ExitCode::SUCCESS
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    let mut server = match Server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("clusterdns: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("clusterdns: cannot install signal handlers");
        server.stop().await;
        return ExitCode::FAILURE;
    };
    let mut watcher = cli.config.as_deref().map(ConfigWatcher::new);
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    loop {
        let reload = tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => true,
            _ = tick.tick() => watcher.as_mut().is_some_and(|w| w.changed()),
        };
        if let (true, Some(w)) = (reload, &watcher) {
            let _ = server.reload_from(w.path(), |c| cli.apply(c)).await;
        }
    }
    let lameduck = server.lameduck();
    tracing::info!("shutting down");
    server.shutdown(lameduck).await;
    ExitCode::SUCCESS
}
