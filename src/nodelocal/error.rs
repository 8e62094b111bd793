//! Why a step of the network setup failed, sorted into node-cache's error types so the
//! mode can count `coredns_nodecache_setup_errors_total{errortype}` as node-cache does.

use std::net::IpAddr;

/// node-cache's `errortype` label values that network setup can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A firewall tool (nft or iptables) failed.
    Iptables,
    /// iptables could not take the xtables lock in time.
    IptablesLock,
    /// The link or one of its addresses could not be created.
    InterfaceAdd,
    /// The link or its addresses could not be read.
    InterfaceCheck,
}

impl ErrorType {
    pub fn label(self) -> &'static str {
        match self {
            ErrorType::Iptables => "iptables",
            ErrorType::IptablesLock => "iptables_lock",
            ErrorType::InterfaceAdd => "interface_add",
            ErrorType::InterfaceCheck => "interface_check",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot run {tool}: {source}")]
    ToolUnavailable {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("{tool} failed: {message}")]
    ToolFailed { tool: &'static str, message: String },
    #[error("{tool}: the xtables lock is held by another program: {message}")]
    XtablesLock { tool: &'static str, message: String },
    #[error("cannot open a netlink socket: {0}")]
    Netlink(std::io::Error),
    #[error("cannot read link {name}: {source}")]
    LinkRead {
        name: String,
        source: Box<rtnetlink::Error>,
    },
    #[error("cannot create link {name} of kind {kind}: {source}{hint}")]
    LinkAdd {
        name: String,
        kind: &'static str,
        source: Box<rtnetlink::Error>,
        /// A way out when the kernel lacks the driver.
        hint: &'static str,
    },
    #[error("cannot delete link {name}: {source}")]
    LinkDelete {
        name: String,
        source: Box<rtnetlink::Error>,
    },
    #[error("cannot add address {address} to link {name}: {source}")]
    AddressAdd {
        name: String,
        address: IpAddr,
        source: Box<rtnetlink::Error>,
    },
    #[error("cannot remove address {address} from link {name}: {source}")]
    AddressRemove {
        name: String,
        address: IpAddr,
        source: Box<rtnetlink::Error>,
    },
}

impl SetupError {
    /// The label under which node-cache counts this error.
    pub fn error_type(&self) -> ErrorType {
        match self {
            SetupError::ToolUnavailable { .. } | SetupError::ToolFailed { .. } => {
                ErrorType::Iptables
            }
            SetupError::XtablesLock { .. } => ErrorType::IptablesLock,
            SetupError::LinkAdd { .. }
            | SetupError::AddressAdd { .. }
            | SetupError::AddressRemove { .. }
            | SetupError::LinkDelete { .. } => ErrorType::InterfaceAdd,
            SetupError::Netlink(_) | SetupError::LinkRead { .. } => ErrorType::InterfaceCheck,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_a_node_cache_label() {
        let lock = SetupError::XtablesLock {
            tool: "iptables-restore",
            message: "Another app is currently holding the xtables lock".into(),
        };
        assert_eq!(lock.error_type().label(), "iptables_lock");
        let failed = SetupError::ToolFailed {
            tool: "nft",
            message: "Operation not permitted".into(),
        };
        assert_eq!(failed.error_type().label(), "iptables");
        let read = SetupError::Netlink(std::io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(read.error_type().label(), "interface_check");
        let add = SetupError::LinkAdd {
            name: "nodelocaldns".into(),
            kind: "dummy",
            source: Box::new(rtnetlink::Error::RequestFailed),
            hint: "",
        };
        assert_eq!(add.error_type().label(), "interface_add");
    }
}
