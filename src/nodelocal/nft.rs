//! The `nft` backend: one table of our own, `inet clusterdns-nodelocal`, covering both
//! families, replaced whole in one `nft -f` transaction. Creating the table empty,
//! deleting it and declaring it again in the same transaction makes any number of
//! applies leave exactly one copy, and packets never see a half-written table.

use std::fmt::Write;
use std::net::IpAddr;

use super::error::SetupError;
use super::steering::{Family, Steering};
use super::tool;

pub const TABLE: &str = "clusterdns-nodelocal";

/// The transaction that replaces our table with the rules for `steering`.
pub fn ruleset(steering: &Steering) -> String {
    let mut raw_pre = Vec::new();
    let mut raw_out = Vec::new();
    let mut input = Vec::new();
    let mut output = Vec::new();
    let dns = steering.dns_port;
    let health = steering.health_port;
    for family in Family::BOTH {
        let addresses = steering.family(family);
        if addresses.is_empty() {
            continue;
        }
        let ip = match family {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        };
        let all = set(addresses.all());
        let local = (!addresses.local.is_empty()).then(|| set(addresses.local.iter().copied()));
        // `socket wildcard 0` finds a socket bound to this very address. For TCP it
        // is only asked of the SYN: on later packets it resets connections, so those
        // match the established socket through `socket transparent 0` instead.
        raw_pre.push(format!(
            "{ip} daddr {all} udp dport {dns} socket wildcard 0 notrack"
        ));
        raw_pre.push(format!(
            "{ip} daddr {all} tcp dport {dns} tcp flags & (syn | ack) == syn socket wildcard 0 notrack"
        ));
        raw_pre.push(format!(
            "{ip} daddr {all} tcp dport {dns} tcp flags & (syn | ack) != syn socket transparent 0 notrack"
        ));
        raw_out.push(format!(
            "{ip} saddr {all} meta l4proto {{ tcp, udp }} th sport {dns} notrack"
        ));
        if let Some(local) = &local {
            raw_out.push(format!(
                "{ip} daddr {local} meta l4proto {{ tcp, udp }} th dport {dns} notrack"
            ));
            if health != 0 {
                raw_out.push(format!("{ip} daddr {local} tcp dport {health} notrack"));
                raw_out.push(format!("{ip} saddr {local} tcp sport {health} notrack"));
            }
        }
        input.push(format!(
            "{ip} daddr {all} meta l4proto {{ tcp, udp }} th dport {dns} accept"
        ));
        output.push(format!(
            "{ip} saddr {all} meta l4proto {{ tcp, udp }} th sport {dns} accept"
        ));
    }
    let mut text = delete();
    let _ = writeln!(text, "table inet {TABLE} {{");
    // Priority raw (-300) runs before conntrack (-200); the accepts at filter priority
    // only end our own chains: a drop in another table still drops (nftables has no
    // cross-table verdict), so a node firewalled with iptables wants an iptables backend.
    chain(&mut text, "raw-prerouting", "prerouting", "raw", &raw_pre);
    chain(&mut text, "raw-output", "output", "raw", &raw_out);
    chain(&mut text, "filter-input", "input", "filter", &input);
    chain(&mut text, "filter-output", "output", "filter", &output);
    text.push_str("}\n");
    text
}

/// The transaction that removes our table, whether or not it exists.
pub fn delete() -> String {
    format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n")
}

fn chain(text: &mut String, name: &str, hook: &str, priority: &str, rules: &[String]) {
    let _ = writeln!(text, "\tchain {name} {{");
    let _ = writeln!(
        text,
        "\t\ttype filter hook {hook} priority {priority}; policy accept;"
    );
    for rule in rules {
        let _ = writeln!(text, "\t\t{rule}");
    }
    text.push_str("\t}\n");
}

fn set(addresses: impl Iterator<Item = IpAddr>) -> String {
    let list: Vec<String> = addresses.map(|a| a.to_string()).collect();
    format!("{{ {} }}", list.join(", "))
}

/// Our table as nft lists it now, or None when it does not exist.
pub async fn read() -> Result<Option<String>, SetupError> {
    let ran = tool::run("nft", &["list", "table", "inet", TABLE], None).await?;
    if ran.success {
        Ok(Some(ran.stdout))
    } else if ran.stderr.contains("No such file or directory") {
        Ok(None)
    } else {
        Err(tool::failure("nft", &ran))
    }
}

