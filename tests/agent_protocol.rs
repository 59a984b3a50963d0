//! `quiesce agent` against a real qemu-ga 7.2 (Debian's `qemu-guest-agent`), on unix
//! sockets: the same bytes go to both, and the answers are compared byte for byte wherever
//! the behaviour is meant to be the same (framing, errors, ids, counts, states).
//!
//! SAFETY. qemu-ga's thaw issues FITHAW on every filesystem it can see, and its freeze-all
//! freezes them all. So qemu-ga runs with `-b guest-fsfreeze-freeze` (freeze-all refused) AND
//! inside a private mount namespace whose root is a fresh tmpfs holding only its binary and
//! libraries, `/proc`, and bind mounts of this test's own loop filesystems (`pivot_root`, the
//! old root unmounted): before any freeze or thaw is sent to it, the test reads that
//! namespace's mountinfo and fails unless every mount in it is one of those. quiesce's own
//! freeze-all is tested the same way (the agent runs in such a namespace). Every process runs
//! under `timeout` and is killed by a drop guard.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quiesce_testkit::{
    assert_frozen, assert_writable, guard, quiesce_bin, require_root, send_signal, FsKind, HookDir,
    Scratch, TestFs,
};

/// Every external process gets this much at most.
const LIFETIME: &str = "300";

fn have_qemu_ga() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/qemu-ga");
    assert!(
        p.exists(),
        "these tests need qemu-ga 7.2 (Debian's qemu-guest-agent package: apt-get install qemu-guest-agent; .ci/run installs it)"
    );
    p
}

/// A program running as the only process of a private mount namespace (see the module
/// comment); killed on drop.
struct Isolated {
    child: Child,
    /// The program's pid (the script execs it).
    pid: u32,
    name: &'static str,
    log: PathBuf,
}

impl Drop for Isolated {
    fn drop(&mut self) {
        let _ = send_signal(self.pid, libc::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

impl Isolated {
    /// Starts `program args` with the test filesystems `binds` (host mount, path inside).
    fn start(
        scratch: &Scratch,
        name: &'static str,
        program: &Path,
        args: &[&str],
        binds: &[(&TestFs, &str)],
        sysfs: bool,
    ) -> Isolated {
        let root = scratch.path(format!("{name}-root"));
        std::fs::create_dir_all(&root).unwrap();
        let mut s = String::from("set -eu\n");
        s += &format!("R={}\nP={}\n", sh_quote(&root), sh_quote(program));
        s += "mount -t tmpfs -o size=512m,mode=0755 quiesce-test-ns \"$R\"\n";
        s += "cp --parents -L \"$P\" \"$R\"\n";
        // The program, and umount (run after pivot_root), with their libraries.
        s += "U=$(command -v umount)\ncp --parents -L \"$U\" \"$R\"\n";
        s += "for f in $(ldd \"$P\" \"$U\" 2>/dev/null | grep -o '/[^ :]*'); do cp --parents -L \"$f\" \"$R\"; done\n";
        s += "mkdir -p \"$R/proc\" \"$R/sys\" \"$R/run\" \"$R/old\" \"$R/tmp\"\n";
        for (fs, inside) in binds {
            guard(&fs.mount);
            s += &format!(
                "mkdir -p \"$R{inside}\"\nmount --bind {} \"$R{inside}\"\n",
                sh_quote(&fs.mount)
            );
        }
        s += "mount -t proc proc \"$R/proc\"\n";
        if sysfs {
            s += "mount -t sysfs sysfs \"$R/sys\"\n";
        }
        s += "cd \"$R\"\npivot_root . old\n\"$U\" -l /old\necho ready $$\n";
        s += "exec \"$P\" \"$@\"\n";
        let log = scratch.path(format!("{name}.log"));
        let mut child = Command::new("timeout")
            .args([
                "-s",
                "KILL",
                LIFETIME,
                "unshare",
                "-m",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c", &s, name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn unshare");
        let mut out = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let pid = text
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "{name} did not start in its namespace ({text:?}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Isolated {
            child,
            pid,
            name,
            log,
        }
    }

    /// A path inside the namespace, from outside.
    fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inside}", self.pid))
    }

    /// Fails unless every mount the program can see is the namespace's tmpfs root, proc,
    /// sysfs, or one of `allowed` (the test's loop filesystems). Call before any freeze or
    /// thaw is sent to it.
    fn verify_sees_only(&self, allowed: &[&TestFs]) {
        let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid))
            .unwrap_or_else(|e| panic!("mountinfo of {}: {e}", self.name));
        let mut seen = 0;
        for line in info.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let dash = f
                .iter()
                .position(|&x| x == "-")
                .expect("mountinfo separator");
            let (dev, mp, fstype, source) = (f[2], f[4], f[dash + 1], f[dash + 2]);
            let ok = match fstype {
                "tmpfs" => mp == "/" && source == "quiesce-test-ns",
                "proc" => mp == "/proc",
                "sysfs" => mp == "/sys",
                _ => allowed
                    .iter()
                    .any(|t| dev == format!("{}:{}", t.dev.0, t.dev.1)),
            };
            assert!(
                ok,
                "SAFETY: {} can see a mount that is not the test's: {line}\n{info}",
                self.name
            );
            seen += 1;
        }
        assert_eq!(
            seen,
            2 + allowed.len() + info.contains(" sysfs ") as usize,
            "{info}"
        );
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// qemu-ga in its namespace, freeze-all refused; its socket is `/qga.sock` inside.
fn start_qemu_ga(scratch: &Scratch, binds: &[(&TestFs, &str)]) -> Isolated {
    let q = Isolated::start(
        scratch,
        "qemu-ga",
        &have_qemu_ga(),
        &[
            "-m",
            "unix-listen",
            "-p",
            "/qga.sock",
            "-t",
            "/run",
            "-f",
            "/run/qga.pid",
            "-b",
            "guest-fsfreeze-freeze",
        ],
        binds,
        false,
    );
    wait_for_socket(&q.path("/qga.sock"), &|| q.stderr());
    q
}

