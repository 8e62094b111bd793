//! A hosts table: lines in `/etc/hosts` form (an address, then its names; `#` starts a
//! comment) read into the two maps the stage answers from: name → addresses and
//! address → names (for PTR). Names are kept as lower-case wire names, so a query's
//! name is looked up without allocating.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::ZoneName;

/// One line: an address and its names (lower-case wire form), in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: IpAddr,
    pub names: Vec<Box<[u8]>>,
}

/// Reads one line; `None` for a blank or comment line, `Err` with the reason for a line
/// that is neither.
pub fn parse_line(line: &str) -> Result<Option<HostEntry>, String> {
    let line = line.split('#').next().unwrap_or_default();
    let mut fields = line.split_whitespace();
    let Some(addr) = fields.next() else {
        return Ok(None);
    };
    // A scoped IPv6 address (fe80::1%eth0) answers as the address (as CoreDNS reads it).
    let bare = addr.split('%').next().unwrap_or(addr);
    let ip: IpAddr = bare
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let mut names = Vec::new();
    for name in fields {
        let zone = ZoneName::parse(name)
            .filter(|z| !z.labels.is_empty())
            .ok_or_else(|| format!("{name:?} is not a host name"))?;
        names.push(zone.wire);
    }
    if names.is_empty() {
        return Err(format!("{addr} has no name after it"));
    }
    Ok(Some(HostEntry { ip, names }))
}

/// Reads a whole file's text; the error names the line (counted from 1).
pub fn parse_text(text: &str) -> Result<Vec<HostEntry>, (usize, String)> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(e) = parse_line(line).map_err(|reason| (i + 1, reason))? {
            entries.push(e);
        }
    }
    Ok(entries)
}

/// The addresses of one name, each family in the order written.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Addresses {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

/// What the stage answers from.
#[derive(Debug, Default)]
pub struct Table {
    names: HashMap<Box<[u8]>, Addresses>,
    /// Empty with `no_reverse`.
    reverse: HashMap<IpAddr, Vec<Box<[u8]>>>,
}

impl Table {
    /// The table of `entries` (an address listed twice for a name counts once).
    pub fn new<'e>(entries: impl IntoIterator<Item = &'e HostEntry>, reverse: bool) -> Table {
        let mut table = Table::default();
        for e in entries {
            for name in &e.names {
                let a = table.names.entry(name.clone()).or_default();
                match e.ip {
                    IpAddr::V4(ip) if !a.v4.contains(&ip) => a.v4.push(ip),
                    IpAddr::V6(ip) if !a.v6.contains(&ip) => a.v6.push(ip),
                    _ => {}
                }
                if reverse {
                    let names = table.reverse.entry(e.ip).or_default();
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
            }
        }
        table
    }

    /// The addresses of a name given as a lower-case wire name.
    pub fn addresses(&self, wire: &[u8]) -> Option<&Addresses> {
        self.names.get(wire)
    }

    /// The names of an address (wire form), for PTR.
    pub fn names_of(&self, ip: IpAddr) -> &[Box<[u8]>] {
        self.reverse.get(&ip).map_or(&[], |n| n.as_slice())
    }

    /// How many names the table holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The address a reverse name stands for (`4.3.2.1.in-addr.arpa`, 32 nibbles then
/// `ip6.arpa`); `None` for any other name. `labels` are lower-case.
pub fn reverse_address(labels: &[&[u8]]) -> Option<IpAddr> {
    match labels {
        [a, b, c, d, b"in-addr", b"arpa"] => {
            let octet = |l: &[u8]| -> Option<u8> {
                let text = std::str::from_utf8(l).ok()?;
                // "01" is not how an octet is written in a reverse name.
                (text.len() == 1 || !text.starts_with('0'))
                    .then(|| text.parse().ok())
                    .flatten()
            };
            Some(IpAddr::V4(Ipv4Addr::new(
                octet(d)?,
                octet(c)?,
                octet(b)?,
                octet(a)?,
            )))
        }
        [nibbles @ .., b"ip6", b"arpa"] if nibbles.len() == 32 => {
            let mut bits: u128 = 0;
            for l in nibbles.iter().rev() {
                let [n] = l else { return None };
                let v = (*n as char).to_digit(16)?;
                bits = (bits << 4) | u128::from(v);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bits)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(name: &str) -> Box<[u8]> {
        ZoneName::parse(name).unwrap().wire
    }

    #[test]
    fn reads_hosts_lines() {
        let text = "# comment\n\n127.0.0.1 localhost\n10.0.0.1\tdb.example DB  # primary\n\
                    fd00::1 db.example\nfe80::1%eth0 link.local\n10.0.0.2 db.example\n";
        let entries = parse_text(text).unwrap();
        assert_eq!(entries.len(), 5);
        let t = Table::new(&entries, true);
        let db = t.addresses(&wire("db.example")).unwrap();
        assert_eq!(
            db.v4,
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert_eq!(db.v6, ["fd00::1".parse::<Ipv6Addr>().unwrap()]);
        // Names are matched whatever their case.
        assert!(t.addresses(&wire("db")).is_some());
        assert!(t.addresses(&wire("link.local")).is_some());
        assert_eq!(
            t.names_of("10.0.0.1".parse().unwrap()),
            [wire("db.example"), wire("db")]
        );
        let t = Table::new(&entries, false);
        assert!(t.names_of("10.0.0.1".parse().unwrap()).is_empty());
    }

    #[test]
    fn a_bad_line_is_named() {
        assert_eq!(
            parse_text("127.0.0.1 localhost\nlocalhost 127.0.0.1\n").unwrap_err(),
            (2, "\"localhost\" is not an IP address".to_string())
        );
        assert_eq!(parse_text("10.0.0.1\n").unwrap_err().0, 1);
        assert!(parse_line("10.0.0.1 bad..name").is_err());
    }

    #[test]
    fn reverse_names() {
        let labels =
            |n: &str| -> Vec<Vec<u8>> { n.split('.').map(|l| l.as_bytes().to_vec()).collect() };
        let of = |n: &str| {
            let owned = labels(n);
            let refs: Vec<&[u8]> = owned.iter().map(|l| l.as_slice()).collect();
            reverse_address(&refs)
        };
        assert_eq!(
            of("1.0.0.10.in-addr.arpa"),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(of("01.0.0.10.in-addr.arpa"), None);
        assert_eq!(of("0.0.10.in-addr.arpa"), None);
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(of(v6), Some("fd00::1".parse().unwrap()));
        assert_eq!(of("example.com"), None);
    }
}
