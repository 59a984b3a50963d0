//! SIGINT, SIGTERM and SIGHUP: the measurement stops at its next step and the fixtures are
//! torn down by the normal path; if that has not happened within 20 s (or on a second signal),
//! a signal thread thaws, unmounts and detaches everything itself and exits.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{bail, Result};
use crate::fixtures;

static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
static FINISHED: AtomicBool = AtomicBool::new(false);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn sigset() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value; sigemptyset/sigaddset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t we own.
    unsafe { libc::sigemptyset(&mut set) };
    for s in SIGNALS {
        // SAFETY: as above; `s` is a valid signal number.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    set
}

/// Blocks the signals in this thread (call first in main, before any other thread exists, so
/// that every thread inherits the mask) and starts the thread that receives them. Children
/// start with an empty mask (std resets it before exec).
pub fn install() -> Result<()> {
    let set = sigset();
    // SAFETY: valid set pointer; null old-set pointer.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        bail!("pthread_sigmask: {}", std::io::Error::from_raw_os_error(r));
    }
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || receive(set))
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

fn wait_signal(set: &libc::sigset_t) -> libc::c_int {
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: valid set and out-pointer.
        if unsafe { libc::sigwait(set, &mut sig) } == 0 {
            return sig;
        }
    }
}

fn receive(set: libc::sigset_t) {
    let sig = wait_signal(&set);
    INTERRUPTED.store(sig, Ordering::SeqCst);
    eprintln!("quiesce-bench: signal {sig}: stopping and cleaning up (a second signal forces it)");
    // A second signal or 20 s without the normal cleanup: do it here.
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let s = wait_signal(&set);
        let _ = tx.send(s);
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !FINISHED.load(Ordering::SeqCst) {
        if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            break;
        }
    }
    if FINISHED.load(Ordering::SeqCst) {
        return;
    }
    fixtures::emergency_cleanup();
    std::process::exit(128 + sig);
}

/// An error if a signal asked us to stop.
pub fn check() -> Result<()> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => Ok(()),
        s => bail!("interrupted by signal {s}"),
    }
}

/// The normal cleanup is done: the signal thread must not do it again.
pub fn finished() {
    FINISHED.store(true, Ordering::SeqCst);
}
