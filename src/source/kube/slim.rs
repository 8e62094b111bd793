//! The watched kinds as kube-runtime sees them: each object is cut down to its slim
//! [`ClusterObject`] while it is being deserialized, so neither the whole object nor its
//! `managedFields`, annotations or spec survive the page (or watch event) that carried it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde::de::{Deserialize, DeserializeOwned, Deserializer};

use crate::source::api::{self, EndpointSliceApi, NamespaceApi, ObjectError, PodApi, ServiceApi};
use crate::source::objects::{ClusterObject, Kind, ObjectKey};

/// One watched kind: its place in the API and how its API shape becomes a slim object.
pub trait Shape: Send + Sync + 'static {
    /// The serde shape of [`crate::source::api`]: only the fields DNS reads.
    type Api: DeserializeOwned;
    /// `NamespaceResourceScope` or `ClusterResourceScope`.
    type Scope;
    const KIND: Kind;
    const API_KIND: &'static str;
    const GROUP: &'static str;
    const VERSION: &'static str;
    const PLURAL: &'static str;
    /// Asks for `PartialObjectMetadata` (the object's metadata alone).
    const METADATA_ONLY: bool = false;
    fn meta(api: &Self::Api) -> &api::ObjectMeta;
    /// `None`: the object exists but serves nothing (a pod that holds no IP).
    fn convert(api: Self::Api) -> Result<Option<ClusterObject>, ObjectError>;
}

pub enum NamespaceShape {}
pub enum ServiceShape {}
pub enum EndpointSliceShape {}
pub enum PodShape {}

impl Shape for NamespaceShape {
    type Api = NamespaceApi;
    type Scope = ClusterResourceScope;
    const KIND: Kind = Kind::Namespace;
    const API_KIND: &'static str = "Namespace";
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const PLURAL: &'static str = "namespaces";
    // Only the name matters: a namespace's spec and status are never sent.
    const METADATA_ONLY: bool = true;
    fn meta(api: &NamespaceApi) -> &api::ObjectMeta {
        &api.metadata
    }
    fn convert(api: NamespaceApi) -> Result<Option<ClusterObject>, ObjectError> {
        ClusterObject::try_from(api).map(Some)
    }
}

impl Shape for ServiceShape {
    type Api = ServiceApi;
    type Scope = NamespaceResourceScope;
    const KIND: Kind = Kind::Service;
    const API_KIND: &'static str = "Service";
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const PLURAL: &'static str = "services";
    fn meta(api: &ServiceApi) -> &api::ObjectMeta {
        &api.metadata
    }
    fn convert(api: ServiceApi) -> Result<Option<ClusterObject>, ObjectError> {
        ClusterObject::try_from(api).map(Some)
    }
}

impl Shape for EndpointSliceShape {
    type Api = EndpointSliceApi;
    type Scope = NamespaceResourceScope;
    const KIND: Kind = Kind::EndpointSlice;
    const API_KIND: &'static str = "EndpointSlice";
    const GROUP: &'static str = "discovery.k8s.io";
    const VERSION: &'static str = "v1";
    const PLURAL: &'static str = "endpointslices";
    fn meta(api: &EndpointSliceApi) -> &api::ObjectMeta {
        &api.metadata
    }
    fn convert(api: EndpointSliceApi) -> Result<Option<ClusterObject>, ObjectError> {
        ClusterObject::try_from(api).map(Some)
    }
}

impl Shape for PodShape {
    type Api = PodApi;
    type Scope = NamespaceResourceScope;
    const KIND: Kind = Kind::Pod;
    const API_KIND: &'static str = "Pod";
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const PLURAL: &'static str = "pods";
    fn meta(api: &PodApi) -> &api::ObjectMeta {
        &api.metadata
    }
    fn convert(api: PodApi) -> Result<Option<ClusterObject>, ObjectError> {
        api::pod(api).map(|p| p.map(ClusterObject::Pod))
    }
}

/// A watched object as it arrived: its identity and resourceVersion (what kube-runtime
/// reads through [`kube::Resource::meta`]) and what DNS keeps of it.
pub struct Slim<S> {
    meta: ObjectMeta,
    /// The slim object; `Ok(None)` when it serves nothing, `Err` when it cannot be used.
    pub object: Result<Option<ClusterObject>, Arc<ObjectError>>,
    _shape: PhantomData<fn() -> S>,
}

impl<S: Shape> Slim<S> {
    /// The key of this object, also when it converts to nothing (a delete still matches).
    pub fn key(&self) -> ObjectKey {
        let text = |s: &Option<String>| Arc::from(s.as_deref().unwrap_or_default());
        ObjectKey {
            kind: S::KIND,
            namespace: text(&self.meta.namespace),
            name: text(&self.meta.name),
        }
    }
}

impl<S> Clone for Slim<S> {
    fn clone(&self) -> Self {
        Slim {
            meta: self.meta.clone(),
            object: self.object.clone(),
            _shape: PhantomData,
        }
    }
}

impl<S> fmt::Debug for Slim<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slim")
            .field("meta", &self.meta)
            .field("object", &self.object)
            .finish()
    }
}

impl<'de, S: Shape> Deserialize<'de> for Slim<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let api = S::Api::deserialize(d)?;
        let m = S::meta(&api);
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        // Only what kube-runtime reads: labels, annotations and managedFields are gone.
        let meta = ObjectMeta {
            name: some(&m.name),
            namespace: some(&m.namespace),
            resource_version: some(&m.resource_version),
            ..ObjectMeta::default()
        };
        Ok(Slim {
            meta,
            object: S::convert(api).map_err(Arc::new),
            _shape: PhantomData,
        })
    }
}

impl<S: Shape> kube::Resource for Slim<S> {
    type DynamicType = ();
    type Scope = S::Scope;

    fn kind(_: &()) -> Cow<'_, str> {
        S::API_KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        S::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        S::VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        S::PLURAL.into()
    }
    fn metadata_api() -> bool {
        S::METADATA_ONLY
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_objects_down_while_reading_them() {
        let json = r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"shop",
            "resourceVersion":"42","annotations":{"big":"x"},"managedFields":[{"manager":"kubectl"}]},
            "spec":{"clusterIP":"10.96.0.5","ports":[{"name":"http","port":80}]}}"#;
        let s: Slim<ServiceShape> = serde_json::from_str(json).unwrap();
        assert_eq!(s.meta.resource_version.as_deref(), Some("42"));
        assert!(s.meta.annotations.is_none() && s.meta.managed_fields.is_none());
        assert_eq!(&*s.key().name, "web");
        assert!(matches!(s.object, Ok(Some(ClusterObject::Service(_)))));
        let finished = r#"{"metadata":{"name":"p","namespace":"a","resourceVersion":"7"},
            "status":{"phase":"Succeeded","podIP":"10.0.0.1"}}"#;
        let p: Slim<PodShape> = serde_json::from_str(finished).unwrap();
        assert!(matches!(p.object, Ok(None)));
        assert_eq!(
            <Slim<PodShape> as kube::Resource>::url_path(&(), Some("a")),
            "/api/v1/namespaces/a/pods"
        );
        assert_eq!(
            <Slim<EndpointSliceShape> as kube::Resource>::url_path(&(), None),
            "/apis/discovery.k8s.io/v1/endpointslices"
        );
    }
}
