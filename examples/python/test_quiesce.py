"""Tests of the Python binding (pytest).

Unit tests (names, versions, argument checks, import-time checks, struct layouts) run anywhere
the library can be loaded. The end-to-end tests freeze a real filesystem, and ONLY the one
mounted at $QUIESCE_TEST_MOUNT (tests/python_binding.rs makes a loop-mounted ext4 for them);
they need root. Without that mount they are skipped, or fail when QUIESCE_REQUIRE_E2E=1.

    cargo test -p quiesce --test python_binding -- --nocapture          (as root)
    QUIESCE_TEST_MOUNT=/mnt/scratch python3 -m pytest -q examples/python
"""

from __future__ import annotations

import ctypes
import errno
import math
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterator, List

import pytest

import quiesce
from quiesce import Consistency, Outcome, QuiesceError, Session, Status

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
REQUIRE_E2E = os.environ.get("QUIESCE_REQUIRE_E2E") == "1"


def _unavailable(why: str) -> None:
    if REQUIRE_E2E:
        pytest.fail(f"{why} (QUIESCE_REQUIRE_E2E=1)", pytrace=False)
    pytest.skip(why)


# ---------------------------------------------------------------------------------------------
# Fixtures: the one filesystem the end-to-end tests may freeze


class Probes:
    """Writer processes: each says "ready" on stdout, then creates, writes and fsyncs a file."""

    CODE = (
        "import os, sys\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n"
        "os.write(fd, b'probe\\n'); os.fsync(fd); os.close(fd)\n"
    )

    def __init__(self, mount: str) -> None:
        self.mount = mount
        self.procs: List[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [sys.executable, "-c", self.CODE, os.path.join(self.mount, name)],
            stdout=subprocess.PIPE,
        )
        self.procs.append(p)
        assert p.stdout is not None
        ready, _, _ = select.select([p.stdout], [], [], 10)
        assert ready and p.stdout.readline() == b"ready\n", "the write probe did not start"
        return p

    def blocks(self, name: str, within: float = 0.3) -> subprocess.Popen[bytes]:
        """Starts a probe and asserts that its write does not finish within `within` s."""
        p = self.start(name)
        try:
            p.wait(within)
        except subprocess.TimeoutExpired:
            return p
        pytest.fail(
            f"a write to {self.mount} finished while it should be frozen (exit {p.returncode})"
        )

    def assert_writable(self, name: str = "writable") -> None:
        p = self.start(name)
        try:
            code = p.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"{self.mount} is not writable: a write did not finish within 10 s (still frozen?)"
            )
        assert code == 0, f"the write probe failed with exit status {code}"

    def reap(self) -> None:
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(15)
            if p.stdout is not None:
                p.stdout.close()


def _st_dev(path: str) -> int:
    return os.stat(path).st_dev


@pytest.fixture
def mount() -> Iterator[str]:
    """$QUIESCE_TEST_MOUNT, after checking that it is a mount point of its own: not the
    filesystem of /, /tmp, the repository, or the current directory."""
    path = os.environ.get("QUIESCE_TEST_MOUNT")
    if not path:
        _unavailable(
            "QUIESCE_TEST_MOUNT is not set: the end-to-end tests need a scratch mount to freeze"
        )
    assert path is not None
    if os.geteuid() != 0:
        _unavailable("the end-to-end tests need root (CAP_SYS_ADMIN) to freeze")
    path = os.path.realpath(path)
    assert os.path.ismount(path), f"QUIESCE_TEST_MOUNT={path} is not a mount point"
    for other in {"/", "/tmp", tempfile.gettempdir(), str(REPO), os.getcwd()}:
        assert _st_dev(path) != _st_dev(other), (
            f"QUIESCE_TEST_MOUNT={path} is on the same filesystem as {other}: "
            "refusing to freeze it"
        )
    yield path
    # Whatever a failed test left behind: thaw our mount (only it), so nothing hangs.
    try:
        quiesce.emergency_thaw([path])
    except QuiesceError:
        pass


@pytest.fixture
def probes(mount: str) -> Iterator[Probes]:
    p = Probes(mount)
    yield p
    try:
        quiesce.emergency_thaw([mount])
    except QuiesceError:
        pass
    p.reap()


def _fsfreeze(flag: str, path: str) -> None:
    fsfreeze = shutil.which("fsfreeze")
    assert fsfreeze, "fsfreeze (util-linux) is needed"
    subprocess.run([fsfreeze, flag, path], check=True, timeout=30)


# ---------------------------------------------------------------------------------------------
# Unit tests: no root, no mount


def test_version_and_abi() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", quiesce.version()), quiesce.version()
    assert quiesce.abi_version() == quiesce.ABI_VERSION == 1
    assert os.path.exists(quiesce.library_path())


def test_status_names_match_the_library() -> None:
    for s in Status:
        assert quiesce.status_name(s) == s.name.lower().replace("_", "-")
        assert quiesce.status_message(s) not in ("", "unknown status")
    assert quiesce.status_name(999) == "unknown"
    assert quiesce.status_message(999) == "unknown status"
    assert quiesce.status_name(-1) == "unknown"
    unknown = Status(999)
    assert unknown == 999 and unknown.name == "UNKNOWN_999"


