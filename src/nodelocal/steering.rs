//! What the steering rules cover, per IP family, whatever the backend writes them with.
//!
//! The rules, as verified in network namespaces (see the NodeLocal notes):
//! - request direction, pods → cache (PREROUTING, before conntrack): untracked **only
//!   while a socket is bound** to the address and port, so after a kill -9 the queries
//!   fall through to kube-proxy's DNAT and reach the cluster DNS (fail-open);
//! - reply direction, cache → clients (OUTPUT): untracked always, else replies from
//!   reused source ports collide with stale conntrack entries around a restart;
//! - host clients → `addresses` (OUTPUT): untracked always — no conditional match exists
//!   in OUTPUT, and the link-local address has no fallback anyway. Host clients of the
//!   ClusterIP stay tracked and go through kube-proxy, which fails open by itself;
//! - the health probe (host-local TCP to `addresses`): untracked both ways;
//! - filter: DNS to and from every address accepted.

use std::net::IpAddr;

use super::settings::NetworkSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(address: IpAddr) -> Family {
        if address.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// The addresses of one family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyAddresses {
    /// Answered only by the cache (e.g. 169.254.20.10).
    pub local: Vec<IpAddr>,
    /// ClusterIPs: the cache's while bound, kube-proxy's otherwise.
    pub cluster: Vec<IpAddr>,
}

impl FamilyAddresses {
    pub fn all(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.local.iter().chain(&self.cluster).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.cluster.is_empty()
    }
}

/// Everything the rules are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    pub v4: FamilyAddresses,
    pub v6: FamilyAddresses,
    pub dns_port: u16,
    /// 0: no rules for the health port.
    pub health_port: u16,
}

impl Steering {
    pub fn new(settings: &NetworkSettings) -> Steering {
        let mut steering = Steering {
            v4: FamilyAddresses::default(),
            v6: FamilyAddresses::default(),
            dns_port: settings.dns_port,
            health_port: settings.health_port,
        };
        for &a in &settings.addresses {
            steering.family_mut(Family::of(a)).local.push(a);
        }
        for &a in &settings.cluster_ips {
            steering.family_mut(Family::of(a)).cluster.push(a);
        }
        steering
    }

    pub fn family(&self, family: Family) -> &FamilyAddresses {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    fn family_mut(&mut self, family: Family) -> &mut FamilyAddresses {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_sorted_by_family_and_role() {
        let settings = NetworkSettings {
            addresses: vec![
                "169.254.20.10".parse().unwrap(),
                "fd00:20::10".parse().unwrap(),
            ],
            cluster_ips: vec!["fd00:96::a".parse().unwrap()],
            ..NetworkSettings::default()
        };
        let s = Steering::new(&settings);
        assert_eq!(s.v4.local, ["169.254.20.10".parse::<IpAddr>().unwrap()]);
        assert!(s.v4.cluster.is_empty());
        assert_eq!(s.v6.all().count(), 2);
        assert_eq!(
            s.family(Family::V6).cluster,
            ["fd00:96::a".parse::<IpAddr>().unwrap()]
        );
        assert!(!s.v6.is_empty());
    }
}
