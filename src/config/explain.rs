//! `[explain]`: telling the person debugging why a name answers as it does.

use serde::Deserialize;

/// `[explain]`: both forms are off by default. An explanation says which namespaces
/// and services exist, which are filtered out, which endpoints are not ready and where
/// other names are forwarded: more than a client learns from answers, to anyone who can
/// reach the listener. Turn them on where only operators can ask.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainConfig {
    /// `/explain?name=…&type=…` on the `[health]` listener (loopback by default), which
    /// `clusterdns explain --server` asks.
    #[serde(default)]
    pub http: bool,
    /// TXT answers for `<name>.explain.<zone>`, for `dig` from a debugging pod. Besides
    /// the disclosure, one small question gets a long answer: over UDP, an amplifier for
    /// spoofed sources.
    #[serde(default)]
    pub dns: bool,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn explain_is_off_by_default() {
        let c = Config::parse(Path::new("c.toml"), "[source]\nsample = true\n").unwrap();
        assert!(!c.explain.http && !c.explain.dns);
        assert!(!c.zone_settings().explain_dns);
        let text = "[source]\nsample = true\n[explain]\nhttp = true\ndns = true\n";
        let c = Config::parse(Path::new("c.toml"), text).unwrap();
        assert!(c.explain.http && c.zone_settings().explain_dns);
        let text = "[source]\nsample = true\n[explain]\ntxt = true\n";
        let err = Config::parse(Path::new("c.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:4:") && err.contains("txt"), "{err}");
    }
}
