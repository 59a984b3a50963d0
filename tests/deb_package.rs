//! The Debian package (issue 15): packaging/deb/build.sh builds it; `dpkg -i` installs it;
//! then, from a directory outside the repository and with a plain PATH: `quiesce --version`,
//! `man -w quiesce`, `quiesce plan` and `quiesce run` (with the installed hook directory) on a
//! loop-mounted test filesystem, and the C example (examples/c/agent.c) compiled against
//! `pkg-config --cflags --libs quiesce` (and statically against libquiesce.a) and run on it;
//! then `dpkg -r` leaves none of the package's files.
//!
//! Safe on a shared machine: one installing test at a time (an flock), a package named
//! `quiesce` that this repository did not build is never touched (the test fails instead), a
//! file of the package that already exists on the machine stops the test before the install,
//! a package left installed by a failed run is purged first, and the package is purged on
//! the way out, also on panic. dpkg's lock, held by a concurrent apt, is waited for.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use quiesce_testkit::*;

const PKG: &str = "quiesce";
const STEP: Duration = Duration::from_secs(120);
/// How long to wait for dpkg's lock (another apt run on the machine).
const DPKG_LOCK_WAIT: Duration = Duration::from_secs(900);
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A command run from `dir` with a plain environment: nothing of the repository or of the
/// test harness (no QUIESCE_*, PKG_CONFIG_PATH, LD_LIBRARY_PATH), only the system PATH.
fn outside(program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", PATH)
        .env("LC_ALL", "C");
    cmd
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = run_timeout(cmd, STEP).unwrap_or_else(|e| panic!("{what}: {e}"));
    println!("== {what}: {}\n{}", out.status, text(&out));
    out
}

fn run_ok_out(what: &str, cmd: &mut Command) -> String {
    let out = run(what, cmd);
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dpkg with `args`, retried while another process holds dpkg's lock.
fn dpkg(args: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        let out = run_timeout(
            Command::new("dpkg")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            STEP,
        )
        .unwrap_or_else(|e| panic!("dpkg {args:?}: {e} (is this a Debian machine?)"));
        let err = String::from_utf8_lossy(&out.stderr);
        let locked = !out.status.success() && err.contains("lock");
        if !locked || start.elapsed() > DPKG_LOCK_WAIT {
            println!("== dpkg {}: {}\n{}", args.join(" "), out.status, text(&out));
            return out;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// The Maintainer of packages built by packaging/deb/build.sh: how we know a package is ours.
fn our_maintainer() -> String {
    let control = std::fs::read_to_string(repo_root().join("packaging/deb/control.in"))
        .expect("read packaging/deb/control.in");
    control
        .lines()
        .find_map(|l| l.strip_prefix("Maintainer: "))
        .expect("control.in has no Maintainer")
        .to_string()
}

/// The package's state in dpkg's database: `None` if dpkg knows no `quiesce`, else its
/// status abbreviation ("ii", "rc", ...) and maintainer.
fn installed_state() -> Option<(String, String)> {
    let out = run_timeout(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${db:Status-Abbrev}|${Maintainer}"])
            .arg(PKG),
        STEP,
    )
    .expect("dpkg-query");
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    let (st, maint) = s.split_once('|')?;
    let st = st.trim().to_string();
    (st != "un" && !st.is_empty()).then(|| (st, maint.trim().to_string()))
}

/// Purges our package if dpkg knows it (a leftover of a failed run); panics if dpkg knows a
/// `quiesce` that this repository did not build.
fn purge_ours() {
    if let Some((st, maint)) = installed_state() {
        assert!(
            maint == our_maintainer(),
            "a package named {PKG} ({st}, maintainer {maint}) is installed that this repository \
             did not build: the test does not touch it; remove it yourself to run this test"
        );
        let out = dpkg(&["--purge", PKG]);
        assert!(
            out.status.success(),
            "dpkg --purge {PKG} failed:\n{}",
            text(&out)
        );
    }
}

/// Purges the package when dropped, also on panic.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if installed_state().is_some() {
            let out = dpkg(&["--purge", PKG]);
            if !out.status.success() {
                eprintln!("cleanup: dpkg --purge {PKG} failed:\n{}", text(&out));
            }
        }
    }
}

