//! Network namespaces for the tests that need root: the node / pod / "cluster DNS"
//! topology of the NodeLocal notes, a stand-in for kube-proxy in each of its modes, and
//! guards that remove everything even when a test panics.
//!
//! Every firewall and link command runs inside a namespace created here. Tests using
//! this hold [`serial`] (they share /run/xtables.lock and the CPU budget) and return
//! early with a printed reason where [`unavailable`] says they cannot run.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Addresses of the topology.
pub const POD_V4: &str = "10.244.0.2";
pub const NODE_POD_V4: &str = "10.244.0.1";
pub const NODE_POD_V6: &str = "fd00:244::1";
pub const POD_V6: &str = "fd00:244::2";
pub const NODE_UP_V4: &str = "10.250.0.1";
pub const NODE_UP_V6: &str = "fd00:250::1";
/// The "cluster DNS" pod behind the ClusterIP.
pub const UP_V4: &str = "10.250.0.2";
pub const UP_V6: &str = "fd00:250::2";
/// The kube-dns ClusterIPs kube-proxy's stand-in translates to the "up" addresses.
pub const CLUSTER_IP_V4: &str = "10.96.0.10";
pub const CLUSTER_IP_V6: &str = "fd00:96::a";

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs namespace tests one at a time; a panicked test does not block the others.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why these tests cannot run here (not root, or a program missing), if they cannot.
pub fn unavailable(programs: &[&str]) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        return Some("not running as root".into());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for program in ["ip"].iter().chain(programs) {
        if !path
            .split(':')
            .any(|d| std::path::Path::new(d).join(program).is_file())
        {
            return Some(format!("{program} is not installed"));
        }
    }
    None
}