pub async fn apply(steering: &Steering) -> Result<(), SetupError> {
    tool::run_ok("nft", &["-f", "-"], Some(&ruleset(steering))).await?;
    Ok(())
}

/// Removes our table; Ok(false) when there was none.
pub async fn remove() -> Result<bool, SetupError> {
    let existed = read().await?.is_some();
    tool::run_ok("nft", &["-f", "-"], Some(&delete())).await?;
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steering(local: &[&str], cluster: &[&str], health: u16) -> Steering {
        let settings = super::super::NetworkSettings {
            addresses: local.iter().map(|a| a.parse().unwrap()).collect(),
            cluster_ips: cluster.iter().map(|a| a.parse().unwrap()).collect(),
            health_port: health,
            ..Default::default()
        };
        Steering::new(&settings)
    }

    #[test]
    fn ipv4_with_a_cluster_ip() {
        let text = ruleset(&steering(&["169.254.20.10"], &["10.96.0.10"], 8080));
        assert_eq!(
            text,
            "table inet clusterdns-nodelocal {}\n\
             delete table inet clusterdns-nodelocal\n\
             table inet clusterdns-nodelocal {\n\
             \tchain raw-prerouting {\n\
             \t\ttype filter hook prerouting priority raw; policy accept;\n\
             \t\tip daddr { 169.254.20.10, 10.96.0.10 } udp dport 53 socket wildcard 0 notrack\n\
             \t\tip daddr { 169.254.20.10, 10.96.0.10 } tcp dport 53 tcp flags & (syn | ack) == syn socket wildcard 0 notrack\n\
             \t\tip daddr { 169.254.20.10, 10.96.0.10 } tcp dport 53 tcp flags & (syn | ack) != syn socket transparent 0 notrack\n\
             \t}\n\
             \tchain raw-output {\n\
             \t\ttype filter hook output priority raw; policy accept;\n\
             \t\tip saddr { 169.254.20.10, 10.96.0.10 } meta l4proto { tcp, udp } th sport 53 notrack\n\
             \t\tip daddr { 169.254.20.10 } meta l4proto { tcp, udp } th dport 53 notrack\n\
             \t\tip daddr { 169.254.20.10 } tcp dport 8080 notrack\n\
             \t\tip saddr { 169.254.20.10 } tcp sport 8080 notrack\n\
             \t}\n\
             \tchain filter-input {\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\tip daddr { 169.254.20.10, 10.96.0.10 } meta l4proto { tcp, udp } th dport 53 accept\n\
             \t}\n\
             \tchain filter-output {\n\
             \t\ttype filter hook output priority filter; policy accept;\n\
             \t\tip saddr { 169.254.20.10, 10.96.0.10 } meta l4proto { tcp, udp } th sport 53 accept\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn ipv6_only_cluster_ip_and_no_health_port() {
        // A family with only a ClusterIP gets no host-client or health rules: those are
        // for the cache's own addresses.
        let text = ruleset(&steering(&["169.254.20.10"], &["fd00:96::a"], 0));
        let v6: Vec<&str> = text.lines().filter(|l| l.contains("ip6 ")).collect();
        assert_eq!(
            v6,
            [
                "\t\tip6 daddr { fd00:96::a } udp dport 53 socket wildcard 0 notrack",
                "\t\tip6 daddr { fd00:96::a } tcp dport 53 tcp flags & (syn | ack) == syn socket wildcard 0 notrack",
                "\t\tip6 daddr { fd00:96::a } tcp dport 53 tcp flags & (syn | ack) != syn socket transparent 0 notrack",
                "\t\tip6 saddr { fd00:96::a } meta l4proto { tcp, udp } th sport 53 notrack",
                "\t\tip6 daddr { fd00:96::a } meta l4proto { tcp, udp } th dport 53 accept",
                "\t\tip6 saddr { fd00:96::a } meta l4proto { tcp, udp } th sport 53 accept",
            ]
        );
        assert!(!text.contains("8080"));
    }

    #[test]
    fn delete_works_whether_or_not_the_table_exists() {
        assert_eq!(
            delete(),
            "table inet clusterdns-nodelocal {}\ndelete table inet clusterdns-nodelocal\n"
        );
    }
}
