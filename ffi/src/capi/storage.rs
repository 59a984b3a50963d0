//! The session lives in storage the caller provides (`quiesce_session`, an opaque, aligned
//! block of `QUIESCE_SESSION_SIZE` bytes): the C ABI never calls malloc. This module lays out
//! what is inside, and checks pointers handed back by C.
//!
//! A live session: `quiesce_session_init()` writes a magic word and the storage's own address
//! into it, `quiesce_session_cleanup()` clears both. Storage that holds both is taken as
//! holding a live session (its descriptors, helper processes and hooks are owned there): init
//! refuses it, every other call accepts only it. Zeroed storage, storage after cleanup, and
//! garbage (fresh from malloc or the stack) lack one or both: the one false positive would need
//! garbage that holds this 64-bit magic next to its own address, i.e. a session that was never
//! cleaned up (whose resources are then leaked already). A byte copy of a session at another
//! address is not live (its address differs): init accepts it, the other calls refuse it.

use core::mem::{align_of, size_of};
use core::ptr::addr_of_mut;
use std::os::fd::OwnedFd;

use core::time::Duration;

use quiesce_core::mountinfo::Dev;
use quiesce_core::session::IfFrozen;
use quiesce_core::Status;

use super::buffers::{Message, MountTable, Name, Names};
use super::hooks::HookState;
use super::plan::MAX_NOTES;
use crate::engine::cancel::Canceller;
use crate::engine::session::{Lifecycle, Options};
use crate::engine::MAX_TARGETS;

/// Bytes of caller storage one session needs (`sizeof(quiesce_session)`).
pub const QUIESCE_SESSION_SIZE: usize = 131072;
/// `QUIESCE_SESSION_SIZE` in 8-byte words.
pub const QUIESCE_SESSION_WORDS: usize = 16384;
/// The alignment that storage needs (`_Alignof(quiesce_session)`).
pub const QUIESCE_SESSION_ALIGN: usize = 8;
/// Most filesystems one session freezes.
pub const QUIESCE_MAX_TARGETS: usize = 64;
/// Most skipped mounts a session lists (more are counted only).
pub const QUIESCE_MAX_SKIPS: usize = 32;

/// Storage for one session: declare one (static, on the stack, or inside a struct of yours;
/// `malloc` works too) and pass its address to `quiesce_session_init()`. Opaque: do not read
/// or copy it; it must stay at the same address from `quiesce_session_init()` to
/// `quiesce_session_cleanup()`.
#[repr(C)]
pub struct quiesce_session {
    opaque: [u64; QUIESCE_SESSION_WORDS],
}

const MAGIC: u64 = 0x7175_6965_7363_6531; // "quiesce1"

/// One planned target, in freeze order.
pub struct Target {
    pub path: Name,
    pub fs_type: Name,
    pub source: Name,
    pub dev: Dev,
    /// Index into the caller's `mounts`, or -1.
    pub mount_index: i32,
    pub fd: OwnedFd,
}

/// One skipped mount.
pub struct Skip {
    pub path: Name,
    pub fs_type: Name,
    pub reason: Name,
    pub dev: Dev,
    pub mount_index: i32,
}

/// The last failure, beside its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: Status,
    pub errno: i32,
    /// Index into the caller's `mounts`, or -1.
    pub mount_index: i32,
    /// Index into the planned targets, or -1.
    pub target_index: i32,
}

impl Failure {
    pub(crate) const NONE: Failure = Failure {
        status: Status::Ok,
        errno: 0,
        mount_index: -1,
        target_index: -1,
    };
}

