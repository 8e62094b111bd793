//! The fake API server's HTTP side: list and watch on the paths client-go and kube-rs
//! use, with the API server's JSON shapes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{broadcast, mpsc};

use super::FakeApi;
use super::store::{Change, Filter, RESOURCES, Resource, Stored, resource_by_path};
use clusterdns::source::selector::LabelSelector;

type Params = Query<HashMap<String, String>>;

pub fn router(api: FakeApi) -> Router {
    Router::new()
        .route(
            "/api/{version}/{plural}",
            get(
                |s: State<FakeApi>,
                 Path((v, p)): Path<(String, String)>,
                 q: Params,
                 h: HeaderMap| { serve(s.0, v, None, p, q.0, h) },
            ),
        )
        .route(
            "/api/{version}/namespaces/{ns}/{plural}",
            get(
                |s: State<FakeApi>,
                 Path((v, ns, p)): Path<(String, String, String)>,
                 q: Params,
                 h: HeaderMap| { serve(s.0, v, Some(ns), p, q.0, h) },
            ),
        )
        .route(
            "/apis/{group}/{version}/{plural}",
            get(
                |s: State<FakeApi>,
                 Path((g, v, p)): Path<(String, String, String)>,
                 q: Params,
                 h: HeaderMap| { serve(s.0, format!("{g}/{v}"), None, p, q.0, h) },
            ),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}",
            get(
                |s: State<FakeApi>,
                 Path((g, v, ns, p)): Path<(String, String, String, String)>,
                 q: Params,
                 h: HeaderMap| {
                    serve(s.0, format!("{g}/{v}"), Some(ns), p, q.0, h)
                },
            ),
        )
        .fallback(|| async {
            status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            )
        })
        .with_state(api)
}

/// A `Status` object, as every API error is.
fn status_json(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
    .to_string()
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    json(code, status_json(code.as_u16(), reason, message))
}

fn json(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn serve(
    api: FakeApi,
    api_version: String,
    namespace: Option<String>,
    plural: String,
    q: HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    if api.inner.offline.load(std::sync::atomic::Ordering::SeqCst) {
        return status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "apiserver is shutting down",
        );
    }
    if !api.authorized(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let Some(r) = resource_by_path(&api_version, &plural) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    if namespace.is_some() && !RESOURCES[r].namespaced {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let filter = match filter(&RESOURCES[r], namespace, &q) {
        Ok(f) => f,
        Err(message) => return status(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let metadata_only = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    let rv = q
        .get("resourceVersion")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let is_watch = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    // A held request waits (as on a slow API server) until the test releases it.
    let verb = if is_watch { "watch" } else { "list" };
    // A watch dropped while it waited (or is being set up) is dropped all the same.
    let mut drops = api.inner.drops.subscribe();
    drops.mark_unchanged();
    let mut held = api.inner.held.subscribe();
    let _ = held
        .wait_for(|h| !h.contains(&format!("{verb} {plural}")))
        .await;
    if is_watch {
        if q.contains_key("sendInitialEvents") {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "streaming lists are not modelled by the fake API server",
            );
        }
        api.count_request("watch", &plural);
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800);
        let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
        let how = WatchHow {
            rv,
            metadata_only,
            bookmarks,
            timeout: Duration::from_secs(timeout),
        };
        return watch(api, r, filter, how, drops);
    }
    api.count_request("list", &plural);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0);
    list(
        &api,
        r,
        &filter,
        rv,
        limit,
        q.get("continue"),
        metadata_only,
    )
}

fn filter(
    r: &Resource,
    namespace: Option<String>,
    q: &HashMap<String, String>,
) -> Result<Filter, String> {
    let labels = match q.get("labelSelector") {
        Some(s) => {
            LabelSelector::parse(s).map_err(|e| format!("unable to parse requirement: {e}"))?
        }
        None => LabelSelector::default(),
    };
    let mut fields = Vec::new();
    for part in q
        .get("fieldSelector")
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
    {
        if part.is_empty() {
            continue;
        }
        let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            (f, v, true)
        } else {
            return Err(format!(
                "invalid selector: {part:?}; can't understand {part:?}"
            ));
        };
        let known =
            matches!(field, "metadata.name" | "metadata.namespace") || r.fields.contains(&field);
        if !known {
            return Err(format!("field label not supported: {field}"));
        }
        fields.push((field.to_owned(), value.to_owned(), equal));
    }
    Ok(Filter {
        namespace,
        labels,
        fields,
    })
}

