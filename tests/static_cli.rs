//! The `quiesce` command ships as one static binary: built for the musl target (static glibc
//! where that target is not installed), `file` says "statically linked", it runs, and it stays
//! small. Also: the pkg-config file installs and links.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use quiesce_testkit::{ffi_lib, repo_root, run_timeout};

/// Builds the release CLI statically (the VM rig's build, shared); returns its path.
fn build_static() -> PathBuf {
    quiesce_testkit::vm::static_quiesce()
}

#[test]
fn the_cli_is_one_small_static_binary() {
    let bin = build_static();
    let file = run_timeout(Command::new("file").arg(&bin), Duration::from_secs(30)).expect("file");
    let desc = String::from_utf8_lossy(&file.stdout).into_owned();
    assert!(desc.contains("statically linked"), "not static: {desc}");
    let size = std::fs::metadata(&bin).expect("stat").len();
    println!("{}: {size} bytes; {}", bin.display(), desc.trim());
    assert!(
        size <= 1024 * 1024,
        "the static CLI is {size} bytes, more than 1 MiB"
    );
    let help = run_timeout(Command::new(&bin).arg("--help"), Duration::from_secs(30)).expect("run");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("quiesce run"));
    // It reads the real mount table without any shared library.
    let plan = run_timeout(
        Command::new(&bin).args(["plan", "--json", "/"]),
        Duration::from_secs(30),
    )
    .expect("run");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("\"targets\""), "{text}");
}

#[test]
fn pkg_config_file_installs_and_links() {
    let lib = ffi_lib();
    let prefix = lib.dir().join("pkgconfig-install");
    let _ = std::fs::remove_dir_all(&prefix);
    let install = run_timeout(
        Command::new("sh")
            .arg(repo_root().join("examples/c/install.sh"))
            .arg(&prefix)
            .arg(lib.dir()),
        Duration::from_secs(60),
    )
    .expect("install.sh");
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let pc = prefix.join("lib/pkgconfig");
    let flags = |args: &[&str]| -> Vec<String> {
        let out = run_timeout(
            Command::new("pkg-config")
                .args(args)
                .arg("quiesce")
                .env("PKG_CONFIG_PATH", &pc),
            Duration::from_secs(30),
        )
        .expect("pkg-config");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(flags(&["--modversion"]), [env!("CARGO_PKG_VERSION")]);
    let exe = prefix.join("agent");
    let mut cc = Command::new("cc");
    cc.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-D_DEFAULT_SOURCE",
    ])
    .args(flags(&["--cflags"]))
    .arg(repo_root().join("examples/c/agent.c"))
    .args(flags(&["--libs"]))
    .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()))
    .arg("-o")
    .arg(&exe);
    let out = run_timeout(&mut cc, Duration::from_secs(120)).expect("cc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It runs against the installed shared library: a path that does not exist is refused.
    let run = run_timeout(
        Command::new(&exe).args(["--thaw", "/nonexistent/quiesce"]),
        Duration::from_secs(30),
    )
    .expect("run");
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let _ = std::fs::remove_dir_all(Path::new(&prefix));
}
