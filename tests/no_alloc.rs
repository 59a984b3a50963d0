//! ARCHITECTURE.md, rule 7: the freeze -> thaw path allocates nothing. A counting global allocator, armed only
//! on this test's thread, surrounds the core's executor while it freezes and thaws real
//! loop-mounted ext4 and xfs filesystems: on success, at the deadline, and on a failed freeze;
//! and the runtime's path through the helper processes ([`Armed::run`]: `FIFREEZE` issued by the
//! freezer, the guardian watching), also with a `FIFREEZE` stuck in the kernel at the deadline.
//! (The helpers themselves run only the core's allocation-free loops after `fork`.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use quiesce::runtime::{self, FreezeOptions, IfFrozen, Select};
use quiesce_core::linux::{execute, Controller, Signal};
use quiesce_core::session::{Outcome, Session};
use quiesce_core::Status;
use quiesce_testkit::{guard, require_root, FsKind, Scratch, TestFs};

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if ARMED.with(Cell::get) {
        COUNT.with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialised thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Counts the allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, COUNT.with(Cell::get))
}

/// Acknowledges at once, or never (so the deadline ends the window).
struct Ack(bool);

impl Controller for Ack {
    fn notify(&mut self) -> Result<(), i32> {
        Ok(())
    }
    fn wait(&mut self, until_ns: u64) -> Option<Signal> {
        if self.0 {
            return Some(Signal::Acknowledged);
        }
        let left = until_ns.saturating_sub(quiesce_core::linux::sys::now_ns());
        std::thread::sleep(Duration::from_nanos(left));
        None
    }
}

/// Plans `fss` (each path checked by the fixture guard first).
fn prepare_guarded(fss: &[&TestFs]) -> runtime::Prepared {
    let mounts: Vec<OsString> = fss
        .iter()
        .map(|f| {
            guard(&f.mount);
            f.mount.clone().into_os_string()
        })
        .collect();
    runtime::prepare(Select::Named(&mounts)).expect("plan")
}

/// Freezes `fss` through the core executor; returns the status, the session, the allocation
/// count, and the mount points in freeze order.
fn run(fss: &[&TestFs], ack: bool, timeout: Duration) -> (Status, Session<8>, u64, Vec<String>) {
    let prepared = prepare_guarded(fss);
    let fds: Vec<BorrowedFd<'_>> = prepared.fds().collect();
    let order: Vec<u16> = (0..fds.len() as u16).collect();
    let mut session = Session::<8>::new(&order, timeout.as_nanos() as u64).expect("session");
    let mut ctl = Ack(ack);
    let (status, n) = allocations(|| execute(&mut session, &fds, &mut ctl));
    let order = prepared
        .targets
        .iter()
        .map(|t| t.mount_point.clone())
        .collect();
    (status, session, n, order)
}

#[test]
fn the_counter_counts() {
    let (v, n) = allocations(|| Vec::<u8>::with_capacity(16));
    assert_eq!(n, 1);
    drop(v);
}

#[test]
fn freeze_to_thaw_allocates_nothing() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let b = TestFs::new(&scratch, "b", FsKind::Xfs);

    let (status, s, n, order) = run(&[&a, &b], true, Duration::from_secs(30));
    assert_eq!(status, Status::Ok);
    assert_eq!(s.target(0).unwrap().outcome, Outcome::Thawed);
    assert_eq!(s.target(1).unwrap().outcome, Outcome::Thawed);
    assert_eq!(
        n, 0,
        "allocations between the first FIFREEZE and the last FITHAW"
    );

    let (status, _, n, _) = run(&[&a, &b], false, Duration::from_millis(300));
    assert_eq!(status, Status::Timeout);
    assert_eq!(n, 0, "allocations on the deadline path");

    // Another holder froze the second in order: the first is frozen, then thawed again.
    let second = if a.mount.to_string_lossy() == order[1] {
        &a
    } else {
        &b
    };
    second.fsfreeze();
    let (status, s, n, _) = run(&[&a, &b], true, Duration::from_secs(30));
    second.fsthaw();
    assert_eq!(status, Status::FrozenByOther);
    assert_eq!(s.target(0).unwrap().outcome, Outcome::Thawed);
    assert_eq!(s.target(1).unwrap().outcome, Outcome::FreezeFailed);
    assert_eq!(n, 0, "allocations on the failed-freeze path");
}

