package quiesce

// Unit tests (no root) and end-to-end tests that freeze a real filesystem.
//
// The end-to-end tests freeze ONLY the mount point named by QUIESCE_TEST_MOUNT, which the Rust
// driver (tests/go_binding.rs) creates: a loop-mounted scratch filesystem. Without it they
// skip, or fail when QUIESCE_REQUIRE_E2E=1 (as the driver sets).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ---- unit tests: no root, nothing frozen ----

func TestVersion(t *testing.T) {
	if v := Version(); v == "" || strings.Count(v, ".") < 2 {
		t.Errorf("Version() = %q, want x.y.z", v)
	}
	if got := ABIVersion(); got != HeaderABIVersion {
		t.Errorf("ABIVersion() = %d, header %d", got, HeaderABIVersion)
	}
	if HeaderABIVersion != 1 {
		t.Errorf("HeaderABIVersion = %d, want 1", HeaderABIVersion)
	}
	if got := SessionSize(); got != 128*1024 {
		t.Errorf("SessionSize() = %d, want 131072", got)
	}
	if err := checkLibrary(); err != nil {
		t.Errorf("checkLibrary: %v", err)
	}
	if MaxTimeout != time.Hour || MaxTargets != 64 {
		t.Errorf("MaxTimeout %v, MaxTargets %d", MaxTimeout, MaxTargets)
	}
}

func TestStatusNames(t *testing.T) {
	want := map[Status]string{
		StatusOK: "ok", StatusUsage: "usage", StatusBadTarget: "bad-target",
		StatusNotFreezable: "not-freezable", StatusPermission: "permission",
		StatusPlanRefused: "plan-refused", StatusHookRefused: "hook-refused",
		StatusPartialGroup: "partial-group",
		StatusFreezeFailed: "freeze-failed", StatusThawFailed: "thaw-failed",
		StatusTimeout:         "timeout",
		StatusNotAcknowledged: "not-acknowledged", StatusFrozenByOther: "frozen-by-other",
		StatusSuspect: "suspect", StatusSnapshotFailed: "snapshot-failed",
		StatusInterrupted: "interrupted", StatusNotAppConsistent: "not-app-consistent",
		StatusThawHookFailed: "thaw-hook-failed", StatusCancelled: "cancelled", StatusInternal: "internal",
	}
	codes := map[Status]uint32{
		StatusOK: 0, StatusUsage: 2, StatusBadTarget: 3, StatusNotFreezable: 4,
		StatusPermission: 5, StatusPlanRefused: 6, StatusHookRefused: 7, StatusPartialGroup: 8,
		StatusFreezeFailed: 11, StatusThawFailed: 12, StatusTimeout: 13, StatusNotAcknowledged: 14,
		StatusFrozenByOther: 15, StatusSuspect: 16, StatusSnapshotFailed: 17,
		StatusInterrupted: 18, StatusNotAppConsistent: 19, StatusThawHookFailed: 20, StatusCancelled: 21,
		StatusInternal: 70,
	}
	if len(Statuses) != len(want) {
		t.Errorf("Statuses has %d entries, want %d", len(Statuses), len(want))
	}
	for _, s := range Statuses {
		if s.String() != want[s] {
			t.Errorf("Status(%d).String() = %q, want %q", uint32(s), s.String(), want[s])
		}
		if uint32(s) != codes[s] {
			t.Errorf("%s = %d, want %d", s, uint32(s), codes[s])
		}
		if m := s.Message(); m == "" || m == "unknown status" {
			t.Errorf("%s.Message() = %q", s, m)
		}
		if !strings.Contains(s.Error(), "["+want[s]+"]") {
			t.Errorf("%s.Error() = %q", s, s.Error())
		}
	}
	if Status(99).String() != "unknown" || Status(99).Message() != "unknown status" {
		t.Errorf("Status(99): %q, %q", Status(99).String(), Status(99).Message())
	}
	outcomes := map[Outcome]string{
		OutcomeNotAttempted: "not-attempted", OutcomeFrozen: "frozen",
		OutcomeFreezeFailed: "freeze-failed", OutcomeThawed: "thawed",
		OutcomeThawedByOther: "thawed-by-other", OutcomeThawFailed: "thaw-failed",
		OutcomeInFlight: "in-flight-at-deadline", OutcomeThawedByGuardian: "thawed-by-guardian",
		OutcomeNotCovered: "not-covered",
	}
	for o, name := range outcomes {
		if o.String() != name {
			t.Errorf("Outcome(%d).String() = %q, want %q", uint32(o), o.String(), name)
		}
	}
	if Outcome(99).String() != "unknown" {
		t.Errorf("Outcome(99) = %q", Outcome(99).String())
	}
	for c, name := range map[Consistency]string{
		ConsistencyNone: "not-consistent", ConsistencyFilesystem: "filesystem-consistent",
		ConsistencyApplication: "application-consistent",
	} {
		if c.String() != name {
			t.Errorf("Consistency(%d).String() = %q, want %q", uint32(c), c.String(), name)
		}
	}
}

