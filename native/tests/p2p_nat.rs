//! NAT traversal through real NATs: network namespaces made by this test,
//!
//! ```text
//! a1 (10.1.0.2) -- n1 [nft masquerade] 198.51.100.2 --+
//!                                                       pub: signaling + coturn on 192.0.2.1
//! a2 (10.2.0.2) -- n2 [nft masquerade] 203.0.113.2  --+
//! ```
//!
//! with the real `lanewire-signaling` binary and coturn (STUN and TURN, `use-auth-secret`) in
//! `pub`. Each NAT is nftables `masquerade` (or `masquerade random`) plus the stateful firewall
//! every NAT router has (unsolicited packets from outside are dropped), and `pub` has a default
//! route where packets to unknown (private) addresses vanish, as on the Internet: see
//! [`Lab::build`] for why both matter. The signaling server mints the TURN credentials and hands out both URLs, so the peers
//! configure no ICE at all: what they do is ICE's own choice. The private networks behind the
//! NATs have no route to each other; only the NATs' outside addresses are reachable.
//!
//! - Two port-preserving NATs (`masquerade`): the peers connect directly through the NATs'
//!   mappings (server-reflexive candidates): route direct, not relayed, to the peer NAT's
//!   outside address.
//! - A symmetric NAT (`masquerade random`) on one side, then on both: hole punching cannot work,
//!   and the peers fall back to the TURN relay by themselves: route relayed.
//!
//! In each case both peers exchange reliable messages (up to 256 KiB) and unreliable ones, all
//! checked byte for byte. Each peer is this test binary re-run under `ip netns exec` (the
//! `nat_role` test, ignored unless run that way).
//!
//! Needs root, `ip`, `nft` and coturn's `turnserver`. Without them the test is reported as
//! skipped (`common::skip`: a `LANEWIRE-SKIP:` line the test count reads), or fails when
//! `CI=true`. Every namespace it created is deleted
//! on every path (a guard with `Drop`; names carry the process id).

mod common;
mod p2p_common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{check_message, make_message, skip};
use lanewire::{
    Config, ConnectionHandle, ConnectionState, EndReason, SendError, SendFlags, SignalingConfig,
    Sockets,
};

/// Set in the environment of a re-run test binary: `listener` or `connector`.
const ROLE: &str = "LANEWIRE_NAT_ROLE";
const ENV_URL: &str = "LANEWIRE_NAT_URL";
/// `direct` or `relayed`: the route this peer must report.
const ENV_EXPECT: &str = "LANEWIRE_NAT_EXPECT";
/// The outside address of this peer's own NAT, and of the other peer's.
const ENV_OWN_NAT: &str = "LANEWIRE_NAT_OWN";
const ENV_PEER_NAT: &str = "LANEWIRE_NAT_PEER";
/// `1` when this peer's NAT preserves ports.
const ENV_PRESERVING: &str = "LANEWIRE_NAT_PRESERVING";

const SERVER_IP: &str = "192.0.2.1";
const TURN_PORT: u16 = 3478;
const SIGNALING_PORT: u16 = 8080;
const SECRET: &str = "nat-suite-turn-secret-0123456789";
const LISTENER_ID: &str = "str:nat-listener";
const CONNECTOR_ID: &str = "str:nat-connector";
const VPORT: u32 = 7;
/// The outside addresses of the two NATs (their links to `pub`).
const NAT1_OUT: &str = "198.51.100.2";
const NAT2_OUT: &str = "203.0.113.2";

/// Reliable messages each way (sizes from 13 B to ~20 KB, and the last one 256 KiB), and
/// unreliable ones (up to 1 KB, one per millisecond).
const RELIABLE: u64 = 100;
const UNRELIABLE: u64 = 200;
/// Every wait of a role, and the whole of a role's run.
const ROLE_WAIT: Duration = Duration::from_secs(20);
const ROLE_LIMIT: Duration = Duration::from_secs(28);

/// One case at a time: each starts four processes on two cores.
static ONE_CASE: Mutex<()> = Mutex::new(());

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// How a NAT maps ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nat {
    /// `masquerade`: keeps the source port when it can (one mapping per socket).
    PortPreserving,
    /// `masquerade random`: a random port per destination, as a symmetric NAT.
    Symmetric,
}