fn token(rv: u64, key: &(String, String)) -> String {
    format!("{rv}\0{}\0{}", key.0, key.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn untoken(t: &str) -> Option<(u64, (String, String))> {
    let bytes: Option<Vec<u8>> = (0..t.len())
        .step_by(2)
        .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.split('\0');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, (parts.next()?.to_owned(), parts.next()?.to_owned())))
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn list(
    api: &FakeApi,
    r: usize,
    filter: &Filter,
    rv: u64,
    limit: Option<usize>,
    cont: Option<&String>,
    metadata_only: bool,
) -> Response {
    let store = api.store();
    let (snapshot, after) = match cont {
        Some(t) => match untoken(t) {
            Some((snap, _)) if snap < store.floor => {
                return status(StatusCode::GONE, "Expired", CONTINUE_EXPIRED);
            }
            Some((snap, key)) => (snap, Some(key)),
            None => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "invalid continue token",
                );
            }
        },
        None if rv != 0 && rv < store.floor => {
            let message = format!("too old resource version: {rv} ({})", store.floor);
            return status(StatusCode::GONE, "Expired", &message);
        }
        None => (store.rv, None),
    };
    let objects = &store.objects[r];
    let start = match (&after, &filter.namespace) {
        (Some(key), _) => Bound::Excluded(key.clone()),
        (None, Some(ns)) => Bound::Included((ns.clone(), String::new())),
        (None, None) => Bound::Unbounded,
    };
    let resource = &RESOURCES[r];
    let mut items = Vec::new();
    let mut next = None;
    for (key, o) in objects.range((start, Bound::Unbounded)) {
        if filter.namespace.as_ref().is_some_and(|ns| *ns != key.0) {
            break; // keys are ordered by namespace first
        }
        if !filter.matches(o) {
            continue;
        }
        if limit.is_some_and(|l| items.len() == l) {
            next = items
                .last()
                .map(|(k, _): &(&(String, String), &Arc<Stored>)| token(snapshot, k));
            break;
        }
        items.push((key, o));
    }
    let mut body =
        String::with_capacity(items.iter().map(|(_, o)| o.body.len() + 1).sum::<usize>() + 256);
    let (kind, api_version) = if metadata_only {
        ("PartialObjectMetadataList".to_owned(), "meta.k8s.io/v1")
    } else {
        (format!("{}List", resource.kind), resource.api_version)
    };
    body.push_str(&format!(r#"{{"kind":"{kind}","apiVersion":"{api_version}","metadata":{{"resourceVersion":"{snapshot}""#));
    if let Some(n) = next {
        body.push_str(&format!(r#","continue":"{n}""#));
    }
    body.push_str(r#"},"items":["#);
    for (i, (_, o)) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        if metadata_only {
            body.push_str(&o.metadata_only());
        } else {
            body.push_str(&o.body);
        }
    }
    body.push_str("]}");
    json(StatusCode::OK, body)
}

fn event_line(kind: &str, object: &str) -> Bytes {
    Bytes::from(format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n"))
}

fn render(o: &Stored, r: &Resource, metadata_only: bool) -> String {
    if metadata_only {
        o.metadata_only()
    } else {
        o.with_type(r)
    }
}

struct WatchHow {
    rv: u64,
    metadata_only: bool,
    bookmarks: bool,
    timeout: Duration,
}

fn watch(
    api: FakeApi,
    r: usize,
    filter: Filter,
    how: WatchHow,
    mut drops: tokio::sync::watch::Receiver<u64>,
) -> Response {
    let WatchHow {
        rv,
        metadata_only,
        bookmarks,
        timeout,
    } = how;
    let resource = RESOURCES[r];
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut backlog = Vec::new();
    let mut changes = None;
    {
        let store = api.store();
        if rv != 0 && rv < store.floor {
            // The ERROR event ends the stream.
            let message = format!("too old resource version: {rv} ({})", store.floor);
            backlog.push(event_line("ERROR", &status_json(410, "Expired", &message)));
        } else {
            // Subscribed under the lock: nothing falls between the backlog and the channel.
            changes = Some(api.inner.changes.subscribe());
            if rv == 0 {
                // "Any version": the current state as ADDED events, then the changes.
                for o in store.objects[r].values().filter(|o| filter.matches(o)) {
                    backlog.push(event_line("ADDED", &render(o, &resource, metadata_only)));
                }
            } else {
                for c in store.since(rv).filter(|c| c.resource == r) {
                    if let Some((kind, o)) = c.event_for(&filter) {
                        backlog.push(event_line(kind, &render(o, &resource, metadata_only)));
                    }
                }
            }
        }
    }
    let every = api.inner.bookmark_every;
    tokio::spawn(async move {
        for line in backlog {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let Some(mut changes) = changes else {
            return;
        };
        let end = tokio::time::sleep(timeout);
        tokio::pin!(end);
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            let lines: Vec<Bytes> = tokio::select! {
                // A dropped watch sends nothing more, not even what was already waiting.
                biased;
                _ = drops.changed() => return,
                () = &mut end => return,
                () = tx.closed() => return,
                c = changes.recv() => match c {
                    Ok(c) => one(&c, r, &filter, &resource, metadata_only).into_iter().collect(),
                    // Too slow a reader: end the watch, the client re-watches from its
                    // last version (as the API server does with a full watch buffer).
                    Err(_) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    // Under the lock nothing more can be sent, so once the channel is
                    // drained every change up to the store's version has been delivered.
                    let store = api.store();
                    if drops.has_changed().unwrap_or(true) {
                        return; // dropped meanwhile: no bookmark from after the drop
                    }
                    let mut lines = Vec::new();
                    loop {
                        match changes.try_recv() {
                            Ok(c) => lines.extend(one(&c, r, &filter, &resource, metadata_only)),
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(_) => return,
                        }
                    }
                    let kind = if metadata_only { "PartialObjectMetadata" } else { resource.kind };
                    let api_version = if metadata_only { "meta.k8s.io/v1" } else { resource.api_version };
                    let mark = format!(r#"{{"kind":"{kind}","apiVersion":"{api_version}","metadata":{{"resourceVersion":"{}"}}}}"#, store.rv);
                    lines.push(event_line("BOOKMARK", &mark));
                    lines
                }
            };
            for line in lines {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

fn one(
    c: &Change,
    r: usize,
    filter: &Filter,
    resource: &Resource,
    metadata_only: bool,
) -> Option<Bytes> {
    if c.resource != r {
        return None;
    }
    c.event_for(filter)
        .map(|(kind, o)| event_line(kind, &render(o, resource, metadata_only)))
}