/// What the caller's storage holds.
pub struct Inner {
    magic: u64,
    /// The storage's own address, written with the magic: a session is live only at home.
    home: usize,
    /// A panic was caught inside an export: only thaw and cleanup are accepted.
    pub poisoned: bool,
    pub failure: Failure,
    pub message: Message,
    pub table: MountTable,
    pub names: Names,
    pub targets: heapless::Vec<Target, MAX_TARGETS>,
    /// `wave_starts[p]`: target `p` must wait for the ones before it (storage); runs of
    /// `false` may be frozen at once. Zeroed bytes are `false`; the plan fills it.
    pub wave_starts: [bool; MAX_TARGETS],
    pub skips: heapless::Vec<Skip, QUIESCE_MAX_SKIPS>,
    pub skips_dropped: usize,
    /// The plan's notes (in `names`), shown by `quiesce_error()` while nothing failed.
    pub notes: heapless::Vec<Name, MAX_NOTES>,
    /// The session's lifecycle (the engine): its stage, the session machine, the helpers.
    pub life: Lifecycle,
    /// The application hooks, if any are configured: on the Rust heap (loading and running
    /// hooks allocates), owned by this session, freed by `quiesce_session_cleanup()`.
    pub hooks: Option<Box<HookState>>,
}

const _: () = assert!(size_of::<Inner>() <= QUIESCE_SESSION_SIZE);
const _: () = assert!(align_of::<Inner>() <= QUIESCE_SESSION_ALIGN);
const _: () = assert!(size_of::<quiesce_session>() == QUIESCE_SESSION_SIZE);
const _: () = assert!(QUIESCE_SESSION_WORDS * 8 == QUIESCE_SESSION_SIZE);
const _: () = assert!(align_of::<quiesce_session>() == QUIESCE_SESSION_ALIGN);
const _: () = assert!(QUIESCE_MAX_TARGETS == MAX_TARGETS);

/// Why a pointer from C is not a usable session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadStorage {
    Null,
    Misaligned,
    TooSmall,
    NotInitialised,
    /// `init` on storage that holds a live session (not cleaned up).
    Live,
}

impl Inner {
    /// Whether `storage` (non-null, aligned) holds a live session: the magic word and its own
    /// address, as `init` left them (see the module's documentation).
    ///
    /// # Safety
    /// `storage` must be aligned and point to `QUIESCE_SESSION_SIZE` readable bytes.
    unsafe fn is_live(storage: *mut quiesce_session) -> bool {
        let p = storage.cast::<Inner>();
        // SAFETY: aligned, in bounds (the caller's contract); two plain integers are read in
        // place, whatever bytes the storage holds, without making a reference to the Inner.
        unsafe {
            addr_of_mut!((*p).magic).read() == MAGIC
                && addr_of_mut!((*p).home).read() == storage as usize
        }
    }

    /// The cancellation of the session in `storage`, reached without making a reference to
    /// the session (another thread may be inside a call on it); `None` if `storage` holds no
    /// live session. Async-signal-safe: pointer checks and two plain reads.
    ///
    /// # Safety
    /// `storage` must be NULL or point to `QUIESCE_SESSION_SIZE` readable bytes, and not be
    /// in `quiesce_session_init()` or `quiesce_session_cleanup()` on another thread.
    pub unsafe fn canceller(storage: *mut quiesce_session) -> Option<*const Canceller> {
        if storage.is_null() || !(storage as usize).is_multiple_of(QUIESCE_SESSION_ALIGN) {
            return None;
        }
        // SAFETY: non-null, aligned, QUIESCE_SESSION_SIZE bytes (the caller's contract).
        if !unsafe { Inner::is_live(storage) } {
            return None;
        }
        let p = storage.cast::<Inner>();
        // SAFETY: a live session (checked): `life` is an initialised Lifecycle; only field
        // projections are made, no reference.
        Some(unsafe { Lifecycle::canceller_of(addr_of_mut!((*p).life)) })
    }

