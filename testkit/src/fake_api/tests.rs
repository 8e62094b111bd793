//! The fake speaks what kube-rs (and so the real API's clients) expect: typed
//! k8s-openapi objects, paging, watch events, 410 Gone and metadata-only responses.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;

use super::FakeApi;
use crate::objects::{endpoint_slice, ep, namespace, pod, service};

fn cluster() -> FakeApi {
    let api = FakeApi::new();
    api.apply(namespace("shop"));
    for i in 0..5 {
        api.apply(service(
            "shop",
            &format!("s{i}"),
            &format!("10.96.0.{i}"),
            &[("http", 80)],
        ));
    }
    api.apply(endpoint_slice(
        "shop",
        "s0-abc",
        "s0",
        &[ep("10.1.0.1")],
        &[("http", 8080)],
    ));
    api.apply(pod("shop", "running", "10.1.0.1", "Running"));
    api.apply(pod("shop", "done", "10.1.0.2", "Succeeded"));
    api
}

#[tokio::test]
async fn lists_page_into_typed_objects() {
    let api = cluster();
    let services: Api<Service> = Api::namespaced(api.client(), "shop");
    let page = services
        .list(&ListParams::default().limit(2))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().unwrap();
    assert_eq!(
        page.items[0].spec.as_ref().unwrap().cluster_ip.as_deref(),
        Some("10.96.0.0")
    );
    let mut seen = 2;
    let mut next = Some(token);
    while let Some(t) = next {
        let p = services
            .list(&ListParams::default().limit(2).continue_token(&t))
            .await
            .unwrap();
        seen += p.items.len();
        next = p.metadata.continue_;
    }
    assert_eq!(seen, 5);
    let slices: Api<EndpointSlice> = Api::all(api.client());
    let s = slices.list(&ListParams::default()).await.unwrap();
    assert_eq!(s.items[0].endpoints[0].addresses, ["10.1.0.1"]);
    let pods: Api<Pod> = Api::all(api.client());
    let running = ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    assert_eq!(pods.list(&running).await.unwrap().items.len(), 1);
    let bad = pods
        .list(&ListParams::default().fields("spec.bogus=1"))
        .await
        .unwrap_err();
    assert!(
        bad.to_string().contains("field label not supported"),
        "{bad}"
    );
    let labelled = services
        .list(&ListParams::default().labels("app in (s1,s3)"))
        .await
        .unwrap();
    assert_eq!(labelled.items.len(), 2);
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(api.client());
    let meta = namespaces.list(&ListParams::default()).await.unwrap();
    assert_eq!(meta.items[0].metadata.name.as_deref(), Some("shop"));
}

#[tokio::test]
async fn watches_replay_stream_and_expire() {
    let api = cluster();
    let services: Api<Service> = Api::namespaced(api.client(), "shop");
    let rv = services
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.apply(service("shop", "s0", "10.96.0.100", &[("http", 80)]));
    api.delete("Service", "shop", "s1");
    let mut events = services
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        events.try_next().await.unwrap(),
        Some(WatchEvent::Modified(_))
    ));
    assert!(
        matches!(events.try_next().await.unwrap(), Some(WatchEvent::Deleted(s)) if s.metadata.name.as_deref() == Some("s1"))
    );
    api.apply(service("shop", "new", "10.96.0.9", &[]));
    assert!(matches!(
        events.try_next().await.unwrap(),
        Some(WatchEvent::Added(_))
    ));
    // Bookmarks carry the current version.
    let mark = tokio::time::timeout(Duration::from_secs(3), events.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(mark, Some(WatchEvent::Bookmark(b)) if b.metadata.resource_version == api.resource_version().to_string())
    );
    // Dropped watches end; compacted versions are Gone.
    api.drop_watches();
    assert!(events.next().await.is_none());
    api.compact();
    let mut gone = services
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    assert!(matches!(gone.try_next().await.unwrap(), Some(WatchEvent::Error(e)) if e.code == 410));
    assert!(gone.next().await.is_none());
    let err = services
        .list(&ListParams::default().at(&rv))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("too old"), "{err}");
}

#[tokio::test]
async fn selectors_turn_changes_into_adds_and_deletes() {
    let api = cluster();
    let pods: Api<Pod> = Api::all(api.client());
    let rv = api.resource_version().to_string();
    let wp = WatchParams::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    let mut events = pods.watch(&wp, &rv).await.unwrap().boxed();
    api.apply(pod("shop", "running", "10.1.0.1", "Failed"));
    assert!(matches!(
        events.try_next().await.unwrap(),
        Some(WatchEvent::Deleted(_))
    ));
    api.apply(pod("shop", "done", "10.1.0.2", "Running"));
    assert!(matches!(
        events.try_next().await.unwrap(),
        Some(WatchEvent::Added(_))
    ));
}
