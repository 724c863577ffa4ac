package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/internal/checkup"
	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/internal/logconfig"
	"github.com/p2http/p2http/xmppdoctor"
)

// doctorOptions are the flags of `p2xmpp doctor` itself; the others are
// p2xmpp's own (settings), which it reads as serving does.
type doctorOptions struct {
	account string
	json    bool
	timeout time.Duration
}

// doctorFlags declares o's flags on fs.
func doctorFlags(fs *flag.FlagSet, o *doctorOptions) {
	fs.StringVar(&o.account, "account", "", "an account, USER@DOMAIN, whose server must reach the component; only its domain is used and shown")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.DurationVar(&o.timeout, "timeout", xmppdoctor.DefaultTimeout, "bound of each exchange with the XMPP server or p2http")
}

// doctor is `p2xmpp doctor`: it reads the configuration as serving does,
// runs xmppdoctor's checks and prints their report to stdout. It returns a
// *checkup.FailedError when a check failed.
func doctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o doctorOptions
	var usage bytes.Buffer
	rest, err := parseDoctorFlags(args, &o, &usage)
	if err != nil {
		return envflag.RouteUsage(err, &usage, stderr) // -h: on stdout (dispatch)
	}
	show := func(r *checkup.Report) error { return r.Write(stdout, o.json) }
	cfg, err := loadConfig(rest, getenv, stderr)
	var bad *envflag.Error
	switch {
	case errors.As(err, &bad):
		return show(xmppdoctor.ConfigFailed(err))
	case err != nil:
		return err
	}
	p2, err := api.NewClient(api.ClientConfig{BaseURL: cfg.API, Token: cfg.APIToken, Transport: apiTransport()})
	if err != nil {
		return &configError{Var: "P2XMPP_API", Msg: err.Error()}
	}
	return show(xmppdoctor.Run(ctx, xmppdoctor.Config{
		JID: cfg.JID, Secret: cfg.Secret, Server: cfg.Server, API: cfg.API, APIToken: cfg.APIToken != "",
		Registrar: p2, Pusher: p2, Describer: p2, Account: o.account, Timeout: o.timeout,
		Logger: logconfig.New(stderr, cfg.LogFormat, cfg.LogLevel),
	}))
}

// parseDoctorFlags takes doctor's own flags out of args into o, and returns
// the rest, p2xmpp's flags. -h prints both and returns flag.ErrHelp.
func parseDoctorFlags(args []string, o *doctorOptions, stderr io.Writer) ([]string, error) {
	fs := flag.NewFlagSet("p2xmpp doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	doctorFlags(fs, o)
	usage := func() {
		fmt.Fprintln(stderr, "Usage: p2xmpp doctor [--account USER@DOMAIN] [--json] [--timeout DURATION] [p2xmpp's flags]\n\n"+
			"Checks p2xmpp's configuration end to end, one line per check (ok, warn or fail, and what to do);\n"+
			"exits 1 when a check fails. docs/p2xmpp.md describes the checks.\n\nFlags of doctor:")
		fs.PrintDefaults()
		set := settings(&config{})
		set.Usage = func(w io.Writer, flags func()) {
			fmt.Fprintln(w, "\np2xmpp's settings come from the environment, as p2xmpp reads them, or from these flags.\n"+
				set.Secrets()+"\n\nFlags of p2xmpp:")
			flags()
		}
		set.Parse([]string{"-h"}, func(string) string { return "" }, stderr)
	}
	var own, rest []string
	valueDue := false // the argument before was a p2xmpp flag awaiting its value
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		wasDue := valueDue
		valueDue = false
		switch {
		case !strings.HasPrefix(a, "-") && !wasDue:
			// Not echoed: it may be the account, meant for --account.
			return nil, fmt.Errorf("doctor: unexpected argument %d (an account goes after --account)", i+1)
		case !strings.HasPrefix(a, "-"):
			rest = append(rest, a)
		case name == "h" || name == "help":
			usage()
			return nil, flag.ErrHelp
		case fs.Lookup(name) == nil:
			rest = append(rest, a)
			valueDue = !hasValue
		default:
			own = append(own, a)
			if _, isBool := fs.Lookup(name).Value.(interface{ IsBoolFlag() bool }); !hasValue && !isBool && i+1 < len(args) {
				i++
				own = append(own, args[i])
			}
		}
	}
	fs.Usage = usage
	if err := fs.Parse(own); err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, errors.New("doctor: --timeout must be positive")
	}
	return rest, nil
}
