// Package command is the command line of p2http and p2xmpp: a program with
// a default command and named subcommands, its help and its version.
//
// Both binaries read it the same way: no command, or a first argument that
// is a flag, runs the default command; -h lists the commands and the
// default's flags; `help` lists the commands; `version` (or -version)
// prints the version; `COMMAND -h` prints that command's usage. Every help
// goes to standard output and is no error, as the flag package's
// flag.ErrHelp is not.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/p2http/p2http/internal/envflag"
)

// commandWord is what a mistyped command looks like, and is repeated in
// the error; anything else (an account, a token) is not.
var commandWord = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Command is one subcommand.
type Command struct {
	// Name is what selects it on the command line.
	Name string
	// Args is the synopsis after the name, such as "[--json] [--top N]".
	Args string
	// Summary is what help says it does: one line, lower case, no period.
	Summary string
	// Run runs it with the arguments after its name. -h should return an
	// *envflag.Help holding the usage, which Dispatch prints, or
	// flag.ErrHelp once the usage is printed.
	Run func(ctx context.Context, args []string) error
}

// Program is a binary's command line.
type Program struct {
	// Name is the binary's, as the usage, the version and the errors name
	// it.
	Name string
	// Version is what version prints after the name.
	Version string
	// Default runs when no command is named: args are empty or begin with
	// a flag. With a Name it is also a command of that name, listed first;
	// without one it is not listed, and Footer should say what the program
	// does without a command.
	Default Command
	// Commands are the other commands, in the order help lists them;
	// version and help follow them.
	Commands []Command
	// Footer is the lines the usage ends with.
	Footer []string
	// Stdout receives the help and the version: os.Stdout when nil.
	Stdout io.Writer
}

// Split returns the command args name and the arguments after it: "" (the
// default command) and all of args when args are empty or begin with a
// flag, version for -version and --version. An empty first argument is
// the name "" too, but rest is then shorter than args: it names no
// command.
func Split(args []string) (name string, rest []string) {
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-version" || a == "--version":
			return "version", args[1:]
		case !strings.HasPrefix(a, "-"):
			return a, args[1:]
		}
	}
	return "", args
}

// stdout is where the help and the version go.
func (p *Program) stdout() io.Writer {
	if p.Stdout == nil {
		return os.Stdout
	}
	return p.Stdout
}

// isHelp reports whether a asks for help.
func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// List returns every command in the order the usage lists them: the
// default when it has a name, Commands, then version and help.
func (p *Program) List() []Command {
	var all []Command
	if p.Default.Name != "" {
		all = append(all, p.Default)
	}
	all = append(all, p.Commands...)
	return append(all,
		Command{Name: "version", Summary: "print the version", Run: p.version},
		Command{Name: "help", Summary: "show this help", Run: p.help})
}

// Lookup returns the command called name.
func (p *Program) Lookup(name string) (Command, bool) {
	for _, c := range p.List() {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// Dispatch runs the command args name (Split) with the arguments after
// it. For -h (or -help, --help) as the first argument it writes the usage
// to Stdout, then the default command's flags, which it asks for with -h.
// A command's help, an *envflag.Help, goes to Stdout, and a help is no
// error: Dispatch returns nil.
func (p *Program) Dispatch(ctx context.Context, args []string) error {
	name, rest := Split(args)
	byDefault := len(rest) == len(args) // no command named
	cmd, ok := p.Default, byDefault
	if !byDefault {
		cmd, ok = p.Lookup(name)
	}
	if !ok {
		if !commandWord.MatchString(name) {
			// Not repeated: an account or a token typed in the wrong
			// place is no command.
			return fmt.Errorf("unknown command: the first argument is none; `%s help` lists the commands", p.Name)
		}
		return fmt.Errorf("unknown command %q; `%s help` lists the commands", name, p.Name)
	}
	if byDefault && len(args) > 0 && isHelp(args[0]) {
		p.Usage(p.stdout())
		of := p.Default.Name
		if of == "" {
			of = p.Name
		}
		fmt.Fprintf(p.stdout(), "\nFlags of %s:\n", of)
	}
	err := cmd.Run(ctx, rest)
	var help *envflag.Help
	if errors.As(err, &help) {
		io.WriteString(p.stdout(), help.Usage)
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// Usage writes the list of the commands, each with its summary, and the
// footer to w.
func (p *Program) Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [command] [flags]\n\nCommands:\n", p.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range p.List() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.Name, c.Summary)
	}
	tw.Flush()
	if len(p.Footer) > 0 {
		fmt.Fprintln(w, "\n"+strings.Join(p.Footer, "\n"))
	}
}

// noArgs refuses arguments to the command name, but for -h, which prints
// its usage and returns flag.ErrHelp.
func (p *Program) noArgs(name, summary string, args []string) error {
	switch {
	case len(args) == 1 && isHelp(args[0]):
		fmt.Fprintf(p.stdout(), "Usage: %s %s\n\n%s.\n", p.Name, name, strings.ToUpper(summary[:1])+summary[1:])
		return flag.ErrHelp
	case len(args) > 0:
		return fmt.Errorf("%s takes no arguments", name)
	}
	return nil
}

// version is the command version: the name, the version, Go's version and
// the platform.
func (p *Program) version(_ context.Context, args []string) error {
	if err := p.noArgs("version", "print the version", args); err != nil {
		return err
	}
	_, err := fmt.Fprintf(p.stdout(), "%s %s (%s, %s/%s)\n", p.Name, p.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}

// help is the command help: Usage.
func (p *Program) help(_ context.Context, args []string) error {
	if err := p.noArgs("help", "show this help", args); err != nil {
		return err
	}
	p.Usage(p.stdout())
	return nil
}
