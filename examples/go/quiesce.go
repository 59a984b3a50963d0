// Package quiesce freezes Linux filesystems (FIFREEZE) around a disk snapshot and thaws them
// again, over the C ABI of libquiesce (include/quiesce.h). Nothing stays frozen: a guardian
// process forked by the library thaws everything at the deadline, even if Thaw is never
// called, and at once if this process dies (even by SIGKILL).
//
//	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
//	defer cancel()
//	s, err := quiesce.Freeze(ctx, "/srv/data")
//	if err != nil {
//		return err // nothing is frozen
//	}
//	defer s.Close() // thaws (as not acknowledged) if Thaw was not reached
//	if err := takeSnapshot(); err != nil { // must not write to the frozen filesystems
//		s.Abort()
//		return err
//	}
//	report, err := s.Thaw() // nil error: the snapshot is file-system-consistent
//
// Linking: the package links libquiesce.a statically from lib/linux-amd64/ inside the module
// (put there by vendor-lib.sh; see README.md); no CGO_* variable is needed. Freezing needs
// CAP_SYS_ADMIN.
package quiesce

/*
#cgo CFLAGS: -I${SRCDIR}/lib/include
#cgo linux,amd64 LDFLAGS: -L${SRCDIR}/lib/linux-amd64 -l:libquiesce.a -lpthread -lm -ldl
#include <stdlib.h>
#include "quiesce.h"
*/
import "C"

