//! The cluster file reader and its change tracking, without a server.

use super::*;

const LIST: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec:
    clusterIP: 10.96.0.5
    ports: [{name: http, port: 80, protocol: TCP}]
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: x, namespace: shop}
"#;

#[test]
fn reads_a_list_and_skips_other_kinds() {
    let objects = parse(Path::new("c.yaml"), LIST, &Selection::all()).unwrap();
    assert_eq!(objects.len(), 2);
}

#[test]
fn reads_multi_document_yaml_and_json() {
    let text = "kind: Namespace\nmetadata: {name: a}\n---\nkind: Namespace\nmetadata: {name: b}\n";
    assert_eq!(
        parse(Path::new("c.yaml"), text, &Selection::all())
            .unwrap()
            .len(),
        2
    );
    let json = r#"{"kind":"List","items":[{"kind":"Namespace","metadata":{"name":"a"}}]}"#;
    assert_eq!(
        parse(Path::new("c.json"), json, &Selection::all())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn reports_position_and_reason() {
    let err = parse(
        Path::new("c.yaml"),
        "kind: List\nitems:\n  - kind: Service\n   bad: [\n",
        &Selection::all(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("c.yaml:"), "{text}");
    assert!(
        matches!(err, FileError::Syntax { line, .. } if line >= 3),
        "{text}"
    );
    let bad_ip =
        "kind: Service\nmetadata: {name: a, namespace: b}\nspec: {clusterIP: 10.0.0.300}\n";
    let text = parse(Path::new("c.yaml"), bad_ip, &Selection::all())
        .unwrap_err()
        .to_string();
    assert!(text.contains("10.0.0.300"), "{text}");
}

#[test]
fn kubectl_lists_are_read_item_by_item_with_true_line_numbers() {
    let text = format!("{LIST}kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    assert!(KubectlList::split(&text).is_some());
    assert_eq!(
        parse(Path::new("c.yaml"), &text, &Selection::all())
            .unwrap()
            .len(),
        2
    );
    // Line 13 holds the broken value; the parser notices at the start of line 14.
    let broken = text.replace(
        "ports: [{name: http, port: 80, protocol: TCP}]",
        "ports: [{name: http, port: 80",
    );
    let err = parse(Path::new("c.yaml"), &broken, &Selection::all()).unwrap_err();
    assert!(
        matches!(err, FileError::Syntax { line, .. } if (13..=14).contains(&line)),
        "{err}"
    );
}

#[test]
fn diff_sends_only_changes() {
    let mut f = Tracked::default();
    let objects = parse(Path::new("c.yaml"), LIST, &Selection::all()).unwrap();
    assert_eq!(f.diff(objects.clone()).len(), 2);
    assert!(f.diff(objects.clone()).is_empty());
    let events = f.diff(objects[..1].to_vec());
    assert!(matches!(&events[..], [ClusterEvent::Delete(k)] if &*k.name == "web"));
}

#[test]
fn a_folder_is_read_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), LIST).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a cluster").unwrap();
    let mut f = ClusterFile::new(dir.path(), Selection::all());
    let first = f.poll().unwrap();
    assert_eq!((first.events.len(), first.errors.len()), (2, 0));
    assert!(f.poll().unwrap().events.is_empty());
    std::fs::write(
        dir.path().join("b.yaml"),
        "kind: Namespace\nmetadata: {name: extra}\n",
    )
    .unwrap();
    assert_eq!(f.poll().unwrap().events.len(), 1);
    std::fs::write(dir.path().join("c.yaml"), "kind: [broken\n").unwrap();
    let p = f.poll().unwrap();
    assert_eq!((p.events.len(), p.errors.len()), (0, 1));
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    let p = f.poll().unwrap();
    assert!(matches!(&p.events[..], [ClusterEvent::Delete(k)] if &*k.name == "extra"));
}

#[test]
fn a_file_emptied_under_the_source_keeps_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, LIST).unwrap();
    let mut f = ClusterFile::new(&path, Selection::all());
    assert_eq!(f.poll().unwrap().events.len(), 2);
    // What a truncating writer leaves for a moment: refused, the objects stay.
    std::fs::write(&path, "").unwrap();
    let p = f.poll().unwrap();
    assert!(p.events.is_empty(), "{:?}", p.events);
    assert!(matches!(&p.errors[..], [FileError::Emptied { .. }]));
    // The writer finishes: only what differs is sent.
    std::fs::write(&path, LIST).unwrap();
    assert!(f.poll().unwrap().events.is_empty());
}
