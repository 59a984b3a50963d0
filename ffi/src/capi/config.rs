//! The session configuration as C passes it: a struct that starts with its own size, so that
//! later versions can add fields without breaking callers built against this one.

use core::ffi::c_char;
use core::mem::size_of;

use bitflags::bitflags;

/// Flag: freeze every freezable, writable filesystem; `mounts` then names the ones to leave
/// out.
pub const QUIESCE_FLAG_ALL: u32 = 1;
/// Flag: a filesystem already frozen by another holder is skipped (reported as not covered)
/// instead of failing the session with `QUIESCE_FROZEN_BY_OTHER`.
pub const QUIESCE_FLAG_SKIP_FROZEN: u32 = 2;

/// Flag: no pre-sync. By default every target is `syncfs`ed right before the first `FIFREEZE`
/// (in parallel, in the freezer processes), so that the flush of dirty data happens while
/// writers still run and the frozen window is short. The pre-sync waits at most the timeout,
/// and no more than `QUIESCE_PRESYNC_LIMIT_MS`; whatever it has not flushed by then,
/// `FIFREEZE` flushes. It does not count against the deadline.
pub const QUIESCE_FLAG_NO_PRESYNC: u32 = 4;

/// Flag: freeze one filesystem after another. By default filesystems that do not depend on
/// each other (no loop device of one stored on the other) are frozen at once, by a pool of up
/// to `QUIESCE_MAX_FREEZERS` freezer processes.
pub const QUIESCE_FLAG_SEQUENTIAL: u32 = 8;

/// The longest pre-sync wait in milliseconds (the timeout, if shorter, bounds it too).
pub const QUIESCE_PRESYNC_LIMIT_MS: u32 = 10_000;

/// The most freezer processes a session runs.
pub const QUIESCE_MAX_FREEZERS: u32 = 16;

bitflags! {
    /// The `flags` of a [`quiesce_config`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Flags: u32 {
        /// [`QUIESCE_FLAG_ALL`].
        const ALL = QUIESCE_FLAG_ALL;
        /// [`QUIESCE_FLAG_SKIP_FROZEN`].
        const SKIP_FROZEN = QUIESCE_FLAG_SKIP_FROZEN;
        /// [`QUIESCE_FLAG_NO_PRESYNC`].
        const NO_PRESYNC = QUIESCE_FLAG_NO_PRESYNC;
        /// [`QUIESCE_FLAG_SEQUENTIAL`].
        const SEQUENTIAL = QUIESCE_FLAG_SEQUENTIAL;
    }
}

/// The longest deadline accepted, in milliseconds (one hour).
pub const QUIESCE_MAX_TIMEOUT_MS: u32 = 3_600_000;

/// How one session runs. Set it up with `quiesce_config_init()`, then fill in the fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quiesce_config {
    /// `sizeof(quiesce_config)`: set by `quiesce_config_init()`. Lets the library tell which
    /// version of this struct the caller was built with.
    pub size: usize,
    /// `QUIESCE_FLAG_*` bits, or 0.
    pub flags: u32,
    /// The deadline in milliseconds, from the first `FIFREEZE` to the last `FITHAW`:
    /// 1 to `QUIESCE_MAX_TIMEOUT_MS`. At the deadline everything is thawed, even if the caller
    /// has not called `quiesce_thaw()` yet.
    pub timeout_ms: u32,
    /// `mount_count` mount points (absolute or relative paths, NUL-terminated): the
    /// filesystems to freeze, or with `QUIESCE_FLAG_ALL` the ones to leave out. Each must be
    /// the root of a mount. Read during `quiesce_session_init()` only.
    pub mounts: *const *const c_char,
    /// How many entries `mounts` has (at most `QUIESCE_MAX_TARGETS`).
    pub mount_count: usize,
}

/// The version of [`quiesce_config`] this library knows.
pub const CONFIG_SIZE: usize = size_of::<quiesce_config>();

impl quiesce_config {
    /// The defaults: no mounts, no flags, a 10 s deadline.
    pub const fn new() -> quiesce_config {
        quiesce_config {
            size: CONFIG_SIZE,
            flags: 0,
            timeout_ms: 10_000,
            mounts: core::ptr::null(),
            mount_count: 0,
        }
    }
}

impl Default for quiesce_config {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `size` is smaller than any version of the struct.
    TooSmall(usize),
    /// The caller's struct is newer and sets fields this library does not know.
    UnknownFields(usize),
    /// Bits in `flags` this library does not know.
    UnknownFlags(u32),
    /// `timeout_ms` out of range.
    Timeout(u32),
    /// `mounts` is NULL with a non-zero count, or too many mounts.
    Mounts(usize),
}

/// Reads the caller's configuration.
///
/// # Safety
/// `cfg` must point to at least `cfg->size` readable bytes (or be NULL).
pub unsafe fn read(cfg: *const quiesce_config) -> Result<(quiesce_config, Flags), ConfigError> {
    if cfg.is_null() {
        return Err(ConfigError::TooSmall(0));
    }
    // SAFETY: the caller vouches for `size` readable bytes; `size` is the first field and
    // every version has it.
    let size = unsafe { core::ptr::addr_of!((*cfg).size).read_unaligned() };
    if size < CONFIG_SIZE {
        return Err(ConfigError::TooSmall(size));
    }
    if size > CONFIG_SIZE {
        // A newer caller: fine as long as it leaves the fields we do not know zeroed.
        // SAFETY: the caller vouches for `size` readable bytes.
        let tail = unsafe {
            core::slice::from_raw_parts(cfg.cast::<u8>().add(CONFIG_SIZE), size - CONFIG_SIZE)
        };
        if tail.iter().any(|&b| b != 0) {
            return Err(ConfigError::UnknownFields(size));
        }
    }
    // SAFETY: at least CONFIG_SIZE readable bytes, checked above; the struct is plain data.
    let c = unsafe { cfg.read_unaligned() };
    let flags = Flags::from_bits(c.flags).ok_or(ConfigError::UnknownFlags(c.flags))?;
    if c.timeout_ms == 0 || c.timeout_ms > QUIESCE_MAX_TIMEOUT_MS {
        return Err(ConfigError::Timeout(c.timeout_ms));
    }
    if (c.mounts.is_null() && c.mount_count != 0) || c.mount_count > crate::runtime::MAX_TARGETS {
        return Err(ConfigError::Mounts(c.mount_count));
    }
    Ok((c, flags))
}

const _: () = assert!(QUIESCE_MAX_FREEZERS as usize == quiesce_core::linux::table::MAX_FREEZERS);
const _: () =
    assert!(QUIESCE_PRESYNC_LIMIT_MS as u128 == crate::runtime::PRESYNC_LIMIT.as_millis());
