package quiesce

// #include "quiesce.h"
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Status is a session's status: StatusOK or the reason it failed. The values are those of
// the C ABI (QUIESCE_OK, QUIESCE_TIMEOUT, ...) and the exit statuses of the quiesce command.
//
// A Status is also an error, usable as a sentinel with errors.Is:
//
//	if errors.Is(err, quiesce.StatusTimeout) { ... }
type Status uint32

// The statuses.
const (
	StatusOK               Status = C.QUIESCE_OK                 // frozen, acknowledged, thawed; file-system-consistent
	StatusUsage            Status = C.QUIESCE_USAGE              // bad usage or parameters
	StatusBadTarget        Status = C.QUIESCE_BAD_TARGET         // a named path is not a mount point that can be opened
	StatusNotFreezable     Status = C.QUIESCE_NOT_FREEZABLE      // a named filesystem cannot be frozen
	StatusPermission       Status = C.QUIESCE_PERMISSION         // not permitted (needs CAP_SYS_ADMIN)
	StatusPlanRefused      Status = C.QUIESCE_PLAN_REFUSED       // the plan was refused (cycle, too many targets)
	StatusHookRefused      Status = C.QUIESCE_HOOK_REFUSED       // a hook failed the authenticity checks; nothing ran or was frozen
	StatusPartialGroup     Status = C.QUIESCE_PARTIAL_GROUP      // selection by disk: a filesystem spans disks outside the group; nothing frozen
	StatusFreezeFailed     Status = C.QUIESCE_FREEZE_FAILED      // a freeze failed; everything frozen before it was thawed
	StatusThawFailed       Status = C.QUIESCE_THAW_FAILED        // a thaw failed; a filesystem may still be frozen
	StatusTimeout          Status = C.QUIESCE_TIMEOUT            // the deadline passed before the acknowledgement; thawed
	StatusNotAcknowledged  Status = C.QUIESCE_NOT_ACKNOWLEDGED   // the controller went away without acknowledging
	StatusFrozenByOther    Status = C.QUIESCE_FROZEN_BY_OTHER    // a filesystem was already frozen by another holder
	StatusSuspect          Status = C.QUIESCE_SUSPECT            // someone else thawed a filesystem during the window
	StatusSnapshotFailed   Status = C.QUIESCE_SNAPSHOT_FAILED    // the snapshot failed (not acknowledged); thawed
	StatusInterrupted      Status = C.QUIESCE_INTERRUPTED        // interrupted by a signal; thawed
	StatusNotAppConsistent Status = C.QUIESCE_NOT_APP_CONSISTENT // Options.RequireAppConsistent, and a hook failed before the freeze; nothing frozen
	StatusThawHookFailed   Status = C.QUIESCE_THAW_HOOK_FAILED   // a hook failed after the thaw: the application may not have resumed
	StatusInternal         Status = C.QUIESCE_INTERNAL           // a bug in quiesce, or a panic caught at the ABI
)

// Statuses lists every status, in numeric order.
var Statuses = []Status{
	StatusOK, StatusUsage, StatusBadTarget, StatusNotFreezable, StatusPermission,
	StatusPlanRefused, StatusHookRefused, StatusPartialGroup, StatusFreezeFailed, StatusThawFailed, StatusTimeout,
	StatusNotAcknowledged, StatusFrozenByOther, StatusSuspect, StatusSnapshotFailed,
	StatusInterrupted, StatusNotAppConsistent, StatusThawHookFailed, StatusInternal,
}

// String returns the stable short name of the status ("ok", "timeout", "bad-target", ...;
// "unknown" for numbers that are not statuses).
func (s Status) String() string {
	return C.GoString(C.quiesce_status_name(C.uint32_t(s)))
}

// Message returns a one-line description of the status.
func (s Status) Message() string {
	return C.GoString(C.quiesce_status_message(C.uint32_t(s)))
}

// Error makes a Status usable as an error sentinel.
func (s Status) Error() string {
	return "quiesce: " + s.Message() + " [" + s.String() + "]"
}

// Outcome is what happened to one target filesystem (QUIESCE_OUTCOME_*).
type Outcome uint32