/// Serializes the tests that install the package machine-wide (also across worktrees).
struct MachineLock(#[allow(dead_code)] File);

fn machine_lock() -> MachineLock {
    let _ = std::fs::create_dir_all("/run/lock");
    let f = File::create("/run/lock/quiesce-deb-test.lock").expect("create the lock file");
    // SAFETY: flock on a descriptor we own; it blocks until the lock is ours.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock: {}", std::io::Error::last_os_error());
    MachineLock(f)
}

/// Builds the package with packaging/deb/build.sh; returns the .deb.
fn build_deb() -> PathBuf {
    let out_dir = repo_root().join("target/deb");
    let mut cmd = Command::new("sh");
    cmd.arg(repo_root().join("packaging/deb/build.sh"))
        .arg(&out_dir);
    let out = run_timeout(&mut cmd, Duration::from_secs(1800)).expect("packaging/deb/build.sh");
    assert!(
        out.status.success(),
        "packaging/deb/build.sh failed:\n{}",
        text(&out)
    );
    let deb = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim(),
    );
    assert!(deb.is_file(), "build.sh printed no .deb: {}", text(&out));
    deb
}

/// The package's entries (`dpkg-deb -c`): (absolute path, is a directory).
fn deb_entries(deb: &Path) -> Vec<(PathBuf, bool)> {
    let out = run_ok_out("dpkg-deb -c", Command::new("dpkg-deb").arg("-c").arg(deb));
    out.lines()
        .filter_map(|l| {
            let is_dir = l.starts_with('d');
            let path = l.split_whitespace().nth(5)?.trim_start_matches('.');
            let path = path.trim_end_matches('/');
            (!path.is_empty()).then(|| (PathBuf::from(path), is_dir))
        })
        .collect()
}

