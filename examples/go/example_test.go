package quiesce_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/exec"
	"time"

	"example.com/quiesce"
)

// Freeze a filesystem, take a snapshot of its device, thaw. (Compiled, not run: it would
// freeze /srv/data.)
func ExampleFreeze() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := quiesce.Freeze(ctx, "/srv/data")
	if err != nil {
		log.Fatal(err) // nothing is frozen
	}
	defer s.Close() // thaws, not acknowledged, if Thaw is not reached
	// The snapshot: must not write to /srv/data (it would block until the deadline).
	if err := exec.Command("lvcreate", "-s", "-n", "snap", "-L", "1G", "vg/data").Run(); err != nil {
		s.Abort()
		log.Fatal(err)
	}
	report, err := s.Thaw()
	switch {
	case err == nil:
		fmt.Printf("consistent snapshot; frozen for %v\n", report.Window)
	case errors.Is(err, quiesce.StatusTimeout):
		log.Printf("the snapshot took longer than the deadline: discard it (%v)", err)
	default:
		log.Printf("discard the snapshot: %v", err)
	}
	for _, t := range report.Targets {
		fmt.Printf("%s (%s): %s, freeze %v, thaw %v\n", t.Path, t.FsType, t.Outcome,
			t.FreezeLatency, t.ThawLatency)
	}
}

// List what would be frozen, freezing nothing.
func ExamplePlan() {
	report, err := quiesce.Plan(quiesce.Options{All: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range report.Targets {
		fmt.Println("would freeze", t.Path, t.FsType)
	}
	for _, k := range report.Skips {
		fmt.Println("would skip", k.Path, k.Reason)
	}
}

// Details of a failure.
func ExampleError() {
	_, err := quiesce.Freeze(context.Background(), "/srv/data/not-a-mount-point")
	var e *quiesce.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Mount, e.Errno, e.Message)
	}
}
