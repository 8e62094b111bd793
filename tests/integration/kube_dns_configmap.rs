//! The kube-dns ConfigMap watcher against a directory laid out and updated as kubelet
//! does: each version in a new `..<timestamp>` directory, published by renaming a
//! `..data_tmp` symlink over `..data`, keys as symlinks through `..data`. Time is Tokio's
//! paused clock, so "within the poll period" is measured exactly.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clusterdns::nodelocal::kube_dns::{ConfigMapDir, DEFAULT_POLL_PERIOD, KubeDnsConfig, watch};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const PERIOD: Duration = DEFAULT_POLL_PERIOD;

/// A ConfigMap volume, written the way kubelet's atomic writer does.
struct Volume {
    dir: tempfile::TempDir,
    versions: u32,
}

impl Volume {
    fn new() -> Volume {
        Volume {
            dir: tempfile::tempdir().unwrap(),
            versions: 0,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Publishes a new version holding exactly `keys`.
    fn publish(&mut self, keys: &[(&str, &str)]) {
        let root = self.dir.path();
        self.versions += 1;
        let version = format!("..2026_11_29_09_00_00.{:09}", self.versions);
        std::fs::create_dir(root.join(&version)).unwrap();
        for (key, text) in keys {
            std::fs::write(root.join(&version).join(key), text).unwrap();
        }
        let old = std::fs::read_link(root.join("..data")).ok();
        symlink(&version, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        for (key, _) in keys {
            let link = root.join(key);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(Path::new("..data").join(key), link).unwrap();
            }
        }
        for entry in std::fs::read_dir(root).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !name.starts_with('.') && !keys.iter().any(|(key, _)| *key == name) {
                std::fs::remove_file(root.join(name)).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(root.join(old)).unwrap();
        }
    }
}

/// Starts the watcher; failures arrive on the channel and in the counter.
fn start(
    volume: &Volume,
) -> (
    tokio::sync::watch::Receiver<Arc<KubeDnsConfig>>,
    mpsc::UnboundedReceiver<String>,
    Arc<AtomicUsize>,
) {
    let (failed, failures) = mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let listen = vec!["169.254.20.10:53".parse().unwrap()];
    let config = watch(
        ConfigMapDir::new(volume.path(), listen),
        PERIOD,
        move |error| {
            counter.fetch_add(1, Ordering::Relaxed);
            let _ = failed.send(error.to_string());
        },
    );
    (config, failures, count)
}

fn zones(config: &KubeDnsConfig) -> Vec<&str> {
    config.stub_domains.keys().map(String::as_str).collect()
}

#[tokio::test(start_paused = true)]
async fn a_new_stub_domain_is_applied_within_the_poll_period() {
    let mut volume = Volume::new();
    volume.publish(&[("stubDomains", r#"{"acme.local": ["10.0.0.1"]}"#)]);
    let (mut config, _failures, count) = start(&volume);
    assert_eq!(zones(&config.borrow_and_update()), ["acme.local"]);

    volume.publish(&[(
        "stubDomains",
        r#"{"acme.local": ["10.0.0.1"], "consul": ["10.150.0.1:8600"]}"#,
    )]);
    let asked = Instant::now();
    timeout(PERIOD * 3, config.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(
        asked.elapsed() <= PERIOD,
        "applied after {:?}",
        asked.elapsed()
    );
    let now = config.borrow_and_update().clone();
    assert_eq!(zones(&now), ["acme.local", "consul"]);
    assert_eq!(
        now.stub_domains["consul"],
        ["10.150.0.1:8600".parse().unwrap()]
    );
    assert_eq!(count.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn broken_content_keeps_the_last_good_config_and_counts_once() {
    let mut volume = Volume::new();
    let good = [
        ("stubDomains", r#"{"acme.local": ["10.0.0.1"]}"#),
        ("upstreamNameservers", r#"["10.0.0.53"]"#),
    ];
    volume.publish(&good);
    let (mut config, mut failures, count) = start(&volume);
    let before = config.borrow_and_update().clone();
    assert_eq!(zones(&before), ["acme.local"]);

    volume.publish(&[good[0], ("upstreamNameservers", r#"["10.0.0.53", "#)]);
    let error = timeout(PERIOD * 3, failures.recv()).await.unwrap().unwrap();
    assert!(error.contains("upstreamNameservers:1:"), "{error}");
    // A loop is bad content too.
    volume.publish(&[("stubDomains", r#"{"acme.local": ["169.254.20.10"]}"#)]);
    let error = timeout(PERIOD * 3, failures.recv()).await.unwrap().unwrap();
    assert!(
        error.contains("stubDomains:1:17:") && error.contains("loop"),
        "{error}"
    );

    // Many polls later the failure is neither repeated nor has the config moved.
    tokio::time::sleep(PERIOD * 10).await;
    assert!(failures.try_recv().is_err());
    assert_eq!(count.load(Ordering::Relaxed), 2);
    assert!(!config.has_changed().unwrap());
    assert_eq!(*config.borrow(), before);

    volume.publish(&[("stubDomains", r#"{"corp": ["10.0.0.2"]}"#)]);
    timeout(PERIOD * 3, config.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zones(&config.borrow_and_update()), ["corp"]);
}

#[tokio::test(start_paused = true)]
async fn a_removed_key_is_emptied() {
    let mut volume = Volume::new();
    volume.publish(&[
        ("stubDomains", r#"{"acme.local": ["10.0.0.1"]}"#),
        ("upstreamNameservers", r#"["10.0.0.53", "[fd00::53]:53"]"#),
    ]);
    let (mut config, _failures, count) = start(&volume);
    assert_eq!(config.borrow_and_update().upstream_nameservers.len(), 2);

    volume.publish(&[("upstreamNameservers", r#"["10.0.0.53", "[fd00::53]:53"]"#)]);
    assert!(!volume.path().join("stubDomains").exists());
    timeout(PERIOD * 3, config.changed())
        .await
        .unwrap()
        .unwrap();
    let now = config.borrow_and_update().clone();
    assert!(now.stub_domains.is_empty());
    assert_eq!(now.upstream_nameservers.len(), 2);

    volume.publish(&[]);
    timeout(PERIOD * 3, config.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(**config.borrow(), KubeDnsConfig::default());
    assert_eq!(count.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_volume_mounted_later_is_read() {
    let mut volume = Volume::new();
    let (mut config, _failures, _count) = start(&volume);
    assert_eq!(**config.borrow_and_update(), KubeDnsConfig::default());
    volume.publish(&[("upstreamNameservers", r#"["10.0.0.53"]"#)]);
    timeout(PERIOD * 3, config.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        config.borrow().upstream_nameservers,
        ["10.0.0.53:53".parse().unwrap()]
    );
}
