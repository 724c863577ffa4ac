// Command p2xmpp is the XEP-0114 component that connects p2http to an XMPP
// server (Prosody, ejabberd): phones register over XMPP ad-hoc commands and
// servers publish XEP-0357 pushes to it; it turns both into calls on
// p2http's REST API and maps the answers back to stanzas. It keeps no state.
//
// Its configuration comes from the environment, a flag of the same meaning
// overriding each variable but the secrets: p2xmpp -h lists them, and
// docs/p2xmpp.md describes them. config.go declares each once.
package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/internal/buildinfo"
	"github.com/p2http/p2http/internal/command"
	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/internal/logconfig"
	"github.com/p2http/p2http/internal/sdnotify"
	"github.com/p2http/p2http/xmpp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		logconfig.WriteExitError(os.Stderr, "p2xmpp", logFormat(os.Args[1:], os.Getenv), err)
		os.Exit(1)
	}
}

// dispatch runs p2xmpp with args and the environment getenv reads
// (program): the component, which logs to stderr, or a command, whose
// results go to stdout. -h is no error: the usage goes to stdout.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return program(getenv, stdout, stderr).Dispatch(ctx, args)
}

// program is p2xmpp's command line: the component (run) when no command
// is named, doctor, version and help.
func program(getenv func(string) string, stdout, stderr io.Writer) *command.Program {
	return &command.Program{
		Name: "p2xmpp", Version: buildinfo.Version(version), Stdout: stdout,
		Default: command.Command{Run: func(ctx context.Context, args []string) error { return run(ctx, args, getenv, stderr) }},
		Commands: []command.Command{{Name: "doctor", Args: "[--account USER@DOMAIN] [--json] [--timeout D] [flags]",
			Summary: "check the set-up end to end: the component secret, its disco, an account's route, p2http's jid and token",
			Run:     func(ctx context.Context, args []string) error { return doctor(ctx, args, getenv, stdout, stderr) }}},
		Footer: []string{
			"Without a command, p2xmpp runs the component: it connects to the XMPP server and serves until stopped.",
			"`p2xmpp COMMAND -h` shows a command's flags; docs/p2xmpp.md describes them and the settings.",
		},
	}
}

// logFormat is the log format args and the environment name
// (-log-format, else P2XMPP_LOG_FORMAT), read leniently: the
// configuration may be what failed.
func logFormat(args []string, getenv func(string) string) string {
	c := &config{}
	settings(c).Parse(args, getenv, io.Discard) // its errors are run's to report
	return c.LogFormat
}

// run parses args and the environment getenv reads, connects to the XMPP
// server and serves until ctx ends, reconnecting whenever the link drops.
// It returns an error only for a configuration it cannot run with; a
// shutdown through ctx returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) error {
	m := NewMain(getenv, logOut)
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	// Ready with the configuration valid and the link running, connected
	// or not: an XMPP server that is down must not fail the start.
	m.notify.Ready("")
	<-ctx.Done()
	m.notify.Stopping()
	return m.Close()
}

// Main is p2xmpp, as cmd/wtfd's Main in WTF Dial: ParseFlags reads the
// configuration once, Run wires the component and starts its link, Close
// stops the link once the requests in flight are answered.
type Main struct {
	// Config is the configuration ParseFlags reads.
	Config *config
	// Getenv reads the environment; Stderr receives the logs and -h.
	Getenv func(string) string
	Stderr io.Writer

	log    *slog.Logger
	notify *sdnotify.Notifier // systemd's Type=notify: the link's state
	cancel context.CancelFunc // ends the link and the metrics listener
	done   chan struct{}      // closed when the link has stopped
}

// NewMain returns a Main that reads the environment through getenv and
// logs to stderr.
func NewMain(getenv func(string) string, stderr io.Writer) *Main {
	return &Main{Getenv: getenv, Stderr: stderr}
}

// ParseFlags reads the configuration from the environment, then from the
// flags in args. -h returns the usage as an *envflag.Help (which is
// flag.ErrHelp), for the caller to print on standard output; a flag
// mistake writes it to m.Stderr.
func (m *Main) ParseFlags(args []string) error {
	var usage bytes.Buffer
	cfg, err := loadConfig(args, m.Getenv, &usage)
	if err != nil {
		return envflag.RouteUsage(err, &usage, m.Stderr)
	}
	m.Config = cfg
	return nil
}

// Run builds the client of p2http, the metrics and the component, then
// starts the link to the XMPP server, which reconnects by itself until
// Close or the end of ctx, and returns.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	m.log = logconfig.New(m.Stderr, cfg.LogFormat, cfg.LogLevel)
	m.notify = sdnotify.New(m.log)
	ctx, m.cancel = context.WithCancel(ctx)

	p2, err := api.NewClient(api.ClientConfig{BaseURL: cfg.API, Token: cfg.APIToken, Transport: apiTransport()})
	if err != nil {
		return &configError{Var: "P2XMPP_API", Msg: err.Error()}
	}
	mx := newMetrics(buildinfo.Version(version))
	if cfg.Metrics != "" {
		if err := mx.serve(ctx, cfg.Metrics, m.log); err != nil {
			return &configError{Var: "P2XMPP_METRICS", Msg: err.Error()}
		}
	}
	comp, err := xmpp.New(xmpp.Config{JID: cfg.JID, Registrar: p2, Pusher: p2, Describer: p2, Logger: m.log, Observe: mx.observe})
	if err != nil {
		return &configError{Var: "P2XMPP_JID", Msg: err.Error()}
	}
	m.log.Info("p2xmpp starting", "jid", comp.JID(), "server", cfg.Server, "api", cfg.API)
	// Learn p2http's state (and log a jid mismatch) at once, without
	// delaying the XMPP link: the component must be connected whether or
	// not p2http answers.
	go comp.Check(ctx)

	l := &link{
		jid:    comp.JID(),
		secret: cfg.Secret,
		server: cfg.Server,
		comp:   comp,
		log:    m.log,

		connected: func(up bool) {
			mx.setConnected(up)
			m.notify.Status(linkStatus(up, cfg.Server))
		},
	}
	m.notify.Status("not connected: connecting to the XMPP server " + cfg.Server)
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		l.run(ctx)
	}()
	return nil
}

// Close stops the link, letting the requests in flight be answered (see
// link.run), and returns once it has stopped. After a failed Run it only
// releases what Run started.
func (m *Main) Close() error {
	if m.cancel != nil {
		m.cancel()
	}
	if m.done != nil {
		<-m.done
		m.log.Info("p2xmpp stopped")
	}
	return nil
}

// linkStatus is the status systemctl status shows for the link to server.
func linkStatus(up bool, server string) string {
	if up {
		return "connected to the XMPP server " + server
	}
	return "not connected: reconnecting to the XMPP server " + server
}
