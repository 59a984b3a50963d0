//! The committed C header is the one build.rs generates, and it compiles cleanly as C11 and
//! as C++.

use std::path::Path;
use std::process::Command;

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/quiesce.h"));

fn committed() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/quiesce.h");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

#[test]
fn committed_header_is_fresh() {
    assert!(
        committed() == GENERATED,
        "include/quiesce.h is stale: run `QUIESCE_UPDATE_HEADER=1 cargo build` and commit it"
    );
}

fn compile(compiler: &str, args: &[&str], source: &str, ext: &str) {
    let dir = std::env::temp_dir().join(format!("quiesce-header-{}-{ext}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("check.{ext}"));
    std::fs::write(&src, source).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let out = Command::new(compiler)
        .args(args)
        .arg("-I")
        .arg(&include)
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(dir.join("check.o"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{compiler} {args:?} rejected quiesce.h:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const USE: &str = r#"
#include "quiesce.h"
#include "quiesce.h" /* the include guard works */
_Static_assert(QUIESCE_FREEZE_FAILED == 11, "Alibaba's fsfreezer meaning");
_Static_assert(QUIESCE_THAW_FAILED == 12, "Alibaba's fsfreezer meaning");
int use(void);
int use(void) {
    const char *v = quiesce_version();
    const char *m = quiesce_status_message(QUIESCE_TIMEOUT);
    return (int)quiesce_abi_version() + (v != 0) + (m != 0) + (quiesce_status_name(0) != 0);
}
"#;

#[test]
fn header_compiles_as_strict_c11() {
    compile(
        "cc",
        &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"],
        USE,
        "c",
    );
}

#[test]
fn header_compiles_as_cxx() {
    let cxx = USE.replace("_Static_assert", "static_assert");
    compile(
        "c++",
        &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"],
        &cxx,
        "cpp",
    );
}
