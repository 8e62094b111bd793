//! Following the cluster file: a thread of its own polls it and applies what changed to
//! the zone's index, as the Kubernetes source's watches do for the API.

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use super::ClusterFile;
use crate::shutdown::Shutdown;
use crate::zone::ClusterIndex;

/// Polls the cluster file on its own thread (parsing a large file must not stall the
/// runtime) and applies what changed. A file that fails to parse is reported once per
/// change and the zone keeps its last good state.
pub fn spawn_polling(
    mut source: ClusterFile,
    mut index: ClusterIndex,
    every: Duration,
    shutdown: Shutdown,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("cluster-file".into()).spawn(move || {
        while !shutdown.is_triggered() {
            std::thread::sleep(every);
            match source.poll() {
                Ok(poll) => {
                    for e in &poll.errors {
                        tracing::warn!("cluster file refused, still serving its last good state: {e}");
                    }
                    if !poll.events.is_empty() {
                        let n = poll.events.len();
                        index.apply_all(poll.events);
                        tracing::info!(source = %source.path().display(), changes = n, "cluster changes applied");
                    }
                }
                Err(e) => tracing::warn!("cluster source unreadable, still serving the last good state: {e}"),
            }
        }
    })
}