import (
	// The directories holding the header and the library: imported so that `go mod vendor`
	// copies them (they hold no Go code).
	_ "example.com/quiesce/lib/include"
	_ "example.com/quiesce/lib/linux-amd64"

	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// DefaultTimeout is the deadline of a session whose context has no deadline and whose
// Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// MaxTimeout is the longest deadline the library accepts (one hour).
const MaxTimeout = time.Duration(C.QUIESCE_MAX_TIMEOUT_MS) * time.Millisecond

// MaxTargets is the most filesystems one session freezes.
const MaxTargets = int(C.QUIESCE_MAX_TARGETS)

// DefaultHookTimeout is the limit of each hook call when Options.HookTimeout is zero (30
// minutes, as the Alibaba Cloud snapshot plugin's ScriptTimeoutInSeconds).
const DefaultHookTimeout = time.Duration(C.QUIESCE_DEFAULT_HOOK_TIMEOUT_MS) * time.Millisecond

// MaxHookTimeout is the longest Options.HookTimeout the library accepts (24 hours).
const MaxHookTimeout = time.Duration(C.QUIESCE_MAX_HOOK_TIMEOUT_MS) * time.Millisecond

// HeaderABIVersion is the ABI version of the quiesce.h this package was compiled with;
// ABIVersion() is that of the library linked in. Sessions refuse to start if they differ.
const HeaderABIVersion = uint32(C.QUIESCE_ABI_VERSION)

// Version returns the library's version, e.g. "0.1.0".
func Version() string { return C.GoString(C.quiesce_version()) }

// ABIVersion returns the ABI version of the library linked in.
func ABIVersion() uint32 { return uint32(C.quiesce_abi_version()) }

// SessionSize returns the bytes of storage the linked library needs for one session.
func SessionSize() int { return int(C.quiesce_session_size()) }

// checkLibrary compares the library linked in with the header compiled against.
var checkLibrary = sync.OnceValue(func() error {
	if got, want := uint32(C.quiesce_abi_version()), uint32(C.QUIESCE_ABI_VERSION); got != want {
		return fmt.Errorf("quiesce: the library has ABI version %d, this package was built for %d", got, want)
	}
	if got, want := uintptr(C.quiesce_session_size()), unsafe.Sizeof(C.quiesce_session{}); got != want {
		return fmt.Errorf("quiesce: the library needs %d bytes of session storage, quiesce.h says %d", got, want)
	}
	if got, want := uintptr(C.quiesce_session_align()), unsafe.Alignof(C.quiesce_session{}); got > want {
		return fmt.Errorf("quiesce: the library needs session storage aligned to %d, quiesce.h says %d", got, want)
	}
	return nil
})

// Options says what a session freezes and for how long.
type Options struct {
	// Mounts are the mount points to freeze (each must be the root of a mount), or with All
	// the ones to leave out. At most MaxTargets.
	Mounts []string
	// All freezes every freezable, writable filesystem except Mounts.
	All bool
	// Disks selects by disk instead of by mount point: the filesystems on these disks are
	// frozen. A disk is a block device path ("/dev/vdb", a "/dev/disk/by-id/..." link) or
	// "serial:VALUE" (with the clouds' volume-id forms). Mounts must then be empty. At most
	// 16.
	Disks []string
	// ExcludeDisks selects the filesystems on every disk but these (not with Disks).
	ExcludeDisks []string
	// AllowPartialGroup leaves out (not covered) a filesystem only partly on the selected
	// disks instead of failing with StatusPartialGroup.
	AllowPartialGroup bool
	// SkipFrozen skips a filesystem already frozen by another holder (its target is then
	// OutcomeNotCovered) instead of failing with StatusFrozenByOther.
	SkipFrozen bool
	// NoPresync turns the pre-sync off. By default every target is synced right before the
	// first FIFREEZE (in parallel, in the freezer processes, waiting at most the timeout and
	// no more than 10 s), so that dirty data is flushed while writers still run and the
	// frozen window is short.
	NoPresync bool
	// Sequential freezes one filesystem after another. By default filesystems that do not
	// depend on each other (no loop image of one stored on another) are frozen at once.
	Sequential bool
	// Timeout is the deadline, counted from the first FIFREEZE; zero means the context's
	// deadline, or DefaultTimeout if it has none. With both, the shorter one holds.
	Timeout time.Duration

	// HookDir is a directory of application hooks ("" for none): its executables, in
	// byte-wise name order, run with the argument "freeze" in Freeze, before the first
	// FIFREEZE; the ones that got "freeze" run again in reverse order after the last FITHAW
	// (in Thaw, Abort or Close, or in Freeze if the freeze fails) with "thaw" (everything was
	// frozen and thawed in time) or "freeze-failed". The hooks, the directory and every
	// directory above them must belong to root and not be writable by group or others, and
	// no component may be a symbolic link: otherwise the session fails with
	// StatusHookRefused before anything runs. The time the hooks take before the freeze is
	// not part of the deadline.
	HookDir string
	// PreScript is a script run with "freeze" before the directory's hooks ("" for none).
	PreScript string
	// PostScript is a script run with "thaw" or "freeze-failed" after the directory's hooks
	// ("" for none). The same file as PreScript makes one hook with both calls.
	PostScript string
	// HookTimeout is the limit of each hook call (zero: DefaultHookTimeout; at most
	// MaxHookTimeout); at expiry the hook's process group is killed.
	HookTimeout time.Duration
	// RequireAppConsistent makes a hook that fails before the freeze stop the session:
	// nothing is frozen, the hooks that got "freeze" get "freeze-failed", and Freeze fails
	// with StatusNotAppConsistent. Without it, the snapshot is then file-system-consistent
	// only (Report.ConsistencyReason says why).
	RequireAppConsistent bool
}

// Target is one filesystem of a session, in freeze order (thaw order is the reverse).
type Target struct {
	Path       string // the mount point it is frozen through
	FsType     string // "ext4", "xfs", ...
	Source     string // the mount source, e.g. "/dev/loop0"
	Major      uint32 // the superblock's device number
	Minor      uint32
	MountIndex int     // the index into Options.Mounts that named it, or -1
	Outcome    Outcome // what happened to it
	Errno      syscall.Errno
	// FreezeLatency is how long its FIFREEZE took; ThawLatency its FITHAW.
	FreezeLatency time.Duration
	ThawLatency   time.Duration
}

// Skip is a mount left out of the plan, and why.
type Skip struct {
	Path       string
	FsType     string
	Reason     string
	Major      uint32
	Minor      uint32
	MountIndex int // the index into Options.Mounts that named it, or -1
}

// Report describes a session: final once it has ended (Thaw, Abort, Close, a failure).
type Report struct {
	Status       Status      // StatusOK or the failure
	Consistency  Consistency // how far the snapshot can be trusted
	Acknowledged bool        // the snapshot was acknowledged while everything was frozen
	Ended        bool        // the session is over
	Timeout      time.Duration
	// Window is the time from the first FIFREEZE to the last FITHAW (0 if none).
	Window time.Duration
	// Presync is how long the syncfs of every target before the first FIFREEZE took.
	Presync      time.Duration
	Targets      []Target
	Skips        []Skip
	SkipsDropped int // skipped mounts beyond the listed ones, counted only
	NotCovered   int // targets the snapshot does not cover (frozen by another holder)
	// ConsistencyReason says why the snapshot is file-system-consistent and not
	// application-consistent ("no application hooks were configured", or which hook failed
	// before the freeze, with its exit status); "" at the other levels.
	ConsistencyReason string
	// HookCalls is how many hook calls were made ("freeze", "thaw" and "freeze-failed");
	// HookFailures how many of them failed.
	HookCalls    int
	HookFailures int
	// Hooks is each hook call's result, in the order they were made (the quiesce command's
	// JSON hooks[]).
	Hooks []HookCall
	// Phases is how long each phase of the session took (quiesce_phases; the quiesce
	// command's JSON phases): 0 for a phase that did not run.
	Phases Phases
	// Message explains the outcome once the session has ended (Ended): the library's
	// message, the same text as the quiesce command's report for the same outcome, also for
	// StatusOK ("froze 1 filesystem, snapshot acknowledged, thawed: ..."); "" before.
	Message string
}

// Phases is where a session's time went (quiesce_phases_info; the quiesce command's JSON
// phases, there in microseconds). A phase that did not run (yet) is 0; one that ran is at
// least 1 ns. They do not overlap.
type Phases struct {
	Plan    time.Duration // planning (in Freeze): mount table, selection, descriptors, order
	Arm     time.Duration // CAP_SYS_ADMIN check, session machine, forking the guardian and the freezers, the session record
	Hooks   time.Duration // the hooks' calls: "freeze" before arming, "thaw" or "freeze-failed" after the thaw (0 without hooks)
	Presync time.Duration // the pre-sync (0 with Options.NoPresync, or left out because nothing was dirty)
	Freeze  time.Duration // from the first FIFREEZE until everything was frozen (or the freeze was given up)
	Wait    time.Duration // from everything frozen (Freeze returning) to the thaw: the caller's snapshot
	Thaw    time.Duration // the thaw of every target, in reverse order
	Finish  time.Duration // the helper processes released, the session record removed
}

// Named returns the phases in order with the names the quiesce command's JSON gives them
// ("plan", "arm", ...; there with the suffix "_us").
func (p Phases) Named() [8]NamedPhase {
	return [8]NamedPhase{
		{"plan", p.Plan}, {"arm", p.Arm}, {"hooks", p.Hooks}, {"presync", p.Presync},
		{"freeze", p.Freeze}, {"wait", p.Wait}, {"thaw", p.Thaw}, {"finish", p.Finish},
	}
}

// NamedPhase is one phase of Phases.Named.
type NamedPhase struct {
	Name     string
	Duration time.Duration
}

// HookCall is one call of one hook (quiesce_hook_call; the fields of the quiesce command's JSON
// hooks[]).
type HookCall struct {
	Name           string        // the file name (a directory's hook) or the path (pre and post scripts)
	Path           string        // the verified path that was run
	Source         string        // "pre-script", "post-script", "hook-dir"
	Phase          string        // the argument: "freeze", "thaw", "freeze-failed"
	End            string        // "exited", "signaled", "timed-out", "cancelled", "not-started"
	Succeeded      bool          // exit status 0
	ExitStatus     int           // its exit status, or -1 if it did not exit
	Signal         int           // the signal that ended it, or 0
	Errno          syscall.Errno // why it could not be started, or 0
	TimedOut       bool          // its timeout passed: its process group was killed
	Result         string        // how it ended, for people: "exit status 0", "killed by signal 9", ...
	Duration       time.Duration // how long it ran
	Output         string        // the first bytes (at most 64 KiB) of its stdout and stderr, interleaved
	OutputDropped  int           // bytes of output beyond those, read and dropped
	OutputHeldOpen bool          // it exited but a process it left behind still held its output open
}

const (
	stateNone = iota // a zero Session, not from Freeze
	stateFrozen
	stateEnded
)

var errNoSession = &Error{
	Op: "thaw", Status: StatusUsage, MountIndex: -1, TargetIndex: -1,
	Message: "not a session: use the *Session that Freeze returned",
}

// Session is a set of frozen filesystems, from Freeze until Thaw, Abort or Close. Its
// methods are safe to call from several goroutines (a mutex serialises them), but a session
// is meant to be driven by one: freeze, snapshot, thaw.
type Session struct {
	mu      sync.Mutex
	storage *C.quiesce_session // Go memory (no Go pointers inside), never moved; nil once cleaned up
	mounts  []string
	state   int
	report  *Report // final, once ended
	err     error   // final, once ended (nil for StatusOK)
	stop    func() bool
}

// Freeze freezes the filesystems mounted at mounts (each must be a mount point) and returns
// the frozen session: take the snapshot, then call Thaw (or Abort). The deadline is the
// context's (DefaultTimeout if it has none), counted from the first FIFREEZE, at most
// MaxTimeout. On error nothing is frozen (everything frozen so far was thawed again) and the
// error is an *Error.
//
// Cancelling ctx (or its deadline passing) while Freeze runs ends it promptly (quiesce_cancel):
// a hook running before the freeze is killed, a FIFREEZE stuck on stalled storage is abandoned
// (its helper thaws it as soon as it returns), everything frozen is thawed, and the error matches
// both StatusCancelled and ctx.Err().
//
// Cancelling ctx while frozen thaws at once, as not acknowledged (Thaw then returns an error
// matching both StatusSnapshotFailed and context.Canceled). When the deadline passes, the
// guardian process thaws everything at once, even if Thaw is never called, and a later Thaw
// returns StatusTimeout. A snapshot already running cannot be interrupted: it just no longer
// counts.
func Freeze(ctx context.Context, mounts ...string) (*Session, error) {
	return FreezeWithOptions(ctx, Options{Mounts: mounts})
}

// FreezeWithOptions is Freeze with Options.
func FreezeWithOptions(ctx context.Context, opts Options) (*Session, error) {
	timeout, err := timeoutFor(ctx, opts, time.Now())
	if err != nil {
		return nil, err
	}
	s, err := plan(opts, timeout)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.freezeCancellable(ctx); st != StatusOK {
		e := s.lastError("freeze", st)
		e.Report = s.readReport()
		if st == StatusCancelled {
			e.Cause = ctx.Err()
		}
		s.end(e.Report, e)
		return nil, e
	}
	s.state = stateFrozen
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		s.finish(false, "freeze", err)
		return nil, s.err
	}
	s.stop = context.AfterFunc(ctx, func() {
		err := ctx.Err()
		if !errors.Is(err, context.Canceled) {
			return // the deadline: the library's own deadline and guardian handle it
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.state == stateFrozen {
			s.finish(false, "cancel", err)
		}
	})
	runtime.SetFinalizer(s, (*Session).finalize)
	return s, nil
}

// Plan plans a session without freezing anything: the targets it would freeze, in order
// (OutcomeNotAttempted), and the mounts it would skip. Errors are as for Freeze.
func Plan(opts Options) (*Report, error) {
	timeout, err := timeoutFor(context.Background(), opts, time.Now())
	if err != nil {
		return nil, err
	}
	s, err := plan(opts, timeout)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := s.readReport()
	s.cleanup()
	return rep, nil
}

// Thaw acknowledges the snapshot (it was taken while everything was frozen) and thaws
// everything in reverse order; with hooks, they then get "thaw" (or "freeze-failed"). A nil
// error means StatusOK: the snapshot is file-system-consistent, or application-consistent
// when the hooks succeeded (Report.Consistency). Otherwise the *Error says why not
// (StatusTimeout: the deadline passed first and everything was thawed then; StatusSuspect:
// someone else thawed a filesystem during the window; StatusThawHookFailed: a hook failed
// after the thaw; ...). The report is returned in both cases. Calling it again, or after
// Abort or Close, returns the same report and the session's final error.
func (s *Session) Thaw() (*Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateNone:
		return nil, errNoSession
	case stateFrozen:
		s.finish(true, "thaw", nil)
	}
	return s.report, s.err
}

