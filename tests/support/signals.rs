//! SIGUSR1 bookkeeping for the test process.
//!
//! `quiesce freeze` (handshake form) sends SIGUSR1 to its parent, which in these tests is the
//! test process itself. The default action of SIGUSR1 would kill the whole test harness, so the
//! testkit installs (once, process-wide, before it spawns any `quiesce`) a handler that records
//! the sender's pid in a lock-free ring. Tests then ask "did child N signal us?". The
//! disposition is process-wide, so this is safe with the multi-threaded test harness; SA_RESTART
//! keeps other threads' system calls from failing with EINTR.

use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

const SLOTS: usize = 256;

static SENDERS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static COUNT: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

extern "C" fn on_usr1(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Only async-signal-safe work: atomics.
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let pid = unsafe { (*info).si_pid() };
    let i = COUNT.fetch_add(1, Ordering::SeqCst) % SLOTS;
    SENDERS[i].store(pid, Ordering::SeqCst);
}

/// Installs the recording SIGUSR1 handler (idempotent).
pub fn install_usr1_recorder() {
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid starting point; the handler is
        // async-signal-safe and has the SA_SIGINFO signature.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_usr1 as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            let rc = libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
            assert_eq!(rc, 0, "sigaction: {}", std::io::Error::last_os_error());
        }
    });
}

/// How many SIGUSR1 the test process has received from `pid` so far (up to the last 256 overall).
pub fn usr1_count_from(pid: u32) -> usize {
    let n = COUNT.load(Ordering::SeqCst).min(SLOTS);
    SENDERS[..n]
        .iter()
        .filter(|s| s.load(Ordering::SeqCst) == pid as i32)
        .count()
}

/// Waits up to `timeout` until the test process has received a SIGUSR1 from `pid`.
pub fn wait_usr1_from(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if usr1_count_from(pid) > 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Sends SIGUSR1 to `pid` from a separate, short-lived process (perl), and returns that
/// process's pid (the sender a correct `quiesce` must ignore and log). Panics if it fails.
pub fn usr1_from_other_process(pid: u32) -> u32 {
    let mut c = Command::new("perl")
        .args(["-e", "kill('USR1', $ARGV[0]) == 1 or die \"kill: $!\\n\""])
        .arg(pid.to_string())
        .spawn()
        .expect("cannot start perl to send SIGUSR1");
    let sender = c.id();
    let st = crate::process::wait_timeout(&mut c, Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "sending SIGUSR1 to {pid} from another process failed: {st:?}"
    );
    sender
}
