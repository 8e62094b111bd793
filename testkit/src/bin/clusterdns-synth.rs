//! `clusterdns-synth`: writes a deterministic synthetic cluster (kubectl-style YAML, the forward
//! and reverse zones as master files, and a dnsperf query file) for tests and benchmarks.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use clap::Parser;
use clusterdns_testkit::synth::{SynthCluster, SynthParams};

/// Write a synthetic Kubernetes cluster and what its DNS must answer.
///
/// Writes `cluster.yaml` (as `kubectl get namespaces,services,endpointslices,pods -A -o yaml`
/// prints it), `<zone>.zone` and `10.in-addr.arpa.zone` (RFC 1035 master files for NSD or Knot)
/// and `queries.txt` (for dnsperf) into the output directory. The same options always write the
/// same files.
#[derive(Debug, Parser)]
#[command(name = "clusterdns-synth", version)]
struct Args {
    /// Directory to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Start from the small preset (5 namespaces, 50 services, 5 headless services of 4
    /// endpoints, 300 pods) instead of the default size; the options below still override it.
    #[arg(long)]
    small: bool,
    /// Seed of the generator [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Application namespaces `ns-000`, ... [default: 100].
    #[arg(long)]
    namespaces: Option<usize>,
    /// ClusterIP services `svc-00000`, ... [default: 10000].
    #[arg(long)]
    services: Option<usize>,
    /// Endpoints behind each ClusterIP service [default: 2].
    #[arg(long)]
    endpoints_per_service: Option<usize>,
    /// Headless services `hl-0000`, ... [default: 1000].
    #[arg(long)]
    headless: Option<usize>,
    /// Endpoints behind each headless service [default: 20].
    #[arg(long)]
    endpoints_per_headless: Option<usize>,
    /// Total pods, raised to what the endpoints need [default: 50000].
    #[arg(long)]
    pods: Option<usize>,
    /// Cluster zone [default: cluster.local].
    #[arg(long)]
    zone: Option<String>,
    /// Lines in queries.txt.
    #[arg(long, default_value_t = 100_000)]
    queries: usize,
}

impl Args {
    fn params(&self) -> SynthParams {
        let base = if self.small {
            SynthParams::small()
        } else {
            SynthParams::default()
        };
        SynthParams {
            seed: self.seed.unwrap_or(base.seed),
            namespaces: self.namespaces.unwrap_or(base.namespaces),
            services: self.services.unwrap_or(base.services),
            endpoints_per_service: self
                .endpoints_per_service
                .unwrap_or(base.endpoints_per_service),
            headless: self.headless.unwrap_or(base.headless),
            endpoints_per_headless: self
                .endpoints_per_headless
                .unwrap_or(base.endpoints_per_headless),
            pods: self.pods.unwrap_or(base.pods),
            zone: self
                .zone
                .as_deref()
                .map_or(base.zone, |zone| zone.trim_end_matches('.').to_owned()),
        }
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<(), Box<dyn Error>> {
    let path = dir.join(name);
    fs::write(&path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!(
        "wrote {} ({} lines, {} bytes)",
        path.display(),
        contents.lines().count(),
        contents.len()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let params = args.params();
    fs::create_dir_all(&args.out).map_err(|e| format!("creating {}: {e}", args.out.display()))?;

    let cluster = SynthCluster::generate(&params);
    let endpoints: usize = cluster.services().iter().map(|s| s.endpoints.len()).sum();
    println!(
        "cluster (seed {}): {} namespaces, {} services ({} headless), {} endpoints, {} pods",
        params.seed,
        cluster.namespaces().len(),
        cluster.services().len(),
        cluster
            .services()
            .iter()
            .filter(|s| s.is_headless())
            .count(),
        endpoints,
        cluster.pods().len()
    );

    write(&args.out, "cluster.yaml", &cluster.cluster_yaml())?;
    write(
        &args.out,
        &format!("{}.zone", params.zone),
        &cluster.nsd_zone(),
    )?;
    let (reverse_name, reverse) = cluster.reverse_zone();
    write(&args.out, &format!("{reverse_name}.zone"), &reverse)?;
    write(&args.out, "queries.txt", &cluster.queries(args.queries))?;
    Ok(())
}