// Abort thaws everything without acknowledging the snapshot (it failed, or was not taken).
// The report's status is StatusSnapshotFailed (or StatusTimeout if the deadline passed
// first); the error is nil unless something went wrong beyond that (a thaw failed, ...).
func (s *Session) Abort() (*Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateNone:
		return nil, errNoSession
	case stateFrozen:
		s.finish(false, "abort", nil)
	}
	return s.report, abortError(s.err)
}

// Close ends the session: if it is still frozen, it is thawed as not acknowledged (as
// Abort). Safe to call more than once; meant for defer.
func (s *Session) Close() error {
	_, err := s.Abort()
	return err
}

// abortError drops the expected statuses of a session that was not acknowledged.
func abortError(err error) error {
	var e *Error
	if errors.As(err, &e) && (e.Status == StatusSnapshotFailed || e.Status == StatusTimeout) {
		return nil
	}
	return err
}

// Report returns the session's report so far (final once it has ended).
func (s *Session) Report() *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.storage == nil {
		return s.report
	}
	return s.readReport()
}

// Targets returns the session's filesystems in freeze order, with their outcomes so far.
func (s *Session) Targets() []Target {
	if r := s.Report(); r != nil {
		return r.Targets
	}
	return nil
}

// EmergencyThaw thaws the filesystems mounted at mounts, with no session: e.g. at start-up
// after a crash. Each must be a mount point (a directory inside a filesystem is refused, so
// that its filesystem is never thawed by accident); one that is not frozen is fine. Returns
// how many were actually thawed; on StatusBadTarget the others were still thawed.
func EmergencyThaw(mounts ...string) (int, error) {
	if i, err := checkPaths(mounts); err != nil {
		return 0, usageError("emergency-thaw", i, mounts, err.Error())
	}
	arr, free := cStrings(mounts)
	defer free()
	var thawed C.size_t
	st := Status(C.quiesce_emergency_thaw(arr, C.size_t(len(mounts)), &thawed))
	if st != StatusOK {
		return int(thawed), &Error{
			Op: "emergency-thaw", Status: st, MountIndex: -1, TargetIndex: -1,
			Message: fmt.Sprintf("%s (%d of %d thawed)", st.Message(), int(thawed), len(mounts)),
		}
	}
	return int(thawed), nil
}

