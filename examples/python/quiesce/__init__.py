"""quiesce: freeze Linux filesystems around a disk snapshot, and always thaw them again.

A Python binding (standard library + ctypes) of the quiesce C ABI (``include/quiesce.h``)::

    import quiesce

    with quiesce.frozen(["/srv/data", "/var/lib/db"], timeout=30) as session:
        take_snapshot()          # must not write to the frozen filesystems
    print(session.report.consistency)   # Consistency.FILESYSTEM

- Entering the block plans and freezes; a failure raises :class:`QuiesceError` and leaves
  nothing frozen.
- Leaving it normally acknowledges the snapshot and thaws. If the final status is not
  ``Status.OK`` (e.g. ``Status.TIMEOUT``: the block overran the deadline and the guardian
  already thawed everything), :class:`QuiesceError` is raised, because the snapshot is then
  not file-system-consistent.
- Leaving it by an exception thaws WITHOUT acknowledging (the snapshot is reported failed) and
  lets the exception propagate; ``session.report.acknowledged`` is then False.
- Whatever Python does, a guardian process forked by the library thaws everything at the
  deadline, or at once if this process dies.

The two-phase form: :meth:`Session.plan`, :meth:`Session.freeze`, :meth:`Session.thaw`,
:meth:`Session.close`. The rescue: :func:`emergency_thaw`. Freezing needs CAP_SYS_ADMIN.

Application hooks (``hook_dir=``, ``pre_script=``, ``post_script=``, ``hook_timeout=``,
``require_app_consistent=``), as the ``quiesce`` command's ``--hook-dir`` and friends: the
hooks get ``freeze`` before the first FIFREEZE (when the block is entered) and ``thaw`` or
``freeze-failed`` after the last FITHAW (when it is left); ``report.consistency`` is then
``Consistency.APPLICATION``, or ``FILESYSTEM`` with ``report.consistency_reason`` saying which
hook failed. Hooks and every directory above them must belong to root and not be writable by
group or others (``Status.HOOK_REFUSED`` otherwise, before anything runs).

Bad arguments are refused in Python before any call: a single path where a list is expected
and non-numeric timeouts raise ``TypeError``; a timeout outside (0, 3600] seconds, or a path
with a NUL byte, raises ``ValueError``. Everything the library refuses raises
:class:`QuiesceError` with its :class:`Status`.

The shared library is loaded from ``$QUIESCE_LIB`` (a path to ``libquiesce.so``), else from
this package's own directory (where ``pip install`` puts it), else from the repository this
package lives in (``target/release``, then ``target/debug``: for development), else wherever
``ctypes.util.find_library("quiesce")`` finds it. Importing fails with ImportError if the
library's session size or ABI version is not the one this module was written for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.machinery
import math
import os
import signal
import threading
from ctypes import (
    POINTER,
    Structure,
    byref,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Dict, Final, Iterable, Optional, Tuple, Type, Union

__all__ = [
    "ABI_VERSION",
    "Consistency",
    "DEFAULT_HOOK_TIMEOUT",
    "Frozen",
    "HookCall",
    "MAX_HOOK_TIMEOUT",
    "MAX_TARGETS",
    "MAX_TIMEOUT",
    "Outcome",
    "PHASE_NAMES",
    "Phases",
    "QuiesceError",
    "Report",
    "Session",
    "SESSION_ALIGN",
    "SESSION_SIZE",
    "Skip",
    "Status",
    "Target",
    "abi_version",
    "consistency_name",
    "emergency_thaw",
    "frozen",
    "library_path",
    "outcome_name",
    "status_message",
    "status_name",
    "version",
]

#: The session storage size (``QUIESCE_SESSION_SIZE``) this module was written for.
SESSION_SIZE: Final = 131072
#: The alignment (``QUIESCE_SESSION_ALIGN``) the storage below guarantees.
SESSION_ALIGN: Final = 8
#: The ABI version (``QUIESCE_ABI_VERSION``) this module was written for.
ABI_VERSION: Final = 1
#: The longest deadline, in seconds (``QUIESCE_MAX_TIMEOUT_MS``).
MAX_TIMEOUT: Final = 3600.0
#: Most filesystems one session freezes (``QUIESCE_MAX_TARGETS``).
MAX_TARGETS: Final = 64
#: The limit of each hook call when ``hook_timeout`` is not given, in seconds
#: (``QUIESCE_DEFAULT_HOOK_TIMEOUT_MS``).
DEFAULT_HOOK_TIMEOUT: Final = 1800.0
#: The longest ``hook_timeout``, in seconds (``QUIESCE_MAX_HOOK_TIMEOUT_MS``).
MAX_HOOK_TIMEOUT: Final = 86400.0

_FLAG_ALL: Final = 1
_FLAG_SKIP_FROZEN: Final = 2
_FLAG_NO_PRESYNC: Final = 4
_FLAG_SEQUENTIAL: Final = 8
_FLAG_REQUIRE_APP_CONSISTENT: Final = 16
_FLAG_ALLOW_PARTIAL_GROUP: Final = 32

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
TimeoutArg = Union[float, int, timedelta]


# ---------------------------------------------------------------------------------------------
# Loading the library


def _candidates() -> list[str]:
    here = Path(__file__).resolve().parent
    # Installed: the build (setuptools-rust, see pyproject.toml) put the library next to this
    # file, named like an extension module (libquiesce.cpython-311-x86_64-linux-gnu.so).
    packaged = [here / f"libquiesce{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    # In the repository (examples/python/quiesce/): the cargo build's target directories.
    repo = here.parent.parent.parent
    built = [repo / "target" / p / "libquiesce.so" for p in ("release", "debug")]
    return [str(p) for p in packaged + built if p.is_file()]


def _load() -> tuple[ctypes.CDLL, str]:
    explicit = os.environ.get("QUIESCE_LIB")
    if explicit:
        try:
            return ctypes.CDLL(explicit), explicit
        except OSError as e:
            raise ImportError(f"cannot load $QUIESCE_LIB={explicit!r}: {e}") from e
    tried: list[str] = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path}: {e}")
    name = ctypes.util.find_library("quiesce")
    if name:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            tried.append(f"{name}: {e}")
    raise ImportError(
        "cannot find libquiesce.so: install the package (pip install ./examples/python), "
        "set QUIESCE_LIB to the library's path, or build it with `cargo build -p quiesce-ffi`" + ("".join(f"\n  tried {t}" for t in tried))
    )


_lib, _lib_path = _load()


class _SessionStorage(Structure):
    """``quiesce_session``: opaque, 8-byte aligned, never moved nor copied while live."""

    _fields_ = [("opaque", c_uint64 * (SESSION_SIZE // 8))]


class _Config(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("flags", c_uint32),
        ("timeout_ms", c_uint32),
        ("mounts", POINTER(c_char_p)),
        ("mount_count", c_size_t),
        ("hook_dir", c_char_p),
        ("pre_script", c_char_p),
        ("post_script", c_char_p),
        ("hook_timeout_ms", c_uint32),
        ("reserved", c_uint32),
        ("disks", POINTER(c_char_p)),
        ("disk_count", c_size_t),
        ("exclude_disks", POINTER(c_char_p)),
        ("exclude_disk_count", c_size_t),
    ]


class _ReportInfo(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("status", c_uint32),
        ("consistency", c_uint32),
        ("acknowledged", c_uint32),
        ("ended", c_uint32),
        ("timeout_ms", c_uint32),
        ("target_count", c_uint32),
        ("skip_count", c_uint32),
        ("skips_dropped", c_uint32),
        ("not_covered", c_uint32),
        ("window_ns", c_uint64),
        ("presync_ns", c_uint64),
        ("consistency_reason", c_char_p),
        ("hook_calls", c_uint32),
        ("hook_failures", c_uint32),
    ]


class _TargetInfo(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("path", c_char_p),
        ("fs_type", c_char_p),
        ("source", c_char_p),
        ("dev_major", c_uint32),
        ("dev_minor", c_uint32),
        ("mount_index", c_int32),
        ("outcome", c_uint32),
        ("os_error", c_int32),
        ("freeze_ns", c_uint64),
        ("thaw_ns", c_uint64),
    ]


class _SkipInfo(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("path", c_char_p),
        ("fs_type", c_char_p),
        ("reason", c_char_p),
        ("dev_major", c_uint32),
        ("dev_minor", c_uint32),
        ("mount_index", c_int32),
    ]


class _HookCallInfo(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("name", c_char_p),
        ("path", c_char_p),
        ("source", c_char_p),
        ("phase", c_char_p),
        ("end", c_char_p),
        ("result", c_char_p),
        ("succeeded", c_uint32),
        ("timed_out", c_uint32),
        ("exit_status", c_int32),
        ("signal", c_int32),
        ("os_error", c_int32),
        ("output_held_open", c_uint32),
        ("duration_us", c_uint64),
        ("output", c_void_p),
        ("output_len", c_size_t),
        ("output_dropped", c_size_t),
    ]


class _PhasesInfo(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("plan_ns", c_uint64),
        ("arm_ns", c_uint64),
        ("hooks_ns", c_uint64),
        ("presync_ns", c_uint64),
        ("freeze_ns", c_uint64),
        ("wait_ns", c_uint64),
        ("thaw_ns", c_uint64),
        ("finish_ns", c_uint64),
    ]


class _ErrorInfo(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("status", c_uint32),
        ("os_error", c_int32),
        ("mount_index", c_int32),
        ("target_index", c_int32),
        ("message", c_char_p),
    ]


def _declare(name: str, restype: object, *argtypes: object) -> None:
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


_S = POINTER(_SessionStorage)
_declare("quiesce_version", c_char_p)
_declare("quiesce_abi_version", c_uint32)
_declare("quiesce_status_message", c_char_p, c_uint32)
_declare("quiesce_status_name", c_char_p, c_uint32)
_declare("quiesce_outcome_name", c_char_p, c_uint32)
_declare("quiesce_consistency_name", c_char_p, c_uint32)
_declare("quiesce_emergency_thaw", c_uint32, POINTER(c_char_p), c_size_t, POINTER(c_size_t))
_declare("quiesce_report", c_uint32, _S, POINTER(_ReportInfo))
_declare("quiesce_target", c_uint32, _S, c_size_t, POINTER(_TargetInfo))
_declare("quiesce_hook_call", c_uint32, _S, c_size_t, POINTER(_HookCallInfo))
_declare("quiesce_skip", c_uint32, _S, c_size_t, POINTER(_SkipInfo))
_declare("quiesce_phases", c_uint32, _S, POINTER(_PhasesInfo))
_declare("quiesce_session_size", c_size_t)
_declare("quiesce_session_align", c_size_t)
_declare("quiesce_config_init", c_uint32, POINTER(_Config))
_declare("quiesce_session_init", c_uint32, _S, c_size_t, POINTER(_Config))
_declare("quiesce_freeze", c_uint32, _S)
_declare("quiesce_cancel", c_uint32, _S)
_declare("quiesce_thaw", c_uint32, _S, c_int)
_declare("quiesce_session_cleanup", None, _S)
_declare("quiesce_error", c_uint32, _S, POINTER(_ErrorInfo))


def _check_library() -> None:
    size = int(_lib.quiesce_session_size())
    if size != SESSION_SIZE:
        raise ImportError(
            f"{_lib_path} needs {size} bytes of session storage, but this module was written "
            f"for {SESSION_SIZE} (QUIESCE_SESSION_SIZE): use the quiesce package that comes with "
            "that library"
        )
    abi = int(_lib.quiesce_abi_version())
    if abi != ABI_VERSION:
        raise ImportError(
            f"{_lib_path} has ABI version {abi}, but this module was written for ABI version "
            f"{ABI_VERSION}: use the quiesce package that comes with that library"
        )
    align = int(_lib.quiesce_session_align())
    if align == 0 or SESSION_ALIGN % align != 0:
        raise ImportError(
            f"{_lib_path} needs session storage aligned to {align} bytes, but this module "
            f"provides {SESSION_ALIGN}"
        )


_check_library()


# ---------------------------------------------------------------------------------------------
# Codes


class _Codes(IntEnum):
    """An IntEnum that keeps numbers it does not know (from a newer library) as UNKNOWN_<n>."""

    @classmethod
    def _missing_(cls, value: object) -> Optional["_Codes"]:
        if isinstance(value, int):
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None


class Status(_Codes):
    """Status codes: also the exit statuses of the ``quiesce`` command."""

    OK = 0
    USAGE = 2
    BAD_TARGET = 3
    NOT_FREEZABLE = 4
    PERMISSION = 5
    PLAN_REFUSED = 6
    HOOK_REFUSED = 7
    PARTIAL_GROUP = 8
    FREEZE_FAILED = 11
    THAW_FAILED = 12
    TIMEOUT = 13
    NOT_ACKNOWLEDGED = 14
    FROZEN_BY_OTHER = 15
    SUSPECT = 16
    SNAPSHOT_FAILED = 17
    INTERRUPTED = 18
    NOT_APP_CONSISTENT = 19
    THAW_HOOK_FAILED = 20
    CANCELLED = 21
    INTERNAL = 70


class Consistency(_Codes):
    """How far a snapshot can be trusted."""

    NONE = 0
    FILESYSTEM = 1
    APPLICATION = 2


class Outcome(_Codes):
    """What happened to one target filesystem."""

    NOT_ATTEMPTED = 0
    FROZEN = 1
    FREEZE_FAILED = 2
    THAWED = 3
    THAWED_BY_OTHER = 4
    THAW_FAILED = 5
    IN_FLIGHT = 6
    THAWED_BY_GUARDIAN = 7
    NOT_COVERED = 8


def _str(p: Optional[bytes]) -> str:
    return "" if p is None else os.fsdecode(p)


def version() -> str:
    """The library version, e.g. ``"0.1.0"``."""
    return _str(_lib.quiesce_version())


def abi_version() -> int:
    """The ABI version of the library loaded."""
    return int(_lib.quiesce_abi_version())


def library_path() -> str:
    """Where the shared library was loaded from."""
    return _lib_path


def status_name(status: int) -> str:
    """The stable short name of a status (``"bad-target"``); ``"unknown"`` for others."""
    return _str(_lib.quiesce_status_name(_u32(status)))


def status_message(status: int) -> str:
    """A one-line description of a status; ``"unknown status"`` for others."""
    return _str(_lib.quiesce_status_message(_u32(status)))


def outcome_name(outcome: int) -> str:
    """The stable name of a target outcome (``"thawed"``); ``"unknown"`` for others."""
    return _str(_lib.quiesce_outcome_name(_u32(outcome)))


def consistency_name(consistency: int) -> str:
    """The stable name of a consistency level (``"filesystem-consistent"``)."""
    return _str(_lib.quiesce_consistency_name(_u32(consistency)))


def _u32(n: int) -> int:
    n = int(n)
    return n if 0 <= n <= 0xFFFFFFFF else 0xFFFFFFFF


def _index(i: int) -> Optional[int]:
    return None if i < 0 else int(i)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Target:
    """One filesystem of the plan, in freeze order (thaw order is the reverse)."""

    #: Its position in freeze order.
    index: int
    #: The mount point it is frozen through.
    path: str
    #: Its filesystem type (``"ext4"``, ...).
    fs_type: str
    #: Its mount source (``"/dev/loop0"``).
    source: str
    dev_major: int
    dev_minor: int
    #: The index into the mounts passed that named it, or None.
    mount_index: Optional[int]
    outcome: Outcome
    #: The errno of its failed call, or 0.
    errno: int
    #: How long its FIFREEZE / FITHAW took, in nanoseconds.
    freeze_ns: int
    thaw_ns: int

    @property
    def dev(self) -> str:
        """``"MAJOR:MINOR"`` of its superblock."""
        return f"{self.dev_major}:{self.dev_minor}"

    @property
    def freeze_latency(self) -> float:
        """How long its FIFREEZE took, in seconds."""
        return self.freeze_ns / 1e9

    @property
    def thaw_latency(self) -> float:
        """How long its FITHAW took, in seconds."""
        return self.thaw_ns / 1e9


@dataclass(frozen=True)
class Skip:
    """A mount left out of the plan, and why."""

    path: str
    fs_type: str
    reason: str
    dev_major: int
    dev_minor: int
    #: The index into the mounts passed that named it, or None.
    mount_index: Optional[int]


@dataclass(frozen=True)
class HookCall:
    """One call of one hook (``quiesce_hook_call()``; the fields of the ``quiesce`` command's
    JSON ``hooks[]``)."""

    #: The file name (a directory's hook) or the path (the pre and post scripts).
    name: str
    #: The verified path that was run.
    path: str
    #: ``"pre-script"``, ``"post-script"`` or ``"hook-dir"``.
    source: str
    #: The argument it got: ``"freeze"``, ``"thaw"``, ``"freeze-failed"``.
    phase: str
    #: ``"exited"``, ``"signaled"``, ``"timed-out"``, ``"cancelled"``, ``"not-started"``.
    end: str
    #: Exit status 0.
    succeeded: bool
    #: Its exit status, or None if it did not exit.
    exit_status: Optional[int]
    #: The signal that ended it, or None.
    signal: Optional[int]
    #: Why it could not be started (an errno), or 0.
    errno: int
    #: Its timeout passed (its process group was killed).
    timed_out: bool
    #: How it ended, for people: ``"exit status 0"``, ``"killed by signal 9"``, ...
    result: str
    #: How long it ran, in microseconds.
    duration_us: int
    #: The first bytes (at most 64 KiB) of its stdout and stderr, interleaved.
    output: str
    #: Bytes of output beyond those, read and dropped.
    output_dropped: int
    #: It exited but a process it left behind still held its output open.
    output_held_open: bool

    @property
    def duration(self) -> float:
        """How long it ran, in seconds."""
        return self.duration_us / 1e6


#: The phases of a session in order, as the ``quiesce`` command's JSON ``phases`` names them
#: (there with the suffix ``_us``).
PHASE_NAMES: Final = ("plan", "arm", "hooks", "presync", "freeze", "wait", "thaw", "finish")


@dataclass(frozen=True)
class Phases:
    """Where a session's time went (``quiesce_phases()``), in nanoseconds: 0 for a phase that
    did not run (yet), at least 1 for one that ran. They do not overlap. ``as_us()`` gives the
    ``quiesce`` command's JSON ``phases`` (microseconds)."""

    #: Planning (in ``Session.plan``): mount table, selection, descriptors, order.
    plan_ns: int = 0
    #: The CAP_SYS_ADMIN check, the session machine, forking the guardian and the freezers,
    #: the session record.
    arm_ns: int = 0
    #: The hooks' calls: ``freeze`` before arming, ``thaw`` or ``freeze-failed`` after the
    #: thaw (0 without hooks).
    hooks_ns: int = 0
    #: The pre-sync (0 with ``presync=False``, or left out because nothing was dirty).
    presync_ns: int = 0
    #: From the first FIFREEZE until everything was frozen (or the freeze was given up).
    freeze_ns: int = 0
    #: From everything frozen (``freeze()`` returning) to the thaw: the caller's snapshot.
    wait_ns: int = 0
    #: The thaw of every target, in reverse order.
    thaw_ns: int = 0
    #: The helper processes released, the session record removed.
    finish_ns: int = 0

    def named(self) -> Tuple[Tuple[str, int], ...]:
        """``(name, nanoseconds)`` of each phase, in order (``PHASE_NAMES``)."""
        return tuple((n, int(getattr(self, f"{n}_ns"))) for n in PHASE_NAMES)

    def as_us(self) -> Dict[str, int]:
        """The ``quiesce`` command's JSON ``phases``: ``{"plan_us": ..., ...}``, whole
        microseconds."""
        return {f"{n}_us": ns // 1000 for n, ns in self.named()}

    @property
    def total_ns(self) -> int:
        """The sum of the phases."""
        return sum(ns for _, ns in self.named())


@dataclass(frozen=True)
class Report:
    """The whole session, as far as it went (final once thawed or failed)."""

    status: Status
    consistency: Consistency
    #: True if the snapshot was acknowledged while everything was frozen.
    acknowledged: bool
    #: True once the session is over (thawed, or failed).
    ended: bool
    timeout_ms: int
    targets: Tuple[Target, ...]
    skips: Tuple[Skip, ...]
    #: Skipped mounts beyond the ones listed, counted only.
    skips_dropped: int
    #: How many targets the snapshot does not cover (frozen by another holder, skipped).
    not_covered: int
    #: Nanoseconds from the first FIFREEZE to the last FITHAW returned (0 if none).
    window_ns: int
    #: Nanoseconds the pre-sync (syncfs of every target before the first FIFREEZE) took;
    #: 0 if it did not run.
    presync_ns: int = 0
    #: Why the level is ``Consistency.FILESYSTEM`` and not ``APPLICATION``: no hooks were
    #: configured, or which hook failed before the freeze (with its exit status); None at
    #: the other levels.
    consistency_reason: Optional[str] = None
    #: How many hook calls were made (``freeze``, ``thaw``, ``freeze-failed``), and how many
    #: of them failed.
    hook_calls: int = 0
    hook_failures: int = 0
    #: Each hook call's result, in the order they were made.
    hooks: Tuple[HookCall, ...] = ()
    #: How long each phase took (``quiesce_phases()``; the quiesce command's JSON ``phases``).
    phases: Phases = Phases()
    #: Once the session has ended: the library's message for its outcome, the same text as
    #: the quiesce command's report for the same outcome, also for ``Status.OK`` ("froze 1
    #: filesystem, snapshot acknowledged, thawed: ..."); "" before.
    message: str = ""

    @property
    def ok(self) -> bool:
        """The status is ``Status.OK``."""
        return self.status == Status.OK

    @property
    def consistent(self) -> bool:
        """The snapshot is at least file-system-consistent."""
        return self.consistency != Consistency.NONE

    @property
    def status_name(self) -> str:
        return status_name(self.status)

    @property
    def window(self) -> float:
        """Seconds from the first FIFREEZE to the last FITHAW."""
        return self.window_ns / 1e9

    @property
    def timeout(self) -> float:
        """The deadline, in seconds."""
        return self.timeout_ms / 1e3


class QuiesceError(Exception):
    """A failure reported by the library.

    ``status`` (a :class:`Status`) says what kind; ``errno`` the raw OS error (or 0);
    ``mount_index`` the index into the mounts passed of the one concerned (or None);
    ``target_index`` the index (freeze order) of the filesystem concerned (or None);
    ``message`` the library's explanation, naming the input and the fix; ``report`` the
    session's report at the time (None without a session, e.g. for :func:`emergency_thaw`).
    """

    status: Status
    errno: int
    mount_index: Optional[int]
    target_index: Optional[int]
    message: str
    report: Optional[Report]

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errno: int = 0,
        mount_index: Optional[int] = None,
        target_index: Optional[int] = None,
        report: Optional[Report] = None,
    ) -> None:
        self.status = Status(status)
        self.message = message or status_message(status)
        self.errno = errno
        self.mount_index = mount_index
        self.target_index = target_index
        self.report = report
        super().__init__(self.message)

    @property
    def status_name(self) -> str:
        """The library's short name of the status (``"bad-target"``)."""
        return status_name(self.status)

    def __str__(self) -> str:
        detail = self.status_name
        if self.errno:
            detail += f", errno {self.errno} ({os.strerror(self.errno)})"
        return f"{self.message} [{detail}]"

    def __repr__(self) -> str:
        return (
            f"QuiesceError(status={self.status!r}, errno={self.errno}, "
            f"mount_index={self.mount_index}, target_index={self.target_index}, "
            f"message={self.message!r})"
        )