def test_outcome_and_consistency_names() -> None:
    for o in Outcome:
        assert quiesce.outcome_name(o) != "unknown", o
    assert quiesce.outcome_name(Outcome.THAWED) == "thawed"
    assert quiesce.outcome_name(Outcome.NOT_COVERED) == "not-covered"
    assert quiesce.outcome_name(99) == "unknown"
    assert quiesce.consistency_name(Consistency.NONE) == "not-consistent"
    assert quiesce.consistency_name(Consistency.FILESYSTEM) == "filesystem-consistent"
    assert quiesce.consistency_name(Consistency.APPLICATION) == "application-consistent"


def test_error_formatting() -> None:
    e = QuiesceError(3, "'/x' does not exist", errno=errno.ENOENT, mount_index=0)
    assert e.status is Status.BAD_TARGET and e.status_name == "bad-target"
    assert str(e) == "'/x' does not exist [bad-target, errno 2 (No such file or directory)]"
    assert e.target_index is None and e.report is None
    assert "BAD_TARGET" in repr(e)


@pytest.mark.parametrize("single", ["/mnt/a", b"/mnt/a", Path("/mnt/a")])
def test_a_single_path_is_a_type_error(single: object) -> None:
    with pytest.raises(TypeError, match="list of paths"):
        quiesce.frozen(single)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of paths"):
        Session.plan(single)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of paths"):
        quiesce.emergency_thaw(single)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"mounts\[1\] must be a path"):
        quiesce.frozen(["/mnt/a", 3])  # type: ignore[list-item]


@pytest.mark.parametrize("bad", [0, -1, 0.0, 3600.001, 7200, math.nan, math.inf, timedelta(0)])
def test_timeout_out_of_range_is_a_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="out of range"):
        quiesce.frozen(["/mnt/a"], timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out of range"):
        Session.plan(["/mnt/a"], timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["30", None, True])
def test_timeout_not_a_number_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="timeout must be seconds"):
        quiesce.frozen(["/mnt/a"], timeout=bad)  # type: ignore[arg-type]


def test_hook_arguments_are_checked_before_any_call() -> None:
    assert quiesce.DEFAULT_HOOK_TIMEOUT == 1800.0 and quiesce.MAX_HOOK_TIMEOUT == 86400.0
    with pytest.raises(ValueError, match="hook_dir contains a NUL byte"):
        quiesce.frozen(["/mnt/a"], hook_dir="/etc/quiesce\0/hooks.d")
    with pytest.raises(ValueError, match="pre_script is empty"):
        Session.plan(["/mnt/a"], pre_script="")
    with pytest.raises(TypeError, match="post_script must be a path"):
        quiesce.frozen(["/mnt/a"], post_script=3)  # type: ignore[arg-type]
    for bad in (0, -1, 86400.001, math.nan, timedelta(0)):
        with pytest.raises(ValueError, match="hook_timeout .* out of range"):
            quiesce.frozen(["/mnt/a"], hook_timeout=bad)
    with pytest.raises(TypeError, match="hook_timeout must be seconds"):
        quiesce.frozen(["/mnt/a"], hook_timeout="30")  # type: ignore[arg-type]


def test_nul_byte_in_a_path() -> None:
    with pytest.raises(ValueError, match="NUL"):
        quiesce.frozen(["/mnt/a\0b"])


def test_nothing_named_is_usage() -> None:
    with pytest.raises(QuiesceError) as e:
        Session.plan([], timeout=5)
    assert e.value.status is Status.USAGE
    assert "no mount point named" in e.value.message


def test_nonexistent_path_is_bad_target_enoent(tmp_path: Path) -> None:
    # Planning only: it fails before anything could be frozen.
    missing = tmp_path / "does-not-exist"
    with pytest.raises(QuiesceError) as e:
        Session.plan([missing], timeout=5)
    err = e.value
    assert err.status is Status.BAD_TARGET
    assert err.errno == errno.ENOENT
    assert err.mount_index == 0
    assert f"'{missing}' does not exist" in err.message
    assert err.report is not None and err.report.status is Status.BAD_TARGET
    assert err.report.targets == ()