// timeoutFor derives the session's deadline from ctx and opts.
func timeoutFor(ctx context.Context, opts Options, now time.Time) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		st := StatusInterrupted
		if errors.Is(err, context.DeadlineExceeded) {
			st = StatusTimeout
		}
		return 0, &Error{
			Op: "freeze", Status: st, MountIndex: -1, TargetIndex: -1, Cause: err,
			Message: "the context was done before the freeze started; nothing was frozen",
		}
	}
	if opts.Timeout < 0 || opts.Timeout > MaxTimeout {
		return 0, usageError("freeze", -1, nil,
			fmt.Sprintf("Options.Timeout %v: give 1ms to %v (or 0 for the context's deadline)", opts.Timeout, MaxTimeout))
	}
	t := opts.Timeout
	if dl, ok := ctx.Deadline(); ok {
		left := dl.Sub(now)
		if left <= 0 {
			return 0, &Error{
				Op: "freeze", Status: StatusTimeout, MountIndex: -1, TargetIndex: -1,
				Cause:   context.DeadlineExceeded,
				Message: "the context's deadline has passed before the freeze started; nothing was frozen",
			}
		}
		if t == 0 || left < t {
			t = left
		}
	}
	if t == 0 {
		t = DefaultTimeout
	}
	if t > MaxTimeout {
		t = MaxTimeout
	}
	if t < time.Millisecond {
		t = time.Millisecond
	}
	return t.Truncate(time.Millisecond), nil
}

