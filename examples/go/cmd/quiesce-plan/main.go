// Command quiesce-plan prints what a session would freeze, in freeze order, one mount point a
// line, and freezes nothing: a small user of quiesce.Plan. Select by mount point (the
// arguments) or by disk:
//
//	quiesce-plan [-disk DISK]... [-exclude-disk DISK]... [-allow-partial-group] [MOUNT...]
//
// On a refusal it prints the error and exits with the library's status (8: a filesystem spans
// disks outside the group).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	quiesce "example.com/quiesce"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func main() {
	var disks, exclude list
	flag.Var(&disks, "disk", "freeze the filesystems on this disk (repeatable)")
	flag.Var(&exclude, "exclude-disk", "freeze the filesystems on every disk but this one (repeatable)")
	partial := flag.Bool("allow-partial-group", false, "leave out a filesystem only partly on the disks")
	flag.Parse()
	rep, err := quiesce.Plan(quiesce.Options{
		Mounts:            flag.Args(),
		Disks:             disks,
		ExcludeDisks:      exclude,
		AllowPartialGroup: *partial,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "quiesce-plan:", err)
		var e *quiesce.Error
		if errors.As(err, &e) {
			os.Exit(int(e.Status))
		}
		os.Exit(70)
	}
	for _, t := range rep.Targets {
		fmt.Println(t.Path)
	}
}