#[test]
fn the_debian_package_installs_works_and_removes_cleanly() {
    require_root();
    let _lock = machine_lock();
    let deb = build_deb();
    let entries = deb_entries(&deb);
    let files: Vec<&PathBuf> = entries.iter().filter(|e| !e.1).map(|e| &e.0).collect();
    for must in [
        "/usr/sbin/quiesce",
        "/usr/lib/x86_64-linux-gnu/libquiesce.so",
        "/usr/lib/x86_64-linux-gnu/libquiesce.a",
        "/usr/include/quiesce.h",
        "/usr/lib/x86_64-linux-gnu/pkgconfig/quiesce.pc",
        "/usr/share/man/man8/quiesce.8.gz",
    ] {
        assert!(
            files.iter().any(|f| f.as_path() == Path::new(must)),
            "{must} not in the package: {files:?}"
        );
    }
    assert!(entries
        .iter()
        .any(|(p, d)| *d && p == Path::new("/etc/quiesce/hooks.d")));

    // A leftover of a failed run goes first; then nothing of the package may exist yet.
    purge_ours();
    for f in &files {
        assert!(
            std::fs::symlink_metadata(f).is_err(),
            "{} exists already (not from this package: dpkg -S says {}); the install would \
             overwrite it. Remove it, or run this test on a machine without it",
            f.display(),
            text(&run("dpkg -S", Command::new("dpkg").arg("-S").arg(f))).trim()
        );
    }
    let dirs_before: Vec<(&PathBuf, bool)> = entries
        .iter()
        .filter(|e| e.1)
        .map(|e| (&e.0, e.0.exists()))
        .collect();

    let installed = Installed;
    // --path-include: a machine whose dpkg excludes manual pages (minimal images) still gets it.
    let deb_s = deb.to_string_lossy().into_owned();
    let out = dpkg(&[
        "--path-include=/usr/share/man/man8/quiesce.8.gz",
        "-i",
        &deb_s,
    ]);
    assert!(out.status.success(), "dpkg -i failed:\n{}", text(&out));
    let listed = run_ok_out("dpkg -L", Command::new("dpkg").args(["-L", PKG]));
    // Every installed file is the package's (DEBIAN/md5sums), unchanged.
    let verify = run_ok_out(
        "dpkg --verify",
        Command::new("dpkg").args(["--verify", PKG]),
    );
    assert!(verify.trim().is_empty(), "dpkg --verify {PKG}: {verify}");
    // The guest agent's unit, installed (not enabled), running the packaged command.
    let unit = "/usr/lib/systemd/system/quiesce-agent.service";
    assert!(
        listed.lines().any(|l| l == unit),
        "{unit} is not in the package:\n{listed}"
    );
    let text_of_unit = std::fs::read_to_string(unit).expect("read the agent's unit");
    let exec: Vec<&str> = text_of_unit
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert!(
        !exec.is_empty()
            && exec
                .iter()
                .all(|l| l.starts_with("ExecStart=/usr/sbin/quiesce agent")),
        "the unit must run the packaged /usr/sbin/quiesce: {exec:?}\n{text_of_unit}"
    );

    let scratch = Scratch::new();
    let away = scratch.path("outside");
    std::fs::create_dir_all(&away).expect("mkdir outside");
    let fs = TestFs::new(&scratch, "deb", FsKind::Ext4);

    // The command: static, in /usr/sbin, on the plain PATH.
    let which = run_ok_out(
        "command -v quiesce",
        outside("sh", &away).args(["-c", "command -v quiesce"]),
    );
    assert_eq!(which.trim(), "/usr/sbin/quiesce");
    let file = run_ok_out("file", outside("file", &away).arg("/usr/sbin/quiesce"));
    assert!(file.contains("statically linked"), "{file}");
    let version = run_ok_out(
        "quiesce --version",
        outside("quiesce", &away).arg("--version"),
    );
    assert_eq!(
        version.trim(),
        format!("quiesce {}", env!("CARGO_PKG_VERSION"))
    );

    // The manual page.
    let man = run(
        "man -w quiesce",
        outside("man", &away).args(["-w", "quiesce"]),
    );
    assert!(
        man.status.success(),
        "man -w quiesce failed (is man-db installed? .ci/run installs it):\n{}",
        text(&man)
    );
    assert_eq!(
        String::from_utf8_lossy(&man.stdout).trim(),
        "/usr/share/man/man8/quiesce.8.gz"
    );

    // The hook directory: root's, 0755, empty.
    let hooks = std::fs::metadata("/etc/quiesce/hooks.d").expect("/etc/quiesce/hooks.d");
    assert!(hooks.is_dir());
    assert_eq!(
        (hooks.uid(), hooks.gid()),
        (0, 0),
        "/etc/quiesce/hooks.d is not root's"
    );
    assert_eq!(hooks.permissions().mode() & 0o7777, 0o755);

    // plan and run on the test filesystem, with the installed hook directory.
    guard(&fs.mount);
    let mount = abs(&fs.mount);
    let plan = run_ok_out(
        "quiesce plan",
        outside("quiesce", &away)
            .args(["plan", "--json"])
            .arg(&fs.mount),
    );
    assert!(
        plan.contains(&format!("\"mount_point\":\"{mount}\"")),
        "{plan}"
    );
    let text_plan = run_ok_out(
        "quiesce plan (text)",
        outside("quiesce", &away).arg("plan").arg(&fs.mount),
    );
    assert!(
        text_plan.contains("1 filesystem would be frozen"),
        "{text_plan}"
    );
    let out = run(
        "quiesce run --hook-dir /etc/quiesce/hooks.d",
        outside("quiesce", &away)
            .args([
                "run",
                "--timeout",
                "30",
                "--json",
                "--hook-dir",
                "/etc/quiesce/hooks.d",
            ])
            .arg(&fs.mount)
            .args(["--", "true"]),
    );
    assert_eq!(out.status.code(), Some(0), "quiesce run:\n{}", text(&out));
    assert_writable(&fs.mount, &text(&out));

    // The C example, compiled against the installed library through pkg-config.
    let pc = |args: &[&str]| -> Vec<String> {
        run_ok_out(
            "pkg-config",
            outside("pkg-config", &away).args(args).arg(PKG),
        )
        .split_whitespace()
        .map(String::from)
        .collect()
    };
    assert_eq!(pc(&["--modversion"]), [env!("CARGO_PKG_VERSION")]);
    let agent_c = repo_root().join("examples/c/agent.c");
    let agent = away.join("quiesce-agent");
    run_ok_out(
        "cc agent.c $(pkg-config --cflags --libs quiesce)",
        outside("cc", &away)
            .args([
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-D_DEFAULT_SOURCE",
            ])
            .args(pc(&["--cflags"]))
            .arg(&agent_c)
            .args(pc(&["--libs"]))
            .arg("-o")
            .arg(&agent),
    );
    let ldd = run_ok_out("ldd", outside("ldd", &away).arg(&agent));
    assert!(
        ldd.lines().any(|l| l.contains("libquiesce.so => ")
            && l.contains("/lib/x86_64-linux-gnu/libquiesce.so")),
        "the agent does not load the installed libquiesce.so:\n{ldd}"
    );
    let out = run(
        "quiesce-agent -t 30000 MOUNT -- true",
        outside(&agent.to_string_lossy(), &away)
            .args(["-t", "30000"])
            .arg(&fs.mount)
            .args(["--", "true"]),
    );
    assert_eq!(out.status.code(), Some(0), "the agent:\n{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("frozen"),
        "{}",
        text(&out)
    );
    assert_writable(&fs.mount, &text(&out));

    // And statically against libquiesce.a (pkg-config --static for the system libraries).
    let libdir = pc(&["--variable=libdir"]).join("");
    let static_agent = away.join("quiesce-agent-static");
    let libs: Vec<String> = pc(&["--static", "--libs-only-l"])
        .into_iter()
        .filter(|l| l != "-lquiesce")
        .collect();
    run_ok_out(
        "cc agent.c libquiesce.a",
        outside("cc", &away)
            .args(["-std=c11", "-D_DEFAULT_SOURCE"])
            .args(pc(&["--cflags"]))
            .arg(&agent_c)
            .arg(Path::new(&libdir).join("libquiesce.a"))
            .args(libs)
            .arg("-o")
            .arg(&static_agent),
    );
    let out = run(
        "quiesce-agent-static --thaw /nonexistent",
        outside(&static_agent.to_string_lossy(), &away)
            .args(["--thaw", "/nonexistent/quiesce-deb"]),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    // Removal leaves none of the package's files (it has no configuration files).
    let out = dpkg(&["-r", PKG]);
    assert!(out.status.success(), "dpkg -r failed:\n{}", text(&out));
    let left: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "/.")
        .filter(|p| {
            let existed = dirs_before
                .iter()
                .any(|(d, e)| *e && d.as_path() == Path::new(p));
            !existed && std::fs::symlink_metadata(p).is_ok()
        })
        .collect();
    assert!(
        left.is_empty(),
        "dpkg -r left these files of the package: {left:?}"
    );
    let state = installed_state();
    assert!(
        state
            .as_ref()
            .is_none_or(|(st, _)| st == "rc" || st == "un"),
        "after dpkg -r the package is {state:?}"
    );
    drop(installed);
    assert!(
        installed_state().is_none(),
        "the package is still known after the purge"
    );
}
