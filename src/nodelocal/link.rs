//! The link holding the node-local addresses, kept through rtnetlink: no `ip` binary is
//! needed, so this works in an image built from scratch.
//!
//! The link stays down, as node-cache's: the kernel adds local routes for its addresses
//! anyway, and a down link attracts no traffic of its own (IPv6 gets no link-local
//! address, no router solicitations).

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::{Handle, LinkDummy, LinkIfb};

use super::error::SetupError;
use super::settings::LinkKind;

/// What [`ensure_link`] had to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChanges {
    /// The link did not exist and was created.
    pub created: bool,
    /// Addresses that were missing and were added.
    pub added: Vec<IpAddr>,
    /// Addresses on the link that are not configured, removed.
    pub removed: Vec<IpAddr>,
}

impl LinkChanges {
    pub fn is_empty(&self) -> bool {
        !self.created && self.added.is_empty() && self.removed.is_empty()
    }
}

/// A netlink connection whose task ends with it.
struct Netlink {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Netlink {
    fn open() -> Result<Netlink, SetupError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(SetupError::Netlink)?;
        Ok(Netlink {
            handle,
            task: tokio::spawn(connection),
        })
    }

    /// The link's index, or None when there is no link by that name.
    async fn link_index(&self, name: &str) -> Result<Option<u32>, SetupError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(source) => Err(SetupError::LinkRead {
                name: name.to_owned(),
                source: Box::new(source),
            }),
        }
    }

    async fn addresses(&self, name: &str, index: u32) -> Result<Vec<AddressMessage>, SetupError> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|source| SetupError::LinkRead {
                name: name.to_owned(),
                source: Box::new(source),
            })
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Makes sure the link `name` exists and holds exactly `addresses` (as /32 and /128,
/// IPv6 without duplicate address detection so they are usable at once). Creates a
/// missing link, adds missing addresses, removes others; changes nothing when all is in
/// place.
pub async fn ensure_link(
    name: &str,
    kind: LinkKind,
    addresses: &[IpAddr],
) -> Result<LinkChanges, SetupError> {
    let netlink = Netlink::open()?;
    let mut changes = LinkChanges::default();
    let index = match netlink.link_index(name).await? {
        Some(index) => index,
        None => {
            create(&netlink.handle, name, kind).await?;
            changes.created = true;
            // The kernel picks the index; read it back (also covers a link that another
            // instance created at the same moment).
            netlink
                .link_index(name)
                .await?
                .ok_or_else(|| SetupError::LinkRead {
                    name: name.to_owned(),
                    source: Box::new(rtnetlink::Error::RequestFailed),
                })?
        }
    };
    let present = netlink.addresses(name, index).await?;
    let mut have = Vec::new();
    for message in present {
        let Some(address) = address_of(&message) else {
            continue;
        };
        let wanted = addresses.contains(&address) && message.header.prefix_len == full(address);
        if wanted {
            have.push(address);
        } else if !is_ipv6_link_local(address) {
            netlink
                .handle
                .address()
                .del(message)
                .execute()
                .await
                .map_err(|source| SetupError::AddressRemove {
                    name: name.to_owned(),
                    address,
                    source: Box::new(source),
                })?;
            changes.removed.push(address);
        }
    }
    for &address in addresses.iter().filter(|a| !have.contains(a)) {
        let mut request = netlink.handle.address().add(index, address, full(address));
        if address.is_ipv6() {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match request.execute().await {
            Ok(()) => changes.added.push(address),
            // Added by another instance between our read and this write.
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(source) => {
                return Err(SetupError::AddressAdd {
                    name: name.to_owned(),
                    address,
                    source: Box::new(source),
                });
            }
        }
    }
    Ok(changes)
}

/// Deletes the link (and so its addresses); Ok(false) when there was none.
pub async fn remove_link(name: &str) -> Result<bool, SetupError> {
    let netlink = Netlink::open()?;
    let Some(index) = netlink.link_index(name).await? else {
        return Ok(false);
    };
    match netlink.handle.link().del(index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(source) => Err(SetupError::LinkDelete {
            name: name.to_owned(),
            source: Box::new(source),
        }),
    }
}

async fn create(handle: &Handle, name: &str, kind: LinkKind) -> Result<(), SetupError> {
    let message = match kind {
        LinkKind::Dummy => LinkDummy::new(name).build(),
        LinkKind::Ifb => LinkIfb::new(name).build(),
    };
    match handle.link().add(message).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(source) => {
            // The kernel answers EOPNOTSUPP for a link kind it has no driver for.
            let hint = if errno(&source) == Some(libc::EOPNOTSUPP) && kind == LinkKind::Dummy {
                " (this kernel has no dummy driver: set link_kind = \"ifb\")"
            } else {
                ""
            };
            Err(SetupError::LinkAdd {
                name: name.to_owned(),
                kind: kind.as_str(),
                source: Box::new(source),
                hint,
            })
        }
    }
}

/// The positive errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// The address of an address message: IFA_LOCAL for IPv4 (IFA_ADDRESS is the peer on
/// point-to-point links), IFA_ADDRESS for IPv6.
fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(a) => return Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    address
}

fn full(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}

fn is_ipv6_link_local(address: IpAddr) -> bool {
    matches!(address, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

// Only the pure helpers are unit-tested here; creating links needs root in a network
// namespace, which the integration tests in tests/integration/nodelocal_steering.rs do.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_are_read_from_ifa_local() {
        let mut m = AddressMessage::default();
        m.attributes
            .push(AddressAttribute::Address("10.0.0.2".parse().unwrap()));
        m.attributes
            .push(AddressAttribute::Local("10.0.0.1".parse().unwrap()));
        assert_eq!(address_of(&m), Some("10.0.0.1".parse().unwrap()));
        let mut v6 = AddressMessage::default();
        v6.attributes
            .push(AddressAttribute::Address("fd00::1".parse().unwrap()));
        assert_eq!(address_of(&v6), Some("fd00::1".parse().unwrap()));
    }

    #[test]
    fn only_fe80_is_link_local() {
        assert!(is_ipv6_link_local("fe80::1".parse().unwrap()));
        assert!(!is_ipv6_link_local("fd00::1".parse().unwrap()));
        assert!(!is_ipv6_link_local("169.254.20.10".parse().unwrap()));
        assert_eq!(full("fd00::1".parse().unwrap()), 128);
    }
}