// plan sets up a session in fresh Go-allocated storage; on failure the storage is cleaned up.
func plan(opts Options, timeout time.Duration) (*Session, error) {
	if err := checkLibrary(); err != nil {
		return nil, err
	}
	if i, err := checkPaths(opts.Mounts); err != nil {
		return nil, usageError("plan", i, opts.Mounts, err.Error())
	}
	if err := checkHooks(opts); err != nil {
		return nil, usageError("plan", -1, nil, err.Error())
	}
	if err := checkDisks(opts); err != nil {
		return nil, usageError("plan", -1, nil, err.Error())
	}
	var cfg C.quiesce_config
	if st := Status(C.quiesce_config_init(&cfg)); st != StatusOK {
		return nil, &Error{Op: "plan", Status: st, MountIndex: -1, TargetIndex: -1}
	}
	if opts.All {
		cfg.flags |= C.QUIESCE_FLAG_ALL
	}
	if opts.NoPresync {
		cfg.flags |= C.QUIESCE_FLAG_NO_PRESYNC
	}
	if opts.Sequential {
		cfg.flags |= C.QUIESCE_FLAG_SEQUENTIAL
	}
	if opts.SkipFrozen {
		cfg.flags |= C.QUIESCE_FLAG_SKIP_FROZEN
	}
	if opts.RequireAppConsistent {
		cfg.flags |= C.QUIESCE_FLAG_REQUIRE_APP_CONSISTENT
	}
	if opts.AllowPartialGroup {
		cfg.flags |= C.QUIESCE_FLAG_ALLOW_PARTIAL_GROUP
	}
	// The hook paths in C memory, read by quiesce_session_init only.
	for _, h := range []struct {
		path  string
		field **C.char
	}{{opts.HookDir, &cfg.hook_dir}, {opts.PreScript, &cfg.pre_script}, {opts.PostScript, &cfg.post_script}} {
		if h.path != "" {
			p := C.CString(h.path)
			defer C.free(unsafe.Pointer(p))
			*h.field = p
		}
	}
	if opts.HookTimeout > 0 {
		cfg.hook_timeout_ms = C.uint32_t(max(opts.HookTimeout/time.Millisecond, 1))
	}
	cfg.timeout_ms = C.uint32_t(timeout / time.Millisecond)
	arr, free := cStrings(opts.Mounts)
	defer free()
	cfg.mounts = arr
	cfg.mount_count = C.size_t(len(opts.Mounts))
	disks, freeDisks := cStrings(opts.Disks)
	defer freeDisks()
	cfg.disks = disks
	cfg.disk_count = C.size_t(len(opts.Disks))
	excl, freeExcl := cStrings(opts.ExcludeDisks)
	defer freeExcl()
	cfg.exclude_disks = excl
	cfg.exclude_disk_count = C.size_t(len(opts.ExcludeDisks))

	s := &Session{storage: new(C.quiesce_session), mounts: append([]string(nil), opts.Mounts...)}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status(C.quiesce_session_init(s.storage, C.size_t(unsafe.Sizeof(*s.storage)), &cfg))
	if st != StatusOK {
		e := s.lastError("plan", st)
		s.cleanup()
		return nil, e
	}
	return s, nil
}

