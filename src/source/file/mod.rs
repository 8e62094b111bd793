//! The cluster file: what `kubectl get namespaces,services,endpointslices,pods -A -o yaml`
//! prints (a `v1 List`), single objects, or several YAML documents; JSON too, since it is
//! YAML. The file is polled; when it changes it is parsed again and only the objects that
//! differ become events. A file that does not parse leaves the last good state serving.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use thiserror::Error;

use super::ClusterEvent;
use super::api::{self, EndpointSliceApi, NamespaceApi, ObjectError, PodApi, ServiceApi};
use super::objects::{ClusterObject, ObjectKey};
use super::selector::LabelSelector;
use list::KubectlList;
use syntax::syntax;

mod list;
mod polling;
mod syntax;

pub use polling::spawn_polling;

/// Why a cluster file was refused. Every variant names the file.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{path}: document {document}, {item}: {source}")]
    Object {
        path: PathBuf,
        document: usize,
        item: String,
        source: Box<ObjectError>,
    },
    /// A file that was read before and is now empty. Writers that truncate and then
    /// write (`>`, `std::fs::write`, most editors saving in place) leave it so for a
    /// moment; taking that as "no objects" would empty the zone. An empty zone is written
    /// as `items: []`.
    #[error("{path}: the file is empty; write `items: []` for a cluster without objects")]
    Emptied { path: PathBuf },
}

/// One object as read from the file, before conversion.
enum RawObject {
    Namespace(NamespaceApi),
    Service(ServiceApi),
    EndpointSlice(EndpointSliceApi),
    Pod(PodApi),
    /// A kind DNS does not use (ConfigMap, Endpoints …): skipped.
    Other,
}

/// Which objects of a cluster file are served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Pods are checked either way but kept only when this is set (only `pods verified`
    /// needs them).
    pub keep_pods: bool,
    /// The `labels` option: Services, EndpointSlices and Pods are kept when their own
    /// labels match, as the API server filters each watch of the Kubernetes source by
    /// its `labelSelector`. Namespaces are not filtered (nor are they there).
    pub labels: LabelSelector,
}

impl Selection {
    /// Everything, pods included.
    pub fn all() -> Self {
        Selection {
            keep_pods: true,
            labels: LabelSelector::default(),
        }
    }
}

/// Parses a cluster file's text into the slim objects `selection` keeps. Every object is
/// checked, kept or not: a file is valid or not whatever the selector.
pub fn parse(
    path: &Path,
    text: &str,
    selection: &Selection,
) -> Result<Vec<ClusterObject>, FileError> {
    let mut objects = Vec::new();
    let mut keep = |document: usize, index: usize, raw: RawObject| {
        let labels = match &raw {
            RawObject::Service(s) => Some(&s.metadata.labels),
            RawObject::EndpointSlice(s) => Some(&s.metadata.labels),
            RawObject::Pod(p) => Some(&p.metadata.labels),
            RawObject::Namespace(_) | RawObject::Other => None,
        };
        let selected = labels.is_none_or(|l| selection.labels.matches(l));
        let converted = match raw {
            RawObject::Namespace(n) => ClusterObject::try_from(n).map(Some),
            RawObject::Service(s) => ClusterObject::try_from(s).map(Some),
            RawObject::EndpointSlice(s) => ClusterObject::try_from(s).map(Some),
            RawObject::Pod(p) => {
                api::pod(p).map(|p| p.filter(|_| selection.keep_pods).map(ClusterObject::Pod))
            }
            RawObject::Other => Ok(None),
        }
        .map(|o| o.filter(|_| selected));
        match converted {
            Ok(o) => {
                objects.extend(o);
                Ok(())
            }
            Err(source) => Err(FileError::Object {
                path: path.to_owned(),
                document,
                item: format!("item {index}"),
                source: Box::new(source),
            }),
        }
    };
    if let Some(list) = KubectlList::split(text) {
        // The usual case, and the one that can be large: read item by item, so memory
        // follows the largest object rather than the whole file.
        let mut header = Vec::new();
        let header_doc = serde_yaml::Deserializer::from_str(&list.header);
        Document { out: &mut header }
            .deserialize(header_doc)
            .map_err(|e| syntax(path, &e, &list.header, 0))?;
        for (index, (chunk, line)) in list.items.into_iter().enumerate() {
            let mut raw = Vec::new();
            Items {
                out: &mut raw,
                first: index,
            }
            .deserialize(serde_yaml::Deserializer::from_str(chunk))
            .map_err(|e| syntax(path, &e, chunk, line))?;
            for r in raw {
                keep(1, index, r)?;
            }
        }
        return Ok(objects);
    }
    for (doc_index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let mut raw = Vec::new();
        Document { out: &mut raw }
            .deserialize(document)
            .map_err(|e| syntax(path, &e, text, 0))?;
        for (i, r) in raw.into_iter().enumerate() {
            keep(doc_index + 1, i, r)?;
        }
    }
    Ok(objects)
}

