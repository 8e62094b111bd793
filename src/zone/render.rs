//! Records and types as people write them (`web.shop.svc.cluster.local. 30 IN A
//! 10.96.0.1`, `SRV`), for explanations.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::answer::{parse_response, read_name};
use crate::wire::rtype;

const TYPES: [(u16, &str); 11] = [
    (rtype::A, "A"),
    (rtype::NS, "NS"),
    (rtype::CNAME, "CNAME"),
    (rtype::SOA, "SOA"),
    (rtype::PTR, "PTR"),
    (rtype::MX, "MX"),
    (rtype::TXT, "TXT"),
    (rtype::AAAA, "AAAA"),
    (rtype::SRV, "SRV"),
    (rtype::HTTPS, "HTTPS"),
    (rtype::ANY, "ANY"),
];

/// `A`, `srv`, `TYPE65` or `65`; `None` for anything else.
pub fn parse_type(text: &str) -> Option<u16> {
    let upper = text.to_ascii_uppercase();
    if let Some((t, _)) = TYPES.iter().find(|(_, n)| *n == upper) {
        return Some(*t);
    }
    upper.strip_prefix("TYPE").unwrap_or(&upper).parse().ok()
}

pub fn type_name(t: u16) -> String {
    TYPES
        .iter()
        .find(|(v, _)| *v == t)
        .map_or_else(|| format!("TYPE{t}"), |(_, n)| (*n).to_owned())
}

/// The answer section of a response, one record a line.
pub fn render_answers(message: &[u8]) -> Vec<String> {
    let Some(layout) = parse_response(message) else {
        return Vec::new();
    };
    let m = &layout.message;
    layout
        .records
        .iter()
        .filter(|r| r.section == 0)
        .filter_map(|r| {
            let owner = name_at(m, r.start as usize)?;
            let at = r.rdata_at as usize;
            let len = u16::from_be_bytes([m[at - 2], m[at - 1]]) as usize;
            let raw = m.get(at..at + len)?;
            let rdata = match r.rtype {
                rtype::A => Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?).to_string(),
                rtype::AAAA => Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?).to_string(),
                rtype::CNAME | rtype::NS | rtype::PTR => name_at(m, at)?,
                rtype::SRV => {
                    let n = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
                    format!("{} {} {} {}", n(0), n(2), n(4), name_at(m, at + 6)?)
                }
                rtype::TXT => format!("\"{}\"", String::from_utf8_lossy(raw.get(1..)?)),
                _ => {
                    let mut hex = format!("\\# {len} ");
                    for b in raw {
                        let _ = write!(hex, "{b:02x}");
                    }
                    hex
                }
            };
            Some(format!(
                "{owner} {} IN {} {rdata}",
                r.ttl,
                type_name(r.rtype)
            ))
        })
        .collect()
}

/// The name at `pos`, dotted with a trailing dot.
fn name_at(m: &[u8], pos: usize) -> Option<String> {
    let mut wire = Vec::new();
    read_name(m, pos, &mut wire)?;
    let mut out = String::new();
    let mut i = 0;
    while let Some(&len) = wire.get(i).filter(|l| **l > 0) {
        out.push_str(&String::from_utf8_lossy(
            wire.get(i + 1..i + 1 + len as usize)?,
        ));
        out.push('.');
        i += 1 + len as usize;
    }
    if out.is_empty() {
        out.push('.');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_and_print() {
        assert_eq!(parse_type("srv"), Some(rtype::SRV));
        assert_eq!(parse_type("TYPE65"), Some(65));
        assert_eq!(parse_type("12"), Some(12));
        assert_eq!(parse_type("nope"), None);
        assert_eq!(type_name(rtype::AAAA), "AAAA");
        assert_eq!(type_name(99), "TYPE99");
    }
}
