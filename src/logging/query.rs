//! The query log: one line per query, in CoreDNS's `log` plugin format (the default, so
//! pipelines that parse CoreDNS's lines keep working) or as tracing fields.
//!
//! [`QueryLine`] holds plain values, filled in by `server::observe` from what the driver
//! saw (nothing here reads a packet); rendering it ([`QueryLine::coredns`]) does not
//! care where the values come from.

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::wire::Rcode;

/// The target of query-log events in CoreDNS's format: the text log prints their message
/// alone, after `[INFO] `, as CoreDNS does.
pub const COREDNS_TARGET: &str = "clusterdns::query::coredns";

/// `[log] query_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryLogFormat {
    /// CoreDNS's default (`{common}`) format: `[INFO] {remote}:{port} - {>id} "{type}
    /// {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize}
    /// {duration}`.
    #[default]
    Coredns,
    /// A `query` event with one tracing field per value (and the plugin that answered).
    Fields,
}

/// What the response said, when one was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// Extended rcode: the header's four bits and the OPT record's upper eight.
    pub rcode: u16,
    /// The header's flags word.
    pub flags: u16,
    pub size: usize,
    /// The stage that answered, as the metrics' `plugin` label names it.
    pub plugin: &'static str,
}

/// One logged query, in plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLine {
    pub peer: SocketAddr,
    pub id: Option<u16>,
    /// Lower-cased and escaped as in a zone file (`\.`, `\"`, `\032` …), ending in a dot;
    /// `None` when the packet held no readable question.
    pub name: Option<String>,
    pub qtype: Option<u16>,
    pub qclass: Option<u16>,
    /// Over TCP (else UDP).
    pub tcp: bool,
    pub size: usize,
    pub dnssec_ok: bool,
    /// The client's EDNS buffer size (512 without EDNS); 65535 over TCP, as CoreDNS says.
    pub bufsize: u16,
    /// `None`: dropped without an answer.
    pub answered: Option<Answered>,
    pub duration: Duration,
}

impl QueryLine {
    /// The line in CoreDNS's format, without the `[INFO] ` the log adds.
    pub fn coredns(&self) -> CoreDnsLine<'_> {
        CoreDnsLine(self)
    }

    pub fn proto(&self) -> &'static str {
        if self.tcp { "tcp" } else { "udp" }
    }

    /// `-` for a value that is not there, as CoreDNS prints it.
    pub fn type_name(&self) -> String {
        self.qtype.map_or_else(|| "-".into(), type_name)
    }

    pub fn class_name(&self) -> String {
        self.qclass.map_or_else(|| "-".into(), class_name)
    }

    pub fn name_or_dash(&self) -> &str {
        self.name.as_deref().unwrap_or("-")
    }

    pub fn rcode_name(&self) -> String {
        self.answered
            .map_or_else(|| "-".into(), |a| rcode_name(a.rcode))
    }

    pub fn flags_text(&self) -> String {
        self.answered.map_or_else(|| "-".into(), |a| flags(a.flags))
    }

    /// Logs the line in `format`.
    pub fn log(&self, format: QueryLogFormat) {
        match format {
            QueryLogFormat::Coredns => {
                tracing::info!(target: COREDNS_TARGET, "{}", self.coredns());
            }
            QueryLogFormat::Fields => {
                let response_size = self.answered.map(|a| a.size);
                let plugin = self.answered.map_or("", |a| a.plugin);
                tracing::info!(
                    target: "clusterdns::query",
                    client = %self.peer, id = self.id, proto = self.proto(),
                    name = self.name_or_dash(), qtype = %self.type_name(),
                    qclass = %self.class_name(), rcode = %self.rcode_name(),
                    flags = %self.flags_text(), request_size = self.size, response_size,
                    dnssec_ok = self.dnssec_ok, bufsize = self.bufsize, plugin,
                    duration_us = self.duration.as_micros() as u64,
                    "{}", if self.answered.is_some() { "query" } else { "query dropped" }
                );
            }
        }
    }
}

/// [`QueryLine`] displayed as CoreDNS's `{common}` format.
pub struct CoreDnsLine<'a>(&'a QueryLine);

