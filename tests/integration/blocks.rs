//! Server blocks: a second block answers on its own addresses through its own chain,
//! beside the default block, as a Corefile's server blocks do.

use hickory_proto::rr::RecordType;

use crate::client::{ask, ask_tcp};
use crate::harness::{TestServer, sample_cluster};
use crate::http::get;
use crate::upstream::{Mode, TestUpstream};

#[test]
fn a_second_block_answers_on_its_own_addresses_through_its_own_chain() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let toml = format!(
        "[source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = []\n\
         [[blocks]]\nname = \"edge\"\nlisten = [\"127.0.0.1:0\"]\nchain = [\"cache\", \"forward\"]\n\
         [blocks.forward]\nupstreams = [\"{}\"]\n",
        up.addr
    );
    let s = TestServer::from_toml(dir.path(), &toml);
    let web = "web.shop.svc.cluster.local";
    // The default block: the zone, and nothing forwarded.
    assert_eq!(ask(s.udp(), web, RecordType::A).rdata(), ["10.96.100.10"]);
    assert_eq!(
        ask(s.udp(), "www.example.org", RecordType::A).rcode(),
        "REFUSED"
    );
    // The edge block has no kubernetes stage: even a cluster name goes upstream, once,
    // then comes from its cache, over UDP and TCP alike.
    let edge = s.block_udp("edge");
    assert_ne!(edge, s.udp());
    assert_eq!(ask(edge, web, RecordType::A).rdata(), ["192.0.2.1"]);
    assert_eq!(ask(edge, web, RecordType::A).rdata(), ["192.0.2.1"]);
    assert_eq!(
        ask_tcp(s.block_tcp("edge"), web, RecordType::A).rdata(),
        ["192.0.2.1"]
    );
    assert_eq!(up.count(), 1, "the edge block's cache answered the rest");
    assert_eq!(
        ask(edge, "www.example.org", RecordType::A).rdata(),
        ["192.0.2.1"]
    );
    // Ready once every block is.
    let ready = s.http(clusterdns::admin::Endpoint::Ready);
    assert_eq!(get(ready, "/ready").map(|r| r.0), Some(200));
}

#[test]
fn blocks_are_checked_like_the_rest_of_the_config() {
    let parse = |text: &str| {
        clusterdns::config::Config::parse(std::path::Path::new("c.toml"), text)
            .unwrap_err()
            .to_string()
    };
    let base = "[source]\nsample = true\n";
    let err = parse(&format!(
        "{base}[[blocks]]\nname = \"edge\"\nlisten = [\"127.0.0.1:5400\"]\nchain = [\"cache\", \"rewrite\"]\n"
    ));
    assert!(
        err.starts_with("c.toml:6:") && err.contains("rewrite"),
        "{err}"
    );
    let err = parse(&format!(
        "{base}[[blocks]]\nname = \"edge\"\nlisten = [\"127.0.0.1:5353\"]\n"
    ));
    assert!(err.contains("already listened on"), "{err}");
    let err = parse(&format!(
        "{base}[[blocks]]\nname = \"a\"\nlisten = [\"127.0.0.1:5400\"]\n[[blocks]]\nname = \"a\"\nlisten = [\"127.0.0.1:5401\"]\n"
    ));
    assert!(err.contains("already there"), "{err}");
    let err = parse(&format!(
        "{base}[[blocks]]\nname = \"edge\"\nlisten = [\"127.0.0.1:5400\"]\nchain = []\n"
    ));
    assert!(err.contains("chain") && err.contains("empty"), "{err}");
}