/// Reads one YAML document, which is either a `*List` (its `items` are read one at a
/// time, so a large dump is never held twice) or a single object.
struct Document<'a> {
    out: &'a mut Vec<RawObject>,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object or a List of them")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(()) // an empty document
    }

    /// An empty file (or one of comments only): no objects, as an empty folder.
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut fields = serde_yaml::Mapping::new();
        let mut kind = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                map.next_value_seed(Items {
                    out: self.out,
                    first: 0,
                })?;
                continue;
            }
            let value: serde_yaml::Value = map.next_value()?;
            if key == "kind" {
                kind = value.as_str().map(str::to_owned);
            }
            fields.insert(serde_yaml::Value::String(key), value);
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        if kind.ends_with("List") {
            return Ok(());
        }
        let object =
            raw_object(&kind, serde_yaml::Value::Mapping(fields)).map_err(de::Error::custom)?;
        self.out.push(object);
        Ok(())
    }
}

fn raw_object(kind: &str, value: serde_yaml::Value) -> Result<RawObject, serde_yaml::Error> {
    Ok(match kind {
        "Namespace" => RawObject::Namespace(serde_yaml::from_value(value)?),
        "Service" => RawObject::Service(serde_yaml::from_value(value)?),
        "EndpointSlice" => RawObject::EndpointSlice(serde_yaml::from_value(value)?),
        "Pod" => RawObject::Pod(serde_yaml::from_value(value)?),
        _ => RawObject::Other,
    })
}

struct Items<'a> {
    out: &'a mut Vec<RawObject>,
    /// Index of the first item read, for error messages.
    first: usize,
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of Kubernetes objects")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(()) // `items: null`
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = self.first;
        while let Some(value) = seq.next_element::<serde_yaml::Value>()? {
            let kind = value
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_owned();
            let object = raw_object(&kind, value)
                .map_err(|e| de::Error::custom(format_args!("items[{index}] ({kind}): {e}")))?;
            self.out.push(object);
            index += 1;
        }
        Ok(())
    }
}

/// Watches a cluster file — or a folder of them (every `*.yaml`, `*.yml`, `*.json`) —
/// and turns each change into the events that tell it. In a folder only the files that
/// changed are read again, so a small file of frequent changes beside a large dump costs
/// little. (An object defined in two files is whatever the last file read says.)
pub struct ClusterFile {
    path: PathBuf,
    selection: Selection,
    files: HashMap<PathBuf, Tracked>,
}