/// One network namespace, deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates it with its loopback up; Err (a reason to skip) when `ip netns add` fails.
    pub fn add(name: String) -> Result<Netns, String> {
        let out = Command::new("ip").args(["netns", "add", &name]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "ip netns add failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => return Err(format!("cannot run ip: {e}")),
        }
        let ns = Netns { name };
        ns.sh("ip link set lo up");
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs a shell script inside; its output, whatever the exit status.
    pub fn try_sh(&self, script: &str) -> Output {
        self.command("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a shell script inside, which must succeed; its stdout.
    pub fn sh(&self, script: &str) -> String {
        let out = self.try_sh(script);
        assert!(
            out.status.success(),
            "in {}: {script}\n{}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts a long-running program inside; killed (SIGKILL) when the guard drops.
    /// `ip netns exec` execs the program, so the child is the program itself.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Process {
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Process(child)
    }

    /// Runs `f` on a thread that has entered the namespace (network namespaces are per
    /// thread), so in-process code — sockets, netlink, the programs it starts — lives
    /// there.
    pub fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let file = File::open(format!("/run/netns/{}", self.name)).unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: setns only reads the descriptor, which `file` keeps open; it
                // changes the namespace of this thread alone, which ends with the scope.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap()
        })
    }

    /// Waits until something listens on UDP `addr:port` inside (e.g. a server just
    /// spawned), at most 10 s.
    pub fn wait_udp_listener(&self, addr: &str, port: u16) {
        let wanted = if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        };
        let start = Instant::now();
        while !self.sh("ss -Hlnu").contains(&wanted) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nothing listens on {wanted} in {}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A program started in a namespace; SIGKILLed and reaped on drop.
pub struct Process(pub Child);

impl Process {
    /// SIGKILL, as the OOM killer would, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What stands in for kube-proxy: the DNAT of the ClusterIPs to the "up" namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeProxy {
    /// iptables mode through iptables-nft.
    IptablesNft,
    /// iptables mode through iptables-legacy.
    IptablesLegacy,
    /// nftables mode: its own `kube-proxy` tables.
    Nftables,
}

/// Namespaces "node", "pod" and "up" (the cluster DNS pod), named after this process.
/// Fields drop in order, so every namespace is removed.
pub struct Topology {
    pub node: Netns,
    pub pod: Netns,
    pub up: Netns,
}

impl Topology {
    /// veth pod ↔ node (10.244.0.2 ↔ .1, fd00:244::2 ↔ ::1) and node ↔ up (10.250.0.1 ↔
    /// .2, fd00:250::1 ↔ ::2), forwarding on in node, default routes through node, and
    /// node's default route to up. Err: a reason to skip.
    pub fn build(tag: &str) -> Result<Topology, String> {
        let base = format!("cdns{}{tag}", std::process::id());
        let node = Netns::add(format!("{base}-node"))?;
        let pod = Netns::add(format!("{base}-pod"))?;
        let up = Netns::add(format!("{base}-up"))?;
        node.sh(&format!(
            "set -e
             ip link add to-pod type veth peer name eth0 netns {pod}
             ip link add to-up type veth peer name eth0 netns {up}
             ip addr add {NODE_POD_V4}/24 dev to-pod
             ip addr add {NODE_POD_V6}/64 dev to-pod nodad
             ip addr add {NODE_UP_V4}/24 dev to-up
             ip addr add {NODE_UP_V6}/64 dev to-up nodad
             ip link set to-pod up
             ip link set to-up up
             ip route add default via {UP_V4}
             ip -6 route add default via {UP_V6}
             sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
            pod = pod.name(),
            up = up.name(),
        ));
        for (ns, v4, v6, gw4, gw6) in [
            (&pod, POD_V4, POD_V6, NODE_POD_V4, NODE_POD_V6),
            (&up, UP_V4, UP_V6, NODE_UP_V4, NODE_UP_V6),
        ] {
            ns.sh(&format!(
                "set -e
                 ip addr add {v4}/24 dev eth0
                 ip addr add {v6}/64 dev eth0 nodad
                 ip link set eth0 up
                 ip route add default via {gw4}
                 ip -6 route add default via {gw6}"
            ));
        }
        Ok(Topology { node, pod, up })
    }

    /// Installs kube-proxy's stand-in in node: the ClusterIPs' port 53 (UDP and TCP),
    /// from pods (prerouting) and from the node (output), DNATed to up.
    pub fn kube_proxy(&self, mode: KubeProxy) {
        let script = match mode {
            KubeProxy::Nftables => {
                let mut s = String::from("nft -f - <<'EOF'\n");
                for (family, ip, dst) in [
                    ("ip", CLUSTER_IP_V4, UP_V4.to_string()),
                    ("ip6", CLUSTER_IP_V6, format!("[{UP_V6}]")),
                ] {
                    s.push_str(&format!(
                        "table {family} kube-proxy {{
                           chain nat-prerouting {{
                             type nat hook prerouting priority dstnat; policy accept;
                             {family} daddr {ip} meta l4proto {{ tcp, udp }} th dport 53 dnat to {dst}:53
                           }}
                           chain nat-output {{
                             type nat hook output priority -100; policy accept;
                             {family} daddr {ip} meta l4proto {{ tcp, udp }} th dport 53 dnat to {dst}:53
                           }}
                         }}\n"
                    ));
                }
                s.push_str("EOF\n");
                s
            }
            KubeProxy::IptablesNft | KubeProxy::IptablesLegacy => {
                let variant = if mode == KubeProxy::IptablesNft {
                    "nft"
                } else {
                    "legacy"
                };
                let mut s = String::from("set -e\n");
                for (tool, ip, dst) in [
                    ("iptables", CLUSTER_IP_V4, UP_V4.to_string()),
                    ("ip6tables", CLUSTER_IP_V6, format!("[{UP_V6}]")),
                ] {
                    let t = format!("{tool}-{variant} -w -t nat");
                    s.push_str(&format!(
                        "{t} -N KUBE-SERVICES
                         {t} -A PREROUTING -j KUBE-SERVICES
                         {t} -A OUTPUT -j KUBE-SERVICES
                         {t} -A KUBE-SERVICES -d {ip} -p udp --dport 53 -j DNAT --to-destination {dst}:53
                         {t} -A KUBE-SERVICES -d {ip} -p tcp --dport 53 -j DNAT --to-destination {dst}:53\n"
                    ));
                }
                s
            }
        };
        self.node.sh(&script);
    }
}