impl Nat {
    fn rule(self) -> &'static str {
        match self {
            Nat::PortPreserving => "masquerade",
            Nat::Symmetric => "masquerade random",
        }
    }
}

/// The namespaces and the server processes of one case; on drop the processes are killed and
/// every namespace is deleted (which also deletes the veth pairs).
struct Lab {
    names: Vec<String>,
    children: Vec<Child>,
    scratch: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = run(&["ip", "netns", "del", n]);
        }
        if let Some(dir) = std::env::var_os("LANEWIRE_NAT_PCAP") {
            let name = self.scratch.file_name().expect("a name");
            let _ = std::fs::copy(
                self.scratch.join("turn.log"),
                Path::new(&dir).join(name).with_extension("turn.log"),
            );
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl Lab {
    fn ns(&self, role: &str) -> &str {
        let i = ["a1", "n1", "pub", "n2", "a2"].iter().position(|r| *r == role).expect("a role");
        &self.names[i]
    }

    fn exec(&self, role: &str, cmd: &str) -> Result<(), String> {
        run(&["ip", "netns", "exec", self.ns(role), "sh", "-c", cmd])
    }

    /// Builds the topology with `nat1` and `nat2` in front of a1 and a2.
    fn build(case: &str, nat1: Nat, nat2: Nat) -> Result<Lab, String> {
        let tag = format!("lwnat-{}-{case}", std::process::id());
        let scratch = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let mut lab = Lab { names: Vec::new(), children: Vec::new(), scratch };
        for role in ["a1", "n1", "pub", "n2", "a2"] {
            let name = format!("{tag}-{role}");
            run(&["ip", "netns", "add", &name])?;
            lab.names.push(name);
        }
        let link = |a: &str, dev_a: &str, b: &str, dev_b: &str| {
            run(&[
                "ip",
                "link",
                "add",
                dev_a,
                "netns",
                lab.ns(a),
                "type",
                "veth",
                "peer",
                "name",
                dev_b,
                "netns",
                lab.ns(b),
            ])
        };
        link("a1", "in0", "n1", "in0")?;
        link("n1", "out0", "pub", "to1")?;
        link("a2", "in0", "n2", "in0")?;
        link("n2", "out0", "pub", "to2")?;
        let addrs: [(&str, &str, &str); 8] = [
            ("a1", "in0", "10.1.0.2/24"),
            ("n1", "in0", "10.1.0.1/24"),
            ("n1", "out0", "198.51.100.2/24"),
            ("pub", "to1", "198.51.100.1/24"),
            ("a2", "in0", "10.2.0.2/24"),
            ("n2", "in0", "10.2.0.1/24"),
            ("n2", "out0", "203.0.113.2/24"),
            ("pub", "to2", "203.0.113.1/24"),
        ];
        for (role, dev, addr) in addrs {
            lab.exec(role, &format!("ip addr add {addr} dev {dev} && ip link set {dev} up"))?;
        }
        for role in ["a1", "n1", "pub", "n2", "a2"] {
            lab.exec(role, "ip link set lo up")?;
        }
        // The servers' address, on pub's loopback: reachable from both NATs' outside links.
        lab.exec("pub", &format!("ip addr add {SERVER_IP}/32 dev lo"))?;
        lab.exec("a1", "ip route add default via 10.1.0.1")?;
        lab.exec("a2", "ip route add default via 10.2.0.1")?;
        lab.exec("n1", "ip route add default via 198.51.100.1")?;
        lab.exec("n2", "ip route add default via 203.0.113.1")?;
        for (role, nat) in [("n1", nat1), ("n2", nat2)] {
            lab.exec(role, "echo 1 > /proc/sys/net/ipv4/ip_forward")?;
            lab.exec(role, "nft add table ip nat")?;
            lab.exec(
                role,
                "nft add chain ip nat post '{ type nat hook postrouting priority 100; }'",
            )?;
            lab.exec(role, &format!("nft add rule ip nat post oifname out0 {}", nat.rule()))?;
            // The stateful firewall every NAT router has: what arrives from outside unasked is
            // dropped. Without it an early check from the peer reaches the NAT's own stack,
            // leaves a conntrack entry that makes `masquerade` pick another port for our
            // answer (no hole is ever punched), and draws an ICMP error that makes coturn
            // close the allocation of the client behind that NAT.
            lab.exec(role, "nft add table inet fw")?;
            for hook in ["input", "forward"] {
                lab.exec(
                    role,
                    &format!(
                        "nft add chain inet fw {hook} '{{ type filter hook {hook} priority 0; }}'"
                    ),
                )?;
                lab.exec(
                    role,
                    &format!("nft add rule inet fw {hook} iifname out0 ct state new drop"),
                )?;
            }
        }
        lab.exec("pub", "echo 1 > /proc/sys/net/ipv4/ip_forward")?;
        // The rest of the "Internet" (the private addresses of host candidates among it): a
        // default route into a veth pair whose far end drops everything (a gateway MAC that is
        // nobody's), where packets vanish as they would out there. Without one, coturn's relay
        // gets ENETUNREACH for a peer's private host candidate and closes that client's whole
        // allocation. (This kernel has no `dummy` device.)
        lab.exec("pub", "ip link add void0 type veth peer name void1")?;
        lab.exec("pub", "ip link set void1 up && ip link set void0 up")?;
        lab.exec(
            "pub",
            "ip neigh add 192.0.2.254 lladdr 02:00:5e:00:02:fe dev void0 nud permanent",
        )?;
        lab.exec("pub", "ip route add default via 192.0.2.254 dev void0 onlink")?;
        Ok(lab)
    }

    /// coturn in `pub`, STUN and TURN on 192.0.2.1, time-limited credentials checked against
    /// [`SECRET`]. Readiness is checked by the peers (their first STUN request).
    fn start_coturn(&mut self, turnserver: &Path) {
        let dir = &self.scratch;
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns("pub")])
            .arg(turnserver)
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls"])
            .arg(format!("--listening-ip={SERVER_IP}"))
            .arg(format!("--relay-ip={SERVER_IP}"))
            .arg(format!("--listening-port={TURN_PORT}"))
            .args(["--use-auth-secret", &format!("--static-auth-secret={SECRET}")])
            .args(["--min-port=49152", "--max-port=65535", "--realm=lanewire.test"])
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .arg(format!("--pidfile={}", dir.join("turn.pid").display()))
            .arg(format!("--log-file={}", dir.join("turn.log").display()))
            .args([
                "--verbose",
                "--simple-log",
                "--no-stdout-log",
                "--no-software-attribute",
                "--no-rfc5780",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn turnserver in pub");
        self.children.push(child);
    }

    /// The real signaling server in `pub`, minting TURN credentials for coturn and handing out
    /// the STUN URL with them. Returns its WebSocket URL once it listens.
    fn start_signaling(&mut self) -> String {
        let turn = format!("turn:{SERVER_IP}:{TURN_PORT}");
        let stun = format!("stun:{SERVER_IP}:{TURN_PORT}");
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.ns("pub")])
            .arg(p2p_common::signaling_binary())
            .args(["--dev-insecure", "--bind", &format!("{SERVER_IP}:{SIGNALING_PORT}")])
            .args(["--log", "warn", "--turn-secret", SECRET, "--turn-ttl", "600"])
            .args(["--turn-url", &turn, "--turn-url", &stun])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lanewire-signaling in pub");
        let stdout = child.stdout.take().expect("stdout");
        self.children.push(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("the server prints its address");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        format!("ws://{addr}/ws")
    }

    /// Debugging: `tcpdump` on pub's links and lo (when `LANEWIRE_NAT_PCAP` names a directory).
    fn capture(&mut self, dir: &Path, case: &str) {
        for dev in ["to1", "to2", "lo"] {
            let file = dir.join(format!("{case}-{dev}.txt"));
            let out = std::fs::File::create(&file).expect("capture file");
            if let Ok(child) = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    self.ns("pub"),
                    "tcpdump",
                    "-l",
                    "-n",
                    "-X",
                    "-i",
                    dev,
                    "udp",
                ])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(Stdio::null())
                .spawn()
            {
                self.children.push(child);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    /// The end of coturn's log, for failure messages.
    fn turn_log(&self) -> String {
        let log = std::fs::read_to_string(self.scratch.join("turn.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

/// A peer process; killed on drop if still running (a failing case never leaves one behind).
struct Role(Child);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Re-runs this binary's `nat_role` test in the namespace of `role` with `env`.
fn spawn_role(lab: &Lab, role: &str, env: &[(&str, String)]) -> Role {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", lab.ns(role)])
        .arg(exe)
        .args(["--exact", "nat_role", "--ignored", "--nocapture", "--test-threads=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Role(cmd.spawn().expect("spawn ip netns exec"))
}

/// Reads `child`'s stdout lines into a channel (and keeps them all for the report).
fn lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The rest of a finished child's lines (its stdout closes when it exits).
fn drain(rx: &mpsc::Receiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        out.push(line);
    }
    out
}

/// Waits for `child` up to `limit`, killing it on timeout; returns (success, its stderr).
fn finish(child: &mut Child, limit: Duration) -> (bool, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.is_some_and(|s| s.success()), err)
}

/// Runs one case: builds the lab, starts the servers, runs the listener in a2 and the
/// connector in a1, and checks that both report `expect` (`direct` or `relayed`).
fn nat_case(test: &str, nat1: Nat, nat2: Nat, expect: &str) {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let _one = ONE_CASE.lock().unwrap_or_else(|p| p.into_inner());
    let missing: Vec<&str> =
        ["ip", "nft", "turnserver"].into_iter().filter(|t| find_tool(t).is_none()).collect();
    if !missing.is_empty() {
        skip(
            test,
            &format!(
                "missing {} (apt-get install iproute2 nftables coturn, or cargo xtask setup)",
                missing.join(", ")
            ),
        );
        return;
    }
    let turnserver = find_tool("turnserver").expect("checked");
    let started = Instant::now();
    let case = test.rsplit('_').next().unwrap_or("x");
    let mut lab = match Lab::build(case, nat1, nat2) {
        Ok(lab) => lab,
        Err(e) => {
            skip(test, &format!("cannot build the namespaces and NATs (root needed): {e}"));
            return;
        }
    };
    if let Some(dir) = std::env::var_os("LANEWIRE_NAT_PCAP") {
        lab.capture(Path::new(&dir), case);
    }
    lab.start_coturn(&turnserver);
    let url = lab.start_signaling();
    let built = started.elapsed();

    let env = |own: &str, peer: &str, nat: Nat| {
        vec![
            (ENV_URL, url.clone()),
            (ENV_EXPECT, expect.to_owned()),
            (ENV_OWN_NAT, own.to_owned()),
            (ENV_PEER_NAT, peer.to_owned()),
            (ENV_PRESERVING, if nat == Nat::PortPreserving { "1" } else { "0" }.to_owned()),
        ]
    };
    let mut listener = spawn_role(
        &lab,
        "a2",
        &[env(NAT2_OUT, NAT1_OUT, nat2), vec![(ROLE, "listener".to_owned())]].concat(),
    );
    let listener_out = lines(listener.0.stdout.take().expect("stdout"));
    let mut listener_lines = Vec::new();
    // The listener says READY once it is registered and listening.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !listener_lines.iter().any(|l: &String| l == "READY") {
        let left = deadline.saturating_duration_since(Instant::now());
        match listener_out.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => listener_lines.push(line),
            Err(_) if left.is_zero() || listener.0.try_wait().ok().flatten().is_some() => {
                let (_, err) = finish(&mut listener.0, Duration::ZERO);
                panic!(
                    "the listener never got ready: {listener_lines:#?}\n{err}\ncoturn log:\n{}",
                    lab.turn_log()
                );
            }
            Err(_) => {}
        }
    }
    let mut connector = spawn_role(
        &lab,
        "a1",
        &[env(NAT1_OUT, NAT2_OUT, nat1), vec![(ROLE, "connector".to_owned())]].concat(),
    );
    let connector_out = lines(connector.0.stdout.take().expect("stdout"));
    let (c_ok, c_err) = finish(&mut connector.0, ROLE_LIMIT);
    let (l_ok, l_err) = finish(&mut listener.0, Duration::from_secs(10));
    let connector_lines = drain(&connector_out);
    listener_lines.extend(drain(&listener_out));
    let elapsed = started.elapsed();
    let report = |who: &str, lines: &[String]| -> String {
        lines.iter().filter(|l| l.starts_with("NAT ")).map(|l| format!("{who}: {l}\n")).collect()
    };
    let summary: String =
        [report("connector (a1)", &connector_lines), report("listener (a2)", &listener_lines)]
            .concat();
    if !(c_ok && l_ok) {
        panic!(
            "{test}: a role failed (connector ok: {c_ok}, listener ok: {l_ok})\n\
             --- connector ---\n{}\n{c_err}\n--- listener ---\n{}\n{l_err}\n--- coturn ---\n{}",
            connector_lines.join("\n"),
            listener_lines.join("\n"),
            lab.turn_log()
        );
    }
    drop(lab);
    print!("{summary}");
    println!(
        "{test}: NATs {} / {}, route {expect} on both sides; {:.1} s (namespaces and servers \
         {:.2} s)",
        nat1.rule(),
        nat2.rule(),
        elapsed.as_secs_f64(),
        built.as_secs_f64()
    );
}

#[test]
fn nat_direct_through_two_port_preserving_nats() {
    nat_case(
        "nat_direct_through_two_port_preserving_nats",
        Nat::PortPreserving,
        Nat::PortPreserving,
        "direct",
    );
}

#[test]
fn nat_relayed_behind_one_symmetric_nat() {
    nat_case(
        "nat_relayed_behind_one_symmetric_nat",
        Nat::PortPreserving,
        Nat::Symmetric,
        "relayed",
    );
}

#[test]
fn nat_relayed_behind_two_symmetric_nats() {
    nat_case("nat_relayed_behind_two_symmetric_nats", Nat::Symmetric, Nat::Symmetric, "relayed");
}

// ---- the peers, run in a1 and a2 ----

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"))
}

/// Sends a STUN binding request to coturn (retrying until it answers, which is also the
/// readiness check of coturn) and returns (local address, mapped address as coturn saw it).
fn stun_mapped() -> (SocketAddr, SocketAddr) {
    let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let txid: [u8; 12] = [7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(&txid);
    let deadline = Instant::now() + Duration::from_secs(10);
    let server: SocketAddr = format!("{SERVER_IP}:{TURN_PORT}").parse().unwrap();
    loop {
        assert!(Instant::now() < deadline, "coturn did not answer STUN on {server} in 10 s");
        sock.send_to(&req, server).expect("send STUN");
        let mut buf = [0u8; 512];
        let Ok((n, _)) = sock.recv_from(&mut buf) else { continue };
        if n < 20 || buf[0..2] != [0x01, 0x01] || buf[8..20] != txid {
            continue;
        }
        // Attributes: find XOR-MAPPED-ADDRESS (0x0020), IPv4.
        let mut at = 20;
        while at + 4 <= n {
            let typ = u16::from_be_bytes([buf[at], buf[at + 1]]);
            let len = u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize;
            let v = &buf[at + 4..(at + 4 + len).min(n)];
            if typ == 0x0020 && len >= 8 && v[1] == 0x01 {
                let port = u16::from_be_bytes([v[2], v[3]]) ^ 0x2112;
                let ip = [v[4] ^ 0x21, v[5] ^ 0x12, v[6] ^ 0xa4, v[7] ^ 0x42];
                let mut local = sock.local_addr().unwrap();
                // The socket is bound to 0.0.0.0: the address is the one veth's.
                let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
                probe.connect(server).unwrap();
                local.set_ip(probe.local_addr().unwrap().ip());
                return (local, SocketAddr::from((ip, port)));
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        panic!("STUN answer without an IPv4 XOR-MAPPED-ADDRESS");
    }
}

fn wait_connected(s: &Sockets, conn: ConnectionHandle) {
    let deadline = Instant::now() + ROLE_WAIT;
    loop {
        let info = s.connection_info(conn).expect("a live handle");
        match info.state {
            ConnectionState::Connected => return,
            st if st.is_ended() => panic!("connection ended: {info:?}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "not connected in {ROLE_WAIT:?}: {info:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn reliable_size(i: u64) -> usize {
    if i == RELIABLE - 1 { 256 * 1024 } else { 13 + (i as usize * 997) % 20_000 }
}

fn unreliable_size(i: u64) -> usize {
    13 + (i as usize * 131) % 1000
}

/// Sends, waiting while the send buffer is full (a full buffer is an error, not a drop).
fn send(s: &Sockets, conn: ConnectionHandle, data: &[u8], flags: SendFlags) {
    let deadline = Instant::now() + ROLE_WAIT;
    loop {
        match s.send(conn, data, flags) {
            Ok(_) => return,
            Err(SendError::LimitExceeded) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("send: {e}"),
        }
    }
}

/// What one side has received of the peer's messages.
#[derive(Default)]
struct Received {
    next_reliable: u64,
    unreliable: u64,
    seen: std::collections::HashSet<u64>,
    hello: bool,
    peer_ended: bool,
    acked: bool,
}

impl Received {
    /// Receives what is there (waiting up to `wait` for the first), checking every message.
    fn poll(&mut self, s: &Sockets, conn: ConnectionHandle, wait: Duration) {
        for m in s.receive_timeout(conn, 256, wait).expect("a live handle") {
            match m.data() {
                b"end" => {
                    assert!(m.is_reliable());
                    assert_eq!(self.next_reliable, RELIABLE, "end before every reliable message");
                    self.peer_ended = true;
                    s.send(conn, b"ack", SendFlags::RELIABLE_NO_NAGLE).expect("send ack");
                }
                b"ack" => self.acked = true,
                b"hello" => self.hello = true,
                data => {
                    let (reliable, counter) = check_message(data);
                    assert_eq!(reliable, m.is_reliable(), "message {counter}: lane kind");
                    if reliable {
                        assert_eq!(counter, self.next_reliable, "reliable messages in order");
                        assert_eq!(data.len(), reliable_size(counter));
                        self.next_reliable += 1;
                    } else {
                        assert_eq!(data.len(), unreliable_size(counter));
                        assert!(self.seen.insert(counter), "unreliable {counter} twice");
                        self.unreliable += 1;
                    }
                }
            }
        }
    }
}

/// Both directions at once: a reliable `hello` each way (both sides are ready), then this
/// side's unreliable messages (one per millisecond), then its reliable ones and a reliable
/// `end`; receives and checks the peer's until its `end` has come and it acknowledged ours
/// (`ack`). Returns the number of unreliable messages received.
fn exchange(s: &Sockets, conn: ConnectionHandle) -> u64 {
    let mut rx = Received::default();
    send(s, conn, b"hello", SendFlags::RELIABLE_NO_NAGLE);
    let deadline = Instant::now() + ROLE_WAIT;
    while !rx.hello {
        assert!(Instant::now() < deadline, "no hello from the peer in {ROLE_WAIT:?}");
        rx.poll(s, conn, Duration::from_millis(10));
    }
    let t0 = Instant::now();
    for i in 0..UNRELIABLE {
        let m = make_message(false, i, unreliable_size(i));
        send(s, conn, &m, SendFlags::UNRELIABLE_NO_NAGLE);
        rx.poll(s, conn, Duration::from_millis(1));
    }
    let t1 = Instant::now();
    for i in 0..RELIABLE {
        send(s, conn, &make_message(true, i, reliable_size(i)), SendFlags::RELIABLE);
        rx.poll(s, conn, Duration::ZERO);
    }
    let t2 = Instant::now();
    send(s, conn, b"end", SendFlags::RELIABLE_NO_NAGLE);
    while !(rx.peer_ended && rx.acked) {
        assert!(
            Instant::now() < deadline,
            "exchange stuck: {}/{RELIABLE} reliable, peer ended {}, acked {}",
            rx.next_reliable,
            rx.peer_ended,
            rx.acked
        );
        rx.poll(s, conn, Duration::from_millis(20));
    }
    // Stragglers of the unreliable kind (they may pass the reliable end).
    rx.poll(s, conn, Duration::from_millis(100));
    let q = s.quick_status(conn).expect("a live handle");
    println!(
        "NAT timing: unreliable sent in {:.2} s, reliable queued in {:.2} s and through {:.2} s \
         later; ping {} ms, bandwidth estimate {:.0} kB/s, {} packets lost",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        t2.elapsed().as_secs_f64(),
        q.ping_ms,
        q.bandwidth_estimate_bytes_per_sec as f64 / 1e3,
        q.packets_lost
    );
    rx.unreliable
}

#[test]
#[ignore = "a peer of the nat_* tests, run by them in a namespace"]
fn nat_role() {
    let Ok(role) = std::env::var(ROLE) else { return };
    let started = Instant::now();
    let expect = env(ENV_EXPECT);
    let own_nat = env(ENV_OWN_NAT);
    let peer_nat = env(ENV_PEER_NAT);

    // The NAT in front of us, as coturn sees it.
    let (local, mapped) = stun_mapped();
    println!("NAT mapping: {local} -> {mapped}");
    assert_eq!(mapped.ip().to_string(), own_nat, "coturn sees our NAT's outside address");
    if env(ENV_PRESERVING) == "1" {
        assert_eq!(mapped.port(), local.port(), "a port-preserving NAT keeps the port");
    }

    let s = Sockets::new().expect("sockets");
    let (me, other) =
        if role == "listener" { (LISTENER_ID, CONNECTOR_ID) } else { (CONNECTOR_ID, LISTENER_ID) };
    // Every non-loopback interface (here: the one veth behind the NAT), no ICE settings: the
    // STUN and TURN servers come from the signaling server, with minted TURN credentials.
    s.connect_signaling(SignalingConfig::new(env(ENV_URL), me)).expect("register");
    let conn = if role == "listener" {
        s.listen_p2p(VPORT, Config::new()).expect("listen_p2p");
        println!("READY");
        let deadline = Instant::now() + ROLE_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no incoming connection in {ROLE_WAIT:?}");
            if let Some(ev) = s.wait_event(left)
                && ev.is_incoming()
            {
                s.accept(ev.conn).expect("accept");
                break ev.conn;
            }
        }
    } else {
        s.connect_p2p(other, VPORT, Config::new()).expect("connect_p2p")
    };
    wait_connected(&s, conn);
    let connected = started.elapsed();

    let info = s.connection_info(conn).expect("info");
    let p2p = s.p2p_connection_info(conn).expect("a P2P connection");
    let route = p2p.route.clone().unwrap_or_default();
    println!("NAT route {expect}? relayed={} route={route}", p2p.relayed);
    assert_eq!(p2p.identity, other);
    assert_eq!(info.relayed, p2p.relayed, "ConnectionInfo and P2P info agree");
    let remote = route.split(" -> ").nth(1).unwrap_or("");
    if expect == "direct" {
        assert!(!p2p.relayed, "direct, not through TURN: {p2p:?}");
        assert!(!route.contains("relay"), "{route}");
        // The peer is reached at its NAT's outside address: through the NAT's mapping (the
        // private networks have no route to each other, and the relay is not used).
        assert!(remote.contains(&format!(" {peer_nat}:")), "to the peer's NAT: {route}");
    } else {
        assert!(p2p.relayed, "through TURN: {p2p:?}");
        assert!(route.contains("(relay)"), "{route}");
        assert!(route.contains(&format!(" {SERVER_IP}:")), "through coturn: {route}");
    }

    let unreliable = exchange(&s, conn);
    println!(
        "NAT exchanged: {RELIABLE}/{RELIABLE} reliable (last 256 KiB) and {unreliable}/{UNRELIABLE} \
         unreliable intact; connected in {:.2} s, done in {:.2} s; {:?}",
        connected.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        s.p2p_stats()
    );
    // On a lossless link with one message per millisecond, losing more than a few would be a bug.
    assert!(unreliable * 10 >= UNRELIABLE * 9, "only {unreliable}/{UNRELIABLE} unreliable arrived");
    s.close(conn, EndReason(0), "done", true).expect("close");
    std::thread::sleep(Duration::from_millis(100));
}
