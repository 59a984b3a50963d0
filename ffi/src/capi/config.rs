//! The session configuration as C passes it: a struct that starts with its own size, so that
//! later versions can add fields without breaking callers built against this one.

use core::ffi::c_char;
use core::mem::{offset_of, size_of};

use bitflags::bitflags;

use crate::runtime::{DEFAULT_HOOK_TIMEOUT, MAX_HOOK_TIMEOUT};

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

/// Flag: application consistency is required. A hook that fails before the freeze stops the
/// session before anything is frozen: `quiesce_freeze()` returns `QUIESCE_NOT_APP_CONSISTENT`
/// and the hooks that got `freeze` get `freeze-failed`. Without any hook that runs before the
/// freeze (no `hook_dir` executable, no `pre_script`), `quiesce_session_init()` returns
/// `QUIESCE_NOT_APP_CONSISTENT` at once. (The value 8 is reserved.)
pub const QUIESCE_FLAG_REQUIRE_APP_CONSISTENT: u32 = 16;

/// Flag: selection by disk (`disks` or `exclude_disks`): a filesystem whose disks are only
/// partly in the group is left out (not frozen, not covered) instead of refusing the session
/// with `QUIESCE_PARTIAL_GROUP`.
pub const QUIESCE_FLAG_ALLOW_PARTIAL_GROUP: u32 = 32;

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
        /// [`QUIESCE_FLAG_REQUIRE_APP_CONSISTENT`].
        const REQUIRE_APP_CONSISTENT = QUIESCE_FLAG_REQUIRE_APP_CONSISTENT;
        /// [`QUIESCE_FLAG_ALLOW_PARTIAL_GROUP`].
        const ALLOW_PARTIAL_GROUP = QUIESCE_FLAG_ALLOW_PARTIAL_GROUP;
    }
}

/// The longest deadline accepted, in milliseconds (one hour).
pub const QUIESCE_MAX_TIMEOUT_MS: u32 = 3_600_000;

/// The default per-call timeout of a hook, in milliseconds (30 minutes, as the Alibaba Cloud
/// snapshot plugin's `ScriptTimeoutInSeconds`): what `hook_timeout_ms == 0` means.
pub const QUIESCE_DEFAULT_HOOK_TIMEOUT_MS: u32 = 1_800_000;
/// The longest per-call hook timeout accepted, in milliseconds (24 hours).
pub const QUIESCE_MAX_HOOK_TIMEOUT_MS: u32 = 86_400_000;

const _: () = assert!(
    QUIESCE_DEFAULT_HOOK_TIMEOUT_MS as u128 == DEFAULT_HOOK_TIMEOUT.as_millis()
        && QUIESCE_MAX_HOOK_TIMEOUT_MS as u128 == MAX_HOOK_TIMEOUT.as_millis()
);

/// How one session runs. Set it up with `quiesce_config_init()`, then fill in the fields.
///
/// Versions: the first one ended after `mount_count` (32 bytes on 64-bit systems); the hook
/// fields came after it (up to `reserved`, 64 bytes); then the disk fields (96 bytes). A
/// caller built against an older version passes its smaller `size` and is still accepted: the
/// fields it does not have are taken as zero (no hooks, no selection by disk).
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
    /// A directory of hooks (NULL: none): its executables, in byte-wise name order, are run
    /// with the argument `freeze` before the first `FIFREEZE`; after the last `FITHAW` the
    /// ones that got `freeze` are run in reverse order with `thaw` (everything was frozen and
    /// thawed in time) or `freeze-failed`. The directory, every directory above it and every
    /// hook must belong to root and not be writable by group or others, and no component may
    /// be a symbolic link; otherwise `quiesce_session_init()` returns `QUIESCE_HOOK_REFUSED`
    /// and nothing runs. Read during `quiesce_session_init()` only. Configuring any hook
    /// makes the library allocate (see the header's notes).
    pub hook_dir: *const c_char,
    /// A script run with `freeze` before the directory's hooks (NULL: none); the same checks.
    pub pre_script: *const c_char,
    /// A script run with `thaw` or `freeze-failed` after the directory's hooks (NULL: none);
    /// the same checks. Give the same file as `pre_script` to get one hook with both calls.
    pub post_script: *const c_char,
    /// The limit of each hook call in milliseconds (0: `QUIESCE_DEFAULT_HOOK_TIMEOUT_MS`; at
    /// most `QUIESCE_MAX_HOOK_TIMEOUT_MS`); at expiry the hook's process group is killed.
    pub hook_timeout_ms: u32,
    /// Reserved: must be 0 (`quiesce_config_init()` sets it).
    pub reserved: u32,
    /// Selection by disk: `disk_count` disks (NUL-terminated: a block device path such as
    /// `/dev/vdb` or a `/dev/disk/by-*` link, or `serial:VALUE`, with the clouds' volume-id
    /// forms); the filesystems on them are frozen. `mounts` must then be empty and
    /// `QUIESCE_FLAG_ALL` unset. Read during `quiesce_session_init()` only.
    pub disks: *const *const c_char,
    /// How many entries `disks` has (at most 16).
    pub disk_count: usize,
    /// Selection by disk, the other way: the filesystems on every disk but these
    /// (`exclude_disk_count` entries, the forms of `disks`). Not together with `disks`.
    pub exclude_disks: *const *const c_char,
    /// How many entries `exclude_disks` has (at most 16).
    pub exclude_disk_count: usize,
}

