package envflag

import (
	"bytes"
	"errors"
	"flag"
	"io"
)

// Help is the error of a command line that asks for help (-h): the usage
// text, for the command to print on its standard output and exit 0, as it
// does for `help`. errors.Is(err, flag.ErrHelp) holds.
type Help struct {
	// Usage is the text the flag set wrote.
	Usage string
}

// Error implements error.
func (h *Help) Error() string { return flag.ErrHelp.Error() }

// Is reports whether target is flag.ErrHelp.
func (h *Help) Is(target error) bool { return target == flag.ErrHelp }

// RouteUsage sorts out what a flag set wrote to usage while parsing ended in
// err: after -h it returns a *Help holding it; after a mistake it copies it
// to stderr, where it goes with the error, and returns err.
func RouteUsage(err error, usage *bytes.Buffer, stderr io.Writer) error {
	if errors.Is(err, flag.ErrHelp) {
		return &Help{Usage: usage.String()}
	}
	usage.WriteTo(stderr)
	return err
}
