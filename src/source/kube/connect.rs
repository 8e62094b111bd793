//! Connecting to the API server: an explicit kubeconfig, else the pod's service account
//! when running in a pod, else the user's default kubeconfig (`$KUBECONFIG`,
//! `~/.kube/config`); `endpoint` replaces the server's URL, as CoreDNS's option does.

use std::path::{Path, PathBuf};

use futures::FutureExt;
use kube::client::ClientBuilder;
use kube::config::{InClusterError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use thiserror::Error;
use tower::util::MapRequestLayer;

use super::token::{TokenError, TokenFile};

/// Why no client could be made. Each is a configuration problem: the server does not start.
#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: KubeconfigError,
    },
    #[error(
        "not running in a pod ({in_cluster}) and no usable default kubeconfig ({kubeconfig}); give `kubeconfig` or `endpoint` in [kubernetes], or --kubeconfig"
    )]
    NoConfig {
        in_cluster: Box<InClusterError>,
        kubeconfig: Box<KubeconfigError>,
    },
    #[error("in-cluster service account: {0}")]
    InCluster(#[from] InClusterError),
    #[error("endpoint {url:?} is not a URL: {reason}")]
    Endpoint { url: String, reason: String },
    #[error("{0}")]
    Blocked(&'static str),
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Makes the client. Must be called inside a Tokio runtime (the client spawns its
/// request buffer); performs no network I/O, so a missing API server is not an error
/// here but a watch that retries.
pub fn client(
    kubeconfig: Option<&Path>,
    endpoint: Option<&str>,
) -> Result<kube::Client, ConnectError> {
    let mut config = match (kubeconfig, endpoint) {
        (Some(path), _) => {
            let err = |source| ConnectError::Kubeconfig {
                path: path.to_owned(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(err)?;
            loaded(kube::Config::from_custom_kubeconfig(
                file,
                &KubeConfigOptions::default(),
            ))?
            .map_err(err)?
        }
        // Like CoreDNS: an endpoint alone is used as it is, without credentials (for
        // `kubectl proxy`, or an API server reached through a local sidecar).
        (None, Some(url)) => kube::Config::new(parse_url(url)?),
        (None, None) if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            kube::Config::incluster()?
        }
        (None, None) => {
            match loaded(kube::Config::from_kubeconfig(&KubeConfigOptions::default()))? {
                Ok(c) => c,
                Err(kubeconfig) => match kube::Config::incluster() {
                    Ok(c) => c,
                    Err(in_cluster) => {
                        return Err(ConnectError::NoConfig {
                            in_cluster: Box::new(in_cluster),
                            kubeconfig: Box::new(kubeconfig),
                        });
                    }
                },
            }
        }
    };
    if let (Some(url), Some(_)) = (endpoint, kubeconfig) {
        config.cluster_url = parse_url(url)?;
    }
    let token_file = take_token_file(&mut config)?;
    let builder = ClientBuilder::try_from(config)?;
    Ok(match token_file {
        Some(file) => builder
            .with_layer(&MapRequestLayer::new(move |r| file.authorize(r)))
            .build(),
        None => builder.build(),
    })
}

/// Takes the token file out of the config when kube would use it (no auth provider,
/// user and password, or inline token before it), so that [`TokenFile`] reads it
/// instead: trimmed, and again as soon as it changes.
fn take_token_file(config: &mut kube::Config) -> Result<Option<TokenFile>, TokenError> {
    let auth = &mut config.auth_info;
    let basic = auth.username.is_some() && auth.password.is_some();
    if auth.auth_provider.is_some() || basic || auth.token.is_some() {
        return Ok(None);
    }
    match auth.token_file.take() {
        Some(path) => TokenFile::open(Path::new(&path)).map(Some),
        None => Ok(None),
    }
}

/// kube's kubeconfig loading is an `async fn` that does no I/O of its own (files are
/// read before it), so it completes on its first poll; this keeps start-up synchronous.
fn loaded<T>(f: impl std::future::Future<Output = T>) -> Result<T, ConnectError> {
    f.now_or_never().ok_or(ConnectError::Blocked(
        "loading the kubeconfig did not complete at once (kube changed how it loads it)",
    ))
}

fn parse_url(url: &str) -> Result<axum::http::Uri, ConnectError> {
    let err = |reason: String| ConnectError::Endpoint {
        url: url.to_owned(),
        reason,
    };
    let uri: axum::http::Uri = url.parse().map_err(|e| err(format!("{e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(err(
            "expected http://HOST[:PORT] or https://HOST[:PORT]".into()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_and_kubeconfigs() {
        assert!(client(None, Some("http://127.0.0.1:1")).is_ok());
        assert!(matches!(
            client(None, Some("127.0.0.1:1")).err(),
            Some(ConnectError::Endpoint { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n";
        std::fs::write(&path, kubeconfig).unwrap();
        assert!(client(Some(&path), None).is_ok());
        let err = client(Some(&dir.path().join("missing")), None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
