//! A bearer token read from a file (a kubeconfig's `tokenFile:`, as the pod's service
//! account token is): the fake API server checks it on every request.

use std::net::SocketAddr;
use std::time::Duration;

use clusterdns_testkit::{FakeApi, FakeApiServer, kubeconfig_with_token_file, namespace, service};
use hickory_proto::rr::RecordType;

use crate::client::ask;
use crate::harness::{TestServer, wait_until};

fn answers(dns: SocketAddr, name: &str, want: &str) -> bool {
    wait_until(Duration::from_secs(5), || {
        let a = ask(dns, name, RecordType::A);
        a.rcode() == "NOERROR" && a.rdata() == [want]
    })
}

#[test]
fn a_token_file_is_trimmed_and_read_again_when_it_rotates() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = FakeApi::new();
    api.apply_all([namespace("shop"), service("shop", "web", "10.96.0.5", &[])]);
    api.require_token(Some("first-token"));
    let mut server = rt.block_on(FakeApiServer::start(api.clone())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    // Written as `echo` and most tools write it: with a newline.
    std::fs::write(&token, "first-token\n").unwrap();
    let kubeconfig = kubeconfig_with_token_file(&server.url(), &token);
    std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
    let toml = "[kubernetes]\nkubeconfig = \"kubeconfig\"\n[forward]\nupstreams = []\n";
    let dns = TestServer::from_toml(dir.path(), toml);
    assert!(
        answers(dns.udp(), "web.shop.svc.cluster.local", "10.96.0.5"),
        "the token with a trailing newline was not accepted"
    );

    // Rotation: the new token replaces the file (as the kubelet publishes it, at once),
    // the API server accepts only it from now on, and every watch must reconnect.
    let next = dir.path().join("token.next");
    std::fs::write(&next, "second-token\n").unwrap();
    std::fs::rename(&next, &token).unwrap();
    api.require_token(Some("second-token"));
    api.drop_watches();
    api.apply(service("shop", "new", "10.96.0.6", &[]));
    assert!(
        answers(dns.udp(), "new.shop.svc.cluster.local", "10.96.0.6"),
        "the rotated token was not used"
    );
    drop(dns);
    rt.block_on(server.go_away());
}