/// The version of [`quiesce_config`] this library knows.
pub const CONFIG_SIZE: usize = size_of::<quiesce_config>();

/// The size of the first version of [`quiesce_config`] (up to `mount_count`), still accepted.
pub const CONFIG_SIZE_V1: usize = offset_of!(quiesce_config, hook_dir);
/// The size of the second version (up to `reserved`: the hooks), still accepted.
pub const CONFIG_SIZE_V2: usize = offset_of!(quiesce_config, disks);

const _: () = assert!(CONFIG_SIZE_V1 == 4 * size_of::<usize>());
const _: () = assert!(CONFIG_SIZE_V2 == offset_of!(quiesce_config, reserved) + size_of::<u32>());
const _: () =
    assert!(CONFIG_SIZE == offset_of!(quiesce_config, exclude_disk_count) + size_of::<usize>());

impl quiesce_config {
    /// The defaults: no mounts, no flags, a 10 s deadline.
    pub const fn new() -> quiesce_config {
        quiesce_config {
            size: CONFIG_SIZE,
            flags: 0,
            timeout_ms: 10_000,
            mounts: core::ptr::null(),
            mount_count: 0,
            hook_dir: core::ptr::null(),
            pre_script: core::ptr::null(),
            post_script: core::ptr::null(),
            hook_timeout_ms: 0,
            reserved: 0,
            disks: core::ptr::null(),
            disk_count: 0,
            exclude_disks: core::ptr::null(),
            exclude_disk_count: 0,
        }
    }

    /// Every field zero (NULL), `size` included: what a caller of an older version did not
    /// send.
    const fn zeroed() -> quiesce_config {
        quiesce_config {
            size: 0,
            flags: 0,
            timeout_ms: 0,
            mounts: core::ptr::null(),
            mount_count: 0,
            hook_dir: core::ptr::null(),
            pre_script: core::ptr::null(),
            post_script: core::ptr::null(),
            hook_timeout_ms: 0,
            reserved: 0,
            disks: core::ptr::null(),
            disk_count: 0,
            exclude_disks: core::ptr::null(),
            exclude_disk_count: 0,
        }
    }

