//! `clusterdns explain`: why a name answers as it does. Asks a running server's
//! `/explain` ([`crate::admin::explain`], `--server`), or loads a cluster file into a
//! zone as the server would and explains from it, offline.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::config::{Config, ConfigError};
use crate::source::ClusterEvent;
use crate::source::file::{self, ClusterFile, FileError, Selection};
use crate::source::objects::ClusterObject;
use crate::zone::explain::{self, ExplainError, Explanation, Hidden, parse_type};
use crate::zone::{ClusterIndex, ClusterZone};

/// The built-in sample cluster, as `crate::app` serves it (read here again rather than
/// imported: the wiring imports this module, not the other way round).
const SAMPLE_CLUSTER: &str = include_str!("../config/sample-cluster.yaml");

#[derive(Debug, Error)]
pub enum ExplainCliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cluster file: {0}")]
    File(#[from] FileError),
    #[error("{0:?} is not a record type (A, AAAA, SRV, PTR, TXT, …)")]
    Type(String),
    #[error(transparent)]
    Name(#[from] ExplainError),
    #[error(
        "the configuration reads the Kubernetes API: give --cluster-file, or --server to ask a running server"
    )]
    NoFile,
    #[error("{url}: {reason}")]
    Server { url: String, reason: String },
}

/// `clusterdns explain`: why a name answers as it does.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The name to explain.
    pub name: String,
    /// Its record type.
    #[arg(default_value = "A")]
    pub qtype: String,
    /// Read this cluster file (or folder) rather than ask a server. Without it and
    /// without --server: the config's cluster file, or the built-in sample cluster.
    #[arg(long, value_name = "PATH", conflicts_with = "server")]
    pub cluster_file: Option<PathBuf>,
    /// Ask the running server whose health listener is at this URL
    /// (`[explain] http = true`), e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Options (zones, pods, namespaces, labels, …) from this config file.
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "server")]
    pub config: Option<PathBuf>,
    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `clusterdns explain`.
pub fn run(args: &ExplainArgs) -> ExitCode {
    match explain_for(args) {
        Ok(e) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
            } else {
                println!("{}", e.lines().join("\n"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clusterdns explain: {e}");
            ExitCode::FAILURE
        }
    }
}

fn explain_for(args: &ExplainArgs) -> Result<Explanation, ExplainCliError> {
    let qtype = parse_type(&args.qtype).ok_or_else(|| ExplainCliError::Type(args.qtype.clone()))?;
    if let Some(url) = &args.server {
        return ask_server(url, &args.name, &args.qtype);
    }
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(file) = &args.cluster_file {
        config.source.file = Some(file.clone());
        config.source.sample = false;
    }
    let zone = Arc::new(ClusterZone::new());
    let mut index = ClusterIndex::new(zone.clone(), config.index_settings());
    let selection = config.file_selection();
    let (objects, hidden) = match &config.source.file {
        Some(path) => {
            let objects = read_file(path, selection.clone())?;
            // What the `labels` selector leaves out: the whole file, read again unfiltered.
            let hidden = match config.kubernetes.labels {
                Some(_) => {
                    let all = read_file(path, Selection::all())?;
                    Some(hidden_services(&all, &objects))
                }
                None => None,
            };
            (objects, hidden)
        }
        None if config.source.sample => {
            let parse = |s: &Selection| {
                file::parse(
                    &PathBuf::from("<built-in sample cluster>"),
                    SAMPLE_CLUSTER,
                    s,
                )
            };
            let objects = parse(&Selection {
                keep_pods: true,
                ..selection
            })?;
            let all = parse(&Selection::all())?;
            let hidden = Some(hidden_services(&all, &objects));
            (objects, hidden)
        }
        None => return Err(ExplainCliError::NoFile),
    };
    let events = objects.into_iter().map(ClusterEvent::Apply);
    index.apply_all(events.chain([ClusterEvent::InitialSyncDone]));
    let settings = config.zone_settings();
    Ok(explain::explain(
        &zone,
        &settings,
        hidden.as_ref(),
        &args.name,
        qtype,
    )?)
}

fn read_file(path: &Path, selection: Selection) -> Result<Vec<ClusterObject>, FileError> {
    let mut source = ClusterFile::new(path, selection);
    let poll = source.poll()?;
    if let Some(e) = poll.errors.into_iter().next() {
        return Err(e);
    }
    Ok(poll
        .events
        .into_iter()
        .filter_map(|e| match e {
            ClusterEvent::Apply(o) => Some(o),
            _ => None,
        })
        .collect())
}

/// The services of `all` missing from `kept`.
fn hidden_services(all: &[ClusterObject], kept: &[ClusterObject]) -> Hidden {
    let services = |objects: &[ClusterObject]| -> HashSet<(String, String)> {
        objects
            .iter()
            .filter_map(|o| match o {
                ClusterObject::Service(s) => Some((s.namespace.to_string(), s.name.to_string())),
                _ => None,
            })
            .collect()
    };
    let kept = services(kept);
    services(all).difference(&kept).cloned().collect()
}

/// Asks a running server's `/explain` (plain HTTP/1.1: the endpoint listens on loopback
/// or a cluster-internal address, never behind TLS).
fn ask_server(url: &str, name: &str, qtype: &str) -> Result<Explanation, ExplainCliError> {
    let fail = |reason: String| ExplainCliError::Server {
        url: url.to_owned(),
        reason,
    };
    let host = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// URLs are understood".into()))?;
    let host = host.split('/').next().unwrap_or(host);
    let addr = host
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .next()
        .ok_or_else(|| fail("no address".into()))?;
    let wait = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, wait).map_err(|e| fail(e.to_string()))?;
    s.set_read_timeout(Some(wait))
        .map_err(|e| fail(e.to_string()))?;
    let request = format!(
        "GET /explain?name={}&type={} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        percent(name),
        percent(qtype)
    );
    s.write_all(request.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("not an HTTP response".into()))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    match status {
        "200" => serde_json::from_str(body).map_err(|e| fail(format!("unreadable answer: {e}"))),
        "404" => Err(fail(
            "no /explain there: is `[explain] http = true` set, and is this the health listener?"
                .into(),
        )),
        _ => Err(fail(format!("HTTP {status}: {}", body.trim()))),
    }
}

/// Percent-encodes all but unreserved characters (RFC 3986 §2.3).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
