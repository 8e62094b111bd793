//! The `kube-dns` ConfigMap directory as kubelet mounts it, polled like node-cache does.
//!
//! kubelet writes every version into a new hidden directory and swaps the `..data`
//! symlink to it atomically; each key is a symlink through `..data`:
//! ```text
//!   /etc/kube-dns/..data -> ..2026_11_29_09_00_00.123456789
//!   /etc/kube-dns/stubDomains -> ..data/stubDomains
//! ```
//! A poll resolves `..data` once and reads the keys inside the directory it names, so the
//! two keys always come from one version; an unchanged `..data` costs one `readlink`.
//! A plain directory (no `..data`, e.g. a hostPath) is read directly and compared by
//! content.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch as channel;
use tokio::time::{Instant, MissedTickBehavior};

use super::parse::{ContentError, Key, KubeDnsConfig};

/// Where node-cache expects the ConfigMap.
pub const DEFAULT_DIR: &str = "/etc/kube-dns";
/// node-cache's `-syncinterval` default.
pub const DEFAULT_POLL_PERIOD: Duration = Duration::from_secs(10);

/// Why the ConfigMap could not be taken; the last good config stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigMapError {
    #[error("{}: cannot read: {message}", path.display())]
    Read {
        path: PathBuf,
        kind: io::ErrorKind,
        message: String,
    },
    #[error("{}: not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{}: ..data kept changing while the keys were read", dir.display())]
    Unstable { dir: PathBuf },
    /// Displayed as `dir/key:line:column: reason`.
    #[error("{}/{error}", dir.display())]
    Content { dir: PathBuf, error: ContentError },
}

/// The mounted directory and the addresses a nameserver must not be (our own).
#[derive(Debug, Clone)]
pub struct ConfigMapDir {
    dir: PathBuf,
    listen: Vec<SocketAddr>,
}

/// The raw texts of one version of the keys, so an unchanged version is not re-parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Texts {
    /// Target of `..data`, when the directory has one.
    version: Option<PathBuf>,
    keys: [Option<String>; 2],
}

const DATA: &str = "..data";

impl ConfigMapDir {
    pub fn new(dir: impl Into<PathBuf>, listen: Vec<SocketAddr>) -> ConfigMapDir {
        ConfigMapDir {
            dir: dir.into(),
            listen,
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads and checks the ConfigMap once. An absent directory or key is empty.
    pub fn load(&self) -> Result<KubeDnsConfig, ConfigMapError> {
        let texts = self.read()?;
        self.parse(&texts)
    }

    fn parse(&self, texts: &Texts) -> Result<KubeDnsConfig, ConfigMapError> {
        let [stub, upstream] = &texts.keys;
        KubeDnsConfig::parse(stub.as_deref(), upstream.as_deref(), &self.listen).map_err(|error| {
            ConfigMapError::Content {
                dir: self.dir.clone(),
                error,
            }
        })
    }

    fn data_version(&self) -> Result<Option<PathBuf>, ConfigMapError> {
        let path = self.dir.join(DATA);
        match std::fs::read_link(&path) {
            Ok(target) => Ok(Some(target)),
            // No kubelet layout (absent, or not a symlink): read the keys directly.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(read_error(path, &e)),
        }
    }

    fn read(&self) -> Result<Texts, ConfigMapError> {
        // kubelet deletes the old version right after a swap; a swap between our reads
        // shows as a changed `..data`, and the read is done again.
        for _ in 0..3 {
            let version = self.data_version()?;
            let base = match &version {
                Some(target) => self.dir.join(target),
                None => self.dir.clone(),
            };
            let keys = [read_key(&base, Key::ALL[0]), read_key(&base, Key::ALL[1])];
            if self.data_version()? != version {
                continue;
            }
            let [stub, upstream] = keys;
            return Ok(Texts {
                version,
                keys: [stub?, upstream?],
            });
        }
        Err(ConfigMapError::Unstable {
            dir: self.dir.clone(),
        })
    }
}

fn read_key(base: &Path, key: Key) -> Result<Option<String>, ConfigMapError> {
    let path = base.join(key.name());
    match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ConfigMapError::NotUtf8 { path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_error(path, &e)),
    }
}

fn read_error(path: PathBuf, e: &io::Error) -> ConfigMapError {
    ConfigMapError::Read {
        path,
        kind: e.kind(),
        message: e.to_string(),
    }
}

/// What the poller remembers between polls.
struct Poller<F> {
    dir: ConfigMapDir,
    on_failure: F,
    /// The texts last read, and the error they gave (`None`: they were applied).
    last: Option<(Texts, Option<ConfigMapError>)>,
    /// The failure last reported, so one that persists is logged and counted once.
    reported: Option<ConfigMapError>,
}

impl<F: Fn(&ConfigMapError)> Poller<F> {
    /// One poll: `Some` with a new config to publish when the ConfigMap changed and is good.
    fn poll(&mut self) -> Option<KubeDnsConfig> {
        if let Some((texts, _)) = &self.last
            && texts.version.is_some()
            && self.dir.data_version().ok().as_ref() == Some(&texts.version)
        {
            return None;
        }
        let texts = match self.dir.read() {
            Ok(texts) => texts,
            Err(error) => {
                self.fail(error);
                return None;
            }
        };
        if let Some((last, outcome)) = &self.last
            && last.keys == texts.keys
        {
            let outcome = outcome.clone();
            self.last = Some((texts, outcome.clone()));
            self.reported = outcome;
            return None;
        }
        match self.dir.parse(&texts) {
            Ok(config) => {
                self.last = Some((texts, None));
                self.reported = None;
                Some(config)
            }
            Err(error) => {
                self.last = Some((texts, Some(error.clone())));
                self.fail(error);
                None
            }
        }
    }

