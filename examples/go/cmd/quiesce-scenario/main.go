// Command quiesce-scenario is the Go front end of the scenario table (tests/scenarios.rs):
// the same session as the quiesce command's `freeze --stdin --json`, through the Go package.
//
//	quiesce-scenario -t TIMEOUT_MS [--hook-dir=DIR] [--hook-timeout-ms=MS] MOUNT...
//
// It freezes MOUNT..., prints "frozen", reads one line from stdin ("thaw" acknowledges the
// snapshot; anything else, or the end of input, does not), thaws, and prints one JSON line:
// {"status": N, "status_name": "...", "message": "...", "targets": [{"mount": "...",
// "outcome": "...", "errno": N}, ...], "phases": {"plan_us": N, ..., "finish_us": N}} (the
// phases as the quiesce command's, in microseconds; left out without a report). It exits
// with the status.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"example.com/quiesce"
)

type target struct {
	Mount   string `json:"mount"`
	Outcome string `json:"outcome"`
	Errno   int    `json:"errno"`
}

type result struct {
	Status     uint32            `json:"status"`
	StatusName string            `json:"status_name"`
	Message    string            `json:"message"`
	Targets    []target          `json:"targets"`
	Phases     map[string]uint64 `json:"phases,omitempty"`
}

func millis(arg, value string) time.Duration {
	ms, err := strconv.ParseUint(value, 10, 32)
	if err != nil || ms == 0 {
		fmt.Fprintf(os.Stderr, "quiesce-scenario: %s: give milliseconds, more than 0\n", arg)
		os.Exit(int(quiesce.StatusUsage))
	}
	return time.Duration(ms) * time.Millisecond
}

func main() {
	var opts quiesce.Options
	args := os.Args[1:]
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		args = args[1:]
		switch {
		case a == "-t" && len(args) > 0:
			opts.Timeout = millis(a, args[0])
			args = args[1:]
		case strings.HasPrefix(a, "--hook-dir="):
			opts.HookDir = strings.TrimPrefix(a, "--hook-dir=")
		case strings.HasPrefix(a, "--hook-timeout-ms="):
			opts.HookTimeout = millis(a, strings.TrimPrefix(a, "--hook-timeout-ms="))
		default:
			fmt.Fprintln(os.Stderr, "usage: quiesce-scenario -t TIMEOUT_MS [--hook-dir=DIR] [--hook-timeout-ms=MS] MOUNT...")
			os.Exit(int(quiesce.StatusUsage))
		}
	}
	opts.Mounts = args
	rep, err := session(opts)
	res := result{Status: uint32(quiesce.StatusOf(err)), Targets: []target{}}
	res.StatusName = quiesce.Status(res.Status).String()
	var e *quiesce.Error
	if errors.As(err, &e) {
		res.Message = e.Message
	} else if rep != nil {
		res.Message = rep.Message
	}
	if rep != nil {
		for _, t := range rep.Targets {
			res.Targets = append(res.Targets, target{t.Path, t.Outcome.String(), int(t.Errno)})
		}
		// The quiesce command's "phases": each phase in whole microseconds.
		res.Phases = map[string]uint64{}
		for _, p := range rep.Phases.Named() {
			res.Phases[p.Name+"_us"] = uint64(p.Duration / time.Microsecond)
		}
	}
	line, jerr := json.Marshal(res)
	if jerr != nil {
		fmt.Fprintln(os.Stderr, "quiesce-scenario:", jerr)
		os.Exit(int(quiesce.StatusInternal))
	}
	fmt.Println(string(line))
	os.Exit(int(res.Status))
}

// session freezes, waits for the line, thaws; returns the final report and error.
func session(opts quiesce.Options) (*quiesce.Report, error) {
	s, err := quiesce.FreezeWithOptions(context.Background(), opts)
	if err != nil {
		var e *quiesce.Error
		if errors.As(err, &e) {
			return e.Report, err
		}
		return nil, err
	}
	defer s.Close()
	fmt.Println("frozen")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if strings.TrimSpace(line) == "thaw" {
		return s.Thaw()
	}
	rep, _ := s.Abort()
	_, err = s.Thaw()
	return rep, err
}
