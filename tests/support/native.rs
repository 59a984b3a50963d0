//! The C side: the library's build products, and C programs compiled against them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::json_ext::{Json, JsonExt};
use crate::process::run_timeout;

/// Where `libquiesce.a`, `libquiesce.so` and `quiesce.h` are.
#[derive(Clone, Debug)]
pub struct FfiLib {
    /// `libquiesce.a`.
    pub staticlib: PathBuf,
    /// `libquiesce.so`.
    pub cdylib: PathBuf,
    /// The directory holding `quiesce.h`.
    pub include: PathBuf,
}

impl FfiLib {
    /// The directory of the libraries (for `-L`, `LD_LIBRARY_PATH`, `CGO_LDFLAGS`).
    pub fn dir(&self) -> &Path {
        self.staticlib.parent().unwrap_or(Path::new("."))
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the C library once per test process (`cargo build -p quiesce-ffi --features
/// test-hooks`: with the test-only export `quiesce_test_panic()`, which release builds lack)
/// and finds it.
pub fn ffi_lib() -> FfiLib {
    static LIB: OnceLock<FfiLib> = OnceLock::new();
    LIB.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = run_timeout(
            Command::new(cargo)
                .args([
                    "build",
                    "-p",
                    "quiesce-ffi",
                    "--lib",
                    "--features",
                    "test-hooks",
                ])
                .args([
                    "--message-format=json-render-diagnostics",
                    "--manifest-path",
                ])
                .arg(repo_root().join("Cargo.toml")),
            Duration::from_secs(900),
        )
        .unwrap_or_else(|e| panic!("building the C library: {e}"));
        assert!(
            out.status.success(),
            "cargo build -p quiesce-ffi failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let files: Vec<PathBuf> = stdout
            .lines()
            .filter_map(|l| Json::parse(l).ok())
            .filter(|m| m["reason"].as_str() == Some("compiler-artifact"))
            .filter(|m| m["target"]["name"].as_str() == Some("quiesce"))
            .flat_map(|m| {
                m["filenames"]
                    .items()
                    .iter()
                    .filter_map(|f| f.as_str().map(PathBuf::from))
                    .collect::<Vec<_>>()
            })
            .collect();
        let find = |ext: &str| {
            files
                .iter()
                .find(|f| f.extension().is_some_and(|e| e == ext))
                .cloned()
                .unwrap_or_else(|| panic!("cargo built no libquiesce.{ext}: {files:?}"))
        };
        FfiLib {
            staticlib: find("a"),
            cdylib: find("so"),
            include: repo_root().join("include"),
        }
    })
    .clone()
}

/// The system libraries a program linking `libquiesce.a` needs (as `quiesce.pc` lists them).
pub const STATIC_LIBS: [&str; 5] = ["-lgcc_s", "-lpthread", "-lm", "-ldl", "-lc"];

/// Compiles C `sources` (paths relative to the repository) into the program `name` with
/// `-std=c11 -Wall -Wextra -Werror -pedantic`, the header, and `extra` flags (libraries and
/// such go last); returns its path. Panics with the compiler's output if it fails.
pub fn compile_c(name: &str, sources: &[&str], extra: &[&str]) -> PathBuf {
    let lib = ffi_lib();
    let dir = lib.dir().join("native-tests");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let out = dir.join(name);
    let mut cmd = Command::new("cc");
    cmd.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-g",
        "-D_DEFAULT_SOURCE",
    ])
    .arg("-I")
    .arg(&lib.include);
    for s in sources {
        cmd.arg(repo_root().join(s));
    }
    cmd.args(extra).arg("-o").arg(&out);
    let r = run_timeout(&mut cmd, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("cannot run cc: {e}"));
    assert!(
        r.status.success(),
        "cc {name} {sources:?} {extra:?} failed:\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
    out
}

/// [`compile_c`] linked statically against `libquiesce.a`.
pub fn compile_c_static(name: &str, sources: &[&str], extra: &[&str]) -> PathBuf {
    let lib = ffi_lib();
    let a = lib.staticlib.to_string_lossy().into_owned();
    let mut args: Vec<&str> = extra.to_vec();
    args.push(&a);
    args.extend(STATIC_LIBS);
    compile_c(name, sources, &args)
}