    /// True if a hook is configured, or application consistency is required (which then
    /// needs a hook).
    pub fn wants_hooks(&self, flags: Flags) -> bool {
        !self.hook_dir.is_null()
            || !self.pre_script.is_null()
            || !self.post_script.is_null()
            || flags.contains(Flags::REQUIRE_APP_CONSISTENT)
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
    /// `size` is smaller than any version of the struct, or between two versions.
    TooSmall(usize),
    /// The caller's struct is newer and sets fields this library does not know.
    UnknownFields(usize),
    /// Bits in `flags` this library does not know.
    UnknownFlags(u32),
    /// `timeout_ms` out of range.
    Timeout(u32),
    /// `mounts` is NULL with a non-zero count, or too many mounts.
    Mounts(usize),
    /// `hook_timeout_ms` out of range.
    HookTimeout(u32),
    /// `reserved` is not 0.
    Reserved(u32),
    /// `disks` or `exclude_disks` is NULL with a non-zero count, or too many disks.
    Disks(usize),
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
    // The versions: the first (up to `mount_count`), the second (up to `reserved`) and this
    // one; a newer one is larger.
    if size != CONFIG_SIZE_V1 && size != CONFIG_SIZE_V2 && size < CONFIG_SIZE {
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
    // What an older caller did not send is zero: no hooks.
    let mut c = quiesce_config::zeroed();
    // SAFETY: `size.min(CONFIG_SIZE)` readable bytes (the caller's contract; checked above to
    // be a whole version of the struct) are copied into a local of CONFIG_SIZE bytes; the
    // struct is plain data (integers and pointers), valid for any bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(
            cfg.cast::<u8>(),
            core::ptr::addr_of_mut!(c).cast::<u8>(),
            size.min(CONFIG_SIZE),
        );
    }
    let flags = Flags::from_bits(c.flags).ok_or(ConfigError::UnknownFlags(c.flags))?;
    if c.timeout_ms == 0 || c.timeout_ms > QUIESCE_MAX_TIMEOUT_MS {
        return Err(ConfigError::Timeout(c.timeout_ms));
    }
    if (c.mounts.is_null() && c.mount_count != 0) || c.mount_count > crate::runtime::MAX_TARGETS {
        return Err(ConfigError::Mounts(c.mount_count));
    }
    if c.hook_timeout_ms > QUIESCE_MAX_HOOK_TIMEOUT_MS {
        return Err(ConfigError::HookTimeout(c.hook_timeout_ms));
    }
    if c.reserved != 0 {
        return Err(ConfigError::Reserved(c.reserved));
    }
    let max = crate::engine::disks::MAX_DISKS;
    for (list, n) in [
        (c.disks, c.disk_count),
        (c.exclude_disks, c.exclude_disk_count),
    ] {
        if (list.is_null() && n != 0) || n > max {
            return Err(ConfigError::Disks(n));
        }
    }
    Ok((c, flags))
}

const _: () = assert!(QUIESCE_MAX_FREEZERS as usize == quiesce_core::linux::table::MAX_FREEZERS);
const _: () =
    assert!(QUIESCE_PRESYNC_LIMIT_MS as u128 == crate::runtime::PRESYNC_LIMIT.as_millis());

#[cfg(test)]
mod tests {
    use super::*;

    /// A config in a buffer larger than any version, with `garbage` in every byte after
    /// `size` bytes.
    #[repr(C, align(8))]
    struct Buffer([u8; 160]);

    fn buffer(cfg: &quiesce_config, size: usize, garbage: u8) -> Buffer {
        let mut b = Buffer([garbage; 160]);
        // SAFETY: a quiesce_config is plain data; its first `size` (<= CONFIG_SIZE) bytes are
        // copied into a 160-byte buffer.
        let bytes = unsafe {
            core::slice::from_raw_parts((cfg as *const quiesce_config).cast::<u8>(), size)
        };
        b.0[..size].copy_from_slice(bytes);
        b.0[..size_of::<usize>()].copy_from_slice(&size.to_ne_bytes());
        b
    }

    fn read_buffer(b: &Buffer) -> Result<(quiesce_config, Flags), ConfigError> {
        // SAFETY: the buffer holds 160 readable bytes, more than any `size` used here.
        unsafe { read(b.0.as_ptr().cast::<quiesce_config>()) }
    }

    fn mounted() -> quiesce_config {
        let mut cfg = quiesce_config::new();
        cfg.timeout_ms = 5000;
        cfg.flags = QUIESCE_FLAG_SKIP_FROZEN;
        cfg
    }

    #[test]
    fn the_first_version_is_32_bytes_the_second_64_and_this_one_96() {
        assert_eq!(CONFIG_SIZE_V1, 32);
        assert_eq!(CONFIG_SIZE_V2, 64);
        assert_eq!(CONFIG_SIZE, 96);
        assert_eq!(quiesce_config::new().size, CONFIG_SIZE);
    }

    #[test]
    fn a_caller_of_the_first_version_is_accepted_and_its_missing_fields_are_zero() {
        // What follows its 32 bytes is not the caller's: it must not be read.
        let b = buffer(&mounted(), CONFIG_SIZE_V1, 0xA5);
        let (c, flags) = read_buffer(&b).expect("the first version is accepted");
        assert_eq!(flags, Flags::SKIP_FROZEN);
        assert_eq!(c.timeout_ms, 5000);
        assert!(c.hook_dir.is_null() && c.pre_script.is_null() && c.post_script.is_null());
        assert_eq!((c.hook_timeout_ms, c.reserved), (0, 0));
        assert!(!c.wants_hooks(flags));
    }

