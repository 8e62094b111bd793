//! `[transfer]`: who may take the cluster zones by AXFR (CoreDNS's `transfer` plugin).

use serde::{Deserialize, Deserializer, de};

use crate::zone::acl::Cidr;

/// `[transfer]`: zone transfers over TCP, to the listed clients only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConfig {
    /// Client prefixes (`10.0.0.0/8`) or addresses allowed to transfer; empty (the
    /// default): nobody, every AXFR is REFUSED. A transfer hands out every name of the
    /// cluster at once, which the one-name-at-a-time queries never do.
    #[serde(default, deserialize_with = "cidr_list")]
    pub to: Vec<Cidr>,
}

fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse()
                .map_err(|why| de::Error::custom(format!("to[{i}] {text:?}: {why}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn transfers_are_off_by_default_and_errors_name_the_place() {
        let c = Config::parse(Path::new("c.toml"), "[source]\nsample = true\n").unwrap();
        assert!(c.transfer.to.is_empty());
        assert!(!c.zone_settings().may_transfer("127.0.0.1".parse().unwrap()));

        let text = "[source]\nsample = true\n[transfer]\nto = [\"10.0.0.0/8\", \"127.0.0.1\"]\n";
        let c = Config::parse(Path::new("c.toml"), text).unwrap();
        let s = c.zone_settings();
        assert!(s.may_transfer("10.1.2.3".parse().unwrap()));
        assert!(s.may_transfer("127.0.0.1".parse().unwrap()));
        assert!(!s.may_transfer("127.0.0.2".parse().unwrap()));

        let text = "[source]\nsample = true\n[transfer]\nto = [\"10.0.0.1/8\"]\n";
        let err = Config::parse(Path::new("c.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:4:"), "{err}");
        assert!(err.contains("host bits"), "{err}");
        let text = "[source]\nsample = true\n[transfer]\nfrom = []\n";
        let err = Config::parse(Path::new("c.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.toml:4:") && err.contains("from"),
            "{err}"
        );
    }
}