    /// Initialises `storage` (of `size` bytes) in place and returns it; refuses storage that
    /// holds a live session ([`BadStorage::Live`], nothing written). Allocates nothing, and
    /// builds nothing large on the stack.
    ///
    /// # Safety
    /// `storage` must point to `size` writable bytes.
    pub unsafe fn init<'a>(
        storage: *mut quiesce_session,
        size: usize,
    ) -> Result<&'a mut Inner, BadStorage> {
        if storage.is_null() {
            return Err(BadStorage::Null);
        }
        if !(storage as usize).is_multiple_of(QUIESCE_SESSION_ALIGN) {
            return Err(BadStorage::Misaligned);
        }
        if size < QUIESCE_SESSION_SIZE {
            return Err(BadStorage::TooSmall);
        }
        // SAFETY: non-null, aligned, at least QUIESCE_SESSION_SIZE bytes (checked above).
        if unsafe { Inner::is_live(storage) } {
            return Err(BadStorage::Live);
        }
        let p = storage.cast::<Inner>();
        // SAFETY: `p` is non-null, aligned for Inner (checked), and points to at least
        // size_of::<Inner>() writable bytes (checked against QUIESCE_SESSION_SIZE, which the
        // const asserts above bound). Zero bytes are a valid value for every plain field
        // (integers, byte arrays: the buffers' lengths start at 0); every other field is
        // written explicitly before the reference is made.
        unsafe {
            core::ptr::write_bytes(p.cast::<u8>(), 0, size_of::<Inner>());
            addr_of_mut!((*p).poisoned).write(false);
            addr_of_mut!((*p).failure).write(Failure::NONE);
            addr_of_mut!((*p).targets).write(heapless::Vec::new());
            addr_of_mut!((*p).skips).write(heapless::Vec::new());
            addr_of_mut!((*p).notes).write(heapless::Vec::new());
            addr_of_mut!((*p).life).write(Lifecycle::new(Options {
                timeout: Duration::ZERO,
                if_frozen: IfFrozen::Fail,
                presync: false,
                parallel: false,
                grace: Duration::ZERO,
            }));
            addr_of_mut!((*p).hooks).write(None);
            addr_of_mut!((*p).home).write(storage as usize);
            addr_of_mut!((*p).magic).write(MAGIC);
            Ok(&mut *p)
        }
    }

    /// The session in `storage`, if `quiesce_session_init()` set one up there.
    ///
    /// # Safety
    /// `storage` must be NULL or point to a `quiesce_session` (initialised or not) that no
    /// other thread uses during the call.
    pub unsafe fn get<'a>(storage: *mut quiesce_session) -> Result<&'a mut Inner, BadStorage> {
        if storage.is_null() {
            return Err(BadStorage::Null);
        }
        if !(storage as usize).is_multiple_of(QUIESCE_SESSION_ALIGN) {
            return Err(BadStorage::Misaligned);
        }
        // SAFETY: aligned, QUIESCE_SESSION_SIZE bytes of caller storage; the magic and the
        // address are read first, and the reference is made only when they say init() has run
        // on this storage, at this address, and cleanup has not.
        unsafe {
            if !Inner::is_live(storage) {
                return Err(BadStorage::NotInitialised);
            }
            Ok(&mut *storage.cast::<Inner>())
        }
    }

    /// Ends the session in `storage`: drops everything in it (closing descriptors, releasing
    /// the helpers, whose guardian thaws anything still ours, freeing the hooks) and forgets
    /// the magic.
    ///
    /// # Safety
    /// As for [`Inner::get`]; afterwards the storage holds no session.
    pub unsafe fn destroy(storage: *mut quiesce_session) {
        // SAFETY: as for `get`; the Inner is initialised (magic checked), dropped once in
        // place, and its magic cleared so that a second cleanup is a no-op.
        unsafe {
            if let Ok(inner) = Inner::get(storage) {
                let p: *mut Inner = inner;
                addr_of_mut!((*p).magic).write(0);
                addr_of_mut!((*p).home).write(0);
                core::ptr::drop_in_place(p);
            }
        }
    }

    /// Records a failure and its message; returns its status code.
    pub fn fail(&mut self, failure: Failure, message: core::fmt::Arguments<'_>) -> u32 {
        self.failure = failure;
        self.message.set(message);
        failure.status.code()
    }
}
