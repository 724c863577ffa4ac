// Package envflag declares a binary's settings once: each is an environment
// variable that a flag of the same meaning may override, except the
// secrets, which come from the environment only (command lines are visible
// to every user of the machine). From the one declaration of each setting
// — its variable, flag, default, parser and meaning — come the parsing,
// the -h text, and the check of the documentation's table of settings
// (CheckDoc), so that none of them can drift from the others.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// kind is how a Var's value is held and parsed.
type kind int

const (
	kindString   kind = iota // a string, handed to parse if any
	kindBool                 // a boolean flag
	kindDuration             // a duration flag, not negative
	kindInt                  // an integer flag, at least 1
	kindExternal             // read by someone else: declared for -h and the docs
)

// Var declares one setting. Make it with String, Func, Bool, Duration, Int
// or External.
type Var struct {
	// Name is the environment variable, such as P2_LISTEN.
	Name string
	// Flag is the flag that overrides it, without its dash; "" for a
	// variable read from the environment only.
	Flag string
	// Default is the value when neither the variable nor the flag is set,
	// as text; "" for none.
	Default string
	// Usage is the setting's meaning in one line, for -h.
	Usage string

	doc      string // the docs' default column, when not derived from Default
	required bool
	kind     kind
	str      *string
	boolean  *bool
	duration *time.Duration
	integer  *int
	parse    func(string) error
	given    bool
	flagged  bool // given on the command line
}

// String declares a string setting held in p. An empty flag declares one
// read from the environment only (a secret).
func String(p *string, name, flag, def, usage string) *Var {
	return &Var{Name: name, Flag: flag, Default: def, Usage: usage, kind: kindString, str: p}
}

// Func declares a setting whose text, once the flags are parsed, parse
// turns into its value; parse's error is reported naming the variable. An
// empty flag declares one read from the environment only (a secret).
func Func(name, flag, def, usage string, parse func(string) error) *Var {
	return &Var{Name: name, Flag: flag, Default: def, Usage: usage, kind: kindString, str: new(string), parse: parse}
}

// List declares a comma-separated list held in p, spaces and empty items
// dropped; check, when not nil, checks each item. An empty flag declares
// one read from the environment only (a secret).
func List(p *[]string, name, flag, usage string, check func(item string) error) *Var {
	return Func(name, flag, "", usage, func(s string) error {
		*p = nil
		var errs []error
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			*p = append(*p, item)
			if check != nil {
				if err := check(item); err != nil {
					errs = append(errs, &Error{Var: name, Msg: fmt.Sprintf("%q %s", item, err)})
				}
			}
		}
		return errors.Join(errs...)
	})
}

// Bool declares a boolean setting held in p, false by default.
func Bool(p *bool, name, flag, usage string) *Var {
	return &Var{Name: name, Flag: flag, Default: "false", Usage: usage, kind: kindBool, boolean: p}
}

// Duration declares a duration setting held in p; the environment's value
// must not be negative.
func Duration(p *time.Duration, name, flag string, def time.Duration, usage string) *Var {
	return &Var{Name: name, Flag: flag, Default: def.String(), Usage: usage, kind: kindDuration, duration: p}
}

// Int declares an integer setting held in p; the environment's value must
// be at least 1.
func Int(p *int, name, flag string, def int, usage string) *Var {
	return &Var{Name: name, Flag: flag, Default: strconv.Itoa(def), Usage: usage, kind: kindInt, integer: p}
}

// External declares a variable the binary does not parse itself (the Go
// runtime's GOMEMLIMIT, say), so that -h and the docs list it; doc is what
// the docs' default column says.
func External(name, doc, usage string) *Var {
	return &Var{Name: name, Usage: usage, kind: kindExternal, doc: doc}
}

// Doc sets what the docs' default column says of the setting, when it is
// not its Default in backquotes (or "none" for no default); it returns v.
func (v *Var) Doc(doc string) *Var {
	v.doc = doc
	return v
}

// Required marks a setting that has no default and must be given; the docs
// say "required" of it. It returns v.
func (v *Var) Required() *Var {
	v.required = true
	return v
}

// Given reports whether the last Parse found the setting in the
// environment or on the command line.
func (v *Var) Given() bool { return v.given }

// DocDefault is what the docs' default column must say of the setting.
func (v *Var) DocDefault() string {
	switch {
	case v.doc != "":
		return v.doc
	case v.required:
		return "required"
	case v.Default != "":
		return "`" + v.Default + "`"
	}
	return "none"
}

// envOnly reports whether the setting has no flag but is parsed here.
func (v *Var) envOnly() bool { return v.Flag == "" && v.kind != kindExternal }

// Set is the declaration of every setting of one binary.
type Set struct {
	// Name is the binary's name, for the flag set.
	Name string
	// Vars are the settings, in the order their parsers run.
	Vars []*Var
	// Usage, when set, writes -h's text to w; flags writes the flags
	// (flag.FlagSet's PrintDefaults). Without it the flag package's
	// default applies.
	Usage func(w io.Writer, flags func())
}

