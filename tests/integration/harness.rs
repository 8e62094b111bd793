//! Starts clusterdns in-process on 127.0.0.1 with an ephemeral port, on its own runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clusterdns::app::Server;
use clusterdns::config::{Config, Upstream};

pub struct TestServer {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
}

impl TestServer {
    /// Starts a server from config text (the `listen` is replaced by 127.0.0.1:0).
    pub fn from_toml(dir: &Path, toml: &str) -> TestServer {
        let path = dir.join("clusterdns.toml");
        std::fs::write(&path, toml).unwrap();
        let mut config = Config::load(&path).unwrap();
        config.listen = vec!["127.0.0.1:0".parse().unwrap()];
        TestServer::start(config)
    }

    pub fn start(mut config: Config) -> TestServer {
        // Tests never send a packet off this machine: only loopback upstreams are kept.
        let local = |u: &Upstream| matches!(u, Upstream::Addr(a) if a.ip().is_loopback());
        config.forward.upstreams.retain(local);
        // HTTP endpoints on ephemeral ports, so servers in parallel tests do not collide.
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        config.health.listen = config.health.listen.map(|_| any);
        config.ready.listen = config.ready.listen.map(|_| any);
        config.metrics.listen = config.metrics.listen.map(|_| any);
        for (_, ups) in &mut config.forward.stub_domains {
            ups.retain(local);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(Server::start(config)).unwrap();
        TestServer {
            runtime,
            server: Some(server),
        }
    }

    /// Serves a cluster file with the given `[kubernetes]` options.
    pub fn with_cluster(dir: &Path, cluster_yaml: &str, kubernetes: &str) -> (TestServer, PathBuf) {
        let file = dir.join("cluster.yaml");
        std::fs::write(&file, cluster_yaml).unwrap();
        let toml = format!(
            "[source]\nfile = \"cluster.yaml\"\npoll_interval_ms = 50\n[kubernetes]\n{kubernetes}\n"
        );
        (TestServer::from_toml(dir, &toml), file)
    }

    pub fn udp(&self) -> SocketAddr {
        self.server.as_ref().unwrap().udp_addrs()[0]
    }

    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.server.as_ref().unwrap().udp_addrs()
    }

    /// The address of an HTTP endpoint.
    pub fn http(&self, endpoint: clusterdns::admin::Endpoint) -> SocketAddr {
        self.server
            .as_ref()
            .unwrap()
            .http_addr(endpoint)
            .expect("endpoint is on")
    }

    /// Reloads the running server from a config file, as the binary does on change.
    pub fn reload_from(&mut self, path: &Path) -> Result<(), clusterdns::reload::ReloadError> {
        let server = self.server.as_mut().unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        self.runtime.block_on(server.reload_from(path, |c| {
            c.listen = vec![any];
            c.health.listen = c.health.listen.map(|_| any);
            c.ready.listen = c.ready.listen.map(|_| any);
            c.metrics.listen = c.metrics.listen.map(|_| any);
        }))
    }

    /// Where the server block `name` answers over UDP.
    pub fn block_udp(&self, name: &str) -> SocketAddr {
        self.server.as_ref().unwrap().block_udp_addrs(name)[0]
    }

    /// Where the server block `name` answers over TCP.
    pub fn block_tcp(&self, name: &str) -> SocketAddr {
        self.server.as_ref().unwrap().block_tcp_addrs(name)[0]
    }

    pub fn tcp(&self) -> SocketAddr {
        self.server.as_ref().unwrap().tcp_addrs()[0]
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.stop());
        }
    }
}

/// The sample cluster shipped in config/.
pub fn sample_cluster() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sample-cluster.yaml"),
    )
    .unwrap()
}

/// A loopback port free for both TCP and UDP right now (for the real binary, which is
/// told its ports on the command line).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The HTTP endpoints on ephemeral ports, so tests running side by side do not collide.
pub const EPHEMERAL_HTTP: [&str; 6] = [
    "--health-listen",
    "127.0.0.1:0",
    "--ready-listen",
    "127.0.0.1:0",
    "--metrics-listen",
    "127.0.0.1:0",
];

/// Whether `dig` is installed: a test that needs it skips without it, except in CI,
/// where `.ci/run` installs dnsutils and its absence is a failure.
pub fn dig_available() -> bool {
    if std::process::Command::new("dig").arg("-v").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "dig is missing in CI: .ci/run must install dnsutils"
    );
    eprintln!("dig is not installed; skipping");
    false
}

/// How often [`wait_until`] looks again.
const POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Polls `check` until it holds, for at most `within`; returns whether it held. For waits
/// on a real process, real sockets or real files, where no clock can be injected: a test
/// waits as long as the condition takes instead of a fixed guess, and still fails when
/// the condition never comes.
pub fn wait_until(within: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
