//! What this binary is: version, commit and compiler (stamped by build.rs).

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("CLUSTERDNS_COMMIT");
pub const RUSTC: &str = env!("CLUSTERDNS_RUSTC");
/// `--version`: `0.1.0 (commit 1a2b3c4d5e6f, rustc 1.95.0 …)`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CLUSTERDNS_COMMIT"),
    ", ",
    env!("CLUSTERDNS_RUSTC"),
    ")"
);