// Parse reads each setting from the environment through getenv, then the
// flags in args, then runs the parsers. Flag errors and -h write the usage
// to w and return the flag package's error (flag.ErrHelp for -h). The
// errors of the settings' values are *Error, naming the variable, joined.
func (s *Set) Parse(args []string, getenv func(string) string, w io.Writer) error {
	fs := flag.NewFlagSet(s.Name, flag.ContinueOnError)
	fs.SetOutput(w)
	if s.Usage != nil {
		fs.Usage = func() { s.Usage(fs.Output(), fs.PrintDefaults) }
	}
	var errs []error
	fail := func(v *Var, format string, arg string) {
		errs = append(errs, &Error{Var: v.Name, Msg: fmt.Sprintf(format, arg)})
	}
	byFlag := map[string]*Var{}
	for _, v := range s.Vars {
		if v.kind == kindExternal {
			continue
		}
		env := getenv(v.Name)
		v.given, v.flagged = env != "", false
		usage := v.Usage + " (" + v.Name + ")"
		if v.Flag == "" && v.kind != kindString {
			panic("envflag: " + v.Name + " has no flag: only strings may come from the environment only")
		}
		if v.Flag != "" {
			byFlag[v.Flag] = v
		}
		switch v.kind {
		case kindString:
			val := env
			if val == "" {
				val = v.Default
			}
			if v.Flag == "" {
				*v.str = val
			} else {
				fs.StringVar(v.str, v.Flag, val, usage)
			}
		case kindBool:
			val := false
			if env != "" {
				b, err := strconv.ParseBool(env)
				if err != nil {
					fail(v, "%q is not a boolean (use true or false)", env)
				}
				val = b
			}
			fs.BoolVar(v.boolean, v.Flag, val, usage)
		case kindDuration:
			val, _ := time.ParseDuration(v.Default)
			if env != "" {
				d, err := time.ParseDuration(env)
				if err != nil || d < 0 {
					fail(v, "%q is not a duration such as 10s or 500ms", env)
				}
				val = d
			}
			fs.DurationVar(v.duration, v.Flag, val, usage)
		case kindInt:
			val, _ := strconv.Atoi(v.Default)
			if env != "" {
				n, err := strconv.Atoi(env)
				if err != nil || n < 1 {
					fail(v, "%q is not a whole number of at least 1", env)
				}
				val = n
			}
			fs.IntVar(v.integer, v.Flag, val, usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// Not repeated: it may be a secret or an account typed in the
		// wrong place.
		return fmt.Errorf("unexpected argument %d: only flags are taken", len(args)-fs.NArg()+1)
	}
	fs.Visit(func(f *flag.Flag) { byFlag[f.Name].given, byFlag[f.Name].flagged = true, true })
	for _, v := range s.Vars {
		if v.parse == nil {
			continue
		}
		if err := v.parse(*v.str); err != nil {
			var named *Error
			if !errors.As(err, &named) {
				err = &Error{Var: v.Name, Msg: err.Error()}
			}
			errs = append(errs, v.blame(err))
		}
	}
	return errors.Join(errs...)
}

// Source is the name under which the last Parse was given the setting
// name: -FLAG when the command line gave it, else name itself. An error
// about the value names what the user wrote.
func (s *Set) Source(name string) string {
	for _, v := range s.Vars {
		if v.Name == name && v.flagged {
			return "-" + v.Flag
		}
	}
	return name
}

// Blame returns err, an error found in the values the last Parse read
// (such as a check of several settings together), with each *Error in it
// that names a setting the command line gave naming its flag instead, as
// Source does.
func (s *Set) Blame(err error) error {
	for _, v := range s.Vars {
		err = v.blame(err)
	}
	return err
}

// blame renames the *Error values in err that name v to its flag, when
// the command line gave v.
func (v *Var) blame(err error) error {
	if !v.flagged {
		return err
	}
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *Error:
			if e.Var == v.Name {
				e.Var = "-" + v.Flag
			}
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return err
}

// Given reports whether the last Parse found the setting name in the
// environment or on the command line.
func (s *Set) Given(name string) bool {
	for _, v := range s.Vars {
		if v.Name == name {
			return v.given
		}
	}
	return false
}

// Secrets is the sentence of -h that lists the settings read from the
// environment only, the required ones marked: "The secrets come from the
// environment only: A (required), B."
func (s *Set) Secrets() string {
	var names []string
	for _, v := range s.Vars {
		if v.envOnly() {
			n := v.Name
			if v.required {
				n += " (required)"
			}
			names = append(names, n)
		}
	}
	return "The secrets come from the environment only: " + strings.Join(names, ", ") + "."
}

// Externals is the sentence of -h that lists the variables read by others
// (External) with their meaning, or "" when there are none.
func (s *Set) Externals() string {
	var items []string
	for _, v := range s.Vars {
		if v.kind == kindExternal {
			items = append(items, v.Name+" ("+v.Usage+")")
		}
	}
	if len(items) == 0 {
		return ""
	}
	return "Also read from the environment: " + strings.Join(items, ", ") + "."
}
