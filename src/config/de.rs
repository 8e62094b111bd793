//! Deserialisers shared by the sections: durations in seconds or milliseconds, and lists
//! of zone names.

use serde::{Deserialize, Deserializer, de};

use crate::wire::ZoneName;

pub(super) mod seconds {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// The shortest interval or timeout in milliseconds a section accepts: below it, timers
/// cost more than they measure.
pub(super) const MIN_MILLIS: std::time::Duration = std::time::Duration::from_millis(10);

pub(super) mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

pub(super) fn zone_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ZoneName>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|z| {
            ZoneName::parse(z)
                .ok_or_else(|| de::Error::custom(format!("{z:?} is not a valid zone name")))
        })
        .collect()
}

/// An address, or `""` for "off" (the HTTP endpoints' `listen` keys).
pub(super) fn optional_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        de::Error::custom(format!(
            "{text:?} is not an address (IP:PORT or [IPv6]:PORT), nor \"\" for off"
        ))
    })
}
