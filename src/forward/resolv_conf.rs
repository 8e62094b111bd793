//! Upstreams from `/etc/resolv.conf`: its `nameserver` lines, port 53.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Reads the nameservers of a resolv.conf file.
pub fn nameservers(path: &Path) -> std::io::Result<Vec<SocketAddr>> {
    Ok(parse(&std::fs::read_to_string(path)?))
}

pub fn parse(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        // A scoped IPv6 address (fe80::1%eth0) keeps its address, loses its scope.
        .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_nameserver_lines() {
        let text = "# comment\nsearch svc.cluster.local\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:5\nnameserver bogus\n";
        let got = super::parse(text);
        assert_eq!(
            got,
            [
                "10.0.0.2:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }
}