    fn fail(&mut self, error: ConfigMapError) {
        if self.reported.as_ref() != Some(&error) {
            tracing::warn!(%error, "kube-dns ConfigMap refused, the last good config stays");
            (self.on_failure)(&error);
            self.reported = Some(error);
        }
    }
}

/// Loads the ConfigMap now and re-reads it every `period` in a task, publishing each
/// good change on the returned channel (the first value is the initial load, or the empty
/// config when that failed). Every distinct failure is logged once and given to
/// `on_failure` (the mode counts `coredns_reload_failed_total` there); a failure that
/// persists across polls is not repeated. The task ends when every receiver is dropped.
/// Must be called within a Tokio runtime.
pub fn watch<F>(
    dir: ConfigMapDir,
    period: Duration,
    on_failure: F,
) -> channel::Receiver<Arc<KubeDnsConfig>>
where
    F: Fn(&ConfigMapError) + Send + 'static,
{
    let mut poller = Poller {
        dir,
        on_failure,
        last: None,
        reported: None,
    };
    let initial = poller.poll().unwrap_or_default();
    log_applied(poller.dir.path(), &initial);
    let (tx, rx) = channel::channel(Arc::new(initial));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tx.closed() => break,
                _ = ticks.tick() => {
                    let Some(config) = poller.poll() else { continue };
                    // The borrow must end before the send, which takes the write lock.
                    let changed = **tx.borrow() != config;
                    if changed {
                        log_applied(poller.dir.path(), &config);
                        tx.send_replace(Arc::new(config));
                    }
                }
            }
        }
    });
    rx
}

fn log_applied(dir: &Path, config: &KubeDnsConfig) {
    tracing::info!(
        dir = %dir.display(),
        stub_domains = ?config.stub_domains.keys().collect::<Vec<_>>(),
        upstream_nameservers = ?config.upstream_nameservers,
        "kube-dns ConfigMap applied"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    fn poller(dir: &Path, failures: &Rc<Cell<usize>>) -> Poller<impl Fn(&ConfigMapError)> {
        let failures = failures.clone();
        Poller {
            dir: ConfigMapDir::new(dir, vec![]),
            on_failure: move |_: &ConfigMapError| failures.set(failures.get() + 1),
            last: None,
            reported: None,
        }
    }

    #[test]
    fn an_absent_directory_is_the_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ConfigMapDir::new(dir.path().join("kube-dns"), vec![]);
        assert_eq!(missing.load(), Ok(KubeDnsConfig::default()));
    }

    #[test]
    fn a_plain_directory_is_read_and_compared_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let failures = Rc::new(Cell::new(0));
        let mut p = poller(dir.path(), &failures);
        assert_eq!(p.poll(), Some(KubeDnsConfig::default()));
        assert_eq!(p.poll(), None);
        let upstream = dir.path().join("upstreamNameservers");
        std::fs::write(&upstream, "[\"10.0.0.1\"]").unwrap();
        let config = p.poll().unwrap();
        assert_eq!(
            config.upstream_nameservers,
            ["10.0.0.1:53".parse().unwrap()]
        );
        assert_eq!(p.poll(), None);
        assert_eq!(failures.get(), 0);
    }

    #[test]
    fn a_failure_is_reported_once_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let failures = Rc::new(Cell::new(0));
        let mut p = poller(dir.path(), &failures);
        let upstream = dir.path().join("upstreamNameservers");
        std::fs::write(&upstream, "[\"10.0.0.1\"]").unwrap();
        assert!(p.poll().is_some());
        std::fs::write(&upstream, "[\"10.0.0.1\",").unwrap();
        for _ in 0..3 {
            assert_eq!(p.poll(), None);
        }
        assert_eq!(failures.get(), 1);
        // An unreadable key is another failure; back to the same bad text is not new.
        std::fs::remove_file(&upstream).unwrap();
        std::fs::create_dir(&upstream).unwrap();
        assert_eq!((p.poll(), p.poll()), (None, None));
        assert_eq!(failures.get(), 2);
        std::fs::remove_dir(&upstream).unwrap();
        std::fs::write(&upstream, "[\"10.0.0.1\",").unwrap();
        assert_eq!(p.poll(), None);
        assert_eq!(failures.get(), 2);
        std::fs::write(&upstream, "[\"10.0.0.2\"]").unwrap();
        assert!(p.poll().is_some());
        std::fs::write(&upstream, "[\"10.0.0.1\",").unwrap();
        assert_eq!(p.poll(), None);
        assert_eq!(failures.get(), 3);
    }

    #[test]
    fn unreadable_or_non_utf8_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stubDomains"), [0xff, 0xfe]).unwrap();
        let err = ConfigMapDir::new(dir.path(), vec![]).load().unwrap_err();
        assert!(
            err.to_string().ends_with("stubDomains: not UTF-8 text"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("stubDomains")).unwrap();
        std::fs::create_dir(dir.path().join("stubDomains")).unwrap();
        let err = ConfigMapDir::new(dir.path(), vec![]).load().unwrap_err();
        assert!(matches!(err, ConfigMapError::Read { .. }), "{err}");
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = ConfigMapDir::new(&file, vec![]).load().unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn content_errors_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stubDomains"), "{\"a\": [\"x\"]}").unwrap();
        let err = ConfigMapDir::new(dir.path(), vec![]).load().unwrap_err();
        let want = format!("{}/stubDomains:1:8: \"x\" is not", dir.path().display());
        assert!(err.to_string().starts_with(&want), "{err}");
    }
}