/// What was last applied from one file: its stamp and a hash of every object, so that
/// only what differs is sent.
#[derive(Default)]
struct Tracked {
    stamp: Option<FileStamp>,
    applied: HashMap<ObjectKey, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    let m = std::fs::metadata(path)?;
    Ok(FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

fn hash_of(o: &ClusterObject) -> u64 {
    let mut h = DefaultHasher::new();
    o.hash(&mut h);
    h.finish()
}

/// The result of one poll: the events of every file that changed and parsed, and the
/// errors of those that did not (their last good state stays).
#[derive(Debug, Default)]
pub struct Poll {
    pub events: Vec<ClusterEvent>,
    pub errors: Vec<FileError>,
}

impl ClusterFile {
    pub fn new(path: impl Into<PathBuf>, selection: Selection) -> Self {
        ClusterFile {
            path: path.into(),
            selection,
            files: HashMap::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn list(&self) -> Result<Vec<PathBuf>, FileError> {
        let io = |source| FileError::Io {
            path: self.path.clone(),
            source,
        };
        if !std::fs::metadata(&self.path).map_err(io)?.is_dir() {
            return Ok(vec![self.path.clone()]);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let hidden = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'));
                let ext = p.extension().and_then(|e| e.to_str());
                !hidden && matches!(ext, Some("yaml" | "yml" | "json")) && p.is_file()
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// Reads what changed since the last call. A file or folder that cannot be listed at
    /// all is an error and changes nothing.
    pub fn poll(&mut self) -> Result<Poll, FileError> {
        let present = self.list()?;
        let mut poll = Poll::default();
        for path in &present {
            let now = match stamp(path) {
                Ok(s) => s,
                Err(source) => {
                    poll.errors.push(FileError::Io {
                        path: path.clone(),
                        source,
                    });
                    continue;
                }
            };
            let tracked = self.files.entry(path.clone()).or_default();
            if tracked.stamp.as_ref() == Some(&now) {
                continue;
            }
            // A file seen before is taken only if it did not change while being read;
            // otherwise the next poll reads it again. (No wait for the file to stand
            // still: a writer rewriting it faster than that would never be read. What a
            // truncating writer leaves between truncate and write is an empty file,
            // refused below.)
            let known = tracked.stamp.is_some();
            let text = std::fs::read_to_string(path);
            if known && stamp(path).ok().as_ref() != Some(&now) {
                continue;
            }
            // Remember the stamp even when parsing fails, so a broken file is reported once.
            tracked.stamp = Some(now);
            let parsed = text
                .map_err(|source| FileError::Io {
                    path: path.clone(),
                    source,
                })
                .and_then(|text| {
                    if known && text.trim().is_empty() {
                        Err(FileError::Emptied { path: path.clone() })
                    } else {
                        parse(path, &text, &self.selection)
                    }
                });
            match parsed {
                Ok(objects) => poll.events.extend(tracked.diff(objects)),
                Err(e) => poll.errors.push(e),
            }
        }
        // Files that went away take their objects with them (a missing single file is an
        // error above instead: a file being replaced must not empty the zone).
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains(p))
            .cloned()
            .collect();
        for path in gone {
            if let Some(t) = self.files.remove(&path) {
                let mut keys: Vec<ObjectKey> = t.applied.into_keys().collect();
                keys.sort();
                poll.events
                    .extend(keys.into_iter().map(ClusterEvent::Delete));
            }
        }
        Ok(poll)
    }
}

impl Tracked {
    /// Turns a complete new state of this file into the events that differ.
    fn diff(&mut self, objects: Vec<ClusterObject>) -> Vec<ClusterEvent> {
        let mut next = HashMap::with_capacity(objects.len());
        let mut events = Vec::new();
        for o in objects {
            let key = o.key();
            let h = hash_of(&o);
            if self.applied.get(&key) != Some(&h) {
                events.push(ClusterEvent::Apply(o));
            }
            next.insert(key, h);
        }
        let mut gone: Vec<ObjectKey> = self
            .applied
            .keys()
            .filter(|k| !next.contains_key(*k))
            .cloned()
            .collect();
        gone.sort();
        events.extend(gone.into_iter().map(ClusterEvent::Delete));
        self.applied = next;
        events
    }
}

#[cfg(test)]
mod tests;
