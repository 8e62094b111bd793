//! `backend = "auto"`: write the rules with what kube-proxy uses on this node, so ours
//! sit beside its own in the same framework and listing the node's rules shows both.
//!
//! kube-proxy in nftables mode owns the tables `ip kube-proxy` / `ip6 kube-proxy`; in
//! iptables (and IPVS) mode it keeps KUBE-* chains in iptables-nft or iptables-legacy —
//! whichever holds more of them wins, as the iptables wrapper of kube-proxy's image
//! decides. With no kube-proxy at all (e.g. a kube-proxy-free CNI), `nft`: atomic
//! replacement of one table, no xtables lock, no compatibility layer.

use super::error::SetupError;
use super::tool;

/// A backend that writes rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nft,
    IptablesNft,
    IptablesLegacy,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::IptablesNft => "iptables-nft",
            Backend::IptablesLegacy => "iptables-legacy",
        }
    }
}

/// The choice from the listings of `nft list tables`, `iptables-nft-save` and
/// `iptables-legacy-save` (None where the tool is missing or failed).
pub fn choose(
    nft_tables: Option<&str>,
    iptables_nft: Option<&str>,
    iptables_legacy: Option<&str>,
) -> Backend {
    let kube_proxy_table = |l: &str| {
        let words: Vec<&str> = l.split_whitespace().collect();
        matches!(
            words[..],
            ["table", "ip" | "ip6" | "inet", "kube-proxy", ..]
        )
    };
    if nft_tables.is_some_and(|t| t.lines().any(kube_proxy_table)) {
        return Backend::Nft;
    }
    let kube_lines = |save: Option<&str>| {
        save.map_or(0, |s| {
            s.lines()
                .filter(|l| (l.starts_with(':') || l.starts_with("-A ")) && l.contains("KUBE-"))
                .count()
        })
    };
    let (nft, legacy) = (kube_lines(iptables_nft), kube_lines(iptables_legacy));
    if legacy > nft {
        Backend::IptablesLegacy
    } else if nft > 0 {
        Backend::IptablesNft
    } else {
        Backend::Nft
    }
}

/// Looks at the node and chooses. Only reads: `nft list tables` lists, and the save
/// tools without `-t` list only the tables that exist, creating none.
pub async fn detect() -> Result<Backend, SetupError> {
    async fn listing(tool: &'static str, args: &[&str]) -> Option<String> {
        match tool::run(tool, args, None).await {
            Ok(ran) if ran.success => Some(ran.stdout),
            _ => None,
        }
    }
    let nft = listing("nft", &["list", "tables"]).await;
    let ipt_nft = listing("iptables-nft-save", &[]).await;
    let ipt_legacy = listing("iptables-legacy-save", &[]).await;
    Ok(choose(
        nft.as_deref(),
        ipt_nft.as_deref(),
        ipt_legacy.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPTABLES_MODE: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n\
        -A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
        -A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU\n\
        COMMIT\n*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n";

    #[test]
    fn kube_proxy_in_nftables_mode_means_nft() {
        let tables = "table ip filter\ntable ip kube-proxy\ntable ip6 kube-proxy\n";
        // Even with leftovers of an earlier iptables mode.
        assert_eq!(
            choose(Some(tables), Some(IPTABLES_MODE), None),
            Backend::Nft
        );
    }

    #[test]
    fn kube_proxy_in_iptables_mode_means_its_iptables() {
        assert_eq!(
            choose(Some("table ip nat\n"), Some(IPTABLES_MODE), Some("")),
            Backend::IptablesNft
        );
        assert_eq!(
            choose(
                Some(""),
                Some("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"),
                Some(IPTABLES_MODE)
            ),
            Backend::IptablesLegacy
        );
        // Both hold some: the one with more (the other has kubelet's canaries only).
        let canary = "*nat\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n";
        assert_eq!(
            choose(None, Some(canary), Some(IPTABLES_MODE)),
            Backend::IptablesLegacy
        );
        assert_eq!(
            choose(None, Some(IPTABLES_MODE), Some(canary)),
            Backend::IptablesNft
        );
    }

    #[test]
    fn no_kube_proxy_means_nft() {
        assert_eq!(
            choose(Some("table ip filter\n"), Some(""), Some("")),
            Backend::Nft
        );
        assert_eq!(choose(None, None, None), Backend::Nft);
        // A table merely named like it is not kube-proxy's.
        assert_eq!(
            choose(Some("table ip kube-proxy-old\n"), None, None),
            Backend::Nft
        );
    }
}
