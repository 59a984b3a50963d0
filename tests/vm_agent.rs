//! `quiesce agent` in a real VM (tests/support/vm), on the guest agent's virtio-serial port,
//! driven from the host through the port's socket by a client the project did not write: the
//! `qemu.qmp` package's legacy client with negotiation off, as qemu's `qemu-ga-client` uses it
//! (tests/support/vm/qga_client.py). One boot runs every check, in phases:
//!
//! 1. freeze-list of two guest filesystems: a write to each blocks while a third takes writes;
//!    thaw; the writes complete (after the thaw the client logged); freeze-all; status in each
//!    state; a second freeze refused. The agent finds its port by name in
//!    `/sys/class/virtio-ports/*/name`: the guest has no `/dev/virtio-ports` link for it.
//! 2. The client disconnects while frozen and never thaws: writable again at `--max-frozen`,
//!    a later status says thawed and a thaw answers 0. The agent killed with SIGKILL while
//!    frozen (a 600 s deadline): writable at once.
//!    A host that sends 2000 requests and leaves, and one that asks for a freeze and leaves
//!    before the answer (a slow hook): a new host syncs (`0xFF` + `guest-sync-delimited`),
//!    finds the agent answering and frozen, and thaws; the agent did not spin on the port
//!    without a host, and the answer to the host that left did not reach the new one.
//! 3. `--forward` to Debian's qemu-ga running in the guest (its freeze commands blocked):
//!    `guest-get-osinfo` is answered by qemu-ga through quiesce; freezing is quiesce's.
//!
//! The host tells the guest script what to do next over a second port (`org.quiesce.control`);
//! the guest's write probes report over its output, whose lines the test timestamps with the
//! host's CLOCK_MONOTONIC, the clock of the client's log.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use quiesce_testkit::vm::{kernel, RunningVm, Vm};
use quiesce_testkit::{repo_root, require_root, Json, JsonExt, Scratch};

