//! The fake API server's data: objects by resource, the global resourceVersion, and the
//! history of changes that watches replay (until it is compacted).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value};

use clusterdns::source::selector::LabelSelector;

/// A resource the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub kind: &'static str,
    /// `v1` or `group/version`.
    pub api_version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// Field selectors it supports besides `metadata.name` / `metadata.namespace`.
    pub fields: &'static [&'static str],
}

pub const RESOURCES: [Resource; 4] = [
    Resource {
        kind: "Namespace",
        api_version: "v1",
        plural: "namespaces",
        namespaced: false,
        fields: &["status.phase"],
    },
    Resource {
        kind: "Service",
        api_version: "v1",
        plural: "services",
        namespaced: true,
        fields: &["spec.clusterIP", "spec.type"],
    },
    Resource {
        kind: "EndpointSlice",
        api_version: "discovery.k8s.io/v1",
        plural: "endpointslices",
        namespaced: true,
        fields: &["addressType"],
    },
    Resource {
        kind: "Pod",
        api_version: "v1",
        plural: "pods",
        namespaced: true,
        fields: &["spec.nodeName", "status.phase", "status.podIP"],
    },
];

pub fn resource_by_kind(kind: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.kind == kind)
}

pub fn resource_by_path(api_version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.api_version == api_version && r.plural == plural)
}

/// One stored object version.
#[derive(Debug)]
pub struct Stored {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Values of the selectable fields (absent fields are empty, as the API treats them).
    pub fields: Vec<(&'static str, String)>,
    /// The object without `kind` and `apiVersion` — the form of list items.
    pub body: String,
}

impl Stored {
    /// Builds a stored version of `object` at `rv` (kind and apiVersion are dropped).
    pub fn new(resource: &Resource, mut object: Map<String, Value>, rv: u64) -> Stored {
        object.remove("kind");
        object.remove("apiVersion");
        let mut meta = match object.remove("metadata") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        meta.entry("uid")
            .or_insert_with(|| Value::String(format!("00000000-0000-4000-8000-{rv:012}")));
        meta.entry("creationTimestamp")
            .or_insert_with(|| Value::String("2025-01-01T00:00:00Z".into()));
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let namespace = text(meta.get("namespace"));
        let name = text(meta.get("name"));
        let labels = meta
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(Some(v)))).collect())
            .unwrap_or_default();
        object.insert("metadata".into(), Value::Object(meta));
        let fields = resource
            .fields
            .iter()
            .map(|path| {
                let mut parts = path.split('.');
                let mut at = parts.next().and_then(|p| object.get(p));
                for p in parts {
                    at = at.and_then(|v| v.get(p));
                }
                (*path, text(at))
            })
            .collect();
        let body = Value::Object(object).to_string();
        Stored {
            namespace,
            name,
            labels,
            fields,
            body,
        }
    }

    /// The same object at another resourceVersion (a deletion's final state).
    pub fn at(&self, resource: &Resource, rv: u64) -> Stored {
        let object = serde_json::from_str(&self.body).unwrap_or_default();
        Stored::new(resource, object, rv)
    }

    /// The object as a watch event carries it: with `kind` and `apiVersion`.
    pub fn with_type(&self, resource: &Resource) -> String {
        let rest = self.body.strip_prefix('{').unwrap_or("}");
        let sep = if rest == "}" { "" } else { "," };
        format!(
            r#"{{"kind":"{}","apiVersion":"{}"{sep}{rest}"#,
            resource.kind, resource.api_version
        )
    }

    /// `PartialObjectMetadata`: the metadata alone.
    pub fn metadata_only(&self) -> String {
        let v: Value = serde_json::from_str(&self.body).unwrap_or_default();
        let meta = v.get("metadata").cloned().unwrap_or_default();
        format!(
            r#"{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{meta}}}"#
        )
    }
}

/// What a list or watch selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    /// `(field, value, equal)`.
    pub fields: Vec<(String, String, bool)>,
}

impl Filter {
    pub fn matches(&self, o: &Stored) -> bool {
        if self.namespace.as_ref().is_some_and(|ns| *ns != o.namespace) {
            return false;
        }
        self.labels.matches(&o.labels)
            && self.fields.iter().all(|(field, value, equal)| {
                let actual = match field.as_str() {
                    "metadata.name" => Some(o.name.as_str()),
                    "metadata.namespace" => Some(o.namespace.as_str()),
                    f => o
                        .fields
                        .iter()
                        .find(|(n, _)| *n == f)
                        .map(|(_, v)| v.as_str()),
                };
                (actual.unwrap_or_default() == value) == *equal
            })
    }
}

/// One change, as watches replay it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub resource: usize,
    /// The version before (none: created).
    pub before: Option<Arc<Stored>>,
    /// The version after; for a deletion, the last state at the deletion's rv.
    pub after: Arc<Stored>,
    pub deleted: bool,
}

impl Change {
    /// The event a watch with `filter` sees: a change that moves an object into or out
    /// of a selector is an ADDED or a DELETED, as the API server sends it.
    pub fn event_for(&self, filter: &Filter) -> Option<(&'static str, &Stored)> {
        let was = self.before.as_deref().is_some_and(|b| filter.matches(b));
        let is = filter.matches(&self.after);
        match (self.deleted, was, is) {
            (true, true, _) => Some(("DELETED", &self.after)),
            (true, false, _) => None,
            (false, false, true) => Some(("ADDED", &self.after)),
            (false, true, true) => Some(("MODIFIED", &self.after)),
            (false, true, false) => Some(("DELETED", &self.after)),
            (false, false, false) => None,
        }
    }
}

/// Objects of every resource, and the history since the last compaction.
#[derive(Debug, Default)]
pub struct Store {
    /// The last resourceVersion handed out.
    pub rv: u64,
    /// Watches from a resourceVersion below this get 410 Gone.
    pub floor: u64,
    pub objects: [BTreeMap<(String, String), Arc<Stored>>; 4],
    pub history: VecDeque<Arc<Change>>,
}

impl Store {
    /// Creates or replaces an object.
    pub fn put(&mut self, resource: usize, object: Map<String, Value>) -> Arc<Change> {
        self.rv += 1;
        let stored = Arc::new(Stored::new(&RESOURCES[resource], object, self.rv));
        let key = (stored.namespace.clone(), stored.name.clone());
        let before = self.objects[resource].insert(key, stored.clone());
        self.record(Change {
            rv: self.rv,
            resource,
            before,
            after: stored,
            deleted: false,
        })
    }

    pub fn delete(&mut self, resource: usize, namespace: &str, name: &str) -> Option<Arc<Change>> {
        let before = self.objects[resource].remove(&(namespace.to_owned(), name.to_owned()))?;
        self.rv += 1;
        let last = Arc::new(before.at(&RESOURCES[resource], self.rv));
        Some(self.record(Change {
            rv: self.rv,
            resource,
            before: Some(before),
            after: last,
            deleted: true,
        }))
    }

    fn record(&mut self, change: Change) -> Arc<Change> {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        change
    }

    /// Forgets the history, and moves the resourceVersion on (as the many writes of a
    /// real cluster do), so that every watch position handed out so far is too old.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.floor = self.rv;
        self.history.clear();
    }

    /// The changes after `rv`, oldest first.
    pub fn since(&self, rv: u64) -> impl Iterator<Item = &Arc<Change>> {
        let start = self.history.partition_point(|c| c.rv <= rv);
        self.history.range(start..)
    }
}
