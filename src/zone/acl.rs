//! Address lists (`10.0.0.0/8`, `127.0.0.1`): who may take a zone transfer.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address prefix. A bare address is a prefix of its full length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Whether `ip` lies in the prefix. An IPv4 client seen through a dual-stack socket
    /// (`::ffff:10.0.0.1`) matches IPv4 prefixes.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("prefix length {l:?} is not in 0..={max}"))?,
        };
        let cidr = Cidr { addr, len };
        // A prefix written with host bits set is most likely a typo for another prefix.
        let network = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        if network != addr {
            return Err(format!(
                "{text} has host bits set (the prefix is {network}/{len})"
            ));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_hold_their_addresses() {
        assert!(c("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(c("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!c("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(c("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(!c("0.0.0.0/0").contains(ip("::1")));
        assert!(c("fd00::/8").contains(ip("fd12::1")));
        assert!(c("10.0.0.0/8").contains(ip("::ffff:10.1.1.1")));
        assert!(c("::/0").contains(ip("::1")));
    }

    #[test]
    fn refuses_what_is_not_a_prefix() {
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "nope", "10.0.0.0/x", "::1/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(c("10.0.0.0/8").to_string(), "10.0.0.0/8");
    }
}