# ---------------------------------------------------------------------------------------------
# Arguments


def _paths(mounts: Iterable[PathArg], what: str) -> list[bytes]:
    if isinstance(mounts, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{what} must be a list of paths, not a single {type(mounts).__name__}: "
            f"write [{mounts!r}]"
        )
    out: list[bytes] = []
    for i, p in enumerate(mounts):
        if not isinstance(p, (str, bytes, os.PathLike)):
            raise TypeError(f"{what}[{i}] must be a path (str, bytes or os.PathLike), not {p!r}")
        b = os.fsencode(p)
        if b"\0" in b:
            raise ValueError(f"{what}[{i}] contains a NUL byte: {p!r}")
        if not b:
            raise ValueError(f"{what}[{i}] is empty")
        out.append(b)
    return out


def _timeout_ms(timeout: TimeoutArg) -> int:
    if isinstance(timeout, timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(f"timeout must be seconds (a number or a timedelta), not {timeout!r}")
    if not (0 < seconds <= MAX_TIMEOUT):  # also refuses NaN
        raise ValueError(
            f"timeout {timeout!r} is out of range: give more than 0 and at most 3600 s"
        )
    # Round to microseconds first so that 0.3 s is 300 ms, then up: never 0 ms.
    return max(1, min(int(MAX_TIMEOUT * 1000), math.ceil(round(seconds * 1000, 3))))


def _hook_path(path: Optional[PathArg], what: str) -> Optional[bytes]:
    if path is None:
        return None
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a path (str, bytes or os.PathLike) or None, not {path!r}")
    b = os.fsencode(path)
    if b"\0" in b:
        raise ValueError(f"{what} contains a NUL byte: {path!r}")
    if not b:
        raise ValueError(f"{what} is empty: give a path, or None for none")
    return b


def _hook_timeout_ms(timeout: Optional[TimeoutArg]) -> int:
    """0 (the library's default) for None, else milliseconds in (0, 86400 s]."""
    if timeout is None:
        return 0
    if isinstance(timeout, timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(
            f"hook_timeout must be seconds (a number or a timedelta) or None, not {timeout!r}"
        )
    if not (0 < seconds <= MAX_HOOK_TIMEOUT):  # also refuses NaN
        raise ValueError(
            f"hook_timeout {timeout!r} is out of range: give more than 0 and at most 86400 s"
        )
    return max(1, min(int(MAX_HOOK_TIMEOUT * 1000), math.ceil(round(seconds * 1000, 3))))


def _c_array(paths: list[bytes]) -> "ctypes.Array[c_char_p]":
    return (c_char_p * max(1, len(paths)))(*paths)


# ---------------------------------------------------------------------------------------------
# Sessions


class Session:
    """One freeze session in library-owned storage held by this object.

    Make one with :meth:`Session.plan` (or :func:`frozen`). Use it from one thread at a time
    (calls are serialized by a lock). :meth:`close` releases it, thawing first (not
    acknowledged) if it is still frozen; it is also closed when garbage-collected, and a
    ``with Session.plan(...) as s:`` block closes it at the end.
    """

    _storage: _SessionStorage
    _lock: threading.Lock
    _live: bool
    _frozen: bool
    _pid: int
    _report: Optional[Report]
    _error: Optional[QuiesceError]

    def __init__(self) -> None:
        raise TypeError("use Session.plan(...) or quiesce.frozen(...)")

    @classmethod
    def _new(cls) -> "Session":
        self = object.__new__(cls)
        self._storage = _SessionStorage()
        self._lock = threading.Lock()
        self._live = False
        self._frozen = False
        self._pid = os.getpid()
        self._report = None
        self._error = None
        align = int(_lib.quiesce_session_align())
        if ctypes.addressof(self._storage) % align:
            raise MemoryError("ctypes gave session storage that is not aligned")
        return self

    @classmethod
    def plan(
        cls,
        mounts: Iterable[PathArg] = (),
        timeout: TimeoutArg = 10.0,
        *,
        all_filesystems: bool = False,
        skip_frozen: bool = False,
        presync: bool = True,
        parallel: bool = True,
        hook_dir: Optional[PathArg] = None,
        pre_script: Optional[PathArg] = None,
        post_script: Optional[PathArg] = None,
        hook_timeout: Optional[TimeoutArg] = None,
        require_app_consistent: bool = False,
        disks: Iterable[PathArg] = (),
        exclude_disks: Iterable[PathArg] = (),
        allow_partial_group: bool = False,
    ) -> "Session":
        """Plans a session: resolves ``mounts`` (each must be a mount point), reads the mount
        table, orders the targets, opens every descriptor. Nothing is frozen yet.

        ``timeout`` (seconds or a timedelta, more than 0 and at most 3600) is the deadline
        from the first FIFREEZE to the last FITHAW; at the deadline everything is thawed
        even if :meth:`thaw` was not called. With ``all_filesystems=True`` every freezable,
        writable filesystem is frozen and ``mounts`` names the ones to leave out. With
        ``skip_frozen=True`` a filesystem already frozen by someone else is skipped (its
        target's outcome is ``Outcome.NOT_COVERED``) instead of failing the freeze.
        ``presync`` (default on) syncs every target right before the first FIFREEZE, in
        parallel in the freezer processes, waiting at most the timeout (no more than 10 s):
        a shorter frozen window. ``parallel`` (default on) freezes filesystems that do not
        depend on each other at once; ``parallel=False`` freezes one after another.

        Hooks: ``hook_dir`` (its executables, in name order), ``pre_script`` and
        ``post_script`` are verified here (none runs; ``Status.HOOK_REFUSED`` if one is not
        root's, is writable by group or others, or has a symbolic link on its path); they
        get ``freeze`` in :meth:`freeze` before the first FIFREEZE, and ``thaw`` or
        ``freeze-failed`` after the last FITHAW (in :meth:`thaw`, :meth:`close`, or in
        :meth:`freeze` if it fails). ``hook_timeout`` (seconds or a timedelta, at most
        86400; default 1800) limits each call. ``require_app_consistent=True`` makes a hook
        that fails before the freeze stop it: :meth:`freeze` raises QuiesceError with
        ``Status.NOT_APP_CONSISTENT`` and nothing is frozen.

        Selection by disk, instead of ``mounts``: ``disks`` (block device paths such as
        ``/dev/vdb``, ``/dev/disk/by-id/...`` links, or ``serial:VALUE`` with the clouds'
        volume-id forms) freezes the filesystems on those disks; ``exclude_disks`` the ones on
        every disk but those. A filesystem only partly on the selected disks fails the plan
        with ``Status.PARTIAL_GROUP``, unless ``allow_partial_group=True`` leaves it out (not
        covered).

        Raises TypeError/ValueError for bad arguments, QuiesceError if the library refuses.
        """
        paths = _paths(mounts, "mounts")
        disk_list = _paths(disks, "disks")
        exclude_list = _paths(exclude_disks, "exclude_disks")
        timeout_ms = _timeout_ms(timeout)
        hooks = (
            _hook_path(hook_dir, "hook_dir"),
            _hook_path(pre_script, "pre_script"),
            _hook_path(post_script, "post_script"),
        )
        hook_timeout_ms = _hook_timeout_ms(hook_timeout)
        flags = (
            (_FLAG_ALL if all_filesystems else 0)
            | (_FLAG_SKIP_FROZEN if skip_frozen else 0)
            | (0 if presync else _FLAG_NO_PRESYNC)
            | (0 if parallel else _FLAG_SEQUENTIAL)
            | (_FLAG_REQUIRE_APP_CONSISTENT if require_app_consistent else 0)
            | (_FLAG_ALLOW_PARTIAL_GROUP if allow_partial_group else 0)
        )
        cfg = _Config()
        st = _lib.quiesce_config_init(byref(cfg))
        if st != Status.OK:
            raise QuiesceError(st, "quiesce_config_init failed")
        array = _c_array(paths)
        cfg.flags = flags
        cfg.timeout_ms = timeout_ms
        cfg.mounts = ctypes.cast(array, POINTER(c_char_p))
        cfg.mount_count = len(paths)
        disk_array = _c_array(disk_list)
        exclude_array = _c_array(exclude_list)
        cfg.disks = ctypes.cast(disk_array, POINTER(c_char_p))
        cfg.disk_count = len(disk_list)
        cfg.exclude_disks = ctypes.cast(exclude_array, POINTER(c_char_p))
        cfg.exclude_disk_count = len(exclude_list)
        cfg.hook_dir, cfg.pre_script, cfg.post_script = hooks
        cfg.hook_timeout_ms = hook_timeout_ms
        self = cls._new()
        with self._lock:
            size = ctypes.sizeof(self._storage)
            st = _lib.quiesce_session_init(byref(self._storage), size, byref(cfg))
            # Unless the storage itself was refused, it now holds a session to clean up.
            self._live = True
            if st != Status.OK:
                err = self._failed(st)
                self._close_locked()
                raise err
        return self

    # -- reading ------------------------------------------------------------------------------

    def _read_report(self) -> Report:
        s = byref(self._storage)
        r = _ReportInfo(size=ctypes.sizeof(_ReportInfo))
        st = _lib.quiesce_report(s, byref(r))
        if st != Status.OK:
            raise QuiesceError(st, "quiesce_report failed: the session storage holds no session")
        targets = []
        for i in range(r.target_count):
            t = _TargetInfo(size=ctypes.sizeof(_TargetInfo))
            if _lib.quiesce_target(s, i, byref(t)) != Status.OK:
                continue
            targets.append(
                Target(
                    index=i,
                    path=_str(t.path),
                    fs_type=_str(t.fs_type),
                    source=_str(t.source),
                    dev_major=t.dev_major,
                    dev_minor=t.dev_minor,
                    mount_index=_index(t.mount_index),
                    outcome=Outcome(t.outcome),
                    errno=t.os_error,
                    freeze_ns=t.freeze_ns,
                    thaw_ns=t.thaw_ns,
                )
            )
        skips = []
        for i in range(r.skip_count):
            k = _SkipInfo(size=ctypes.sizeof(_SkipInfo))
            if _lib.quiesce_skip(s, i, byref(k)) != Status.OK:
                continue
            skips.append(
                Skip(
                    path=_str(k.path),
                    fs_type=_str(k.fs_type),
                    reason=_str(k.reason),
                    dev_major=k.dev_major,
                    dev_minor=k.dev_minor,
                    mount_index=_index(k.mount_index),
                )
            )
        hooks = []
        for i in range(r.hook_calls):
            h = _HookCallInfo(size=ctypes.sizeof(_HookCallInfo))
            if _lib.quiesce_hook_call(s, i, byref(h)) != Status.OK:
                continue
            output = ctypes.string_at(h.output, h.output_len) if h.output else b""
            hooks.append(
                HookCall(
                    name=_str(h.name),
                    path=_str(h.path),
                    source=_str(h.source),
                    phase=_str(h.phase),
                    end=_str(h.end),
                    succeeded=bool(h.succeeded),
                    exit_status=None if h.exit_status < 0 else h.exit_status,
                    signal=h.signal or None,
                    errno=h.os_error,
                    timed_out=bool(h.timed_out),
                    result=_str(h.result),
                    duration_us=h.duration_us,
                    output=output.decode("utf-8", "replace"),
                    output_dropped=h.output_dropped,
                    output_held_open=bool(h.output_held_open),
                )
            )
        p = _PhasesInfo(size=ctypes.sizeof(_PhasesInfo))
        phases = Phases()
        if _lib.quiesce_phases(s, byref(p)) == Status.OK:
            phases = Phases(
                plan_ns=p.plan_ns,
                arm_ns=p.arm_ns,
                hooks_ns=p.hooks_ns,
                presync_ns=p.presync_ns,
                freeze_ns=p.freeze_ns,
                wait_ns=p.wait_ns,
                thaw_ns=p.thaw_ns,
                finish_ns=p.finish_ns,
            )
        report = Report(
            status=Status(r.status),
            consistency=Consistency(r.consistency),
            acknowledged=bool(r.acknowledged),
            ended=bool(r.ended),
            timeout_ms=r.timeout_ms,
            targets=tuple(targets),
            skips=tuple(skips),
            skips_dropped=r.skips_dropped,
            not_covered=r.not_covered,
            window_ns=r.window_ns,
            presync_ns=r.presync_ns,
            consistency_reason=None if r.consistency_reason is None else _str(r.consistency_reason),
            hook_calls=r.hook_calls,
            hook_failures=r.hook_failures,
            hooks=tuple(hooks),
            phases=phases,
            message=self._ended_message(r),
        )
        self._report = report
        return report

    def _ended_message(self, r: _ReportInfo) -> str:
        if not r.ended:
            return ""
        e = _ErrorInfo(size=ctypes.sizeof(_ErrorInfo))
        if _lib.quiesce_error(byref(self._storage), byref(e)) != Status.OK:
            return ""
        return _str(e.message) if e.status == r.status else ""

    def _failed(self, status: int) -> QuiesceError:
        """Builds (and remembers) the error of a call that returned ``status``; the message
        is copied out of the storage at once (it is valid until the next call only)."""
        e = _ErrorInfo(size=ctypes.sizeof(_ErrorInfo))
        report: Optional[Report]
        try:
            report = self._read_report()
        except QuiesceError:
            report = None
        got = _lib.quiesce_error(byref(self._storage), byref(e))
        if got == Status.OK and e.status != Status.OK:
            err = QuiesceError(
                status,
                _str(e.message),
                errno=e.os_error,
                mount_index=_index(e.mount_index),
                target_index=_index(e.target_index),
                report=report,
            )
        else:
            err = QuiesceError(status, status_message(status), report=report)
        self._error = err
        return err

    def _check_open(self, what: str) -> None:
        if not self._live:
            raise QuiesceError(Status.USAGE, f"{what}: the session is closed")
        if os.getpid() != self._pid:
            raise QuiesceError(Status.USAGE, f"{what}: the session belongs to the parent process")

    @property
    def report(self) -> Report:
        """The report so far; after :meth:`close`, the last one read."""
        with self._lock:
            if self._live and os.getpid() == self._pid:
                return self._read_report()
        if self._report is None:
            raise QuiesceError(Status.USAGE, "the session is closed and has no report")
        return self._report

    @property
    def targets(self) -> Tuple[Target, ...]:
        """The filesystems planned, in freeze order."""
        return self.report.targets

    @property
    def skips(self) -> Tuple[Skip, ...]:
        """The mounts left out of the plan, and why."""
        return self.report.skips

    @property
    def error(self) -> Optional[QuiesceError]:
        """The last failure of this session (also the one raised), or None."""
        return self._error

    @property
    def closed(self) -> bool:
        return not self._live

    # -- steps --------------------------------------------------------------------------------

    def freeze(self) -> None:
        """Freezes every planned filesystem. Returns once everything is frozen: take the
        snapshot, then call :meth:`thaw`. On failure raises QuiesceError, and everything
        frozen so far has been thawed already."""
        with self._lock:
            self._check_open("freeze")
            st, interrupt = self._freeze_interruptibly()
            if interrupt is not None:
                if st == Status.OK:
                    # Frozen before the cancel was seen: thaw at once, not acknowledged.
                    st = _lib.quiesce_thaw(byref(self._storage), 0)
                self._failed(st)
                raise interrupt
            if st != Status.OK:
                raise self._failed(st)
            self._frozen = True

    def _freeze_interruptibly(self) -> Tuple[int, Optional[BaseException]]:
        """``quiesce_freeze()``, interruptible by Ctrl-C. Python runs its SIGINT handler only in
        the main thread and only between bytecodes, never inside a blocking ctypes call: so in
        the main thread the call runs in a worker thread while this thread waits (a wait that
        signals interrupt), and for that time SIGINT's handler is one that calls
        ``quiesce_cancel()`` and notes a KeyboardInterrupt instead of raising it at once. The
        cancel ends the call promptly (a hook running before the freeze is killed, a stuck
        ``FIFREEZE`` abandoned, everything thawed, ``Status.CANCELLED``); once the worker has
        returned (the storage is never touched under it), the KeyboardInterrupt is returned to
        raise. Not raising inside the wait matters: an exception there could leave the worker
        running while the caller goes on (and frees the session). With a SIGINT handler of the
        host's own, or outside the main thread, the call runs directly; :meth:`cancel` from
        another thread ends it just as well."""
        main = threading.current_thread() is threading.main_thread()
        if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return int(_lib.quiesce_freeze(byref(self._storage))), None
        result: list[int] = []
        done = threading.Event()
        interrupts: list[BaseException] = []

        def call() -> None:
            try:
                result.append(int(_lib.quiesce_freeze(byref(self._storage))))
            finally:
                done.set()

        def on_sigint(signum: int, frame: object) -> None:
            interrupts.append(KeyboardInterrupt())
            _lib.quiesce_cancel(byref(self._storage))

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            threading.Thread(target=call, name="quiesce-freeze", daemon=True).start()
            while True:
                try:
                    if done.wait(1.0):
                        break
                except BaseException as e:  # raised by another signal's handler
                    interrupts.append(e)
                    _lib.quiesce_cancel(byref(self._storage))
        finally:
            signal.signal(signal.SIGINT, previous)
        status = result[0] if result else int(Status.INTERNAL)
        return status, (interrupts[0] if interrupts else None)

    def cancel(self) -> None:
        """Cancels a :meth:`freeze` running in another thread (``quiesce_cancel()``): it then
        raises QuiesceError with ``Status.CANCELLED`` promptly, nothing left frozen. Safe from
        any thread (and without the session's lock); a freeze in the main thread is cancelled
        by Ctrl-C already. Does nothing to a session that is frozen already: thaw it."""
        if self._live:
            _lib.quiesce_cancel(byref(self._storage))

    def thaw(self, acknowledged: bool = True, *, check: bool = True) -> Report:
        """Acknowledges the snapshot (``acknowledged=True``: it was taken) or reports it
        failed (False), thaws everything, and returns the final report.

        With ``check=True`` (the default) a final status other than ``Status.OK`` raises
        QuiesceError (carrying the report), except ``Status.SNAPSHOT_FAILED`` after
        ``acknowledged=False``, which is what was asked for. With ``check=False`` it never
        raises for the status: read ``report.status`` and :attr:`error`. Calling it again
        returns the same status.
        """
        with self._lock:
            self._check_open("thaw")
            st = _lib.quiesce_thaw(byref(self._storage), 1 if acknowledged else 0)
            self._frozen = False
            if st == Status.OK:
                self._error = None
                return self._read_report()
            err = self._failed(st)
            report = err.report if err.report is not None else self._read_report()
        if check and not (not acknowledged and st == Status.SNAPSHOT_FAILED):
            raise err
        return report

    def close(self) -> None:
        """Ends the session and releases everything it holds (descriptors, helper
        processes); if it is still frozen, it is thawed first, as not acknowledged. Safe to
        call twice. The last report stays readable."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if not self._live:
            return
        if os.getpid() != self._pid:
            # A forked child's copy: the session (and its helpers) belong to the parent.
            self._live = False
            return
        if self._frozen:
            # Thaw (not acknowledged) first, so that the last report is the final one (the
            # hooks' after calls included); cleanup would thaw the same way.
            _lib.quiesce_thaw(byref(self._storage), 0)
            self._frozen = False
        try:
            self._read_report()
        except QuiesceError:
            pass
        _lib.quiesce_session_cleanup(byref(self._storage))
        self._live = False

    def __enter__(self) -> "Session":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_live", False):
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if not self._live else "open"
        return f"<quiesce.Session {state} at {ctypes.addressof(self._storage):#x}>"


class Frozen:
    """The context manager of :func:`frozen`: plans and freezes on enter, thaws on exit."""

    def __init__(
        self,
        mounts: Iterable[PathArg],
        timeout: TimeoutArg,
        all_filesystems: bool,
        skip_frozen: bool,
        presync: bool = True,
        parallel: bool = True,
        hook_dir: Optional[PathArg] = None,
        pre_script: Optional[PathArg] = None,
        post_script: Optional[PathArg] = None,
        hook_timeout: Optional[TimeoutArg] = None,
        require_app_consistent: bool = False,
    ) -> None:
        # Check the arguments now, where the call is written.
        self._mounts = [os.fsdecode(p) for p in _paths(mounts, "mounts")]
        _timeout_ms(timeout)
        _hook_path(hook_dir, "hook_dir")
        _hook_path(pre_script, "pre_script")
        _hook_path(post_script, "post_script")
        _hook_timeout_ms(hook_timeout)
        self._hook_dir = hook_dir
        self._pre_script = pre_script
        self._post_script = post_script
        self._hook_timeout = hook_timeout
        self._require_app_consistent = require_app_consistent
        self._timeout = timeout
        self._all = all_filesystems
        self._skip_frozen = skip_frozen
        self._presync = presync
        self._parallel = parallel
        self._session: Optional[Session] = None

    def __enter__(self) -> Session:
        if self._session is not None:
            raise RuntimeError("quiesce.frozen(...) cannot be entered twice; call it again")
        session = Session.plan(
            self._mounts,
            self._timeout,
            all_filesystems=self._all,
            skip_frozen=self._skip_frozen,
            presync=self._presync,
            parallel=self._parallel,
            hook_dir=self._hook_dir,
            pre_script=self._pre_script,
            post_script=self._post_script,
            hook_timeout=self._hook_timeout,
            require_app_consistent=self._require_app_consistent,
        )
        try:
            session.freeze()
        except BaseException:
            # A failed freeze thawed everything already; KeyboardInterrupt after a successful
            # one must not leave it frozen either (close thaws, not acknowledged).
            session.close()
            raise
        self._session = session
        return session

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        session = self._session
        if session is None:
            return
        try:
            report = session.thaw(exc is None, check=False)
        finally:
            session.close()
        if exc is None:
            if report.status != Status.OK:
                err = session.error
                raise err if err is not None else QuiesceError(report.status, "", report=report)
        elif report.status != Status.SNAPSHOT_FAILED:
            # Let the exception propagate, but say that the thaw did not go as planned.
            add_note = getattr(exc, "add_note", None)
            if add_note is not None:
                add_note(f"quiesce: thawed with status {report.status_name}: {session.error}")


def frozen(
    mounts: Iterable[PathArg] = (),
    timeout: TimeoutArg = 10.0,
    *,
    all_filesystems: bool = False,
    skip_frozen: bool = False,
    presync: bool = True,
    parallel: bool = True,
    hook_dir: Optional[PathArg] = None,
    pre_script: Optional[PathArg] = None,
    post_script: Optional[PathArg] = None,
    hook_timeout: Optional[TimeoutArg] = None,
    require_app_consistent: bool = False,
) -> Frozen:
    """``with frozen(["/mnt/a"], timeout=30) as session:`` freezes for the block.

    Enter: plans and freezes (QuiesceError on failure, with nothing left frozen) and yields
    the :class:`Session`. Normal exit: acknowledges and thaws; raises QuiesceError if the
    final status is not OK (e.g. ``Status.TIMEOUT`` when the block overran the deadline).
    Exit by an exception: thaws without acknowledging and lets the exception propagate (with
    a note if the thaw itself went wrong). Either way ``session.report`` holds the final
    report afterwards. Arguments as for :meth:`Session.plan` (hooks included: they get
    ``freeze`` on enter and ``thaw`` or ``freeze-failed`` on exit).
    """
    return Frozen(
        mounts,
        timeout,
        all_filesystems,
        skip_frozen,
        presync,
        parallel,
        hook_dir=hook_dir,
        pre_script=pre_script,
        post_script=post_script,
        hook_timeout=hook_timeout,
        require_app_consistent=require_app_consistent,
    )


def emergency_thaw(paths: Iterable[PathArg]) -> int:
    """Thaws the filesystems mounted at ``paths`` (each must be a mount point; a directory
    inside a filesystem is refused so that its filesystem is never thawed by accident). One
    that is not frozen is fine. Needs no session. Returns how many were actually thawed.

    Raises QuiesceError with ``Status.BAD_TARGET`` if a path is not a mount point (the others
    are still thawed) or ``Status.THAW_FAILED`` if a thaw failed; the message says how many
    were thawed.
    """
    encoded = _paths(paths, "paths")
    thawed = c_size_t(0)
    st = _lib.quiesce_emergency_thaw(_c_array(encoded), len(encoded), byref(thawed))
    if st != Status.OK:
        raise QuiesceError(
            st,
            f"{status_message(st)} (thawed {thawed.value} of {len(encoded)})",
        )
    return int(thawed.value)
