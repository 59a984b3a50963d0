//! Acceptance 1 of issue 5: an application-consistent snapshot of a real PostgreSQL server.
//!
//! A PostgreSQL cluster (Debian's package; `initdb` as the user `postgres`) lives on a
//! loop-mounted ext4; a client inserts numbered rows, one transaction each, and records every
//! number whose commit was acknowledged. During the inserts, `quiesce run --hook-dir ... MNT --
//! cp IMAGE COPY` runs with the example hook `examples/hooks/postgresql.sh` (CHECKPOINT before
//! the freeze). A second PostgreSQL started on the copy must come up, and every row committed
//! before the freeze must be in it; the run must report application-consistent.
//!
//! The servers listen only on Unix sockets in the scratch directory (no TCP port), with
//! `fsync` on (the default), and are stopped in drop guards (`pg_ctl stop -m immediate`, then
//! SIGKILL). The call log and the committed-rows file live outside the frozen filesystem.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use quiesce_testkit::*;

const PG_STEP: Duration = Duration::from_secs(120);

/// `/usr/lib/postgresql/N/bin` of the newest installed server.
fn pg_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server under /usr/lib/postgresql/*/bin: install the Debian package \
             `postgresql` (bash .ci/run does)"
        ),
    }
}

/// `runuser -u postgres -- PROGRAM ARGS...`.
fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program);
    c
}

fn chown_postgres(p: &Path) {
    run_ok(
        Command::new("chown").arg("postgres:postgres").arg(p),
        PG_STEP,
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A running PostgreSQL server; stopped on drop (immediate, then SIGKILL of the postmaster).
struct Server {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    log: PathBuf,
    running: bool,
}

impl Server {
    fn start(bin: &Path, data: &Path, socket_dir: &Path, port: u16, log: &Path) -> Server {
        fs::create_dir_all(socket_dir).expect("socket dir");
        chown_postgres(socket_dir);
        fs::write(log, "").expect("create the server log");
        chown_postgres(log);
        let mut s = Server {
            bin: bin.to_owned(),
            data: data.to_owned(),
            socket_dir: socket_dir.to_owned(),
            port,
            log: log.to_owned(),
            running: true,
        };
        let opts = format!(
            "-k {} -p {port} -c listen_addresses='' -c fsync=on -c synchronous_commit=on",
            socket_dir.display()
        );
        let out = run_timeout(
            as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(data)
                .args(["-o", &opts, "-w", "-t", "90", "-l"])
                .arg(log)
                .arg("start"),
            PG_STEP,
        );
        match out {
            Ok(o) if o.status.success() => s,
            other => {
                let log = fs::read_to_string(log).unwrap_or_default();
                s.stop();
                panic!(
                    "pg_ctl start on {} failed: {other:?}\nserver log:\n{log}",
                    data.display()
                );
            }
        }
    }

    /// `psql -c SQL` (tuples only, unaligned): Ok(stdout) or Err(stderr).
    fn psql(&self, sql: &str) -> Result<String, String> {
        let out = run_timeout(
            as_postgres(&self.bin.join("psql"))
                .arg("-h")
                .arg(&self.socket_dir)
                .args(["-p", &self.port.to_string(), "-d", "postgres"])
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]),
            PG_STEP,
        )?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let out = run_timeout(
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "-t", "30", "stop"]),
            Duration::from_secs(40),
        );
        let stopped = out.as_ref().is_ok_and(|o| o.status.success());
        if !stopped {
            eprintln!(
                "postgres test: pg_ctl stop: {out:?}\nserver log:\n{}",
                self.log_text()
            );
            // The postmaster's pid is the first line of postmaster.pid (reading never blocks,
            // even on a frozen filesystem).
            let pid: Option<u32> = fs::read_to_string(self.data.join("postmaster.pid"))
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()));
            if let Some(pid) = pid {
                eprintln!("postgres test: pg_ctl stop failed; SIGKILL to postmaster {pid}");
                let _ = send_signal(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Inserts 1, 2, 3, ... one transaction each (a `psql` per row) until stopped; after each
/// acknowledged commit, appends the number to `committed` (a file outside the test
/// filesystem) and to the shared list.
struct Inserter {
    stop: Arc<AtomicBool>,
    done: Arc<Mutex<Vec<u64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Inserter {
    fn start(bin: &Path, socket_dir: &Path, port: u16, committed: &Path) -> Inserter {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (s, d, e) = (stop.clone(), done.clone(), errors.clone());
        let psql = bin.join("psql");
        let socket_dir = socket_dir.to_owned();
        let mut file = fs::File::create(committed).expect("create the committed-rows file");
        let handle = thread::spawn(move || {
            let mut n: u64 = 0;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                let out = run_timeout(
                    as_postgres(&psql)
                        .arg("-h")
                        .arg(&socket_dir)
                        .args(["-p", &port.to_string(), "-d", "postgres"])
                        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
                        .arg(format!("INSERT INTO t VALUES ({n}, now())")),
                    PG_STEP,
                );
                match out {
                    Ok(o) if o.status.success() => {
                        // Recorded only after the commit was acknowledged.
                        let _ = writeln!(file, "{n}");
                        let _ = file.flush();
                        d.lock().unwrap().push(n);
                    }
                    other => e.lock().unwrap().push(format!("insert {n}: {other:?}")),
                }
            }
        });
        Inserter {
            stop,
            done,
            errors,
            handle: Some(handle),
        }
    }

    fn count(&self) -> usize {
        self.done.lock().unwrap().len()
    }

    fn finish(&mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.done.lock().unwrap().clone()
    }
}

impl Drop for Inserter {
    fn drop(&mut self) {
        self.finish();
    }
}

fn read_numbers(p: &Path) -> Vec<u64> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The example hook with its settings block pointed at the test server.
fn install_example_hook(hooks: &HookDir, bin: &Path, socket_dir: &Path, port: u16) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks/postgresql.sh");
    let text = fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut replaced = 0;
    let body: Vec<String> = text
        .lines()
        .map(|l| {
            let set = |k: &str, v: &str| {
                l.starts_with(&format!("{k}="))
                    .then(|| format!("{k}='{v}'   # set by tests/postgres.rs"))
            };
            let new = set("PGHOST", &socket_dir.to_string_lossy())
                .or_else(|| set("PGPORT", &port.to_string()))
                .or_else(|| set("PSQL", &bin.join("psql").to_string_lossy()));
            if new.is_some() {
                replaced += 1;
            }
            new.unwrap_or_else(|| l.to_owned())
        })
        .collect();
    assert_eq!(
        replaced,
        3,
        "{}: expected PGHOST=, PGPORT= and PSQL= lines in its settings block",
        src.display()
    );
    let dest = hooks.dir.join("50-postgresql");
    fs::write(&dest, body.join("\n") + "\n").expect("write the hook");
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).expect("chmod the hook");
    dest
}

#[test]
fn postgresql_snapshot_is_application_consistent() {
    require_root();
    let started = Instant::now();
    let bin = pg_bin();
    let scratch = Scratch::new();
    // Room for a cluster (about 40 MiB) and its WAL.
    let fs_pg = TestFs::new_sized_in(&scratch.dir, &scratch.dir, "pg", FsKind::Ext4, 512 << 20);
    let data = fs_pg.path("data");
    fs::create_dir(&data).expect("mkdir data");
    chown_postgres(&data);
    run_ok(
        as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args([
            "-A",
            "peer",
            "-U",
            "postgres",
            "--no-instructions",
        ]),
        PG_STEP,
    )
    .unwrap_or_else(|e| panic!("initdb: {e}"));
    // Socket paths must be short (108 bytes): the scratch directory is.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let mut server = Server::start(
        &bin,
        &data,
        &scratch.path("sock1"),
        port,
        &scratch.path("pg1.log"),
    );
    server
        .psql("CREATE TABLE t (n bigint PRIMARY KEY, at timestamptz NOT NULL)")
        .unwrap_or_else(|e| panic!("CREATE TABLE: {e}"));

    let hooks = HookDir::new();
    install_example_hook(&hooks, &bin, &scratch.path("sock1"), port);
    let committed = scratch.path("committed.txt");
    let at_hook = scratch.path("committed-at-freeze-hook.txt");
    let at_snapshot = scratch.path("committed-at-snapshot.txt");
    // Runs after the CHECKPOINT hook, right before FIFREEZE: what was committed by then.
    hooks.script(
        "60-mark",
        &format!(
            "[ \"$1\" = freeze ] && cp '{}' '{}'\necho \"60-mark $1\" >> '{}'\nexit 0",
            committed.display(),
            at_hook.display(),
            hooks.log.display()
        ),
    );

    let mut inserter = Inserter::start(&bin, &scratch.path("sock1"), port, &committed);
    let warmup = Instant::now();
    while inserter.count() < 50 {
        assert!(
            warmup.elapsed() < Duration::from_secs(120),
            "the client committed only {} rows in 120 s: {:?}",
            inserter.count(),
            inserter.errors.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(50));
    }

    let copy = scratch.path("copy.img");
    let snapshot = format!(
        "cp '{c}' '{s}' && echo snapshot >> '{l}' && cp --sparse=always '{img}' '{copy}'",
        c = committed.display(),
        s = at_snapshot.display(),
        l = hooks.log.display(),
        img = fs_pg.image.display(),
        copy = copy.display()
    );
    let out = Quiesce::sub("run")
        .args(["--json", "--timeout", "60", "--hook-timeout", "120"])
        .arg(format!("--hook-dir={}", hooks.dir.display()))
        .arg("--require-app-consistent")
        .mount(&fs_pg.mount)
        .args(["--", "sh", "-c", &snapshot])
        .run(Duration::from_secs(300));
    // Keep inserting a little after the thaw: the copy must not depend on a quiet server.
    let after = inserter.count();
    while inserter.count() < after + 20 && inserter.errors.lock().unwrap().is_empty() {
        thread::sleep(Duration::from_millis(50));
    }
    let all_committed = inserter.finish();
    let insert_errors = inserter.errors.lock().unwrap().clone();
    server.stop();

    let j = check_report(&out, "run", 0);
    check_str(&out, &j, "consistency", "application-consistent");
    check_str(&out, target(&out, &j, &fs_pg.mount), "outcome", "thawed");
    let cp = j["hooks"]
        .items()
        .iter()
        .find(|h| {
            h["name"].as_str() == Some("50-postgresql") && h["phase"].as_str() == Some("freeze")
        })
        .cloned()
        .unwrap_or(Json::Null);
    ensure(
        cp["succeeded"].as_bool() == Some(true)
            && cp["output"]
                .as_str()
                .is_some_and(|o| o.contains("CHECKPOINT done")),
        &out,
        "the PostgreSQL hook ran CHECKPOINT before the freeze",
    );
    ensure(
        hooks.calls() == ["60-mark freeze", "snapshot", "60-mark thaw"],
        &out,
        format!("call log {:?}", hooks.calls()),
    );
    ensure(
        insert_errors.is_empty(),
        &out,
        format!("inserts failed: {insert_errors:?}"),
    );

    // The copy: a second server on it must come up with every row committed before the freeze.
    let before_freeze = read_numbers(&at_hook);
    let before_snapshot = read_numbers(&at_snapshot);
    ensure(
        !before_freeze.is_empty() && before_snapshot.len() >= before_freeze.len(),
        &out,
        format!(
            "committed before the freeze hook: {}, before the snapshot: {}",
            before_freeze.len(),
            before_snapshot.len()
        ),
    );
    let fs_copy = TestFs::attach(&copy, &scratch.dir, "copy", FsKind::Ext4);
    // The copy is of a running server, so it holds the original's postmaster.pid. Restored
    // on another machine that PID means nothing; here it is the first server's, which may
    // still exist as a zombie that nobody has reaped yet, and PostgreSQL would refuse to
    // start. Removing the stale lock file is the usual step of a restore on the same host.
    let _ = fs::remove_file(fs_copy.path("data/postmaster.pid"));
    let copy_server = Server::start(
        &bin,
        &fs_copy.path("data"),
        &scratch.path("sock2"),
        port,
        &scratch.path("pg2.log"),
    );
    let rows: Vec<u64> = copy_server
        .psql("SELECT n FROM t ORDER BY n")
        .unwrap_or_else(|e| {
            panic!(
                "SELECT on the copy: {e}\nserver log:\n{}",
                copy_server.log_text()
            )
        })
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let found: std::collections::HashSet<u64> = rows.iter().copied().collect();
    let missing: Vec<u64> = before_snapshot
        .iter()
        .copied()
        .filter(|n| !found.contains(n))
        .collect();
    let summary = format!(
        "rows committed in all: {}; committed before the freeze hook: {}; before the snapshot \
         command (inside the frozen window): {}; rows in the copy: {} (max {}); missing: {:?}; \
         frozen window {} us; whole test {:.1} s",
        all_committed.len(),
        before_freeze.len(),
        before_snapshot.len(),
        rows.len(),
        rows.last().copied().unwrap_or(0),
        missing,
        j["window_us"],
        started.elapsed().as_secs_f64()
    );
    eprintln!("postgres test: {summary}");
    ensure(
        missing.is_empty(),
        &out,
        format!(
            "rows committed before the freeze are missing from the copy: {summary}\ncopy server log:\n{}",
            copy_server.log_text()
        ),
    );
    // The copy holds no row that was never acknowledged... except the one in flight at the
    // freeze (committed on disk, acknowledgement lost): at most one beyond what was recorded.
    let max_recorded = all_committed.iter().copied().max().unwrap_or(0);
    ensure(
        rows.iter().all(|&n| n <= max_recorded + 1),
        &out,
        format!("the copy has rows that were never inserted: {summary}"),
    );
    drop(copy_server);
    drop(fs_copy);
    assert_writable(&fs_pg.mount, &out);
}
