// Package checkup is the report both doctors give, `p2http doctor` and
// `p2xmpp doctor`, so that one script reads both: one line per check —
//
//	STATUS  CHECK [APP]: MESSAGE. Fix: FIX
//
// — then a line of counts naming the command ("p2http doctor: 12 ok, 1
// warn, 0 fail"), or with --json the same as one JSON object:
//
//	{"ok": false, "counts": {"ok": 12, "warn": 1, "fail": 1},
//	 "checks": [{"check": "fcm-auth", "app": "default", "status": "fail", "message": "…", "fix": "…"}]}
//
// A report fails when a check failed; warnings alone do not fail it. The
// command then exits 1 (FailedError).
package checkup

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of a check.
type Status string

// The outcomes: ok, worth a look (warn), or what is checked will not work
// as meant (fail). Only Fail fails a Report.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one check's result: one line of the report.
type Check struct {
	// ID names the check, such as "database" or "handshake".
	ID string `json:"check"`
	// App is the app a check is about (p2http's push checks); empty for
	// the others.
	App     string `json:"app,omitempty"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Fix says what to do; set on every warn and fail, empty for ok.
	Fix string `json:"fix,omitempty"`
}

// Counts counts the checks by status.
type Counts struct {
	OK   int `json:"ok"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// Report is the result of every check, in the order run.
type Report struct {
	// Command names the command in the text's last line, such as "p2http
	// doctor"; it is not part of the JSON.
	Command string `json:"-"`
	// OK is true when no check failed.
	OK     bool    `json:"ok"`
	Counts Counts  `json:"counts"`
	Checks []Check `json:"checks"`
}

// New returns an empty report of command.
func New(command string) *Report {
	return &Report{Command: command, OK: true, Checks: []Check{}}
}

// Add appends c and counts it. A status other than ok and warn counts as a
// failure.
func (r *Report) Add(c Check) {
	switch c.Status {
	case OK:
		r.Counts.OK++
	case Warn:
		r.Counts.Warn++
	default:
		r.Counts.Fail++
	}
	r.OK = r.Counts.Fail == 0
	r.Checks = append(r.Checks, c)
}

// WriteText writes one line per check, "STATUS  CHECK [APP]: MESSAGE. Fix:
// FIX" (no "[APP]" without an app, no "Fix:" without a fix; white space
// within a message or fix is folded, so that each check is one line), then
// "COMMAND: N ok, N warn, N fail".
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s  %s", c.Status, c.ID)
		if c.App != "" {
			b.WriteString(" [" + c.App + "]")
		}
		msg := oneLine(c.Message)
		if c.Fix != "" {
			msg = strings.TrimSuffix(msg, ".") + ". Fix: " + oneLine(c.Fix)
		}
		b.WriteString(": " + msg + "\n")
	}
	command := r.Command
	if command == "" {
		command = "doctor"
	}
	fmt.Fprintf(&b, "%s: %d ok, %d warn, %d fail\n", command, r.Counts.OK, r.Counts.Warn, r.Counts.Fail)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// Write writes the report as text or, with asJSON, as JSON, and returns
// the write's error, else Err.
func (r *Report) Write(w io.Writer, asJSON bool) error {
	var err error
	if asJSON {
		err = r.WriteJSON(w)
	} else {
		err = r.WriteText(w)
	}
	if err != nil {
		return err
	}
	return r.Err()
}

// Err returns a *FailedError when a check failed, else nil.
func (r *Report) Err() error {
	if r.Counts.Fail > 0 {
		return &FailedError{Failed: r.Counts.Fail}
	}
	return nil
}

// FailedError is a doctor's error when checks failed: the report has said
// which and why; the command exits 1.
type FailedError struct{ Failed int }

func (e *FailedError) Error() string {
	if e.Failed == 1 {
		return "doctor: 1 check failed"
	}
	return fmt.Sprintf("doctor: %d checks failed", e.Failed)
}

// oneLine folds the white space of s, line breaks included.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