impl fmt::Display for CoreDnsLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = self.0;
        // CoreDNS writes an IPv6 client as RFC 3986 does, in brackets.
        match q.peer {
            SocketAddr::V4(a) => write!(f, "{}:{}", a.ip(), a.port())?,
            SocketAddr::V6(a) => write!(f, "[{}]:{}", a.ip(), a.port())?,
        }
        match q.id {
            Some(id) => write!(f, " - {id} ")?,
            None => f.write_str(" - - ")?,
        }
        write!(
            f,
            "\"{} {} {} {} {} {} {}\" ",
            q.type_name(),
            q.class_name(),
            q.name_or_dash(),
            q.proto(),
            q.size,
            q.dnssec_ok,
            q.bufsize
        )?;
        match q.answered {
            Some(a) => write!(f, "{} {} {} ", rcode_name(a.rcode), flags(a.flags), a.size)?,
            None => f.write_str("- - - ")?,
        }
        // Seconds with every significant digit and no exponent, as Go's
        // `FormatFloat(s, 'f', -1, 64)` that CoreDNS uses: 0.000123s.
        write!(f, "{}s", q.duration.as_secs_f64())
    }
}

/// The name as a zone file writes it: lower case (CoreDNS logs `state.Name()`, which is
/// lower-cased), special characters escaped so that a label cannot break the line.
pub fn presentation(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        let label = wire
            .get(pos + 1..pos + 1 + len as usize)
            .unwrap_or_default();
        for &b in label {
            let b = b.to_ascii_lowercase();
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(b as char);
                }
                0x21..=0x7e => out.push(b as char),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
        pos += 1 + len as usize;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Mnemonics of the types a DNS server sees asked, else `TYPEn` (RFC 3597), as CoreDNS.
pub fn type_name(t: u16) -> String {
    let name = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return format!("TYPE{t}"),
    };
    name.to_owned()
}

pub fn class_name(c: u16) -> String {
    match c {
        1 => "IN".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        _ => format!("CLASS{c}"),
    }
}

/// Rcode mnemonics of RFC 6895 §2.3; others as their number, as CoreDNS prints them.
pub fn rcode_name(code: u16) -> String {
    let rcode = Rcode::from_parts((code & 0x0f) as u8, (code >> 4) as u8);
    rcode
        .mnemonic()
        .map_or_else(|| code.to_string(), str::to_owned)
}

/// The response's flags, in CoreDNS's order and spelling: `qr,aa,tc,rd,ra,z,ad,cd`.
fn flags(word: u16) -> String {
    let mut out = String::new();
    for (bit, name) in [
        (0x8000, "qr"),
        (0x0400, "aa"),
        (0x0200, "tc"),
        (0x0100, "rd"),
        (0x0080, "ra"),
        (0x0040, "z"),
        (0x0020, "ad"),
        (0x0010, "cd"),
    ] {
        if word & bit != 0 {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> QueryLine {
        QueryLine {
            peer: "127.0.0.1:40000".parse().unwrap(),
            id: Some(1234),
            name: Some("example.org.".into()),
            qtype: Some(1),
            qclass: Some(1),
            tcp: false,
            size: 45,
            dnssec_ok: false,
            bufsize: 4096,
            answered: Some(Answered {
                rcode: 0,
                flags: 0x8180,
                size: 68,
                plugin: "forward",
            }),
            duration: Duration::from_nanos(123_000),
        }
    }

    #[test]
    fn renders_coredns_common_format() {
        assert_eq!(
            line().coredns().to_string(),
            r#"127.0.0.1:40000 - 1234 "A IN example.org. udp 45 false 4096" NOERROR qr,rd,ra 68 0.000123s"#
        );
        let mut l = line();
        l.peer = "[::1]:53000".parse().unwrap();
        l.qtype = Some(65280);
        l.qclass = Some(3);
        l.tcp = true;
        l.bufsize = u16::MAX;
        l.dnssec_ok = true;
        l.answered = None;
        l.duration = Duration::from_millis(1500);
        assert_eq!(
            l.coredns().to_string(),
            r#"[::1]:53000 - 1234 "TYPE65280 CH example.org. tcp 45 true 65535" - - - 1.5s"#
        );
    }

    #[test]
    fn names_are_written_as_a_zone_file_would() {
        assert_eq!(presentation(b"\x03a b\x02\x01.\x00"), "a\\032b.\\001\\..");
        assert_eq!(presentation(b"\x03Web\x04Ex\"a\x00"), "web.ex\\\"a.");
        assert_eq!(presentation(b"\x00"), ".");
    }
}