def _import_variant(tmp_path: Path, old: str, new: str) -> subprocess.CompletedProcess[str]:
    """Imports a copy of quiesce.py with `old` replaced by `new`, in a fresh interpreter."""
    source = Path(quiesce.__file__).read_text()
    assert old in source
    (tmp_path / "quiesce_variant.py").write_text(source.replace(old, new, 1))
    env = dict(os.environ, QUIESCE_LIB=quiesce.library_path(), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-c", "import quiesce_variant"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_refuses_a_library_of_another_session_size(tmp_path: Path) -> None:
    r = _import_variant(tmp_path, "SESSION_SIZE: Final = 131072", "SESSION_SIZE: Final = 65536")
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert "131072" in r.stderr and "65536" in r.stderr, r.stderr


def test_import_refuses_a_library_of_another_abi(tmp_path: Path) -> None:
    r = _import_variant(tmp_path, "ABI_VERSION: Final = 1", "ABI_VERSION: Final = 2")
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert "ABI version 1" in r.stderr and "ABI version 2" in r.stderr, r.stderr


def test_import_fails_clearly_without_the_library(tmp_path: Path) -> None:
    env = dict(os.environ, QUIESCE_LIB=str(tmp_path / "libnope.so"), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run(
        [sys.executable, "-c", "import quiesce"],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "ImportError: cannot load $QUIESCE_LIB=" in r.stderr, r.stderr


_LAYOUT_C = r"""
#include <stddef.h>
#include <stdio.h>
#include "quiesce.h"
#define S(t) printf("S " #t " %zu\n", sizeof(t));
#define F(t, f) printf("F " #t " " #f " %zu\n", offsetof(t, f));
int main(void) {
    S(quiesce_session) S(quiesce_config) S(quiesce_report_info) S(quiesce_target_info)
    S(quiesce_skip_info) S(quiesce_error_info) S(quiesce_hook_call_info) S(quiesce_phases_info)
    F(quiesce_config, size) F(quiesce_config, flags) F(quiesce_config, timeout_ms)
    F(quiesce_config, mounts) F(quiesce_config, mount_count)
    F(quiesce_config, hook_dir) F(quiesce_config, pre_script) F(quiesce_config, post_script)
    F(quiesce_config, hook_timeout_ms) F(quiesce_config, reserved)
    F(quiesce_config, disks) F(quiesce_config, disk_count)
    F(quiesce_config, exclude_disks) F(quiesce_config, exclude_disk_count)
    F(quiesce_report_info, size) F(quiesce_report_info, status)
    F(quiesce_report_info, consistency) F(quiesce_report_info, acknowledged)
    F(quiesce_report_info, ended) F(quiesce_report_info, timeout_ms)
    F(quiesce_report_info, target_count) F(quiesce_report_info, skip_count)
    F(quiesce_report_info, skips_dropped) F(quiesce_report_info, not_covered)
    F(quiesce_report_info, window_ns)
    F(quiesce_report_info, presync_ns)
    F(quiesce_report_info, consistency_reason) F(quiesce_report_info, hook_calls)
    F(quiesce_report_info, hook_failures)
    F(quiesce_target_info, size) F(quiesce_target_info, path) F(quiesce_target_info, fs_type)
    F(quiesce_target_info, source) F(quiesce_target_info, dev_major)
    F(quiesce_target_info, dev_minor) F(quiesce_target_info, mount_index)
    F(quiesce_target_info, outcome) F(quiesce_target_info, os_error)
    F(quiesce_target_info, freeze_ns) F(quiesce_target_info, thaw_ns)
    F(quiesce_skip_info, size) F(quiesce_skip_info, path) F(quiesce_skip_info, fs_type)
    F(quiesce_skip_info, reason) F(quiesce_skip_info, dev_major) F(quiesce_skip_info, dev_minor)
    F(quiesce_skip_info, mount_index)
    F(quiesce_error_info, size) F(quiesce_error_info, status) F(quiesce_error_info, os_error)
    F(quiesce_error_info, mount_index) F(quiesce_error_info, target_index)
    F(quiesce_error_info, message)
    F(quiesce_hook_call_info, size) F(quiesce_hook_call_info, name) F(quiesce_hook_call_info, path)
    F(quiesce_hook_call_info, source) F(quiesce_hook_call_info, phase)
    F(quiesce_hook_call_info, end) F(quiesce_hook_call_info, result)
    F(quiesce_hook_call_info, succeeded) F(quiesce_hook_call_info, timed_out)
    F(quiesce_hook_call_info, exit_status) F(quiesce_hook_call_info, signal)
    F(quiesce_hook_call_info, os_error) F(quiesce_hook_call_info, output_held_open)
    F(quiesce_hook_call_info, duration_us) F(quiesce_hook_call_info, output)
    F(quiesce_hook_call_info, output_len) F(quiesce_hook_call_info, output_dropped)
    F(quiesce_phases_info, size) F(quiesce_phases_info, plan_ns) F(quiesce_phases_info, arm_ns)
    F(quiesce_phases_info, hooks_ns) F(quiesce_phases_info, presync_ns)
    F(quiesce_phases_info, freeze_ns) F(quiesce_phases_info, wait_ns)
    F(quiesce_phases_info, thaw_ns) F(quiesce_phases_info, finish_ns)
    return 0;
}
"""


def test_struct_layouts_match_the_header(tmp_path: Path) -> None:
    """The ctypes structures have the sizes and offsets a C compiler gives include/quiesce.h."""
    cc = shutil.which("cc") or shutil.which("gcc")
    header = REPO / "include" / "quiesce.h"
    if not cc or not header.exists():
        _unavailable("needs a C compiler and include/quiesce.h")
    assert cc is not None
    src = tmp_path / "layout.c"
    src.write_text(_LAYOUT_C)
    exe = tmp_path / "layout"
    compile_cmd = [cc, "-std=c11", "-I", str(header.parent), str(src), "-o", str(exe)]
    subprocess.run(compile_cmd, check=True, timeout=120)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=30).stdout
    structs = {
        "quiesce_session": quiesce._SessionStorage,
        "quiesce_config": quiesce._Config,
        "quiesce_report_info": quiesce._ReportInfo,
        "quiesce_target_info": quiesce._TargetInfo,
        "quiesce_skip_info": quiesce._SkipInfo,
        "quiesce_error_info": quiesce._ErrorInfo,
        "quiesce_hook_call_info": quiesce._HookCallInfo,
        "quiesce_phases_info": quiesce._PhasesInfo,
    }
    sizes = offsets = 0
    for line in out.splitlines():
        kind, name, *rest = line.split()
        cls = structs[name]
        if kind == "S":
            want = int(rest[0])
            got = ctypes.sizeof(cls)
            assert got == want, f"sizeof({name}): C {want}, ctypes {got}"
            sizes += 1
        else:
            field, want = rest[0], int(rest[1])
            got = getattr(cls, field).offset
            assert got == want, f"offsetof({name}, {field}): C {want}, ctypes {got}"
            offsets += 1
    # Every struct's size and every ctypes field were compared.
    assert sizes == len(structs)
    assert offsets == sum(len(c._fields_) for n, c in structs.items() if n != "quiesce_session")


# ---------------------------------------------------------------------------------------------
# End to end: freezes $QUIESCE_TEST_MOUNT only


def test_phases_named_in_order() -> None:
    p = quiesce.Phases(*range(1001, 9001, 1000))
    assert p.named() == tuple(zip(quiesce.PHASE_NAMES, range(1001, 9001, 1000)))
    assert list(p.as_us()) == [f"{n}_us" for n in quiesce.PHASE_NAMES]
    assert list(p.as_us().values()) == list(range(1, 9))
    assert p.total_ns == sum(range(1001, 9001, 1000))
    assert quiesce.Phases().total_ns == 0


def test_frozen_blocks_writes_and_thaws(mount: str, probes: Probes) -> None:
    # The pre-sync runs only when something is dirty (Dirty + Writeback of /proc/meminfo):
    # give it something to write back.
    with open(os.path.join(mount, "dirty"), "wb") as f:
        f.write(b"\7" * (8 << 20))
    began = time.monotonic_ns()
    with quiesce.frozen([mount], timeout=20) as session:
        assert [t.path for t in session.targets] == [mount]
        assert session.targets[0].outcome is Outcome.FROZEN
        assert session.targets[0].mount_index == 0
        blocked = probes.blocks("during")
    assert blocked.wait(10) == 0, "the write blocked by the freeze did not complete after the thaw"
    report = session.report
    assert report.ok and report.status is Status.OK
    assert report.consistency is Consistency.FILESYSTEM and report.consistent
    assert report.acknowledged and report.ended
    assert report.timeout_ms == 20000
    assert report.window > 0.3
    (t,) = report.targets
    assert (t.path, t.outcome, t.errno) == (mount, Outcome.THAWED, 0)
    assert t.fs_type in ("ext4", "xfs", "btrfs")
    assert t.freeze_ns > 0 and t.thaw_ns > 0
    assert report.presync_ns > 0, "pre-sync is on by default"
    # Where the time went: every phase ran but the hooks' (none configured); together at
    # most the time the session took here.
    wall = time.monotonic_ns() - began
    ran = {name: ns > 0 for name, ns in report.phases.named()}
    assert ran == {n: n != "hooks" for n in quiesce.PHASE_NAMES}, report.phases
    assert report.phases.presync_ns == report.presync_ns
    assert report.phases.total_ns <= wall, (report.phases, wall)
    assert session.closed and session.error is None
    probes.assert_writable()


def test_presync_and_parallel_can_be_turned_off(mount: str, probes: Probes) -> None:
    with quiesce.frozen([mount], timeout=20, presync=False, parallel=False) as session:
        assert session.targets[0].outcome is Outcome.FROZEN
    report = session.report
    assert report.ok and report.presync_ns == 0
    assert report.phases.presync_ns == 0 and report.phases.freeze_ns > 0
    probes.assert_writable()


def test_exception_in_the_block_thaws_not_acknowledged(mount: str, probes: Probes) -> None:
    class SnapshotBroke(Exception):
        pass

    with pytest.raises(SnapshotBroke, match="the snapshot tool crashed"):
        with quiesce.frozen([mount], timeout=20) as session:
            raise SnapshotBroke("the snapshot tool crashed")
    probes.assert_writable()
    report = session.report
    assert report.status is Status.SNAPSHOT_FAILED
    assert not report.acknowledged
    assert report.consistency is Consistency.NONE and not report.consistent
    assert report.targets[0].outcome is Outcome.THAWED


def test_keyboard_interrupt_in_the_block_thaws_too(mount: str, probes: Probes) -> None:
    with pytest.raises(KeyboardInterrupt):
        with quiesce.frozen([mount], timeout=20) as session:
            raise KeyboardInterrupt
    probes.assert_writable()
    assert session.report.status is Status.SNAPSHOT_FAILED


def test_deadline_passes_inside_the_block(mount: str, probes: Probes) -> None:
    started = time.monotonic()
    with pytest.raises(QuiesceError) as e:
        with quiesce.frozen([mount], timeout=0.3) as session:
            time.sleep(1.0)
    # The guardian, the library's deadline timer, thawed at the deadline while the block still
    # slept: the session's own deadline thaw, as the CLI's controller makes it.
    probes.assert_writable()
    err = e.value
    assert err.status is Status.TIMEOUT, repr(err)
    assert "deadline of 300 ms passed" in err.message
    assert err.target_index == 0
    assert err.report is not None and err.report.status is Status.TIMEOUT
    report = session.report
    assert report.timeout_ms == 300
    assert not report.acknowledged and report.consistency is Consistency.NONE
    assert report.targets[0].outcome is Outcome.THAWED
    assert "the guardian had to thaw" not in err.message
    assert time.monotonic() - started < 10


def test_directory_inside_the_mount_is_bad_target(mount: str) -> None:
    inside = os.path.join(mount, "not-a-mount-point")
    os.makedirs(inside, exist_ok=True)
    with pytest.raises(QuiesceError) as e:
        with quiesce.frozen([mount, inside], timeout=20):
            pytest.fail("froze with a bad target")
    err = e.value
    assert err.status is Status.BAD_TARGET
    assert err.mount_index == 1
    want = f"it is a directory inside the filesystem mounted at {mount}"
    assert want in err.message, err.message


def test_nonexistent_path_in_the_mount_is_enoent(mount: str) -> None:
    missing = os.path.join(mount, "nope")
    with pytest.raises(QuiesceError) as e:
        with quiesce.frozen([mount, missing], timeout=20):
            pytest.fail("froze with a missing target")
    assert e.value.status is Status.BAD_TARGET
    assert e.value.errno == errno.ENOENT
    assert e.value.mount_index == 1


def test_two_phase(mount: str, probes: Probes) -> None:
    session = Session.plan([Path(mount)], timeout=timedelta(seconds=20))
    try:
        assert [t.path for t in session.targets] == [mount]
        assert session.targets[0].outcome is Outcome.NOT_ATTEMPTED
        assert session.report.timeout == 20.0
        with pytest.raises(QuiesceError) as e:
            session.thaw()
        assert e.value.status is Status.USAGE and "nothing is frozen" in e.value.message
        session.freeze()
        blocked = probes.blocks("two-phase")
        with pytest.raises(QuiesceError) as e:
            session.freeze()
        assert e.value.status is Status.USAGE and "already frozen" in e.value.message
        report = session.thaw(acknowledged=True)
        assert blocked.wait(10) == 0
        assert report.ok and report.acknowledged and report.consistent
        again = session.thaw()
        assert again.status is Status.OK
    finally:
        session.close()
    session.close()
    assert session.closed
    assert session.report.ok  # the last report stays readable
    with pytest.raises(QuiesceError) as e:
        session.thaw()
    assert e.value.status is Status.USAGE and "closed" in e.value.message
    probes.assert_writable()


def test_two_phase_snapshot_failed(mount: str, probes: Probes) -> None:
    with Session.plan([mount], timeout=20) as session:
        session.freeze()
        report = session.thaw(acknowledged=False)  # what was asked for: no exception
        assert report.status is Status.SNAPSHOT_FAILED and not report.acknowledged
        assert session.error is not None and session.error.status is Status.SNAPSHOT_FAILED
        with pytest.raises(QuiesceError) as e:
            session.thaw(acknowledged=True)  # the status stays; now it is unexpected
        assert e.value.status is Status.SNAPSHOT_FAILED
    probes.assert_writable()


def test_close_while_frozen_thaws(mount: str, probes: Probes) -> None:
    session = Session.plan([mount], timeout=20)
    session.freeze()
    probes.blocks("close")
    session.close()
    probes.assert_writable()
    assert not session.report.acknowledged
    assert session.report.consistency is Consistency.NONE


def test_fork_while_frozen_then_sigkill_thaws_at_once(mount: str, probes: Probes) -> None:
    # A host that forks without exec while frozen (a pre-forking server, multiprocessing with
    # the fork start method): the child inherits the guardian's liveness pipe. When the host
    # dies by SIGKILL, the guardian must still thaw at once (it watches the host's pidfd), not
    # at its deadline (30 s + 2 s grace).
    code = (
        "import os, sys, time, quiesce\n"
        "with quiesce.frozen([sys.argv[1]], timeout=30):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    print('child', pid, flush=True)\n"
        "    print('frozen', flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = dict(os.environ, QUIESCE_LIB=quiesce.library_path(), PYTHONDONTWRITEBYTECODE="1")
    host = subprocess.Popen(
        [sys.executable, "-c", code, mount], cwd=HERE, env=env, stdout=subprocess.PIPE
    )
    child = 0
    try:
        assert host.stdout is not None
        ready, _, _ = select.select([host.stdout], [], [], 30)
        assert ready, "the host did not start its session"
        first = host.stdout.readline().split()
        assert first[:1] == [b"child"], first
        child = int(first[1])
        assert host.stdout.readline() == b"frozen\n"
        blocked = probes.blocks("forked")
        os.kill(host.pid, 9)
        killed = time.monotonic()
        try:
            blocked.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail(
                "the write did not complete within 10 s of the host's SIGKILL (deadline 30 s): "
                "the guardian waited for its deadline while the forked child held its pipe"
            )
        took = time.monotonic() - killed
        assert blocked.returncode == 0
        print(f"writable {took * 1000:.1f} ms after SIGKILL of the forking host (deadline 30 s)")
        assert took < 5, f"thawed only {took:.1f} s after the host's death"
        assert host.wait(10) == -9
    finally:
        if child:
            try:
                os.kill(child, 9)
            except ProcessLookupError:
                pass
        if host.poll() is None:
            host.kill()
        host.wait(10)
        if host.stdout is not None:
            host.stdout.close()
    probes.assert_writable()


def test_emergency_thaw(mount: str, probes: Probes) -> None:
    _fsfreeze("-f", mount)
    try:
        blocked = probes.blocks("emergency")
        assert quiesce.emergency_thaw([mount]) == 1
        assert blocked.wait(10) == 0
    finally:
        subprocess.run(["fsfreeze", "-u", mount], capture_output=True, timeout=30)
    assert quiesce.emergency_thaw([mount]) == 0  # not frozen: fine
    inside = os.path.join(mount, "emergency-dir")
    os.makedirs(inside, exist_ok=True)
    _fsfreeze("-f", mount)
    try:
        with pytest.raises(QuiesceError) as e:
            quiesce.emergency_thaw([inside])
        assert e.value.status is Status.BAD_TARGET
        assert "thawed 0 of 1" in e.value.message
        probes.blocks("still-frozen")  # its filesystem was not thawed by accident
        assert quiesce.emergency_thaw([mount]) == 1
    finally:
        subprocess.run(["fsfreeze", "-u", mount], capture_output=True, timeout=30)
    probes.assert_writable()


def test_frozen_by_another_holder(mount: str, probes: Probes) -> None:
    _fsfreeze("-f", mount)
    try:
        with pytest.raises(QuiesceError) as e:
            with quiesce.frozen([mount], timeout=20):
                pytest.fail("froze a filesystem frozen by someone else")
        assert e.value.status is Status.FROZEN_BY_OTHER
        assert e.value.errno == errno.EBUSY
        assert e.value.report is not None
        assert e.value.report.targets[0].outcome is Outcome.FREEZE_FAILED
        # skip_frozen reaches the library: the target is now not covered (and, being the only
        # one, the session still fails: nothing would be left to snapshot).
        with pytest.raises(QuiesceError) as e:
            with quiesce.frozen([mount], timeout=20, skip_frozen=True):
                pytest.fail("froze a filesystem frozen by someone else")
        assert e.value.status is Status.FROZEN_BY_OTHER
        assert e.value.report is not None
        assert e.value.report.targets[0].outcome is Outcome.NOT_COVERED
        assert e.value.report.not_covered == 1
        probes.blocks("other-holder")  # the other holder's freeze was left alone
    finally:
        subprocess.run(["fsfreeze", "-u", mount], capture_output=True, timeout=30)
    probes.assert_writable()


def test_all_filesystems_takes_mounts_as_excludes(mount: str) -> None:
    # Planning only (never frozen): shows that the flag reaches the library, and that the
    # named mount is left out.
    with Session.plan([mount], timeout=5, all_filesystems=True) as session:
        assert mount not in [t.path for t in session.targets]
        assert mount in [k.path for k in session.skips]
    assert session.closed


def test_without_cap_sys_admin_is_permission(mount: str, probes: Probes) -> None:
    # A child Python whose capability bounding set lacks CAP_SYS_ADMIN (root otherwise).
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    code = (
        "import sys, quiesce\n"
        "try:\n"
        "    with quiesce.frozen([sys.argv[1]], timeout=5):\n"
        "        print('FROZE')\n"
        "except quiesce.QuiesceError as e:\n"
        "    print(e.status.name, e.errno)\n"
    )
    env = dict(os.environ, QUIESCE_LIB=quiesce.library_path(), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run(
        [setpriv, "--bounding-set=-sys_admin", sys.executable, "-c", code, mount],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.stdout.strip() == "PERMISSION 1", (r.stdout, r.stderr)
    probes.assert_writable()


# ---------------------------------------------------------------------------------------------
# End to end with hooks: freezes $QUIESCE_TEST_MOUNT only; the hooks live under /run


class Hooks:
    """A directory of hook scripts that passes the library's checks: under /run (root's, not
    writable by others; /tmp is, so hooks there are refused), with a call log beside it."""

    def __init__(self) -> None:
        for p in ("/", "/run"):
            st = os.stat(p)
            assert st.st_uid == 0 and not st.st_mode & 0o022, (
                f"{p} must belong to root and not be group/other-writable for the hook tests"
            )
        self.root = tempfile.mkdtemp(prefix="quiesce-test-hooks-", dir="/run")
        os.chmod(self.root, 0o755)
        self.dir = os.path.join(self.root, "hooks.d")
        os.mkdir(self.dir, 0o755)
        self.log = os.path.join(self.root, "calls.log")
        Path(self.log).write_text("")

    def script(self, path: str, name: str, body: str = "") -> str:
        Path(path).write_text(f"#!/bin/sh\necho \"{name} $1\" >> '{self.log}'\n{body}\n")
        os.chmod(path, 0o755)
        return path

    def hook(self, name: str, body: str = "") -> str:
        return self.script(os.path.join(self.dir, name), name, body)

    def calls(self) -> List[str]:
        return Path(self.log).read_text().splitlines()

    def remove(self) -> None:
        if self.root.startswith("/run/quiesce-test-hooks-"):
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def hooks(mount: str) -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.remove()


FAILS_ON_FREEZE = '[ "$1" = freeze ] && exit 3; exit 0'


def test_hooks_make_it_application_consistent(mount: str, probes: Probes, hooks: Hooks) -> None:
    hooks.hook("10-app")
    pre = hooks.script(os.path.join(hooks.root, "pre"), "pre")
    post = hooks.script(os.path.join(hooks.root, "post"), "post")
    with quiesce.frozen(
        [mount], timeout=20, hook_dir=hooks.dir, pre_script=pre, post_script=Path(post),
        hook_timeout=30,
    ) as session:
        assert hooks.calls() == ["pre freeze", "10-app freeze"]
        blocked = probes.blocks("hooks")
    assert blocked.wait(10) == 0
    assert hooks.calls() == ["pre freeze", "10-app freeze", "10-app thaw", "post thaw"]
    report = session.report
    assert report.status is Status.OK
    assert report.consistency is Consistency.APPLICATION
    assert report.consistency_reason is None
    assert (report.hook_calls, report.hook_failures) == (4, 0)
    assert report.phases.hooks_ns > 0
    probes.assert_writable()


def test_failing_hook_falls_back_with_the_reason(mount: str, probes: Probes, hooks: Hooks) -> None:
    hooks.hook("10-fails", 'echo "said $1"; ' + FAILS_ON_FREEZE)
    with quiesce.frozen([mount], timeout=20, hook_dir=hooks.dir) as session:
        probes.blocks("fallback")
    report = session.report
    assert report.status is Status.OK
    assert report.consistency is Consistency.FILESYSTEM
    assert report.consistency_reason == "the hook 10-fails failed before the freeze (exit status 3)"
    assert (report.hook_calls, report.hook_failures) == (2, 1)
    assert hooks.calls() == ["10-fails freeze", "10-fails thaw"]
    # Each call's result (quiesce_hook_call), as the CLI's JSON hooks[].
    first, second = report.hooks
    assert (first.name, first.path, first.source, first.phase) == (
        "10-fails", os.path.join(hooks.dir, "10-fails"), "hook-dir", "freeze"
    )
    assert (first.end, first.succeeded, first.exit_status, first.signal, first.errno) == (
        "exited", False, 3, None, 0
    )
    assert (first.result, first.output, first.timed_out) == ("exit status 3", "said freeze\n", False)
    assert first.duration_us > 0 and first.duration == first.duration_us / 1e6
    assert (second.phase, second.succeeded, second.exit_status, second.output) == (
        "thaw", True, 0, "said thaw\n"
    )
    # Without hooks the reason says so.
    with quiesce.frozen([mount], timeout=20) as plain:
        pass
    assert plain.report.consistency is Consistency.FILESYSTEM
    assert plain.report.consistency_reason == "no application hooks were configured"
    assert plain.report.hook_calls == 0 and plain.report.hooks == ()
    probes.assert_writable()


def test_required_consistency_stops_before_the_freeze(
    mount: str, probes: Probes, hooks: Hooks
) -> None:
    hooks.hook("10-fails", FAILS_ON_FREEZE)
    hooks.hook("20-never")
    with pytest.raises(QuiesceError) as e:
        with quiesce.frozen(
            [mount], timeout=20, hook_dir=hooks.dir, require_app_consistent=True
        ):
            pytest.fail("froze although a hook failed and consistency is required")
    err = e.value
    assert err.status is Status.NOT_APP_CONSISTENT
    assert "the hook 10-fails failed before the freeze (exit status 3): nothing was frozen" in (
        err.message
    )
    assert err.report is not None
    assert err.report.targets[0].outcome is Outcome.NOT_ATTEMPTED
    assert err.report.window_ns == 0 and err.report.consistency is Consistency.NONE
    assert hooks.calls() == ["10-fails freeze", "10-fails freeze-failed"]
    probes.assert_writable()


def test_world_writable_hook_is_refused_before_anything_runs(
    mount: str, probes: Probes, hooks: Hooks
) -> None:
    hooks.hook("10-ok")
    bad = hooks.hook("20-writable")
    os.chmod(bad, 0o757)
    with pytest.raises(QuiesceError) as e:
        with quiesce.frozen([mount], timeout=20, hook_dir=hooks.dir):
            pytest.fail("froze with a world-writable hook")
    assert e.value.status is Status.HOOK_REFUSED
    assert "hook refused: " in e.value.message and bad in e.value.message
    assert "chmod go-w" in e.value.message
    assert hooks.calls() == []
    probes.assert_writable()


def test_required_consistency_without_hooks_is_refused_at_plan(mount: str) -> None:
    # Planning only (nothing is frozen): no hook would run before the freeze.
    with pytest.raises(QuiesceError) as e:
        Session.plan([mount], timeout=5, require_app_consistent=True)
    assert e.value.status is Status.NOT_APP_CONSISTENT
    assert "no hook runs before the freeze" in e.value.message


def test_close_without_thaw_resumes_the_hooks_once(
    mount: str, probes: Probes, hooks: Hooks
) -> None:
    hooks.hook("10-app")
    session = Session.plan([mount], timeout=20, hook_dir=hooks.dir)
    assert hooks.calls() == []  # planning verifies, runs nothing
    session.freeze()
    blocked = probes.blocks("close-hooks")
    session.close()
    session.close()
    assert blocked.wait(10) == 0
    assert hooks.calls() == ["10-app freeze", "10-app thaw"]
    assert session.report.status is Status.SNAPSHOT_FAILED
    assert session.report.hook_calls == 2
    probes.assert_writable()


HANGS_ON_FREEZE = '[ "$1" = freeze ] && exec sleep 60; exit 0'


def test_sigint_while_a_hook_hangs_raises_keyboard_interrupt(
    mount: str, probes: Probes, hooks: Hooks
) -> None:
    # Ctrl-C (SIGINT) while a hook before the freeze hangs (its timeout: 60 s): freeze() must
    # return promptly, with the hook killed, nothing frozen, and raise KeyboardInterrupt; the
    # session's error says cancelled. A host process, so that the SIGINT is its own. The host
    # takes Python's own SIGINT handler, as an interactive Python has it: a test run started in
    # the background of a non-interactive shell inherits SIGINT ignored (and the binding then
    # rightly leaves Ctrl-C to the host, which ignores it).
    hooks.hook("10-hang", HANGS_ON_FREEZE)
    code = (
        "import signal, sys, quiesce\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "s = quiesce.Session.plan([sys.argv[1]], 30, hook_dir=sys.argv[2], hook_timeout=60)\n"
        "try:\n"
        "    s.freeze()\n"
        "    print('frozen', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('keyboard-interrupt', s.error.status.name if s.error else None, flush=True)\n"
        "finally:\n"
        "    s.close()\n"
    )
    env = dict(os.environ, QUIESCE_LIB=quiesce.library_path(), PYTHONDONTWRITEBYTECODE="1")
    host = subprocess.Popen(
        [sys.executable, "-c", code, mount, hooks.dir], cwd=HERE, env=env, stdout=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while hooks.calls() != ["10-hang freeze"]:
            assert time.monotonic() < deadline, f"the hook did not start: {hooks.calls()}"
            assert host.poll() is None, "the host ended before its hook ran"
            time.sleep(0.02)
        os.kill(host.pid, 2)
        sent = time.monotonic()
        out, _ = host.communicate(timeout=30)
        took = time.monotonic() - sent
        print(f"freeze() ended {took * 1000:.1f} ms after SIGINT (the hook's timeout: 60 s)")
        assert out.decode().split() == ["keyboard-interrupt", "CANCELLED"], out
        assert host.returncode == 0
        assert took < 15, f"freeze() returned only {took:.1f} s after SIGINT"
        assert hooks.calls() == ["10-hang freeze", "10-hang freeze-failed"]
    finally:
        if host.poll() is None:
            host.kill()
        host.wait(10)
        if host.stdout is not None:
            host.stdout.close()
    probes.assert_writable()


def test_cancel_from_another_thread_raises_cancelled(
    mount: str, probes: Probes, hooks: Hooks
) -> None:
    hooks.hook("10-hang", HANGS_ON_FREEZE)
    session = Session.plan([mount], 30, hook_dir=hooks.dir, hook_timeout=60)
    try:
        timer = threading.Timer(0.5, session.cancel)
        timer.start()
        started = time.monotonic()
        with pytest.raises(QuiesceError) as e:
            session.freeze()
        took = time.monotonic() - started
        timer.join()
        assert e.value.status == Status.CANCELLED, e.value
        assert "cancelled by the caller" in str(e.value)
        assert took < 15, f"freeze() returned only {took:.1f} s after cancel()"
        assert hooks.calls() == ["10-hang freeze", "10-hang freeze-failed"]
        assert [(h.phase, h.end) for h in session.report.hooks] == [
            ("freeze", "cancelled"),
            ("freeze-failed", "exited"),
        ]
    finally:
        session.close()
    probes.assert_writable()