// freezeCancellable runs quiesce_freeze while a goroutine watches ctx: when ctx is done (cancelled,
// or past its deadline) before the call returns, it calls quiesce_cancel, which makes a hook
// running before the freeze, the pre-sync or a FIFREEZE stuck on stalled storage end at once:
// the call returns StatusCancelled, everything thawed. The goroutine has ended when this returns
// (the storage is never cleaned up under it). Called with s.mu held.
func (s *Session) freezeCancellable(ctx context.Context) Status {
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		select {
		case <-ctx.Done():
			C.quiesce_cancel(s.storage)
		case <-done:
		}
	}()
	st := Status(C.quiesce_freeze(s.storage))
	close(done)
	watcher.Wait()
	return st
}

// finish thaws a frozen session (acknowledged or not) and ends it. Called with s.mu held.
func (s *Session) finish(acknowledged bool, op string, cause error) {
	ack := C.int(0)
	if acknowledged {
		ack = 1
	}
	st := Status(C.quiesce_thaw(s.storage, ack))
	rep := s.readReport()
	var err error
	if st != StatusOK || cause != nil {
		e := s.lastError(op, st)
		e.Report = rep
		e.Cause = cause
		if cause != nil {
			e.Message = "the context was cancelled while frozen: thawed, the snapshot was not acknowledged (" + e.Message + ")"
		}
		err = e
	}
	s.end(rep, err)
}

// end records the final report and error, and releases the storage. Called with s.mu held.
func (s *Session) end(rep *Report, err error) {
	s.report = rep
	s.err = err
	s.state = stateEnded
	s.cleanup()
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// cleanup releases everything the library holds for the session (thawing first if still
// frozen). Called with s.mu held.
func (s *Session) cleanup() {
	if s.storage != nil {
		C.quiesce_session_cleanup(s.storage)
		s.storage = nil
	}
}

// finalize is a safety net for a session dropped without Thaw, Abort or Close.
func (s *Session) finalize() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateFrozen {
		s.finish(false, "close", nil)
	}
	s.cleanup()
}

