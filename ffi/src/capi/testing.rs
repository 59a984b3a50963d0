//! The test-only panic hook: proves that a panic inside an export is caught, poisons the
//! session, and still lets it thaw. Never armed unless a test calls it.
//!
//! The export `quiesce_test_panic()` exists only with the cargo feature `test-hooks` (the tests
//! build the library with it: `tests/support/native.rs`); without it (every release build, the
//! installed library) [`point`] is empty and nothing is exported. It is never in the public
//! header (`build.rs` excludes it); `tests/c/panic.c` declares it itself.

#[cfg(feature = "test-hooks")]
use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(feature = "test-hooks")]
use super::guard;

/// `quiesce_test_panic()`: panic inside `quiesce_session_init()`.
pub const QUIESCE_TEST_PANIC_INIT: u32 = 1;
/// `quiesce_test_panic()`: panic inside `quiesce_freeze()`, after everything is frozen.
pub const QUIESCE_TEST_PANIC_FROZEN: u32 = 2;
/// `quiesce_test_panic()`: panic inside `quiesce_thaw()`, before anything is thawed.
pub const QUIESCE_TEST_PANIC_THAW: u32 = 3;

#[cfg(feature = "test-hooks")]
static ARMED: AtomicU32 = AtomicU32::new(0);

/// Where a panic can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    Init = QUIESCE_TEST_PANIC_INIT as isize,
    Frozen = QUIESCE_TEST_PANIC_FROZEN as isize,
    Thaw = QUIESCE_TEST_PANIC_THAW as isize,
}

/// Panics here if a test armed this point (once).
#[cfg(feature = "test-hooks")]
pub fn point(p: Point) {
    if ARMED
        .compare_exchange(p as u32, 0, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        panic!("quiesce_test_panic: injected panic at {p:?}");
    }
}

/// Without the feature `test-hooks`: nothing can arm a point.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn point(_: Point) {}

/// FOR TESTS ONLY: makes the next pass through `point` (a `QUIESCE_TEST_PANIC_*` value)
/// panic inside the library, once; 0 disarms. Shows that the panic is caught, returned as
/// `QUIESCE_INTERNAL`, and poisons the session (which still thaws).
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub extern "C" fn quiesce_test_panic(point: u32) {
    guard((), || ARMED.store(point, Ordering::Release));
}
