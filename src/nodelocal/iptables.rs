//! The iptables backends (`iptables-nft` and `iptables-legacy`, with ip6tables for IPv6):
//! rules in chains of our own, jumped to from the top of the built-in chains.
//!
//! Each apply is one `iptables-restore --noflush` per family: declaring our chains
//! flushes them, the rules are appended again, and every jump to them that exists is
//! deleted before one is inserted at the top — so any number of applies leaves exactly
//! one copy of each rule and of each jump, without a check-then-add race. The legacy
//! backend commits each table at once; the nft one the whole input.

use std::fmt::Write;
use std::net::IpAddr;

use super::error::SetupError;
use super::steering::{Family, FamilyAddresses, Steering};
use super::tool;

/// Which iptables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Nft,
    Legacy,
}

/// One of our chains: its table, the built-in chain that jumps to it, its name (at most
/// 28 characters, iptables' limit).
#[derive(Debug, Clone, Copy)]
struct OwnChain {
    table: &'static str,
    builtin: &'static str,
    name: &'static str,
}

const CHAINS: [OwnChain; 4] = [
    OwnChain {
        table: "raw",
        builtin: "PREROUTING",
        name: "CLUSTERDNS-NODELOCAL-PRE",
    },
    OwnChain {
        table: "raw",
        builtin: "OUTPUT",
        name: "CLUSTERDNS-NODELOCAL-OUT",
    },
    OwnChain {
        table: "filter",
        builtin: "INPUT",
        name: "CLUSTERDNS-NODELOCAL-IN",
    },
    OwnChain {
        table: "filter",
        builtin: "OUTPUT",
        name: "CLUSTERDNS-NODELOCAL-OUT",
    },
];

const TABLES: [&str; 2] = ["raw", "filter"];

/// What of ours an `iptables-save` listing holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Present {
    /// Per entry of [`CHAINS`]: how many jumps to it its built-in chain holds.
    jumps: [usize; 4],
    /// Per entry of [`CHAINS`]: whether it exists.
    chains: [bool; 4],
    /// Every line of ours, with its table: equal listings mean equal rules.
    pub fingerprint: String,
}

impl Present {
    pub fn is_empty(&self) -> bool {
        self.fingerprint.is_empty()
    }
}

/// Reads an `iptables-save` listing (any tables).
pub fn parse_save(text: &str) -> Present {
    let mut present = Present::default();
    let mut table = "";
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim();
            continue;
        }
        let mut ours = false;
        for (i, c) in CHAINS.iter().enumerate() {
            if c.table != table {
                continue;
            }
            if line.split_whitespace().next() == Some(&format!(":{}", c.name)) {
                present.chains[i] = true;
                ours = true;
            } else if line == format!("-A {} -j {}", c.builtin, c.name) {
                present.jumps[i] += 1;
                ours = true;
            } else if line.starts_with(&format!("-A {} ", c.name)) {
                ours = true;
            }
        }
        if ours {
            let _ = writeln!(present.fingerprint, "{table}|{line}");
        }
    }
    present
}

/// The rules of each of [`CHAINS`] for one family, as iptables-save prints them.
fn rules(addresses: &FamilyAddresses, dns: u16, health: u16) -> [Vec<String>; 4] {
    let mut chains: [Vec<String>; 4] = Default::default();
    let [pre, raw_out, input, filter_out] = &mut chains;
    for a in addresses.all() {
        let a = host(a);
        for p in ["udp", "tcp"] {
            pre.push(format!(
                "-d {a} -p {p} -m {p} --dport {dns} -m socket --nowildcard -j NOTRACK"
            ));
        }
        for p in ["udp", "tcp"] {
            raw_out.push(format!("-s {a} -p {p} -m {p} --sport {dns} -j NOTRACK"));
        }
        for p in ["udp", "tcp"] {
            input.push(format!("-d {a} -p {p} -m {p} --dport {dns} -j ACCEPT"));
            filter_out.push(format!("-s {a} -p {p} -m {p} --sport {dns} -j ACCEPT"));
        }
    }
    for &a in &addresses.local {
        let a = host(a);
        for p in ["udp", "tcp"] {
            raw_out.push(format!("-d {a} -p {p} -m {p} --dport {dns} -j NOTRACK"));
        }
        if health != 0 {
            raw_out.push(format!("-d {a} -p tcp -m tcp --dport {health} -j NOTRACK"));
            raw_out.push(format!("-s {a} -p tcp -m tcp --sport {health} -j NOTRACK"));
        }
    }
    chains
}