// lastError reads the session's last failure. Called with s.mu held and the storage live.
func (s *Session) lastError(op string, st Status) *Error {
	e := &Error{Op: op, Status: st, MountIndex: -1, TargetIndex: -1}
	var info C.quiesce_error_info
	info.size = C.size_t(unsafe.Sizeof(info))
	if Status(C.quiesce_error(s.storage, &info)) == StatusOK && Status(info.status) != StatusOK {
		e.Errno = syscall.Errno(info.os_error)
		e.MountIndex = int(info.mount_index)
		e.TargetIndex = int(info.target_index)
		e.Message = C.GoString(info.message)
		if e.MountIndex >= 0 && e.MountIndex < len(s.mounts) {
			e.Mount = s.mounts[e.MountIndex]
		}
	}
	if e.Message == "" {
		e.Message = st.Message()
	}
	return e
}

// readReport reads the report, targets and skips. Called with s.mu held and the storage live.
func (s *Session) readReport() *Report {
	var r C.quiesce_report_info
	r.size = C.size_t(unsafe.Sizeof(r))
	if Status(C.quiesce_report(s.storage, &r)) != StatusOK {
		return nil
	}
	rep := &Report{
		Status:       Status(r.status),
		Consistency:  Consistency(r.consistency),
		Acknowledged: r.acknowledged != 0,
		Ended:        r.ended != 0,
		Timeout:      time.Duration(r.timeout_ms) * time.Millisecond,
		Window:       time.Duration(r.window_ns),
		Presync:      time.Duration(r.presync_ns),
		SkipsDropped: int(r.skips_dropped),
		NotCovered:   int(r.not_covered),
		HookCalls:    int(r.hook_calls),
		HookFailures: int(r.hook_failures),
	}
	if r.consistency_reason != nil {
		rep.ConsistencyReason = C.GoString(r.consistency_reason)
	}
	var p C.quiesce_phases_info
	p.size = C.size_t(unsafe.Sizeof(p))
	if Status(C.quiesce_phases(s.storage, &p)) == StatusOK {
		rep.Phases = Phases{
			Plan:    time.Duration(p.plan_ns),
			Arm:     time.Duration(p.arm_ns),
			Hooks:   time.Duration(p.hooks_ns),
			Presync: time.Duration(p.presync_ns),
			Freeze:  time.Duration(p.freeze_ns),
			Wait:    time.Duration(p.wait_ns),
			Thaw:    time.Duration(p.thaw_ns),
			Finish:  time.Duration(p.finish_ns),
		}
	}
	if rep.Ended {
		var info C.quiesce_error_info
		info.size = C.size_t(unsafe.Sizeof(info))
		if Status(C.quiesce_error(s.storage, &info)) == StatusOK && Status(info.status) == rep.Status {
			rep.Message = C.GoString(info.message)
		}
	}
	for i := 0; i < int(r.target_count); i++ {
		var t C.quiesce_target_info
		t.size = C.size_t(unsafe.Sizeof(t))
		if Status(C.quiesce_target(s.storage, C.size_t(i), &t)) != StatusOK {
			continue
		}
		rep.Targets = append(rep.Targets, Target{
			Path:          C.GoString(t.path),
			FsType:        C.GoString(t.fs_type),
			Source:        C.GoString(t.source),
			Major:         uint32(t.dev_major),
			Minor:         uint32(t.dev_minor),
			MountIndex:    int(t.mount_index),
			Outcome:       Outcome(t.outcome),
			Errno:         syscall.Errno(t.os_error),
			FreezeLatency: time.Duration(t.freeze_ns),
			ThawLatency:   time.Duration(t.thaw_ns),
		})
	}
	for i := 0; i < int(r.hook_calls); i++ {
		var h C.quiesce_hook_call_info
		h.size = C.size_t(unsafe.Sizeof(h))
		if Status(C.quiesce_hook_call(s.storage, C.size_t(i), &h)) != StatusOK {
			continue
		}
		rep.Hooks = append(rep.Hooks, HookCall{
			Name:           C.GoString(h.name),
			Path:           C.GoString(h.path),
			Source:         C.GoString(h.source),
			Phase:          C.GoString(h.phase),
			End:            C.GoString(h.end),
			Succeeded:      h.succeeded != 0,
			ExitStatus:     int(h.exit_status),
			Signal:         int(h.signal),
			Errno:          syscall.Errno(h.os_error),
			TimedOut:       h.timed_out != 0,
			Result:         C.GoString(h.result),
			Duration:       time.Duration(h.duration_us) * time.Microsecond,
			Output:         C.GoStringN(h.output, C.int(h.output_len)),
			OutputDropped:  int(h.output_dropped),
			OutputHeldOpen: h.output_held_open != 0,
		})
	}
	for i := 0; i < int(r.skip_count); i++ {
		var k C.quiesce_skip_info
		k.size = C.size_t(unsafe.Sizeof(k))
		if Status(C.quiesce_skip(s.storage, C.size_t(i), &k)) != StatusOK {
			continue
		}
		rep.Skips = append(rep.Skips, Skip{
			Path:       C.GoString(k.path),
			FsType:     C.GoString(k.fs_type),
			Reason:     C.GoString(k.reason),
			Major:      uint32(k.dev_major),
			Minor:      uint32(k.dev_minor),
			MountIndex: int(k.mount_index),
		})
	}
	return rep
}

