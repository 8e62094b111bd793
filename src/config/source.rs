//! `[source]`: where the cluster comes from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Refusal;
use super::de::{MIN_MILLIS, millis};

/// `[source]`: a cluster file, the built-in sample, or (neither) the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A cluster file (kubectl YAML/JSON) or a folder of them, relative to the config
    /// file's folder.
    pub file: Option<PathBuf>,
    /// Serve the sample cluster built into the binary.
    #[serde(default)]
    pub sample: bool,
    /// How often the cluster file is checked for changes; at least 10 ms.
    #[serde(default = "default_poll", with = "millis")]
    pub poll_interval_ms: Duration,
}

impl Default for SourceConfig {
    /// No file and no sample: the Kubernetes API.
    fn default() -> Self {
        SourceConfig {
            file: None,
            sample: false,
            poll_interval_ms: default_poll(),
        }
    }
}

impl SourceConfig {
    /// The built-in sample cluster: what runs with no config file.
    pub fn sample() -> Self {
        SourceConfig {
            file: None,
            sample: true,
            poll_interval_ms: default_poll(),
        }
    }
}

impl SourceConfig {
    pub(super) fn check(&self) -> Result<(), Refusal> {
        if self.file.is_some() && self.sample {
            return Err(Refusal::new(
                "source",
                "sample",
                "[source] takes either file or sample, not both",
            ));
        }
        if self.poll_interval_ms < MIN_MILLIS {
            return Err(Refusal::new(
                "source",
                "poll_interval_ms",
                format!(
                    "{} ms is below the minimum of {} ms",
                    self.poll_interval_ms.as_millis(),
                    MIN_MILLIS.as_millis()
                ),
            ));
        }
        Ok(())
    }
}

fn default_poll() -> Duration {
    Duration::from_millis(250)
}