fn host(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

/// The `iptables-restore --noflush` input that installs the rules for one family over
/// what `present` says exists.
pub fn install_text(
    addresses: &FamilyAddresses,
    dns: u16,
    health: u16,
    present: &Present,
) -> String {
    let rules = rules(addresses, dns, health);
    let mut text = String::new();
    for table in TABLES {
        let _ = writeln!(text, "*{table}");
        let ours = || CHAINS.iter().enumerate().filter(|(_, c)| c.table == table);
        for (_, c) in ours() {
            let _ = writeln!(text, ":{} - [0:0]", c.name);
        }
        for (i, c) in ours() {
            for _ in 0..present.jumps[i] {
                let _ = writeln!(text, "-D {} -j {}", c.builtin, c.name);
            }
            let _ = writeln!(text, "-I {} 1 -j {}", c.builtin, c.name);
        }
        for (i, c) in ours() {
            for rule in &rules[i] {
                let _ = writeln!(text, "-A {} {rule}", c.name);
            }
        }
        text.push_str("COMMIT\n");
    }
    text
}

/// The input that removes every jump and chain of ours `present` lists; None when there
/// is nothing (so no table is touched, not even created).
pub fn removal_text(present: &Present) -> Option<String> {
    let mut text = String::new();
    for table in TABLES {
        let ours: Vec<(usize, &OwnChain)> = CHAINS
            .iter()
            .enumerate()
            .filter(|(i, c)| c.table == table && (present.chains[*i] || present.jumps[*i] > 0))
            .collect();
        if ours.is_empty() {
            continue;
        }
        let _ = writeln!(text, "*{table}");
        for &(i, c) in &ours {
            for _ in 0..present.jumps[i] {
                let _ = writeln!(text, "-D {} -j {}", c.builtin, c.name);
            }
        }
        for &(i, c) in &ours {
            if present.chains[i] {
                // Declaring flushes it, so it can be deleted whatever it held.
                let _ = writeln!(text, ":{} - [0:0]", c.name);
                let _ = writeln!(text, "-X {}", c.name);
            }
        }
        text.push_str("COMMIT\n");
    }
    (!text.is_empty()).then_some(text)
}

fn save_tool(variant: Variant, family: Family) -> &'static str {
    match (variant, family) {
        (Variant::Nft, Family::V4) => "iptables-nft-save",
        (Variant::Nft, Family::V6) => "ip6tables-nft-save",
        (Variant::Legacy, Family::V4) => "iptables-legacy-save",
        (Variant::Legacy, Family::V6) => "ip6tables-legacy-save",
    }
}

fn restore_tool(variant: Variant, family: Family) -> &'static str {
    match (variant, family) {
        (Variant::Nft, Family::V4) => "iptables-nft-restore",
        (Variant::Nft, Family::V6) => "ip6tables-nft-restore",
        (Variant::Legacy, Family::V4) => "iptables-legacy-restore",
        (Variant::Legacy, Family::V6) => "ip6tables-legacy-restore",
    }
}

/// What of ours exists in the raw and filter tables of one family.
pub async fn read(variant: Variant, family: Family) -> Result<Present, SetupError> {
    let tool = save_tool(variant, family);
    let mut listing = String::new();
    for table in TABLES {
        listing.push_str(&tool::run_ok(tool, &["-t", table], None).await?);
    }
    Ok(parse_save(&listing))
}

/// Writes the rules of one family over what `present` says exists.
pub async fn apply(
    variant: Variant,
    family: Family,
    steering: &Steering,
    present: &Present,
) -> Result<(), SetupError> {
    let text = install_text(
        steering.family(family),
        steering.dns_port,
        steering.health_port,
        present,
    );
    restore(variant, family, &text).await
}