    #[test]
    fn a_caller_of_the_second_version_is_accepted_and_selects_no_disk() {
        let mut cfg = mounted();
        cfg.hook_timeout_ms = 2500;
        let b = buffer(&cfg, CONFIG_SIZE_V2, 0xA5);
        let (c, _) = read_buffer(&b).expect("the second version is accepted");
        assert_eq!(c.hook_timeout_ms, 2500);
        assert!(c.disks.is_null() && c.exclude_disks.is_null());
        assert_eq!((c.disk_count, c.exclude_disk_count), (0, 0));
    }

    #[test]
    fn disk_lists_are_checked() {
        let mut cfg = mounted();
        cfg.disk_count = 1;
        assert_eq!(
            read_buffer(&buffer(&cfg, CONFIG_SIZE, 0)).err(),
            Some(ConfigError::Disks(1))
        );
        let list = [c"/dev/vdb".as_ptr(); 17];
        cfg.disks = list.as_ptr();
        assert!(read_buffer(&buffer(&cfg, CONFIG_SIZE, 0)).is_ok());
        cfg.disk_count = 17;
        assert_eq!(
            read_buffer(&buffer(&cfg, CONFIG_SIZE, 0)).err(),
            Some(ConfigError::Disks(17))
        );
    }

    #[test]
    fn this_version_is_read_whole() {
        let mut cfg = mounted();
        cfg.hook_dir = c"/etc/quiesce/hooks.d".as_ptr();
        cfg.hook_timeout_ms = 2500;
        let b = buffer(&cfg, CONFIG_SIZE, 0xA5);
        let (c, flags) = read_buffer(&b).expect("accepted");
        assert_eq!(c.hook_dir, cfg.hook_dir);
        assert_eq!(c.hook_timeout_ms, 2500);
        assert!(c.wants_hooks(flags));
    }

    #[test]
    fn sizes_between_versions_or_below_the_first_are_refused() {
        for size in [
            0,
            8,
            CONFIG_SIZE_V1 - 1,
            CONFIG_SIZE_V1 + 8,
            CONFIG_SIZE_V2 - 1,
            CONFIG_SIZE_V2 + 8,
            CONFIG_SIZE - 1,
        ] {
            let b = buffer(&mounted(), size.max(size_of::<usize>()), 0);
            let mut b = b;
            b.0[..size_of::<usize>()].copy_from_slice(&size.to_ne_bytes());
            assert_eq!(
                read_buffer(&b).err(),
                Some(ConfigError::TooSmall(size)),
                "size {size}"
            );
        }
    }

    #[test]
    fn a_newer_caller_must_leave_the_unknown_tail_zero() {
        let b = buffer(&mounted(), CONFIG_SIZE, 0);
        let mut newer = b;
        newer.0[..size_of::<usize>()].copy_from_slice(&(CONFIG_SIZE + 16).to_ne_bytes());
        assert!(read_buffer(&newer).is_ok());
        newer.0[CONFIG_SIZE + 3] = 1;
        assert_eq!(
            read_buffer(&newer).err(),
            Some(ConfigError::UnknownFields(CONFIG_SIZE + 16))
        );
    }

    #[test]
    fn hook_timeout_reserved_and_flags_are_checked() {
        let mut cfg = mounted();
        cfg.hook_timeout_ms = QUIESCE_MAX_HOOK_TIMEOUT_MS + 1;
        let b = buffer(&cfg, CONFIG_SIZE, 0);
        assert_eq!(
            read_buffer(&b).err(),
            Some(ConfigError::HookTimeout(QUIESCE_MAX_HOOK_TIMEOUT_MS + 1))
        );
        cfg.hook_timeout_ms = QUIESCE_MAX_HOOK_TIMEOUT_MS;
        assert!(read_buffer(&buffer(&cfg, CONFIG_SIZE, 0)).is_ok());
        cfg.reserved = 7;
        assert_eq!(
            read_buffer(&buffer(&cfg, CONFIG_SIZE, 0)).err(),
            Some(ConfigError::Reserved(7))
        );
        cfg.reserved = 0;
        cfg.flags = QUIESCE_FLAG_REQUIRE_APP_CONSISTENT;
        let (c, flags) = read_buffer(&buffer(&cfg, CONFIG_SIZE, 0)).expect("accepted");
        assert_eq!(flags, Flags::REQUIRE_APP_CONSISTENT);
        assert!(
            c.wants_hooks(flags),
            "required consistency needs the hooks loaded"
        );
        cfg.flags = 64;
        assert_eq!(
            read_buffer(&buffer(&cfg, CONFIG_SIZE, 0)).err(),
            Some(ConfigError::UnknownFlags(64))
        );
    }
}
