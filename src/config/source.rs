//! `[source]`: where the cluster comes from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de::millis;

/// `[source]`: a cluster file, the built-in sample, or (neither) the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A cluster file (kubectl YAML/JSON) or a folder of them, relative to the config
    /// file's folder.
    pub file: Option<PathBuf>,
    /// Serve the sample cluster built into the binary.
    #[serde(default)]
    pub sample: bool,
    /// How often the cluster file is checked for changes.
    #[serde(default = "default_poll", with = "millis")]
    pub poll_interval_ms: Duration,
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

fn default_poll() -> Duration {
    Duration::from_millis(250)
}