// The outcomes.
const (
	OutcomeNotAttempted     Outcome = C.QUIESCE_OUTCOME_NOT_ATTEMPTED
	OutcomeFrozen           Outcome = C.QUIESCE_OUTCOME_FROZEN
	OutcomeFreezeFailed     Outcome = C.QUIESCE_OUTCOME_FREEZE_FAILED
	OutcomeThawed           Outcome = C.QUIESCE_OUTCOME_THAWED
	OutcomeThawedByOther    Outcome = C.QUIESCE_OUTCOME_THAWED_BY_OTHER
	OutcomeThawFailed       Outcome = C.QUIESCE_OUTCOME_THAW_FAILED
	OutcomeInFlight         Outcome = C.QUIESCE_OUTCOME_IN_FLIGHT
	OutcomeThawedByGuardian Outcome = C.QUIESCE_OUTCOME_THAWED_BY_GUARDIAN
	OutcomeNotCovered       Outcome = C.QUIESCE_OUTCOME_NOT_COVERED
)

// String returns the stable name of the outcome ("thawed", "freeze-failed", ...).
func (o Outcome) String() string {
	return C.GoString(C.quiesce_outcome_name(C.uint32_t(o)))
}

// Consistency says how far a snapshot taken in the window can be trusted.
type Consistency uint32

// The consistency levels.
const (
	// ConsistencyNone: treat the copy as crash-consistent at best.
	ConsistencyNone Consistency = C.QUIESCE_CONSISTENCY_NONE
	// ConsistencyFilesystem: every target was frozen for the whole window and the snapshot
	// was acknowledged.
	ConsistencyFilesystem Consistency = C.QUIESCE_CONSISTENCY_FILESYSTEM
	// ConsistencyApplication: file-system-consistent, and the application hooks succeeded.
	ConsistencyApplication Consistency = C.QUIESCE_CONSISTENCY_APPLICATION
)

// String returns the stable name of the level ("filesystem-consistent", ...).
func (c Consistency) String() string {
	return C.GoString(C.quiesce_consistency_name(C.uint32_t(c)))
}

// Error is a failure of the library: its status, the errno behind it, the mount point or
// target concerned, and a message naming the input and the fix.
//
// errors.Is(err, quiesce.StatusX) matches its Status; errors.Is(err, syscall.ENOENT) (or
// fs.ErrNotExist, ...) matches its Errno; errors.Is(err, context.Canceled) matches when the
// context was cancelled while frozen.
type Error struct {
	// Op is the step that failed: "plan", "freeze", "thaw", "abort", "emergency-thaw".
	Op string
	// Status is the library's status.
	Status Status
	// Errno is the raw errno behind it, or 0.
	Errno syscall.Errno
	// MountIndex is the index into the mounts passed (Options.Mounts) of the mount point
	// concerned, or -1.
	MountIndex int
	// Mount is that mount point as passed, or "".
	Mount string
	// TargetIndex is the index (in freeze order, as in Report.Targets) of the filesystem
	// concerned, or -1.
	TargetIndex int
	// Message says what went wrong (from the library).
	Message string
	// Report is the session's report at the failure (what was frozen and thawed), or nil
	// when there is none (a failed plan, an emergency thaw).
	Report *Report
	// Cause is a Go-side cause (context.Canceled), or nil.
	Cause error
}

// Error formats the failure: "quiesce: OP: MESSAGE [STATUS-NAME, errno N]".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("quiesce: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(e.Status.Message())
	}
	b.WriteString(" [")
	b.WriteString(e.Status.String())
	if e.Errno != 0 {
		fmt.Fprintf(&b, ", errno %d: %s", int(e.Errno), e.Errno.Error())
	}
	b.WriteString("]")
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Is reports whether target is the Status of e.
func (e *Error) Is(target error) bool {
	s, ok := target.(Status)
	return ok && s == e.Status
}

// Unwrap returns the errno (if any) and the Go-side cause (if any).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Errno != 0 {
		errs = append(errs, e.Errno)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// StatusOf returns the Status of err: StatusOK for nil, the status of an *Error or a Status
// in its chain, or StatusInternal for any other error.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	var s Status
	if errors.As(err, &s) {
		return s
	}
	return StatusInternal
}