/// Removes every jump and chain of ours of one family; Ok(false) when there was none.
/// Reads every table without naming one, which for the legacy backend lists only the
/// tables that exist rather than creating raw and filter.
pub async fn remove(variant: Variant, family: Family) -> Result<bool, SetupError> {
    let listing = tool::run_ok(save_tool(variant, family), &[], None).await?;
    match removal_text(&parse_save(&listing)) {
        Some(text) => restore(variant, family, &text).await.map(|()| true),
        None => Ok(false),
    }
}

async fn restore(variant: Variant, family: Family, text: &str) -> Result<(), SetupError> {
    let tool = restore_tool(variant, family);
    tool::run_ok(tool, &["--noflush", "-w", "5"], Some(text)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(local: &[&str], cluster: &[&str]) -> FamilyAddresses {
        FamilyAddresses {
            local: local.iter().map(|a| a.parse().unwrap()).collect(),
            cluster: cluster.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn ipv4_install_over_nothing() {
        let text = install_text(
            &addresses(&["169.254.20.10"], &["10.96.0.10"]),
            53,
            8080,
            &Present::default(),
        );
        assert_eq!(
            text,
            "*raw\n\
             :CLUSTERDNS-NODELOCAL-PRE - [0:0]\n\
             :CLUSTERDNS-NODELOCAL-OUT - [0:0]\n\
             -I PREROUTING 1 -j CLUSTERDNS-NODELOCAL-PRE\n\
             -I OUTPUT 1 -j CLUSTERDNS-NODELOCAL-OUT\n\
             -A CLUSTERDNS-NODELOCAL-PRE -d 169.254.20.10/32 -p udp -m udp --dport 53 -m socket --nowildcard -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-PRE -d 169.254.20.10/32 -p tcp -m tcp --dport 53 -m socket --nowildcard -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-PRE -d 10.96.0.10/32 -p udp -m udp --dport 53 -m socket --nowildcard -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-PRE -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -m socket --nowildcard -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 169.254.20.10/32 -p udp -m udp --sport 53 -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 169.254.20.10/32 -p tcp -m tcp --sport 53 -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 10.96.0.10/32 -p udp -m udp --sport 53 -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 10.96.0.10/32 -p tcp -m tcp --sport 53 -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-OUT -d 169.254.20.10/32 -p udp -m udp --dport 53 -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-OUT -d 169.254.20.10/32 -p tcp -m tcp --dport 53 -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-OUT -d 169.254.20.10/32 -p tcp -m tcp --dport 8080 -j NOTRACK\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 169.254.20.10/32 -p tcp -m tcp --sport 8080 -j NOTRACK\n\
             COMMIT\n\
             *filter\n\
             :CLUSTERDNS-NODELOCAL-IN - [0:0]\n\
             :CLUSTERDNS-NODELOCAL-OUT - [0:0]\n\
             -I INPUT 1 -j CLUSTERDNS-NODELOCAL-IN\n\
             -I OUTPUT 1 -j CLUSTERDNS-NODELOCAL-OUT\n\
             -A CLUSTERDNS-NODELOCAL-IN -d 169.254.20.10/32 -p udp -m udp --dport 53 -j ACCEPT\n\
             -A CLUSTERDNS-NODELOCAL-IN -d 169.254.20.10/32 -p tcp -m tcp --dport 53 -j ACCEPT\n\
             -A CLUSTERDNS-NODELOCAL-IN -d 10.96.0.10/32 -p udp -m udp --dport 53 -j ACCEPT\n\
             -A CLUSTERDNS-NODELOCAL-IN -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j ACCEPT\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 169.254.20.10/32 -p udp -m udp --sport 53 -j ACCEPT\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 169.254.20.10/32 -p tcp -m tcp --sport 53 -j ACCEPT\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 10.96.0.10/32 -p udp -m udp --sport 53 -j ACCEPT\n\
             -A CLUSTERDNS-NODELOCAL-OUT -s 10.96.0.10/32 -p tcp -m tcp --sport 53 -j ACCEPT\n\
             COMMIT\n"
        );
    }

    /// A listing as ip6tables-save prints it after two jumps were left by someone.
    const V6_LISTING: &str = "# Generated by ip6tables-save\n*raw\n\
        :PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        :CLUSTERDNS-NODELOCAL-PRE - [0:0]\n\
        -A PREROUTING -j CLUSTERDNS-NODELOCAL-PRE\n\
        -A PREROUTING -j CLUSTERDNS-NODELOCAL-PRE\n\
        -A PREROUTING -p udp -j CT --notrack\n\
        -A CLUSTERDNS-NODELOCAL-PRE -d fd00:96::a/128 -p udp -m udp --dport 53 -m socket --nowildcard -j NOTRACK\n\
        COMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n";

    #[test]
    fn ipv6_install_deletes_every_jump_it_finds_before_inserting_one() {
        let present = parse_save(V6_LISTING);
        let text = install_text(&addresses(&[], &["fd00:96::a"]), 53, 8080, &present);
        let raw: Vec<&str> = text.lines().take_while(|l| *l != "COMMIT").collect();
        assert_eq!(
            raw,
            [
                "*raw",
                ":CLUSTERDNS-NODELOCAL-PRE - [0:0]",
                ":CLUSTERDNS-NODELOCAL-OUT - [0:0]",
                "-D PREROUTING -j CLUSTERDNS-NODELOCAL-PRE",
                "-D PREROUTING -j CLUSTERDNS-NODELOCAL-PRE",
                "-I PREROUTING 1 -j CLUSTERDNS-NODELOCAL-PRE",
                "-I OUTPUT 1 -j CLUSTERDNS-NODELOCAL-OUT",
                "-A CLUSTERDNS-NODELOCAL-PRE -d fd00:96::a/128 -p udp -m udp --dport 53 -m socket --nowildcard -j NOTRACK",
                "-A CLUSTERDNS-NODELOCAL-PRE -d fd00:96::a/128 -p tcp -m tcp --dport 53 -m socket --nowildcard -j NOTRACK",
                "-A CLUSTERDNS-NODELOCAL-OUT -s fd00:96::a/128 -p udp -m udp --sport 53 -j NOTRACK",
                "-A CLUSTERDNS-NODELOCAL-OUT -s fd00:96::a/128 -p tcp -m tcp --sport 53 -j NOTRACK",
            ]
        );
        // Only a ClusterIP: no host-client or health rules (they are for local addresses).
        assert!(!text.contains("8080") && !text.contains("--dport 53 -j NOTRACK"));
    }

    #[test]
    fn the_fingerprint_holds_only_our_lines() {
        let present = parse_save(V6_LISTING);
        assert_eq!(
            present.fingerprint,
            "raw|:CLUSTERDNS-NODELOCAL-PRE - [0:0]\n\
             raw|-A PREROUTING -j CLUSTERDNS-NODELOCAL-PRE\n\
             raw|-A PREROUTING -j CLUSTERDNS-NODELOCAL-PRE\n\
             raw|-A CLUSTERDNS-NODELOCAL-PRE -d fd00:96::a/128 -p udp -m udp --dport 53 -m socket --nowildcard -j NOTRACK\n"
        );
        assert!(parse_save("*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n").is_empty());
    }

    #[test]
    fn removal_touches_only_tables_that_hold_something_of_ours() {
        let text = removal_text(&parse_save(V6_LISTING)).unwrap();
        assert_eq!(
            text,
            "*raw\n\
             -D PREROUTING -j CLUSTERDNS-NODELOCAL-PRE\n\
             -D PREROUTING -j CLUSTERDNS-NODELOCAL-PRE\n\
             :CLUSTERDNS-NODELOCAL-PRE - [0:0]\n\
             -X CLUSTERDNS-NODELOCAL-PRE\n\
             COMMIT\n"
        );
        assert_eq!(removal_text(&Present::default()), None);
    }
}