/// The host's CLOCK_MONOTONIC in seconds (Python's `time.monotonic()`).
fn mono() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The qemu.qmp client, one request and one answer a line.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Client {
    fn start(sock: &std::path::Path) -> Client {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let probe = Command::new(&python)
            .args(["-c", "import qemu.qmp.legacy"])
            .output();
        assert!(
            probe.as_ref().is_ok_and(|o| o.status.success()),
            "{python} cannot import qemu.qmp.legacy: pip install qemu.qmp (.ci/run installs it): {probe:?}"
        );
        let mut child = Command::new(&python)
            .arg(repo_root().join("tests/support/vm/qga_client.py"))
            .arg(sock)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the qemu.qmp client");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Client {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// Sends a line, returns the client's answer line.
    fn line(&mut self, l: &str) -> Json {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{l}").expect("write to the client");
        stdin.flush().expect("flush");
        let got = self
            .lines
            .recv_timeout(Duration::from_secs(150))
            .unwrap_or_else(|e| panic!("the qemu.qmp client gave no answer to {l}: {e}"));
        println!("client: {l} -> {got}");
        Json::parse(&got).unwrap_or_else(|e| panic!("client line {got:?}: {e:?}"))
    }

    fn connect(&mut self) {
        let r = self.line("connect");
        assert_eq!(r["event"].as_str(), Some("connected"), "{r}");
    }

    fn close(&mut self) {
        let r = self.line("close");
        assert_eq!(r["event"].as_str(), Some("closed"), "{r}");
    }

    /// A command: (the time the client logged for the answer, the answer).
    fn cmd(&mut self, execute: &str, args: Option<Json>) -> (f64, Json) {
        let mut req = serde_json::json!({ "execute": execute });
        if let Some(a) = args {
            req["arguments"] = a;
        }
        let r = self.line(&req.to_string());
        assert!(r.has("reply"), "{execute}: the client failed: {r}");
        (r["t"].as_f64().expect("t"), r["reply"].clone())
    }

    /// A command that must return a value.
    fn ret(&mut self, execute: &str, args: Option<Json>) -> (f64, Json) {
        let (t, r) = self.cmd(execute, args);
        assert!(r.has("return"), "{execute}: no return: {r}");
        (t, r["return"].clone())
    }

    fn status(&mut self) -> String {
        let (_, r) = self.ret("guest-fsfreeze-status", None);
        r.as_str().expect("a status string").to_string()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The guest script's side: shell lines over the control port, probes in its output.
struct Guest {
    vm: RunningVm,
    ctl: UnixStream,
    n: usize,
}

impl Guest {
    /// Runs one shell line in the guest script and waits for it to finish.
    fn sh(&mut self, line: &str) {
        self.n += 1;
        writeln!(self.ctl, "{line}").expect("write to the control port");
        let marker = format!("@@did {} ", self.n);
        assert!(
            self.vm.wait_for_output(&marker, Duration::from_secs(120)),
            "the guest did not run {line:?}:\n{}",
            self.vm.output_so_far()
        );
        let out = self.vm.output_so_far();
        let rc = out[out.find(&marker).expect("marker") + marker.len()..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        assert_eq!(rc, "0", "guest: {line:?} failed:\n{out}");
    }

    /// Starts a write (create, write, fsync) of `mount` in the background in the guest.
    fn probe(&mut self, name: &str, mount: &str) {
        self.sh(&format!("probe {name} {mount}"));
    }

    /// When the host saw probe `name` complete (CLOCK_MONOTONIC), or None within `within`.
    fn probe_done(&mut self, name: &str, within: Duration) -> Option<f64> {
        let needle = format!("@@probe {name} done");
        let end = Instant::now() + within;
        loop {
            if self.vm.output_so_far().contains(&needle) {
                return Some(mono());
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Probe `name` completes (within a generous bound); when the host saw it.
    fn completes(&mut self, name: &str, what: &str) -> f64 {
        self.probe_done(name, Duration::from_secs(120))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: the write {name} never completed:\n{}",
                    self.vm.output_so_far()
                )
            })
    }

    /// Probe `name` is still blocked after a while (its filesystem is frozen).
    fn blocked(&mut self, name: &str, what: &str) {
        if let Some(t) = self.probe_done(name, Duration::from_secs(2)) {
            panic!(
                "{what}: the write {name} completed while frozen (at {t:.3}):\n{}",
                self.vm.output_so_far()
            );
        }
    }

    /// (Re)starts the agent in the guest with these options.
    fn agent(&mut self, args: &str) {
        self.sh(&format!("agent {args}"));
    }
}

const SCRIPT: &str = r#"set -e
mkfs.ext4 -q /dev/vda && mkfs.ext4 -q /dev/vdb && mkfs.ext4 -q /dev/vdc
mkdir -p /mnt/a /mnt/b /mnt/c
mount /dev/vda /mnt/a && mount /dev/vdb /mnt/b && mount /dev/vdc /mnt/c
# No udev in a bare guest: the agent must find its port by name in /sys/class/virtio-ports.
rm /dev/virtio-ports/org.qemu.guest_agent.0
mkdir -p /var && ln -s /run /var/run
# quiesce starts a hook with execveat on its descriptor: a script's interpreter then opens
# /dev/fd/N, which devtmpfs alone does not provide (systemd and udev make the link).
ln -s /proc/self/fd /dev/fd
probe() {
  ( echo "$1" > "$2/probe-$1" && sync "$2/probe-$1" && echo "@@probe $1 done" ) &
  echo "@@probe $1 started"
}
agent_pid=
agent() {
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" || true; fi
  quiesce agent --no-hooks "$@" 2>>/tmp/agent.log &
  agent_pid=$!
}
set +e
exec 3<>/dev/virtio-ports/org.quiesce.control
echo "@@ready"
n=0
while :; do
  if read -r line <&3; then
    [ "$line" = quit ] && break
    n=$((n + 1))
    eval "$line"
    echo "@@did $n $?"
  else
    sleep 0.1
  fi
done
if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null; wait "$agent_pid"; fi
echo "---- agent log ----"
cat /tmp/agent.log
echo "---- qemu-ga log ----"
cat /tmp/qga.log 2>/dev/null
exit 0
"#;

/// A hook that holds a freeze back for 3 s (phase 2d).
const SLOW_HOOK: &str = "#!/bin/sh\n\
    exec 2>>/tmp/hook.err\n\
    echo \"hook $*\" >&2\n\
    [ \"$1\" = freeze ] && /usr/bin/busybox sleep 3\n\
    exit 0\n";

/// Requests in the burst of a host that leaves without reading.
const BURST: usize = 2000;

/// Connects to the port's socket and syncs as a host that knows about stale answers:
/// `0xFF` + `guest-sync-delimited`, reading until its delimited answer (stale answers of an
/// earlier host and the stray-0xFF error come first). The seconds it took and the bytes before
/// the answer; panics after 120 s.
fn resync(sock: &std::path::Path, id: u64) -> (f64, Vec<u8>) {
    use std::io::Read;
    let start = mono();
    let want = [&[0xFFu8][..], format!("{{\"return\": {id}}}\n").as_bytes()].concat();
    let mut s = UnixStream::connect(sock).expect("connect to resync");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let req = format!("{{\"execute\": \"guest-sync-delimited\", \"arguments\": {{\"id\": {id}}}}}");
    s.write_all(&[&[0xFFu8][..], req.as_bytes()].concat())
        .expect("write the sync");
    while mono() - start < 120.0 {
        match s.read(&mut buf) {
            Ok(0) => panic!("the port's socket closed"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => continue,
        }
        if got.windows(want.len()).any(|w| w == want) {
            let tail = String::from_utf8_lossy(&got[got.len().saturating_sub(700)..]).into_owned();
            println!(
                "resync: {} bytes before the answer, ending {tail:?}",
                got.len()
            );
            return (mono() - start, got);
        }
    }
    panic!(
        "no answer to guest-sync-delimited within 120 s; got {:?}",
        String::from_utf8_lossy(&got)
    );
}

const FROZEN_REFUSAL: &str = "has been disabled: the agent is in frozen state";

fn refused(r: &Json, command: &str) {
    assert_eq!(r["error"]["class"].as_str(), Some("CommandNotFound"), "{r}");
    assert_eq!(
        r["error"]["desc"].as_str(),
        Some(format!("Command {command} {FROZEN_REFUSAL}").as_str()),
        "{r}"
    );
}

#[test]
fn the_agent_serves_a_real_port_to_qemus_own_client() {
    require_root();
    let scratch = Scratch::new();
    let started = Instant::now();
    let mut vm = Vm::new()
        .virtio_disk("agent-a", 64)
        .virtio_disk("agent-b", 64)
        .virtio_disk("agent-c", 64)
        .modules(&["ext4"])
        .with_quiesce()
        .guest_agent()
        .control_port()
        .host_tool("/usr/sbin/qemu-ga")
        .file("/etc/qemu/fsfreeze-hook.d/slow", SLOW_HOOK, 0o755)
        .timeout(Duration::from_secs(600))
        .start(&scratch, SCRIPT);
    assert!(
        vm.wait_for_output("@@ready", Duration::from_secs(180)),
        "the guest script did not start:\n{}\n{}",
        vm.console_so_far(),
        vm.output_so_far()
    );
    let ctl = UnixStream::connect(vm.control_socket().expect("control socket"))
        .expect("connect to the control port");
    let qga = vm.guest_agent_socket().expect("agent socket").to_path_buf();
    let mut g = Guest { vm, ctl, n: 0 };
    let mut c = Client::start(&qga);
    let boot = started.elapsed();

    // 1. freeze-list, blocked writes, thaw; freeze-all; status; a second freeze refused.
    g.agent("--max-frozen 600");
    c.connect();
    assert_eq!(c.status(), "thawed");
    let (t_freeze, n) = c.ret(
        "guest-fsfreeze-freeze-list",
        Some(serde_json::json!({"mountpoints": ["/mnt/a", "/mnt/b"]})),
    );
    assert_eq!(n.as_i64(), Some(2), "freeze-list of two");
    assert_eq!(c.status(), "frozen");
    let (_, r) = c.cmd("guest-fsfreeze-freeze", None);
    refused(&r, "guest-fsfreeze-freeze");
    let (_, r) = c.cmd(
        "guest-fsfreeze-freeze-list",
        Some(serde_json::json!({"mountpoints": ["/mnt/c"]})),
    );
    refused(&r, "guest-fsfreeze-freeze-list");
    g.probe("a1", "/mnt/a");
    g.probe("b1", "/mnt/b");
    g.probe("c1", "/mnt/c");
    g.completes("c1", "the unfrozen /mnt/c");
    g.blocked("a1", "freeze-list");
    g.blocked("b1", "freeze-list");
    assert_eq!(c.status(), "frozen");
    let (t_thaw, n) = c.ret("guest-fsfreeze-thaw", None);
    assert_eq!(n.as_i64(), Some(2), "thaw of the two");
    let a1 = g.completes("a1", "after the thaw");
    let b1 = g.completes("b1", "after the thaw");
    assert!(
        a1 > t_thaw && b1 > t_thaw,
        "{a1} {b1} before the thaw at {t_thaw}"
    );
    println!(
        "freeze-list at {t_freeze:.3}, thaw at {t_thaw:.3} (+{:.3} s); the writes completed \
         {:.3} s and {:.3} s after the thaw",
        t_thaw - t_freeze,
        a1 - t_thaw,
        b1 - t_thaw
    );
    assert_eq!(c.status(), "thawed");
    let (_, n) = c.ret("guest-fsfreeze-freeze", None);
    assert_eq!(
        n.as_i64(),
        Some(3),
        "freeze-all: the guest's three filesystems"
    );
    assert_eq!(c.status(), "frozen");
    let (_, r) = c.cmd("guest-fsfreeze-freeze", None);
    refused(&r, "guest-fsfreeze-freeze");
    g.probe("a2", "/mnt/a");
    g.probe("c2", "/mnt/c");
    g.blocked("a2", "freeze-all");
    g.blocked("c2", "freeze-all");
    let (t_thaw, n) = c.ret("guest-fsfreeze-thaw", None);
    assert_eq!(n.as_i64(), Some(3));
    assert!(g.completes("a2", "after the thaw of all") > t_thaw);
    assert!(g.completes("c2", "after the thaw of all") > t_thaw);
    assert_eq!(c.status(), "thawed");

    // 2a. The host disconnects while frozen and never thaws: --max-frozen thaws.
    c.close();
    const MAX: f64 = 8.0;
    g.agent(&format!("--max-frozen {MAX}"));
    c.connect();
    let (t_freeze, n) = c.ret(
        "guest-fsfreeze-freeze-list",
        Some(serde_json::json!({"mountpoints": ["/mnt/a", "/mnt/b"]})),
    );
    assert_eq!(n.as_i64(), Some(2));
    c.close();
    g.probe("a3", "/mnt/a");
    g.blocked("a3", "frozen, the host gone");
    let a3 = g.completes("a3", "--max-frozen with the host gone");
    assert!(
        a3 - t_freeze >= MAX - 0.5,
        "the write completed {:.3} s after the freeze, before --max-frozen {MAX}",
        a3 - t_freeze
    );
    println!(
        "host gone while frozen: writable {:.3} s after the freeze (--max-frozen {MAX})",
        a3 - t_freeze
    );
    g.probe("b3", "/mnt/b");
    g.completes("b3", "after --max-frozen");
    c.connect();
    assert_eq!(c.status(), "thawed", "a later status");
    let (_, n) = c.ret("guest-fsfreeze-thaw", None);
    assert_eq!(
        n.as_i64(),
        Some(0),
        "the thaw after --max-frozen thawed nothing"
    );

    // 2b. SIGKILL of the agent while frozen: the guardian thaws at once.
    c.close();
    g.agent("--max-frozen 600");
    c.connect();
    let (_, n) = c.ret(
        "guest-fsfreeze-freeze-list",
        Some(serde_json::json!({"mountpoints": ["/mnt/a", "/mnt/b"]})),
    );
    assert_eq!(n.as_i64(), Some(2));
    g.probe("a4", "/mnt/a");
    g.blocked("a4", "before the SIGKILL");
    let t_kill = mono();
    g.sh("kill -KILL $agent_pid; wait $agent_pid; agent_pid=");
    let a4 = g.completes("a4", "after SIGKILL of the agent");
    println!(
        "SIGKILL while frozen (--max-frozen 600): writable {:.3} s after the kill",
        a4 - t_kill
    );
    assert!(
        a4 - t_kill < 60.0,
        "the write waited {:.3} s after the SIGKILL: the guardian did not thaw",
        a4 - t_kill
    );
    g.probe("b4", "/mnt/b");
    g.completes("b4", "after SIGKILL of the agent");
    c.close();

    // 2c. A host that sends requests and leaves before reading the answers: a virtio-serial
    // port without a host takes no writes (EAGAIN) and polls as hung up (POLLHUP, never
    // POLLOUT): the agent drops those answers, and a new host finds it answering.
    g.agent("--max-frozen 600");
    c.connect();
    c.close();
    let burst = "{\"execute\": \"guest-info\"}".repeat(BURST);
    {
        let mut s = UnixStream::connect(&qga).expect("connect for the burst");
        s.write_all(burst.as_bytes()).expect("write the burst");
    }
    let (took, _) = resync(&qga, 77);
    println!("{BURST} requests from a host that left: a new host synced {took:.3} s after it left");
    c.connect();
    assert_eq!(c.status(), "thawed");
    let (_, n) = c.ret("guest-fsfreeze-freeze", None);
    assert_eq!(n.as_i64(), Some(3));
    let (_, n) = c.ret("guest-fsfreeze-thaw", None);
    assert_eq!(n.as_i64(), Some(3));
    c.close();

    // 2d. The host asks for a freeze and leaves before the answer (a slow hook holds the freeze
    // back), with pings behind it: those answers cannot be written (EAGAIN, POLLHUP); a new
    // host finds the agent answering, still frozen, and thaws.
    // (The initramfs's root is mode 1777: the hook check refuses a hook under it.)
    g.sh("chmod 755 /");
    g.agent("--max-frozen 600 --hook-dir /etc/qemu/fsfreeze-hook.d");
    c.connect();
    c.close();
    g.sh(
        "cpu() { echo \"@@cpu $1 $(awk '{print $14 + $15}' /proc/$agent_pid/stat)\"; }; cpu before",
    );
    {
        let mut s = UnixStream::connect(&qga).expect("connect for the freeze");
        let req = format!(
            "{{\"execute\": \"guest-fsfreeze-freeze\"}}{}",
            "{\"execute\": \"guest-ping\"}".repeat(5)
        );
        s.write_all(req.as_bytes()).expect("write the freeze");
    }
    // Nobody connected while the hook runs and the answers are written: a write started 8 s
    // later blocks (the freeze came, and its answer was written, while the host was away).
    std::thread::sleep(Duration::from_secs(8));
    g.probe("a6", "/mnt/a");
    g.blocked("a6", "8 s after a host asked for a freeze and left");
    g.sh("cpu gone");
    let (took, stale) = resync(&qga, 78);
    g.sh("cpu after; tail -n 8 /tmp/agent.log; cat /tmp/hook.err");
    g.sh("grep -q 'hook freeze' /tmp/hook.err");
    println!("freeze answered to a host that left: a new host synced {took:.3} s later");
    let out = g.vm.output_so_far();
    let ticks = |label: &str| -> u64 {
        let m = format!("@@cpu {label} ");
        let i = out.find(&m).unwrap_or_else(|| panic!("no {m:?}:\n{out}")) + m.len();
        out[i..]
            .split_whitespace()
            .next()
            .and_then(|t| t.parse().ok())
            .expect("ticks")
    };
    let spent = ticks("gone") - ticks("before");
    println!("the agent's CPU while the host was gone: {spent} ticks");
    assert!(
        spent < 100,
        "the agent used {spent} ticks of CPU (1/100 s) writing to a port without a host: it spins"
    );
    assert!(
        !String::from_utf8_lossy(&stale).contains("{\"return\": 3}"),
        "the freeze's answer to the host that left reached the next host: {:?}",
        String::from_utf8_lossy(&stale)
    );
    c.connect();
    assert_eq!(c.status(), "frozen");
    let (t_thaw, n) = c.ret("guest-fsfreeze-thaw", None);
    assert_eq!(n.as_i64(), Some(3));
    assert!(g.completes("a6", "after the new host's thaw") > t_thaw);
    c.close();

    // 3. --forward to Debian's qemu-ga in the guest: its answers through quiesce, the freeze
    // quiesce's (qemu-ga's own freeze commands are blocked).
    g.sh(
        "mkdir -p /run/qga-state; qemu-ga -m unix-listen -p /run/qga.sock -t /run/qga-state \
         -b guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,guest-fsfreeze-thaw \
         2>/tmp/qga.log & i=0; while [ ! -S /run/qga.sock ] && [ $i -lt 300 ]; do \
         sleep 0.1; i=$((i+1)); done; test -S /run/qga.sock || { cat /tmp/qga.log; false; }",
    );
    g.agent("--max-frozen 600 --forward unix:/run/qga.sock");
    c.connect();
    let (_, os) = c.ret("guest-get-osinfo", None);
    assert_eq!(
        os["kernel-release"].as_str(),
        Some(kernel().version.as_str()),
        "qemu-ga's guest-get-osinfo through quiesce: {os}"
    );
    // guest-info: qemu-ga's commands (a long answer, written to the port in pieces) with
    // quiesce's freeze commands enabled, though qemu-ga has its own disabled.
    let (_, info) = c.ret("guest-info", None);
    let enabled = |name: &str| {
        info["supported_commands"]
            .items()
            .iter()
            .any(|c| c["name"].as_str() == Some(name) && c["enabled"].as_bool() == Some(true))
    };
    for name in [
        "guest-get-osinfo",
        "guest-exec",
        "guest-fsfreeze-freeze-list",
    ] {
        assert!(enabled(name), "{name} not enabled in guest-info: {info}");
    }
    let (_, n) = c.ret(
        "guest-fsfreeze-freeze-list",
        Some(serde_json::json!({"mountpoints": ["/mnt/c"]})),
    );
    assert_eq!(n.as_i64(), Some(1), "quiesce froze /mnt/c");
    assert_eq!(c.status(), "frozen", "quiesce's status");
    g.probe("c5", "/mnt/c");
    g.blocked("c5", "frozen by quiesce with qemu-ga behind it");
    let (_, r) = c.cmd("guest-get-osinfo", None);
    refused(&r, "guest-get-osinfo");
    let (t_thaw, n) = c.ret("guest-fsfreeze-thaw", None);
    assert_eq!(n.as_i64(), Some(1));
    assert!(g.completes("c5", "after the thaw with qemu-ga behind") > t_thaw);
    let (_, os2) = c.ret("guest-get-osinfo", None);
    assert_eq!(os2, os, "qemu-ga answers again after the thaw");
    c.close();

    writeln!(g.ctl, "quit").expect("quit");
    let run = g.vm.wait();
    let out = run.assert_ok();
    println!("{out}");
    assert!(
        out.contains("serving the virtio-serial port /dev/vport")
            && out.contains("answer not delivered: the host hung up; the answer is dropped"),
        "the agent's log does not name the port it found in /sys:\n{out}"
    );
    println!(
        "one boot under {:?}: ready after {boot:?}, everything in {:?}",
        run.accel, run.elapsed
    );
}