/// Arms a runtime session on `fss` (helpers forked, nothing frozen), then counts the
/// allocations of [`Armed::run`] alone; returns the report and the count.
fn run_armed(
    fss: &[&TestFs],
    ack: bool,
    timeout: Duration,
    if_frozen: IfFrozen,
) -> (runtime::Report, u64) {
    let prepared = prepare_guarded(fss);
    // The pre-sync runs only when something is dirty (Dirty + Writeback of /proc/meminfo, a
    // global count): dirty some page cache outside the targets (one may be frozen already).
    let dirty = std::env::temp_dir().join(format!("quiesce-no-alloc-dirty-{}", std::process::id()));
    std::fs::write(&dirty, vec![7u8; 8 << 20]).unwrap();
    let mut armed = prepared
        .arm(FreezeOptions {
            timeout,
            if_frozen,
            record: false,
            // Pre-sync and parallel freezing on (the defaults): both are counted too. With a
            // stuck filesystem the pre-sync gives up at its limit (the timeout).
            presync: true,
            parallel: true,
        })
        .expect("arm");
    let mut ctl = Ack(ack);
    let (_, n) = allocations(|| {
        assert!(armed.presync().is_some());
        armed.run(&mut ctl)
    });
    let _ = std::fs::remove_file(&dirty);
    (armed.finish(), n)
}

#[test]
fn helper_path_allocates_nothing() {
    require_root();
    let scratch = Scratch::new();
    let a = TestFs::new(&scratch, "a", FsKind::Ext4);
    let b = TestFs::new(&scratch, "b", FsKind::Xfs);

    let (r, n) = run_armed(&[&a, &b], true, Duration::from_secs(30), IfFrozen::Fail);
    assert_eq!(r.status, Status::Ok, "{}", r.message());
    assert!(r.targets.iter().all(|t| t.outcome == Outcome::Thawed));
    assert_eq!(
        n, 0,
        "allocations between the first FIFREEZE and the last FITHAW"
    );

    let (r, n) = run_armed(&[&a, &b], false, Duration::from_millis(300), IfFrozen::Fail);
    assert_eq!(r.status, Status::Timeout);
    assert_eq!(n, 0, "allocations on the deadline path");

    // Another holder froze B: skipped (not covered), A frozen and thawed.
    b.fsfreeze();
    let (r, n) = run_armed(&[&a, &b], true, Duration::from_secs(30), IfFrozen::Skip);
    b.fsthaw();
    assert_eq!(r.status, Status::Ok, "{}", r.message());
    assert_eq!(r.not_covered().count(), 1);
    assert_eq!(n, 0, "allocations on the skip path");
}

#[test]
fn stuck_freeze_path_allocates_nothing() {
    require_root();
    let scratch = Scratch::new();
    // B's image lives on X; with X frozen and B dirty, B's FIFREEZE cannot finish.
    let x = TestFs::new_sized_in(
        &scratch.dir,
        &scratch.dir,
        "x",
        FsKind::Ext4,
        2 * FsKind::Ext4.image_size(),
    );
    let b = TestFs::new_in(&x.mount, &scratch.dir, "b", FsKind::Ext4);
    std::fs::write(b.path("dirty"), vec![7u8; 4 << 20]).expect("write dirty data");
    x.fsfreeze();
    let (r, n) = run_armed(&[&b], true, Duration::from_millis(500), IfFrozen::Fail);
    x.fsthaw();
    assert_eq!(r.status, Status::Timeout, "{}", r.message());
    assert_eq!(r.targets[0].outcome, Outcome::InFlight);
    assert_eq!(
        n, 0,
        "allocations while a FIFREEZE was stuck at the deadline"
    );
    quiesce_testkit::assert_writable(&b.mount, &"after X was thawed, the freezer thaws B");
}
