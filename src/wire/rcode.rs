//! Response codes, record types and classes: the numbers of the wire, with names.

/// A response code, extended ones included: the low four bits go in the header, the upper
/// eight in the OPT record (RFC 6891 §6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rcode(u16);

impl Rcode {
    pub const NOERROR: Rcode = Rcode(0);
    pub const FORMERR: Rcode = Rcode(1);
    pub const SERVFAIL: Rcode = Rcode(2);
    pub const NXDOMAIN: Rcode = Rcode(3);
    pub const NOTIMP: Rcode = Rcode(4);
    pub const REFUSED: Rcode = Rcode(5);
    /// Extended rcode 16: an EDNS version we do not speak.
    pub const BADVERS: Rcode = Rcode(16);

    /// The code of a message: its header's four bits and the OPT record's eight (0 when
    /// there is no OPT record).
    pub fn from_parts(header: u8, extended: u8) -> Rcode {
        Rcode(u16::from(extended) << 4 | u16::from(header & 0x0f))
    }

    /// The code in a message's header (the low four bits of its fourth byte); `None` for a
    /// message shorter than a header.
    pub fn of_header(message: &[u8]) -> Option<Rcode> {
        message.get(3).map(|b| Rcode::from_parts(*b, 0))
    }

    /// The four bits that go in the header.
    pub fn header_bits(self) -> u8 {
        (self.0 & 0x0f) as u8
    }

    /// The eight bits that go in the OPT record's TTL.
    pub fn extended_bits(self) -> u8 {
        (self.0 >> 4) as u8
    }

    pub fn value(self) -> u16 {
        self.0
    }

    /// As metric labels spell it: the mnemonic, or "other" for a code without one.
    pub fn name(self) -> &'static str {
        self.mnemonic().unwrap_or("other")
    }

    /// The mnemonic of RFC 6895 §2.3, as CoreDNS prints it; `None` for an unnamed code.
    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            16 => "BADVERS",
            23 => "BADCOOKIE",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Rcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Record types the server knows by name, as their wire numbers.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
}

/// Class IN, the only class served; ANY (255) is accepted as a synonym in questions.
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_codes_split_between_header_and_opt() {
        assert_eq!(Rcode::BADVERS.header_bits(), 0);
        assert_eq!(Rcode::BADVERS.extended_bits(), 1);
        assert_eq!(Rcode::from_parts(0, 1), Rcode::BADVERS);
        assert_eq!(Rcode::from_parts(0x83, 0), Rcode::NXDOMAIN);
        assert_eq!(Rcode::of_header(&[0, 0, 0x81, 0x85]), Some(Rcode::REFUSED));
        assert_eq!(Rcode::of_header(&[0, 0]), None);
        assert_eq!(Rcode::from_parts(9, 0).mnemonic(), Some("NOTAUTH"));
        assert_eq!(Rcode::from_parts(12, 0).name(), "other");
    }
}
