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
fn the_version_macro_is_the_crate_version() {
    let want = format!("#define QUIESCE_VERSION \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(GENERATED.contains(&want), "the header lacks {want}");
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
_Static_assert(sizeof(quiesce_session) == QUIESCE_SESSION_SIZE, "storage size");
#ifdef __cplusplus
#define ALIGNOF alignof
#else
#define ALIGNOF _Alignof
#endif
_Static_assert(ALIGNOF(quiesce_session) == QUIESCE_SESSION_ALIGN, "storage alignment");
static int on_frozen(quiesce_session *s, void *user) { (void)s; (void)user; return 0; }
int use(void);
int use(void) {
    static quiesce_session s;
    quiesce_config cfg;
    quiesce_error_info e;
    quiesce_report_info r;
    quiesce_target_info t;
    quiesce_skip_info k;
    const char *mounts[1] = {"/mnt"};
    const char *v = quiesce_version();
    const char *m = quiesce_status_message(QUIESCE_TIMEOUT);
    quiesce_config_init(&cfg);
    cfg.mounts = mounts;
    cfg.mount_count = 1;
    cfg.flags = QUIESCE_FLAG_SKIP_FROZEN;
    e.size = sizeof e; r.size = sizeof r; t.size = sizeof t; k.size = sizeof k;
    if (quiesce_run(&s, sizeof s, &cfg, on_frozen, 0) != QUIESCE_OK) {
        (void)quiesce_error(&s, &e);
    }
    (void)quiesce_report(&s, &r);
    (void)quiesce_target(&s, 0, &t);
    (void)quiesce_skip(&s, 0, &k);
    quiesce_session_cleanup(&s);
    return (int)quiesce_abi_version() + (v != 0) + (m != 0) + (quiesce_status_name(0) != 0)
        + (int)sizeof(QUIESCE_VERSION) + (quiesce_session_size() == QUIESCE_SESSION_SIZE)
        + (quiesce_emergency_thaw(mounts, 0, 0) == QUIESCE_OK)
        + (quiesce_outcome_name(QUIESCE_OUTCOME_THAWED) != 0)
        + (quiesce_consistency_name(QUIESCE_CONSISTENCY_FILESYSTEM) != 0);
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