func TestErrorFormattingAndMatching(t *testing.T) {
	cause := context.Canceled
	e := &Error{
		Op: "plan", Status: StatusBadTarget, Errno: syscall.ENOENT, MountIndex: 1,
		Mount: "/x/nope", TargetIndex: -1, Message: "'/x/nope' does not exist",
	}
	var err error = e
	want := "quiesce: plan: '/x/nope' does not exist [bad-target, errno 2: no such file or directory]"
	if err.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", err.Error(), want)
	}
	wrapped := errors.Join(errors.New("context"), err)
	for _, target := range []error{StatusBadTarget, syscall.ENOENT, fs.ErrNotExist} {
		if !errors.Is(wrapped, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	for _, target := range []error{StatusUsage, StatusTimeout, syscall.EPERM, context.Canceled} {
		if errors.Is(wrapped, target) {
			t.Errorf("errors.Is(%v, %v) = true", err, target)
		}
	}
	var got *Error
	if !errors.As(wrapped, &got) || got.MountIndex != 1 || got.Mount != "/x/nope" {
		t.Errorf("errors.As: %#v", got)
	}
	if StatusOf(wrapped) != StatusBadTarget || StatusOf(nil) != StatusOK ||
		StatusOf(StatusTimeout) != StatusTimeout || StatusOf(errors.New("x")) != StatusInternal {
		t.Error("StatusOf")
	}
	c := &Error{Op: "thaw", Status: StatusSnapshotFailed, MountIndex: -1, TargetIndex: -1, Cause: cause}
	if !errors.Is(c, context.Canceled) || !errors.Is(c, StatusSnapshotFailed) {
		t.Errorf("%v should match context.Canceled and snapshot-failed", c)
	}
	if want := "quiesce: thaw: " + StatusSnapshotFailed.Message() + " [snapshot-failed]: context canceled"; c.Error() != want {
		t.Errorf("Error() = %q, want %q", c.Error(), want)
	}
}

func TestTimeoutFromContext(t *testing.T) {
	now := time.Now()
	bg := context.Background()
	ctx, cancel := context.WithDeadline(bg, now.Add(1500*time.Millisecond+300*time.Microsecond))
	defer cancel()
	long, cancelLong := context.WithDeadline(bg, now.Add(3*time.Hour))
	defer cancelLong()
	short, cancelShort := context.WithDeadline(bg, now.Add(200*time.Microsecond))
	defer cancelShort()
	cases := []struct {
		name string
		ctx  context.Context
		opts Options
		want time.Duration
	}{
		{"no deadline", bg, Options{}, DefaultTimeout},
		{"explicit", bg, Options{Timeout: 2 * time.Second}, 2 * time.Second},
		{"context", ctx, Options{}, 1500 * time.Millisecond},
		{"shorter context", ctx, Options{Timeout: 5 * time.Second}, 1500 * time.Millisecond},
		{"shorter explicit", ctx, Options{Timeout: time.Second}, time.Second},
		{"clamped to an hour", long, Options{}, time.Hour},
		{"at least 1 ms", short, Options{}, time.Millisecond},
	}
	for _, c := range cases {
		got, err := timeoutFor(c.ctx, c.opts, now)
		if err != nil || got != c.want {
			t.Errorf("%s: timeoutFor = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	for _, bad := range []time.Duration{-time.Second, MaxTimeout + time.Millisecond} {
		if _, err := timeoutFor(bg, Options{Timeout: bad}, now); !errors.Is(err, StatusUsage) {
			t.Errorf("Timeout %v: %v, want a usage error", bad, err)
		}
	}
	// An expired or cancelled context never reaches the library (the path does not exist).
	expired, cancelExpired := context.WithDeadline(bg, now.Add(-time.Second))
	defer cancelExpired()
	_, err := Freeze(expired, "/nonexistent/quiesce-go-test")
	if !errors.Is(err, StatusTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: %v", err)
	}
	cancelled, cancelNow := context.WithCancel(bg)
	cancelNow()
	_, err = Freeze(cancelled, "/nonexistent/quiesce-go-test")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestBadInputNeverReachesC(t *testing.T) {
	// A NUL byte would make C read another path ("/\x00x" is "/"): refused before C.
	for _, paths := range [][]string{{"/\x00nonexistent"}, {""}, make([]string, MaxTargets+1)} {
		_, err := Plan(Options{Mounts: paths})
		if !errors.Is(err, StatusUsage) {
			t.Errorf("Plan(%q): %v, want a usage error", paths, err)
		}
		_, err = EmergencyThaw(paths...)
		if !errors.Is(err, StatusUsage) {
			t.Errorf("EmergencyThaw(%q): %v, want a usage error", paths, err)
		}
	}
	// No mount named and no All: the library's usage error, with its message.
	_, err := Plan(Options{})
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusUsage || !strings.Contains(e.Message, "no mount point named") {
		t.Errorf("Plan(no mounts): %v", err)
	}
}

func TestBadHookOptionsNeverReachC(t *testing.T) {
	if DefaultHookTimeout != 30*time.Minute || MaxHookTimeout != 24*time.Hour {
		t.Errorf("DefaultHookTimeout %v, MaxHookTimeout %v", DefaultHookTimeout, MaxHookTimeout)
	}
	for _, opts := range []Options{
		{HookDir: "/etc/quiesce\x00/hooks.d"},
		{PreScript: "/x\x00"},
		{PostScript: "\x00"},
		{HookTimeout: -time.Second},
		{HookTimeout: MaxHookTimeout + time.Millisecond},
	} {
		opts.Mounts = []string{"/nonexistent/quiesce-go-test"}
		_, err := Plan(opts)
		var e *Error
		if !errors.As(err, &e) || e.Status != StatusUsage || !strings.Contains(e.Message, "Options.") {
			t.Errorf("Plan(%+v): %v, want a usage error naming the option", opts, err)
		}
	}
}

func TestPhasesNamedInOrder(t *testing.T) {
	p := Phases{Plan: 1, Arm: 2, Hooks: 3, Presync: 4, Freeze: 5, Wait: 6, Thaw: 7, Finish: 8}
	want := []string{"plan", "arm", "hooks", "presync", "freeze", "wait", "thaw", "finish"}
	for i, n := range p.Named() {
		if n.Name != want[i] || n.Duration != time.Duration(i+1) {
			t.Errorf("Named()[%d] = %+v, want %s %d", i, n, want[i], i+1)
		}
	}
}

func TestZeroSession(t *testing.T) {
	var s Session
	if _, err := s.Thaw(); !errors.Is(err, StatusUsage) {
		t.Errorf("Thaw of a zero Session: %v", err)
	}
	if err := s.Close(); !errors.Is(err, StatusUsage) {
		t.Errorf("Close of a zero Session: %v", err)
	}
	if s.Report() != nil || s.Targets() != nil {
		t.Error("a zero Session has a report")
	}
}

// ---- end-to-end: real freezes of QUIESCE_TEST_MOUNT only ----

// testMount returns QUIESCE_TEST_MOUNT after checking that it is a mount point of its own
// filesystem, not that of /, the temporary directory or the working directory.
func testMount(t *testing.T) string {
	t.Helper()
	m := os.Getenv("QUIESCE_TEST_MOUNT")
	if m == "" {
		if os.Getenv("QUIESCE_REQUIRE_E2E") == "1" {
			t.Fatal("QUIESCE_REQUIRE_E2E=1 but QUIESCE_TEST_MOUNT is not set: run these tests " +
				"through `cargo test -p quiesce --test go_binding` (as root), which creates a " +
				"scratch filesystem and names it")
		}
		t.Skip("QUIESCE_TEST_MOUNT is not set (the Rust driver tests/go_binding.rs sets it)")
	}
	if !filepath.IsAbs(m) {
		t.Fatalf("QUIESCE_TEST_MOUNT=%q is not absolute", m)
	}
	dev := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		return st.Dev
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	d := dev(m)
	for _, other := range []string{"/", os.TempDir(), cwd, filepath.Dir(m)} {
		if dev(other) == d {
			t.Fatalf("refusing to freeze QUIESCE_TEST_MOUNT=%s: it is on the filesystem of %s "+
				"(not a scratch mount of its own)", m, other)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("the end-to-end tests need root (CAP_SYS_ADMIN)")
	}
	return m
}

// startWrite creates, writes and fsyncs a file in dir in a goroutine; the channel receives
// its result (it blocks while dir's filesystem is frozen).
func startWrite(dir string) <-chan error {
	done := make(chan error, 1)
	go func() {
		f, err := os.CreateTemp(dir, "probe-*")
		if err == nil {
			_, err = f.WriteString("probe\n")
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			os.Remove(f.Name())
		}
		done <- err
	}()
	return done
}

// completes reports whether the write finished (successfully) within d.
func completes(t *testing.T, w <-chan error, d time.Duration) bool {
	t.Helper()
	select {
	case err := <-w:
		if err != nil {
			t.Errorf("write probe: %v", err)
		}
		return true
	case <-time.After(d):
		return false
	}
}

func assertWritable(t *testing.T, dir string) {
	t.Helper()
	if !completes(t, startWrite(dir), 10*time.Second) {
		t.Fatalf("%s is not writable (a write+fsync did not complete in 10 s): still frozen?", dir)
	}
}

// assertBlocked checks that a write to dir does not complete within 300 ms, and returns it.
func assertBlocked(t *testing.T, dir string) <-chan error {
	t.Helper()
	w := startWrite(dir)
	if completes(t, w, 300*time.Millisecond) {
		t.Fatalf("a write to %s completed while it should be frozen", dir)
	}
	return w
}

func TestFreezeWriteBlocksThawCompletes(t *testing.T) {
	m := testMount(t)
	// The pre-sync runs only when something is dirty (Dirty + Writeback of /proc/meminfo):
	// give it something to write back.
	if err := os.WriteFile(filepath.Join(m, "dirty"), make([]byte, 8<<20), 0o600); err != nil {
		t.Fatalf("dirty data: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	s, err := Freeze(ctx, m)
	if err != nil {
		t.Fatalf("Freeze(%s): %v", m, err)
	}
	defer s.Close()
	targets := s.Targets()
	if len(targets) != 1 {
		t.Fatalf("targets %+v, want one", targets)
	}
	tg := targets[0]
	if tg.Path != m || tg.FsType == "" || tg.Source == "" || tg.MountIndex != 0 ||
		tg.Outcome != OutcomeFrozen || tg.FreezeLatency <= 0 || tg.Errno != 0 {
		t.Errorf("target while frozen: %+v", tg)
	}
	if r := s.Report(); r.Ended || r.Status != StatusOK || r.Timeout <= 59*time.Second || r.Timeout > 60*time.Second {
		t.Errorf("report while frozen: %+v", r)
	}
	w := assertBlocked(t, m)
	rep, err := s.Thaw()
	if err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if !completes(t, w, 10*time.Second) {
		t.Fatal("the blocked write did not complete within 10 s of Thaw")
	}
	if rep.Status != StatusOK || rep.Consistency != ConsistencyFilesystem || !rep.Acknowledged ||
		!rep.Ended || rep.Window <= 0 || len(rep.Targets) != 1 ||
		rep.Targets[0].Outcome != OutcomeThawed || rep.Targets[0].ThawLatency <= 0 ||
		rep.Presync <= 0 {
		t.Errorf("report (pre-sync is on by default): %+v", rep)
	}
	// Where the time went: every phase ran but the hooks' (none configured); together at
	// most the time Freeze to Thaw took here.
	wall := time.Since(began)
	var sum time.Duration
	for _, p := range rep.Phases.Named() {
		sum += p.Duration
		if (p.Duration > 0) != (p.Name != "hooks") {
			t.Errorf("phase %s: %v (%+v)", p.Name, p.Duration, rep.Phases)
		}
	}
	if rep.Phases.Presync != rep.Presync || sum > wall {
		t.Errorf("phases %+v (sum %v): pre-sync %v, wall time %v", rep.Phases, sum, rep.Presync, wall)
	}
	t.Logf("%s (%s, %d:%d, %s): %s; %s; window %v (freeze %v, thaw %v)", tg.Path, tg.FsType,
		tg.Major, tg.Minor, tg.Source, rep.Status, rep.Consistency, rep.Window,
		rep.Targets[0].FreezeLatency, rep.Targets[0].ThawLatency)
	// Thaw again, Abort, Close: the same final report, nothing more happens.
	if again, err := s.Thaw(); err != nil || again != rep {
		t.Errorf("second Thaw: %v, %v", again, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Thaw: %v", err)
	}
	if s.Report() != rep {
		t.Error("Report after the end is not the final report")
	}
	assertWritable(t, m)
}

func TestNoPresyncSequential(t *testing.T) {
	m := testMount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := FreezeWithOptions(ctx, Options{Mounts: []string{m}, NoPresync: true, Sequential: true})
	if err != nil {
		t.Fatalf("FreezeWithOptions(%s): %v", m, err)
	}
	defer s.Close()
	rep, err := s.Thaw()
	if err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if rep.Status != StatusOK || rep.Presync != 0 || rep.Phases.Presync != 0 ||
		rep.Phases.Freeze <= 0 || rep.Phases.Thaw <= 0 {
		t.Errorf("report without pre-sync: %+v", rep)
	}
	assertWritable(t, m)
}

func TestAbortThawsNotAcknowledged(t *testing.T) {
	m := testMount(t)
	s, err := FreezeWithOptions(context.Background(), Options{Mounts: []string{m}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	w := assertBlocked(t, m)
	rep, err := s.Abort()
	if err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if !completes(t, w, 10*time.Second) {
		t.Fatal("the blocked write did not complete after Abort")
	}
	if rep.Status != StatusSnapshotFailed || rep.Consistency != ConsistencyNone || rep.Acknowledged ||
		rep.Targets[0].Outcome != OutcomeThawed {
		t.Errorf("report: %+v", rep)
	}
	// Thaw after Abort does not pretend the snapshot is consistent.
	if _, err := s.Thaw(); !errors.Is(err, StatusSnapshotFailed) {
		t.Errorf("Thaw after Abort: %v, want snapshot-failed", err)
	}
}

func TestDeadlineExpiresThenThawSaysTimeout(t *testing.T) {
	m := testMount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s, err := Freeze(ctx, m)
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	defer s.Close()
	if r := s.Report(); r.Timeout <= 0 || r.Timeout > 500*time.Millisecond {
		t.Errorf("timeout %v, want at most 500 ms from the context", r.Timeout)
	}
	<-ctx.Done()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	rep, err := s.Thaw()
	if !errors.Is(err, StatusTimeout) {
		t.Fatalf("Thaw after the deadline: %v, want timeout", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Report != rep || e.Op != "thaw" {
		t.Errorf("error %#v", e)
	}
	if rep.Status != StatusTimeout || rep.Consistency != ConsistencyNone || rep.Acknowledged {
		t.Errorf("report: %+v", rep)
	}
	t.Logf("Thaw after the deadline took %v: %v; target %s", time.Since(start), err, rep.Targets[0].Outcome)
	assertWritable(t, m)
}

func TestGuardianThawsWithoutThaw(t *testing.T) {
	m := testMount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := Freeze(ctx, m)
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	defer s.Close()
	frozen := time.Now()
	// Never call Thaw: the guardian process thaws at the deadline.
	w := assertBlocked(t, m)
	if !completes(t, w, 15*time.Second) {
		t.Fatal("the write did not complete within 15 s of a 2 s deadline without Thaw")
	}
	dl, _ := ctx.Deadline()
	t.Logf("writable %v after Freeze returned, %v after the context's deadline, without Thaw",
		time.Since(frozen), time.Since(dl))
	rep, err := s.Thaw()
	if !errors.Is(err, StatusTimeout) {
		t.Fatalf("Thaw: %v, want timeout", err)
	}
	// The guardian is the library's deadline timer: its thaw is the session's own deadline
	// thaw, as the CLI's controller makes it, not a rescue.
	if rep.Targets[0].Outcome != OutcomeThawed {
		t.Errorf("outcome %s, want thawed (the session's own deadline thaw)", rep.Targets[0].Outcome)
	}
	if strings.Contains(rep.Message, "the guardian had to thaw") {
		t.Errorf("message %q names a rescue", rep.Message)
	}
}

func TestCancelWhileFrozenThaws(t *testing.T) {
	m := testMount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Freeze(ctx, m)
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	defer s.Close()
	w := assertBlocked(t, m)
	cancel()
	if !completes(t, w, 10*time.Second) {
		t.Fatal("the write did not complete after the context was cancelled")
	}
	rep, err := s.Thaw()
	if !errors.Is(err, context.Canceled) || !errors.Is(err, StatusSnapshotFailed) {
		t.Fatalf("Thaw after cancel: %v, want canceled + snapshot-failed", err)
	}
	if rep.Acknowledged || rep.Consistency != ConsistencyNone {
		t.Errorf("report: %+v", rep)
	}
}

func TestBadTargets(t *testing.T) {
	m := testMount(t)
	inside := filepath.Join(m, "not-a-mount")
	if err := os.MkdirAll(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Freeze(ctx, m, inside)
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusBadTarget || e.MountIndex != 1 || e.Mount != inside || e.Op != "plan" {
		t.Fatalf("Freeze(mount, dir inside): %#v", err)
	}
	if !strings.Contains(e.Message, "inside the filesystem mounted at "+m) {
		t.Errorf("message: %q", e.Message)
	}
	t.Logf("dir inside: %v", err)
	missing := filepath.Join(m, "nope")
	_, err = Freeze(ctx, missing)
	if !errors.As(err, &e) || e.Status != StatusBadTarget || e.Errno != syscall.ENOENT || e.MountIndex != 0 ||
		!errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Freeze(missing): %#v", err)
	}
	t.Logf("missing: %v", err)
	// Planning never freezes.
	rep, err := Plan(Options{Mounts: []string{m}})
	if err != nil || len(rep.Targets) != 1 || rep.Targets[0].Path != m ||
		rep.Targets[0].Outcome != OutcomeNotAttempted || rep.Ended {
		t.Errorf("Plan: %+v, %v", rep, err)
	}
	assertWritable(t, m)
}

func TestFrozenByOther(t *testing.T) {
	m := testMount(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := Freeze(ctx, m)
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	defer first.Close()
	_, err = Freeze(ctx, m)
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusFrozenByOther || e.Op != "freeze" || e.Report == nil {
		t.Fatalf("second Freeze: %#v", err)
	}
	t.Logf("second freeze: %v", err)
	// SkipFrozen skips it, but then nothing at all would be ours: still frozen-by-other,
	// with the target reported as not covered.
	_, err = FreezeWithOptions(ctx, Options{Mounts: []string{m}, SkipFrozen: true})
	if !errors.As(err, &e) || e.Status != StatusFrozenByOther || e.Report == nil ||
		e.Report.Targets[0].Outcome != OutcomeNotCovered || e.Report.NotCovered != 1 {
		t.Fatalf("Freeze with SkipFrozen, nothing else to freeze: %#v", err)
	}
	// The first session was not disturbed.
	w := assertBlocked(t, m)
	rep, err := first.Thaw()
	if err != nil || rep.Consistency != ConsistencyFilesystem {
		t.Fatalf("first Thaw: %+v, %v", rep, err)
	}
	if !completes(t, w, 10*time.Second) {
		t.Fatal("the write did not complete after Thaw")
	}
}

func TestEmergencyThaw(t *testing.T) {
	m := testMount(t)
	inside := filepath.Join(m, "not-a-mount")
	if err := os.MkdirAll(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Freeze(ctx, m)
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	defer s.Close()
	w := assertBlocked(t, m)
	// A directory inside is refused: its filesystem stays frozen.
	if n, err := EmergencyThaw(inside); !errors.Is(err, StatusBadTarget) || n != 0 {
		t.Errorf("EmergencyThaw(dir inside) = %d, %v; want bad-target", n, err)
	}
	if completes(t, w, 300*time.Millisecond) {
		t.Fatal("a refused emergency thaw thawed the filesystem")
	}
	n, err := EmergencyThaw(m)
	if err != nil || n != 1 {
		t.Fatalf("EmergencyThaw = %d, %v; want 1 thawed", n, err)
	}
	if !completes(t, w, 10*time.Second) {
		t.Fatal("the write did not complete after EmergencyThaw")
	}
	// The session notices that someone else thawed: not consistent.
	rep, err := s.Thaw()
	t.Logf("Thaw after the emergency thaw: %v; %s; target %s", err, rep.Consistency, rep.Targets[0].Outcome)
	if !errors.Is(err, StatusSuspect) || rep.Consistency != ConsistencyNone ||
		rep.Targets[0].Outcome != OutcomeThawedByOther {
		t.Errorf("Thaw after an emergency thaw: %+v, %v; want suspect, thawed-by-other", rep, err)
	}
	if n, err := EmergencyThaw(m); err != nil || n != 0 {
		t.Errorf("EmergencyThaw of a thawed filesystem = %d, %v; want 0, nil", n, err)
	}
}

// ---- end-to-end: hooks ----

// hooks is a directory of hook scripts that passes the library's checks: under /run (root's,
// not writable by others; /tmp is, so hooks there are refused), with a call log beside it.
type hooks struct {
	root, dir, log string
}

func newHooks(t *testing.T) *hooks {
	t.Helper()
	for _, p := range []string{"/", "/run"} {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || st.Uid != 0 || st.Mode&0o022 != 0 {
			t.Fatalf("%s must belong to root and not be group/other-writable for the hook tests", p)
		}
	}
	root, err := os.MkdirTemp("/run", "quiesce-test-hooks-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	h := &hooks{root: root, dir: filepath.Join(root, "hooks.d"), log: filepath.Join(root, "calls.log")}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(h.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// script writes an executable script at path that appends "NAME $1" to the call log, then
// runs body.
func (h *hooks) script(t *testing.T, path, name, body string) string {
	t.Helper()
	text := fmt.Sprintf("#!/bin/sh\necho \"%s $1\" >> '%s'\n%s\n", name, h.log, body)
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// hook makes the logging hook hooks.d/NAME.
func (h *hooks) hook(t *testing.T, name, body string) string {
	t.Helper()
	return h.script(t, filepath.Join(h.dir, name), name, body)
}

func (h *hooks) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(h.log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

func (h *hooks) expect(t *testing.T, want ...string) {
	t.Helper()
	got := h.calls(t)
	for i := range want {
		want[i] = strings.ReplaceAll(want[i], " ", "_")
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("hook calls %q, want %q", got, want)
	}
}

func TestHooksMakeItApplicationConsistent(t *testing.T) {
	m := testMount(t)
	h := newHooks(t)
	h.hook(t, "10-app", "")
	pre := h.script(t, filepath.Join(h.root, "pre"), "pre", "")
	post := h.script(t, filepath.Join(h.root, "post"), "post", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := FreezeWithOptions(ctx, Options{
		Mounts: []string{m}, HookDir: h.dir, PreScript: pre, PostScript: post,
		HookTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("Freeze with hooks: %v", err)
	}
	defer s.Close()
	h.expect(t, "pre freeze", "10-app freeze")
	w := assertBlocked(t, m)
	rep, err := s.Thaw()
	if err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if !completes(t, w, 10*time.Second) {
		t.Fatal("the blocked write did not complete after Thaw")
	}
	h.expect(t, "pre freeze", "10-app freeze", "10-app thaw", "post thaw")
	if rep.Status != StatusOK || rep.Consistency != ConsistencyApplication ||
		rep.ConsistencyReason != "" || rep.HookCalls != 4 || rep.HookFailures != 0 ||
		rep.Phases.Hooks <= 0 {
		t.Errorf("report: %+v", rep)
	}
	t.Logf("with hooks: %s; %s; %d hook calls", rep.Status, rep.Consistency, rep.HookCalls)
}

func TestHookFailureFallsBackToFilesystemConsistent(t *testing.T) {
	m := testMount(t)
	h := newHooks(t)
	h.hook(t, "10-fails", `[ "$1" = freeze ] && { echo "cannot lock tables"; exit 3; }; exit 0`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := FreezeWithOptions(ctx, Options{Mounts: []string{m}, HookDir: h.dir})
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	defer s.Close()
	assertBlocked(t, m)
	rep, err := s.Thaw()
	if err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	h.expect(t, "10-fails freeze", "10-fails thaw")
	want := "the hook 10-fails failed before the freeze (exit status 3)"
	if rep.Status != StatusOK || rep.Consistency != ConsistencyFilesystem ||
		rep.ConsistencyReason != want || rep.HookCalls != 2 || rep.HookFailures != 1 {
		t.Errorf("report: %+v; want the reason %q", rep, want)
	}
	// Each call's result (quiesce_hook_call): the hook, the phase, how it ended, its output.
	if len(rep.Hooks) != 2 {
		t.Fatalf("Report.Hooks: %+v, want 2 calls", rep.Hooks)
	}
	first, second := rep.Hooks[0], rep.Hooks[1]
	if first.Name != "10-fails" || first.Source != "hook-dir" || first.Phase != "freeze" ||
		first.End != "exited" || first.Succeeded || first.ExitStatus != 3 || first.Signal != 0 ||
		first.Result != "exit status 3" || first.Output != "cannot lock tables\n" ||
		first.Path != filepath.Join(h.dir, "10-fails") || first.Duration <= 0 {
		t.Errorf("the freeze call: %+v", first)
	}
	if second.Phase != "thaw" || !second.Succeeded || second.ExitStatus != 0 || second.Output != "" {
		t.Errorf("the thaw call: %+v", second)
	}
	// Without hooks, the reason says so.
	plain, err := Freeze(ctx, m)
	if err != nil {
		t.Fatalf("Freeze without hooks: %v", err)
	}
	rep, err = plain.Thaw()
	if err != nil || rep.Consistency != ConsistencyFilesystem ||
		rep.ConsistencyReason != "no application hooks were configured" || rep.HookCalls != 0 ||
		len(rep.Hooks) != 0 {
		t.Errorf("without hooks: %+v, %v", rep, err)
	}
	assertWritable(t, m)
}

func TestHookRequiredStopsBeforeTheFreeze(t *testing.T) {
	m := testMount(t)
	h := newHooks(t)
	h.hook(t, "10-fails", `[ "$1" = freeze ] && exit 3; exit 0`)
	h.hook(t, "20-never", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := FreezeWithOptions(ctx, Options{Mounts: []string{m}, HookDir: h.dir, RequireAppConsistent: true})
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusNotAppConsistent || e.Op != "freeze" || e.Report == nil {
		t.Fatalf("Freeze with RequireAppConsistent: %#v", err)
	}
	if !strings.Contains(e.Message, "10-fails failed before the freeze (exit status 3): nothing was frozen") {
		t.Errorf("message: %q", e.Message)
	}
	if e.Report.Targets[0].Outcome != OutcomeNotAttempted || e.Report.Window != 0 ||
		e.Report.Consistency != ConsistencyNone {
		t.Errorf("report: %+v", e.Report)
	}
	h.expect(t, "10-fails freeze", "10-fails freeze-failed")
	t.Logf("required: %v", err)
	assertWritable(t, m)
}

func TestHookRefusedBeforeAnythingRuns(t *testing.T) {
	m := testMount(t)
	h := newHooks(t)
	h.hook(t, "10-ok", "")
	bad := h.hook(t, "20-writable", "")
	if err := os.Chmod(bad, 0o757); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := FreezeWithOptions(ctx, Options{Mounts: []string{m}, HookDir: h.dir})
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusHookRefused || e.Op != "plan" {
		t.Fatalf("Freeze with a world-writable hook: %#v", err)
	}
	if !strings.Contains(e.Message, "hook refused: ") || !strings.Contains(e.Message, bad) {
		t.Errorf("message: %q", e.Message)
	}
	// Plan verifies the hooks too, and runs none.
	if _, err := Plan(Options{Mounts: []string{m}, HookDir: h.dir}); !errors.Is(err, StatusHookRefused) {
		t.Errorf("Plan with a world-writable hook: %v", err)
	}
	h.expect(t)
	t.Logf("refused: %v", err)
	assertWritable(t, m)
}

func TestHookCloseWithoutThawStillResumes(t *testing.T) {
	m := testMount(t)
	h := newHooks(t)
	h.hook(t, "10-app", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := FreezeWithOptions(ctx, Options{Mounts: []string{m}, HookDir: h.dir})
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	w := assertBlocked(t, m)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !completes(t, w, 10*time.Second) {
		t.Fatal("the blocked write did not complete after Close")
	}
	// Frozen and thawed in time, not acknowledged: the application resumes with "thaw",
	// exactly once.
	s.Close()
	h.expect(t, "10-app freeze", "10-app thaw")
	rep := s.Report()
	if rep.Status != StatusSnapshotFailed || rep.Consistency != ConsistencyNone || rep.HookCalls != 2 {
		t.Errorf("report: %+v", rep)
	}
}