fn wait_for_socket(p: &Path, log: &dyn Fn() -> String) {
    let start = Instant::now();
    while UnixStream::connect(p).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} did not appear: {}",
            p.display(),
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// quiesce agent on a socket in the scratch directory.
struct Agent {
    child: Child,
    sock: PathBuf,
    log: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = send_signal(self.child.id(), libc::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(scratch: &Scratch, name: &str, args: &[&str]) -> Agent {
        let sock = scratch.path(format!("{name}.sock"));
        let log = scratch.path(format!("{name}.log"));
        let child = Command::new("timeout")
            .args(["-s", "KILL", LIFETIME])
            .arg(quiesce_bin())
            .args(["agent", "--unix-listen"])
            .arg(&sock)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn quiesce agent");
        let a = Agent { child, sock, log };
        wait_for_socket(&a.sock, &|| a.stderr());
        a
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The agent's own pid (the child of `timeout`).
    fn pid(&self) -> u32 {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.child.id()))
                .unwrap_or_default();
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("agent pid")
    }
}

/// A host-side connection.
struct Host {
    s: UnixStream,
    pending: Vec<u8>,
    sync: u64,
}

impl Host {
    fn connect(p: &Path) -> Host {
        let s = UnixStream::connect(p).unwrap_or_else(|e| panic!("connect {}: {e}", p.display()));
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Host {
            s,
            pending: Vec::new(),
            sync: 1000,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }

    /// Reads until `end` has been received; everything up to and including it.
    fn until(&mut self, end: &[u8]) -> Vec<u8> {
        let start = Instant::now();
        loop {
            if let Some(i) = self.pending.windows(end.len()).position(|w| w == end) {
                let rest = self.pending.split_off(i + end.len());
                return std::mem::replace(&mut self.pending, rest);
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {:?} within 60 s; got {:?}",
                String::from_utf8_lossy(end),
                String::from_utf8_lossy(&self.pending[..self.pending.len().min(2000)])
            );
            let mut buf = vec![0u8; 1 << 20];
            match self.s.read(&mut buf) {
                Ok(0) => panic!("the agent closed the connection"),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    /// Sends `bytes` in `chunks`, then a 0xFF and a `guest-sync-delimited` (so that whatever
    /// the bytes left unfinished is dropped); the answers up to and including the sync's.
    fn exchange(&mut self, chunks: &[&[u8]]) -> Vec<u8> {
        for (i, c) in chunks.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(30));
            }
            self.send(c);
        }
        self.sync += 1;
        let id = self.sync;
        self.send(&ff(&format!(
            r#"{{"execute":"guest-sync-delimited","arguments":{{"id":{id}}}}}"#
        )));
        let marker = ff(&format!("{{\"return\": {id}}}\n"));
        let mut got = self.until(&marker);
        got.truncate(got.len() - marker.len());
        got
    }

    /// One request, one answer line.
    fn call(&mut self, req: &str) -> String {
        self.send(req.as_bytes());
        String::from_utf8(self.until(b"\n")).expect("utf-8 answer")
    }
}

/// The string the sentinel helper sends: 0xFF is not valid UTF-8, so build bytes.
fn ff(rest: &str) -> Vec<u8> {
    let mut v = vec![0xFF];
    v.extend_from_slice(rest.as_bytes());
    v
}

#[test]
fn framing_and_errors_match_qemu_ga() {
    require_root();
    let scratch = Scratch::new();
    let qga = start_qemu_ga(&scratch, &[]);
    qga.verify_sees_only(&[]);
    let ours = Agent::start(&scratch, "agent", &["--no-hooks"]);
    let mut g = Host::connect(&qga.path("/qga.sock"));
    let mut q = Host::connect(&ours.sock);
    let big_string = {
        let mut v = br#"{"execute":"guest-ping","arguments":{"pad":""#.to_vec();
        v.extend(std::iter::repeat_n(b'x', 1 << 20));
        v.extend_from_slice(b"\"}}\n");
        v
    };
    let big_keyword = {
        let mut v = vec![b'a'; 1 << 20];
        v.push(b'\n');
        v
    };
    let oversized = {
        let mut v = br#"{"execute":"guest-ping","arguments":{"pad":""#.to_vec();
        v.extend(std::iter::repeat_n(b'x', 65 << 20));
        v.extend_from_slice(b"\"}}\n");
        v
    };
    let sentinel_first = ff(r#"{"execute":"guest-sync-delimited","arguments":{"id":5}}"#);
    let unfinished_then_ff = ff(r#"{"execute":"guest-ping"}"#);
    let cases: Vec<(&str, Vec<&[u8]>)> = vec![
        ("no sync before a command", vec![br#"{"execute":"guest-ping"}"#]),
        (
            "sync and command in one write (Proxmox)",
            vec![br#"{"execute":"guest-sync","arguments":{"id":77}}{"execute":"guest-fsfreeze-status"}"#],
        ),
        ("sync-delimited after a sentinel", vec![&sentinel_first]),
        (
            "a request split across writes",
            vec![br#"{"execute":"guest-sy"#, br#"nc","argu"#, br#"ments":{"id":9}}"#],
        ),
        ("unfinished, then the sentinel", vec![br#"{"execute":"guest-ping""#, &unfinished_then_ff]),
        ("garbage keyword", vec![b"garbage\n"]),
        ("a closer alone", vec![b"}"]),
        ("not an object", vec![b"[1,2] 1 \"x\""]),
        ("missing colon", vec![br#"{"a" 1}"#]),
        ("trailing comma", vec![br#"{"execute":"guest-ping",}"#]),
        ("duplicate key", vec![br#"{"execute":"guest-ping","execute":"x"}"#]),
        ("invalid UTF-8 in a string", vec![b"{\"execute\":\"gu\xc3\x28\"}"]),
        ("invalid UTF-8 outside a string", vec![b"{\"execute\":\xc3\xa9}"]),
        ("a NUL byte", vec![b"\x00{\"execute\":\"guest-ping\"}"]),
        ("a newline inside a string", vec![b"{\"execute\":\"abc\n\"}"]),
        ("escapes and non-ASCII names", vec![br#"{"execute":"\u00e9\ud83d\ude00'\"", "id": "\u0001"}"#]),
        ("unknown command with an id", vec![br#"{"execute":"nope","id":[1,{"b":2,"a":0.1}]}"#]),
        ("no execute", vec![b"{}"]),
        ("execute not a string", vec![br#"{"execute":1}"#]),
        ("unexpected members", vec![br#"{"execute":"guest-ping","foo":1,"bar":2}"#]),
        ("unexpected member with id", vec![br#"{"execute":"guest-ping","id":1,"id2":2}"#]),
        ("exec-oob", vec![br#"{"exec-oob":"guest-ping"}"#]),
        ("arguments not an object", vec![br#"{"execute":"guest-ping","arguments":null}"#]),
        ("unexpected argument", vec![br#"{"execute":"guest-ping","arguments":{"x":1}}"#]),
        ("sync without id", vec![br#"{"execute":"guest-sync"}"#]),
        ("sync with a string id", vec![br#"{"execute":"guest-sync","arguments":{"id":"a"}}"#]),
        ("sync with a float id", vec![br#"{"execute":"guest-sync","arguments":{"id":1.5}}"#]),
        (
            "sync with a huge id",
            vec![br#"{"execute":"guest-sync","arguments":{"id":18446744073709551615}}"#],
        ),
        ("sync with a negative id", vec![br#"{"execute":"guest-sync","arguments":{"id":-42}}"#]),
        ("single quotes", vec![b"{'execute':'guest-ping'}"]),
        ("nesting too deep", vec![&[b'['; 3000]]),
        ("status", vec![br#"{"execute":"guest-fsfreeze-status"}"#]),
        ("thaw while thawed", vec![br#"{"execute":"guest-fsfreeze-thaw"}"#]),
        (
            "freeze-list: mountpoints not a list",
            vec![br#"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":"x"}}"#],
        ),
        (
            "freeze-list: not a string",
            vec![br#"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":["/a",1]}}"#],
        ),
        (
            "freeze-list: empty list",
            vec![br#"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":[]}}"#],
        ),
        ("a 1 MiB request", vec![&big_string]),
        ("a 1 MiB keyword line", vec![&big_keyword]),
        ("an oversized (65 MiB) request", vec![&oversized]),
        ("still answering afterwards", vec![br#"{"execute":"guest-ping","id":"after"}"#]),
    ];
    let mut compared = 0;
    for (what, chunks) in &cases {
        let want = g.exchange(chunks);
        let got = q.exchange(chunks);
        assert!(
            want == got,
            "{what}: quiesce agent answered differently from qemu-ga 7.2\nqemu-ga: {:?}\nquiesce: {:?}",
            String::from_utf8_lossy(&want[..want.len().min(3000)]),
            String::from_utf8_lossy(&got[..got.len().min(3000)])
        );
        assert!(
            !want.is_empty() || what.starts_with("unfinished"),
            "{what}: no answer at all"
        );
        compared += 1;
    }
    assert_eq!(compared, cases.len());
    // guest-info: the same shape; every command quiesce answers is listed by both.
    let gi: serde_json::Value =
        serde_json::from_str(&g.call(r#"{"execute":"guest-info"}"#)).unwrap();
    let qi: serde_json::Value =
        serde_json::from_str(&q.call(r#"{"execute":"guest-info"}"#)).unwrap();
    for v in [&gi, &qi] {
        assert!(v["return"]["version"].is_string(), "{v}");
        for e in v["return"]["supported_commands"].as_array().unwrap() {
            let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["enabled", "name", "success-response"], "{e}");
        }
    }
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["return"]["supported_commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    for n in names(&qi) {
        assert!(names(&gi).contains(&n), "{n} is not a qemu-ga 7.2 command");
    }
    assert!(
        ours.stderr().contains("serving the unix socket"),
        "{}",
        ours.stderr()
    );
}

fn two_filesystems(scratch: &Scratch) -> (TestFs, TestFs) {
    (
        TestFs::new(scratch, "a", FsKind::Ext4),
        TestFs::new(scratch, "b", FsKind::Xfs),
    )
}

fn list(paths: &[&Path]) -> String {
    let l: Vec<String> = paths
        .iter()
        .map(|p| format!("\"{}\"", p.display()))
        .collect();
    format!(
        r#"{{"execute":"guest-fsfreeze-freeze-list","arguments":{{"mountpoints":[{}]}}}}"#,
        l.join(",")
    )
}

/// `guest-info`'s commands: name -> enabled.
fn enabled(info: &str) -> std::collections::BTreeMap<String, bool> {
    let v: serde_json::Value = serde_json::from_str(info).expect("guest-info answer");
    v["return"]["supported_commands"]
        .as_array()
        .expect("supported_commands")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["enabled"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The frozen-state conversation, the same for both agents: answers in order, and
/// `guest-info`'s enabled flags while frozen.
fn frozen_conversation(
    h: &mut Host,
    mounts: &[&Path],
    check: &dyn Fn(bool),
) -> (Vec<String>, std::collections::BTreeMap<String, bool>) {
    let mut a = vec![h.call(&list(mounts))];
    check(true);
    let info = enabled(&h.call(r#"{"execute":"guest-info"}"#));
    for r in [
        r#"{"execute":"guest-fsfreeze-status"}"#,
        r#"{"execute":"guest-ping","id":"p"}"#,
        r#"{"execute":"guest-sync","arguments":{"id":31}}"#,
        r#"{"execute":"guest-get-osinfo"}"#,
        r#"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":[]}}"#,
        r#"{"execute":"guest-exec","arguments":{"path":"/bin/true"}}"#,
        r#"{"execute":"nope"}"#,
    ] {
        a.push(h.call(r));
    }
    let mut d = h.exchange(&[br#"{"execute":"guest-ping"}"#]);
    d.retain(|&b| b != 0xFF);
    a.push(String::from_utf8_lossy(&d).into_owned());
    a.push(h.call(r#"{"execute":"guest-fsfreeze-thaw","id":"t"}"#));
    check(false);
    a.push(h.call(r#"{"execute":"guest-fsfreeze-status"}"#));
    a.push(h.call(r#"{"execute":"guest-fsfreeze-thaw"}"#));
    (a, info)
}

#[test]
fn freeze_list_and_thaw_match_qemu_ga() {
    require_root();
    let scratch = Scratch::new();
    let (a, b) = two_filesystems(&scratch);
    let qga = start_qemu_ga(&scratch, &[(&a, "/mnt/a"), (&b, "/mnt/b")]);
    let ours = Agent::start(&scratch, "agent", &["--no-hooks"]);
    let check = |frozen: bool| {
        if frozen {
            assert_frozen(&a, &"after guest-fsfreeze-freeze-list");
            assert_frozen(&b, &"after guest-fsfreeze-freeze-list");
        } else {
            assert_writable(&a.mount, &"after guest-fsfreeze-thaw");
            assert_writable(&b.mount, &"after guest-fsfreeze-thaw");
        }
    };
    // quiesce first, then qemu-ga (never both frozen at once).
    let mut q = Host::connect(&ours.sock);
    let (got, got_info) = frozen_conversation(&mut q, &[&a.mount, &b.mount], &check);
    qga.verify_sees_only(&[&a, &b]);
    let mut g = Host::connect(&qga.path("/qga.sock"));
    let (want, want_info) =
        frozen_conversation(&mut g, &[Path::new("/mnt/a"), Path::new("/mnt/b")], &check);
    // While frozen, guest-info marks the same commands enabled (qemu-ga's freeze-all is
    // blocklisted here, and so disabled in any state: left out).
    let mut common = 0;
    for (name, on) in &got_info {
        if name == "guest-fsfreeze-freeze" {
            continue;
        }
        if let Some(w) = want_info.get(name) {
            assert_eq!(on, w, "{name} enabled while frozen");
            common += 1;
        }
    }
    assert_eq!(common, 7, "{got_info:?}");
    assert_eq!(got_info.values().filter(|&&e| e).count(), 6, "{got_info:?}");
    assert_eq!(got[0], "{\"return\": 2}\n", "{}", ours.stderr());
    assert_eq!(
        got[4],
        "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-get-osinfo has been disabled: the agent is in frozen state\"}}\n"
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g, w, "answer {i} differs from qemu-ga 7.2's\nall of quiesce: {got:#?}\nall of qemu-ga: {want:#?}\n{}", ours.stderr());
    }
}

#[test]
fn the_deadline_thaws_and_the_late_thaw_answers_zero() {
    require_root();
    let scratch = Scratch::new();
    let (a, b) = two_filesystems(&scratch);
    let ours = Agent::start(&scratch, "agent", &["--no-hooks", "--max-frozen", "2"]);
    let mut q = Host::connect(&ours.sock);
    assert_eq!(q.call(&list(&[&a.mount, &b.mount])), "{\"return\": 2}\n");
    assert_frozen(&a, &"frozen");
    // The host goes away without thawing; at the deadline everything is thawed.
    drop(q);
    assert_writable(&a.mount, &"after --max-frozen");
    assert_writable(&b.mount, &"after --max-frozen");
    let mut q = Host::connect(&ours.sock);
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-status"}"#),
        "{\"return\": \"thawed\"}\n"
    );
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-thaw"}"#),
        "{\"return\": 0}\n"
    );
    assert!(
        ours.stderr()
            .contains("no guest-fsfreeze-thaw within --max-frozen"),
        "{}",
        ours.stderr()
    );
}

#[test]
fn the_host_reconnects_while_frozen_and_thaws() {
    require_root();
    let scratch = Scratch::new();
    let (a, _b) = two_filesystems(&scratch);
    let ours = Agent::start(&scratch, "agent", &["--no-hooks"]);
    let mut q = Host::connect(&ours.sock);
    // An unfinished request, then the host hangs up: the next host starts clean.
    assert_eq!(q.call(&list(&[&a.mount])), "{\"return\": 1}\n");
    q.send(br#"{"execute":"guest-fsfreeze-th"#);
    drop(q);
    let mut q = Host::connect(&ours.sock);
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-status"}"#),
        "{\"return\": \"frozen\"}\n"
    );
    assert_frozen(&a, &"still frozen after the reconnect");
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-thaw"}"#),
        "{\"return\": 1}\n"
    );
    assert_writable(&a.mount, &"thawed");
}

#[test]
fn sigkill_of_the_agent_while_frozen_thaws_at_once() {
    require_root();
    let scratch = Scratch::new();
    let (a, b) = two_filesystems(&scratch);
    let ours = Agent::start(&scratch, "agent", &["--no-hooks"]);
    let mut q = Host::connect(&ours.sock);
    assert_eq!(q.call(&list(&[&a.mount, &b.mount])), "{\"return\": 2}\n");
    assert_frozen(&b, &"frozen");
    send_signal(ours.pid(), libc::SIGKILL).unwrap();
    let start = Instant::now();
    assert_writable(&a.mount, &"after SIGKILL of the agent");
    assert_writable(&b.mount, &"after SIGKILL of the agent");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the guardian took {:?}",
        start.elapsed()
    );
}

#[test]
fn freeze_all_sees_only_the_namespace() {
    require_root();
    let scratch = Scratch::new();
    let (a, b) = two_filesystems(&scratch);
    let agent = Isolated::start(
        &scratch,
        "quiesce-agent",
        &quiesce_bin(),
        &["agent", "--unix-listen", "/agent.sock", "--no-hooks"],
        &[(&a, "/mnt/a"), (&b, "/mnt/b")],
        true,
    );
    agent.verify_sees_only(&[&a, &b]);
    wait_for_socket(&agent.path("/agent.sock"), &|| agent.stderr());
    let mut q = Host::connect(&agent.path("/agent.sock"));
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-freeze"}"#),
        "{\"return\": 2}\n",
        "{}",
        agent.stderr()
    );
    assert_frozen(&a, &"freeze-all");
    assert_frozen(&b, &"freeze-all");
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-freeze"}"#),
        "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state\"}}\n"
    );
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-thaw"}"#),
        "{\"return\": 2}\n"
    );
    assert_writable(&a.mount, &"thawed");
    assert_writable(&b.mount, &"thawed");
}

#[test]
fn forwarding_relays_other_commands_to_qemu_ga() {
    require_root();
    let scratch = Scratch::new();
    let (a, _b) = two_filesystems(&scratch);
    let qga = start_qemu_ga(&scratch, &[]);
    qga.verify_sees_only(&[]);
    let fwd = format!("unix:{}", qga.path("/qga.sock").display());
    let ours = Agent::start(&scratch, "agent", &["--no-hooks", "--forward", &fwd]);
    let mut g = Host::connect(&qga.path("/qga.sock"));
    let direct = g.call(r#"{"execute":"guest-get-osinfo","id":7}"#);
    let direct_error = g.call(r#"{"execute":"guest-exec-status","arguments":{"pid":1}}"#);
    assert!(direct_error.contains("\"error\""), "{direct_error}");
    // qemu-ga serves one connection at a time: from here on the agent holds it.
    drop(g);
    let mut q = Host::connect(&ours.sock);
    assert_eq!(
        q.call(r#"{"execute":"guest-get-osinfo","id":7}"#),
        direct,
        "{}",
        ours.stderr()
    );
    assert!(direct.contains("\"kernel-release\""), "{direct}");
    let info: serde_json::Value =
        serde_json::from_str(&q.call(r#"{"execute":"guest-info"}"#)).unwrap();
    let cmds = info["return"]["supported_commands"].as_array().unwrap();
    assert!(
        cmds.iter().any(|c| c["name"] == "guest-get-osinfo"),
        "{info}"
    );
    assert!(
        cmds.iter()
            .any(|c| c["name"] == "guest-fsfreeze-thaw" && c["enabled"] == true),
        "{info}"
    );
    // Freezing is quiesce's (qemu-ga has freeze-all blocklisted and never sees a freeze);
    // while frozen nothing is relayed.
    assert_eq!(q.call(&list(&[&a.mount])), "{\"return\": 1}\n");
    assert_eq!(
        q.call(r#"{"execute":"guest-get-osinfo"}"#),
        "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-get-osinfo has been disabled: the agent is in frozen state\"}}\n"
    );
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-thaw"}"#),
        "{\"return\": 1}\n"
    );
    // qemu-ga's own errors come through unchanged.
    assert_eq!(
        q.call(r#"{"execute":"guest-exec-status","arguments":{"pid":1}}"#),
        direct_error
    );
    assert_writable(&a.mount, &"thawed");
}

#[test]
fn qemu_ga_hook_directory_gets_freeze_and_thaw() {
    require_root();
    let scratch = Scratch::new();
    let (a, _b) = two_filesystems(&scratch);
    let hooks = HookDir::new();
    hooks.logging("10-app", "exit 0");
    let dir = hooks.dir.display().to_string();
    let ours = Agent::start(&scratch, "agent", &["--hook-dir", &dir]);
    let mut q = Host::connect(&ours.sock);
    assert_eq!(
        q.call(&list(&[&a.mount])),
        "{\"return\": 1}\n",
        "{}",
        ours.stderr()
    );
    assert_eq!(hooks.calls(), ["10-app freeze"]);
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-thaw"}"#),
        "{\"return\": 1}\n"
    );
    assert_eq!(hooks.calls(), ["10-app freeze", "10-app thaw"]);
    // A failing freeze hook: logged, and the freeze goes on (as qemu-ga, whose fsfreeze-hook
    // ignores a failing script); the thaw calls come in reverse order.
    hooks.clear_calls();
    hooks.logging("20-broken", "[ \"$1\" = freeze ] && exit 3; exit 0");
    assert_eq!(q.call(&list(&[&a.mount])), "{\"return\": 1}\n");
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-thaw"}"#),
        "{\"return\": 1}\n"
    );
    let all = [
        "10-app freeze",
        "20-broken freeze",
        "20-broken thaw",
        "10-app thaw",
    ];
    assert_eq!(hooks.calls(), all);
    assert!(
        ours.stderr()
            .contains("fsfreeze hook has failed with status 3: freezing anyway"),
        "{}",
        ours.stderr()
    );
    // With --require-app-consistent it fails the freeze with qemu-ga's text; nothing is
    // frozen, and the hooks that got `freeze` get `thaw`.
    drop(q);
    drop(ours);
    hooks.clear_calls();
    let strict = Agent::start(
        &scratch,
        "strict",
        &["--hook-dir", &dir, "--require-app-consistent"],
    );
    let mut q = Host::connect(&strict.sock);
    assert_eq!(
        q.call(&list(&[&a.mount])),
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"fsfreeze hook has failed with status 3\"}}\n"
    );
    assert_eq!(hooks.calls(), all);
    assert_writable(&a.mount, &"nothing frozen after a failed hook");
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-status"}"#),
        "{\"return\": \"thawed\"}\n"
    );
}

#[test]
fn refusals_name_the_filesystem_and_leave_nothing_frozen() {
    require_root();
    let scratch = Scratch::new();
    let (a, b) = two_filesystems(&scratch);
    let ours = Agent::start(&scratch, "agent", &["--no-hooks"]);
    let mut q = Host::connect(&ours.sock);
    // Not a mount point: refused (qemu-ga would silently freeze the rest).
    let inner = a.path("dir");
    std::fs::create_dir_all(&inner).unwrap();
    let e = q.call(&list(&[&b.mount, &inner]));
    assert!(
        e.starts_with("{\"error\": {\"class\": \"GenericError\", \"desc\": \"")
            && e.contains("is not a mount point"),
        "{e}"
    );
    assert_writable(&b.mount, &"nothing frozen after a refusal");
    // Frozen by another holder: the freeze fails naming it; b is thawed again; a's other
    // holder keeps its freeze.
    a.fsfreeze();
    let e = q.call(&list(&[&b.mount, &a.mount]));
    let still = a.is_frozen();
    a.fsthaw();
    assert!(
        e.contains(&format!(
            "failed to freeze {}: Device or resource busy (frozen by another holder",
            a.mount.display()
        )),
        "{e}"
    );
    assert!(still, "the other holder's freeze was thawed by the agent");
    assert_writable(&b.mount, &"b thawed after the failed freeze");
    assert_eq!(
        q.call(r#"{"execute":"guest-fsfreeze-status"}"#),
        "{\"return\": \"thawed\"}\n"
    );
}

#[test]
fn sigterm_while_frozen_thaws_and_exits() {
    require_root();
    let scratch = Scratch::new();
    let (a, _b) = two_filesystems(&scratch);
    let mut ours = Agent::start(&scratch, "agent", &["--no-hooks"]);
    let mut q = Host::connect(&ours.sock);
    assert_eq!(q.call(&list(&[&a.mount])), "{\"return\": 1}\n");
    assert_frozen(&a, &"frozen");
    send_signal(ours.pid(), libc::SIGTERM).unwrap();
    assert_writable(&a.mount, &"after SIGTERM");
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = ours.child.try_wait() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the agent did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}: {}", ours.stderr());
    assert!(ours.stderr().contains("SIGTERM"), "{}", ours.stderr());
}

/// A pseudo-terminal in raw mode stands in for the virtio-serial port (a character device
/// read and written by the agent; closing the master is a hang-up). The real port is the
/// VM tests' (tests/vm).
struct Pty {
    master: std::fs::File,
    slave: PathBuf,
}

fn raw_pty() -> Pty {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
    // Not inherited by the agent: its hang-up is the master's last close.
    // SAFETY: m is our open descriptor; FD_CLOEXEC is a valid flag.
    let r = unsafe { libc::fcntl(m, libc::F_SETFD, libc::FD_CLOEXEC) };
    assert_eq!(r, 0);
    // SAFETY: m is our open master descriptor.
    assert_eq!(unsafe { libc::grantpt(m) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::unlockpt(m) }, 0);
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: writes at most name.len() bytes into name.
    let r = unsafe { libc::ptsname_r(m, name.as_mut_ptr(), name.len()) };
    assert_eq!(r, 0);
    // SAFETY: ptsname_r wrote a NUL-terminated string.
    let slave = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    // Raw mode on the slave side, so that every byte (0xFF, newlines) passes unchanged.
    let c = std::ffi::CString::new(slave.clone()).unwrap();
    // SAFETY: open with a NUL-terminated path.
    let s = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    assert!(s >= 0);
    // SAFETY: termios is plain data; tcgetattr fills it from the open slave s.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(s, &mut t), 0);
        libc::cfmakeraw(&mut t);
        assert_eq!(libc::tcsetattr(s, libc::TCSANOW, &t), 0);
        libc::close(s);
    }
    // SAFETY: m is ours and is owned by the File from here on.
    let master = unsafe { std::fs::File::from_raw_fd(m) };
    Pty {
        master,
        slave: PathBuf::from(slave),
    }
}

#[test]
fn a_character_device_port_answers_and_survives_a_hang_up() {
    require_root();
    let scratch = Scratch::new();
    let pty = raw_pty();
    let log = scratch.path("agent.log");
    let child = Command::new("timeout")
        .args(["-s", "KILL", LIFETIME])
        .arg(quiesce_bin())
        .args(["agent", "--no-hooks", "--path"])
        .arg(&pty.slave)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut ours = Agent {
        child,
        sock: pty.slave.clone(),
        log,
    };
    let mut m = pty.master.try_clone().unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    // Until the agent has opened the port, what we write may be read by nobody: resend.
    let want: &[u8] = b"\xff{\"return\": 8}\n";
    while !got.windows(want.len()).any(|w| w == want) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no answer on the port: {:?} {}",
            String::from_utf8_lossy(&got),
            ours.stderr()
        );
        m.write_all(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":8}}{\"execute\":\"guest-fsfreeze-status\"}").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut buf = [0u8; 4096];
        // SAFETY: non-blocking read into a valid buffer from the master we own.
        let n = unsafe {
            use std::os::fd::AsRawFd;
            libc::fcntl(m.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
            libc::read(m.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
        };
        if n > 0 {
            got.extend_from_slice(&buf[..n as usize]);
        }
    }
    let tail = got.split(|&b| b == 0xFF).next_back().unwrap();
    assert_eq!(
        String::from_utf8_lossy(tail),
        "{\"return\": 8}\n{\"return\": \"thawed\"}\n"
    );
    // The host hangs up: the agent keeps running.
    drop(m);
    drop(pty);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        ours.child.try_wait().unwrap().is_none(),
        "the agent exited after the hang-up: {}",
        ours.stderr()
    );
    assert!(
        ours.stderr().contains("the host hung up"),
        "{}",
        ours.stderr()
    );
    send_signal(ours.pid(), libc::SIGTERM).unwrap();
    let start = Instant::now();
    while ours.child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