// checkPaths refuses paths that C would read differently: empty, or with a NUL byte (C
// would stop at it: "/\x00data" would name "/").
func checkPaths(paths []string) (int, error) {
	if len(paths) > MaxTargets {
		return -1, fmt.Errorf("%d mount points named; at most %d", len(paths), MaxTargets)
	}
	for i, p := range paths {
		if p == "" {
			return i, errors.New("an empty mount point path")
		}
		if strings.IndexByte(p, 0) >= 0 {
			return i, fmt.Errorf("mount point %q contains a NUL byte", p)
		}
	}
	return -1, nil
}

// checkDisks refuses disk selections that C would read differently (an empty DISK, a NUL
// byte) or that are too long.
func checkDisks(opts Options) error {
	for _, l := range []struct {
		name  string
		disks []string
	}{{"Disks", opts.Disks}, {"ExcludeDisks", opts.ExcludeDisks}} {
		if len(l.disks) > 16 {
			return fmt.Errorf("%s: %d disks named; at most 16", l.name, len(l.disks))
		}
		for i, d := range l.disks {
			if d == "" || strings.IndexByte(d, 0) >= 0 {
				return fmt.Errorf("%s[%d] %q is empty or contains a NUL byte", l.name, i, d)
			}
		}
	}
	return nil
}

// checkHooks refuses hook options that C would read differently (a NUL byte in a path) or
// that are out of range.
func checkHooks(opts Options) error {
	for _, h := range []struct{ name, path string }{
		{"HookDir", opts.HookDir}, {"PreScript", opts.PreScript}, {"PostScript", opts.PostScript},
	} {
		if strings.IndexByte(h.path, 0) >= 0 {
			return fmt.Errorf("Options.%s %q contains a NUL byte", h.name, h.path)
		}
	}
	if opts.HookTimeout < 0 || opts.HookTimeout > MaxHookTimeout {
		return fmt.Errorf("Options.HookTimeout %v: give 1ms to %v (or 0 for %v)",
			opts.HookTimeout, MaxHookTimeout, DefaultHookTimeout)
	}
	return nil
}

func usageError(op string, i int, mounts []string, msg string) *Error {
	e := &Error{Op: op, Status: StatusUsage, MountIndex: i, TargetIndex: -1, Message: msg}
	if i >= 0 && i < len(mounts) {
		e.Mount = mounts[i]
	}
	return e
}

// cStrings copies paths into C memory (an array of C strings, never empty, so never NULL):
// Go memory passed to C must not hold Go pointers.
func cStrings(paths []string) (**C.char, func()) {
	n := len(paths)
	if n == 0 {
		n = 1
	}
	arr := (**C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	if arr == nil {
		panic("quiesce: out of memory")
	}
	elems := unsafe.Slice(arr, n)
	for i, p := range paths {
		elems[i] = C.CString(p)
	}
	return arr, func() {
		for i := range paths {
			C.free(unsafe.Pointer(elems[i]))
		}
		C.free(unsafe.Pointer(arr))
	}
}
