//! `[search_path] autopath`: the first search-path expansion of a name, answered as a
//! CNAME to what the pod's resolver would end up with (see [`autopath_target`]), then
//! chased like an ExternalName's target: in the zone by the answerer, outside it by the
//! forwarder.

use super::*;
use crate::zone::search::autopath_target;
use crate::zone::settings::Autopath;

impl Answerer<'_, '_, '_> {
    /// `[search_path] autopath`: the first search-path expansion of a name answered as
    /// a CNAME to what the resolver would end up with, chased like an ExternalName.
    pub(super) fn autopath(&mut self, name: &QName<'_>, zone_start: usize) -> Option<Found> {
        if self.s.autopath == Autopath::Off || (self.qtype != rtype::A && self.qtype != rtype::AAAA)
        {
            return None;
        }
        let external = self.s.autopath == Autopath::External;
        let target = autopath_target(self.zone, name, zone_start, self.s.zonal, external)?;
        let owner = NameRef::Ptr(name.suffix_offset(0));
        let at = self.w.name_record(
            Section::Answer,
            owner,
            rtype::CNAME,
            self.ttl(),
            NameRef::LabelsWire(&[], &target),
        );
        let Some(at) = at else {
            return Some(Found::Records); // did not fit: TC is set
        };
        let mut wire = [0u8; MAX_NAME_LEN];
        wire[..target.len()].copy_from_slice(&target);
        Some(Found::Chase(wire, at))
    }
}
