//! The links of a service name: the service, then the endpoint, port or topology below it.

use super::{Missing, Walk, text};
use crate::zone::names::ZonalMode;
use crate::zone::objects::Port;
use crate::zone::view::{ServiceKind, ServiceView};

/// A name below a service.
#[derive(Clone, Copy)]
pub(super) enum Below<'a> {
    Endpoint(&'a [u8]),
    Port(&'a [u8], &'a [u8]),
    Zonal(&'a [u8], ZonalMode),
}

impl Walk<'_, '_> {
    pub(super) fn service(&mut self, ns: &[u8], name: &[u8], below: Option<Below<'_>>) {
        if !self.namespace(ns) {
            return;
        }
        let zone = self.zone;
        zone.with_service(ns, name, |view| match view {
            None => self.no_service(ns, name),
            Some(view) => self.service_view(ns, name, view, below),
        });
    }

    fn no_service(&mut self, ns: &[u8], name: &[u8]) {
        let key = (text(ns), text(name));
        let hidden = self.hidden.is_some_and(|h| h.contains(&key));
        match self.settings.exposure.labels.as_deref() {
            Some(selector) if hidden => self.miss(
                Missing::ServiceExcludedByLabels,
                format!(
                    "service {}/{} exists but the `labels` selector {selector:?} leaves it out",
                    key.0, key.1
                ),
            ),
            Some(selector) => self.miss(
                Missing::ServiceUnknown,
                format!(
                    "no service {} in namespace {} (a `labels` selector {selector:?} is set: \
                     services that do not match it are not seen)",
                    key.1, key.0
                ),
            ),
            None => self.miss(
                Missing::ServiceUnknown,
                format!("no service {} in namespace {}", key.1, key.0),
            ),
        }
    }

    fn service_view(
        &mut self,
        ns: &[u8],
        name: &[u8],
        view: &ServiceView,
        below: Option<Below<'_>>,
    ) {
        let id = format!("{}/{}", text(ns), text(name));
        let ready: Vec<String> = view
            .endpoints
            .iter()
            .map(|e| format!("{}={}", e.name, e.addr))
            .collect();
        match &view.kind {
            ServiceKind::ClusterIp { v4, v6 } => {
                let ips: Vec<String> = v4
                    .iter()
                    .map(|a| a.to_string())
                    .chain(v6.iter().map(|a| a.to_string()))
                    .collect();
                self.e
                    .found
                    .push(format!("service {id}: ClusterIP {}", ips.join(", ")));
            }
            ServiceKind::Headless => self.e.found.push(format!("service {id}: headless")),
            ServiceKind::ExternalName(_) => {
                self.e.found.push(format!("service {id}: ExternalName"))
            }
            ServiceKind::ExternalNameInvalid => {
                return self.miss(
                    Missing::ExternalNameInvalid,
                    format!(
                        "service {id} is an ExternalName whose target is an IP or not a valid name"
                    ),
                );
            }
        }
        let headless = matches!(view.kind, ServiceKind::Headless);
        let external = matches!(view.kind, ServiceKind::ExternalName(_));
        if external && below.is_some() {
            return self.miss(
                Missing::BelowExternalName,
                format!("{id} is an ExternalName service: no names exist below it"),
            );
        }
        let no_ready = |w: &mut Self| {
            let slices = if view.slices.is_empty() {
                format!(
                    "no EndpointSlice labelled kubernetes.io/service-name={} was seen",
                    text(name)
                )
            } else {
                let seen: Vec<String> = view
                    .slices
                    .iter()
                    .map(|s| format!("{} ({} endpoints, {} ready)", s.name, s.endpoints, s.ready))
                    .collect();
                format!("slices seen: {}", seen.join(", "))
            };
            w.miss(
                Missing::HeadlessNoReadyEndpoint,
                format!("headless service {id} has no ready endpoint; {slices}"),
            );
        };
        match below {
            None => {
                if headless && view.endpoints.is_empty() {
                    return no_ready(self);
                }
                if !headless
                    && !external
                    && self.settings.ignore_empty_service
                    && view.endpoints.is_empty()
                {
                    return self.miss(
                        Missing::EmptyService,
                        format!(
                            "service {id} has no ready endpoint and `ignore_empty_service` is set"
                        ),
                    );
                }
                if headless {
                    self.e
                        .found
                        .push(format!("ready endpoints: {}", ready.join(", ")));
                }
            }
            Some(Below::Endpoint(ep)) => {
                if view.endpoints_named(ep).is_empty() {
                    let mut names: Vec<&str> = view.endpoints.iter().map(|e| &*e.name).collect();
                    names.dedup();
                    let known = if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    };
                    return self.miss(
                        Missing::EndpointUnknown,
                        format!("service {id} has no ready endpoint named {:?} (ready endpoint names: {known})", text(ep)),
                    );
                }
                self.e.found.push(format!("endpoint {} of {id}", text(ep)));
            }
            Some(Below::Port(port, proto)) => {
                let matches = |p: &Port| {
                    !p.name.is_empty()
                        && p.name.as_bytes() == port
                        && p.protocol.as_str().as_bytes() == proto
                };
                let found = if headless {
                    view.endpoints.iter().any(|e| e.ports.iter().any(matches))
                } else {
                    view.ports.iter().any(matches)
                };
                if !found {
                    let ports: Vec<String> = view
                        .ports
                        .iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                if p.name.is_empty() {
                                    "(unnamed)"
                                } else {
                                    &p.name
                                },
                                p.protocol.as_str()
                            )
                        })
                        .collect();
                    return self.miss(
                        Missing::PortUnknown,
                        format!(
                            "service {id} has no port named {} over {} (its ports: {})",
                            text(port),
                            text(proto),
                            if ports.is_empty() {
                                "none".into()
                            } else {
                                ports.join(", ")
                            }
                        ),
                    );
                }
                self.e
                    .found
                    .push(format!("port {}/{} of {id}", text(port), text(proto)));
            }
            Some(Below::Zonal(topology, mode)) => {
                if !headless {
                    return self.miss(
                        Missing::ZonalNotHeadless,
                        format!("topology names exist only for headless services; {id} is not one"),
                    );
                }
                if view.endpoints.is_empty() {
                    return no_ready(self);
                }
                let in_zone = view
                    .endpoints
                    .iter()
                    .filter(|e| e.zone.as_deref().is_some_and(|z| z.as_bytes() == topology))
                    .count();
                if in_zone == 0 && mode == ZonalMode::Pin {
                    return self.miss(
                        Missing::ZonalNoEndpointInZone,
                        format!(
                            "no ready endpoint of {id} is in topology zone {} (pin: NODATA)",
                            text(topology)
                        ),
                    );
                }
                self.e.found.push(if in_zone == 0 {
                    format!(
                        "no ready endpoint in {}: prefer falls back to all of them",
                        text(topology)
                    )
                } else {
                    format!(
                        "{in_zone} ready endpoint(s) in topology zone {}",
                        text(topology)
                    )
                });
            }
        }
    }
}
