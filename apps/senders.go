package apps

import (
	"context"
	"crypto/tls"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apns"
	"github.com/p2http/p2http/devlog"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/envflag"
)

// The states of an app's service, as /readyz reports them.
const (
	StateOK            = "ok"
	StateDevLog        = "dev-log"        // dev mode's logging sender
	StateNotConfigured = "not-configured" // no credentials
	StateDegraded      = "degraded"       // the provider currently refuses the app's credentials or configuration
)

// States lists every state of a service.
var States = []string{StateOK, StateDevLog, StateNotConfigured, StateDegraded}

// Senders are the senders of every app, and the configured state of each
// app's services: StateOK, StateDevLog or StateNotConfigured.
type Senders struct {
	// Default and Configured are the default app's.
	Default    map[p2http.Service]p2http.Sender
	Configured map[p2http.Service]string
	// Apps and AppsConfigured are the further apps', by app.
	Apps           map[string]map[p2http.Service]p2http.Sender
	AppsConfigured map[string]map[p2http.Service]string
}

// Build builds the senders of the default app, def, whose fields defName
// names in errors, and of every further app in others. In dev mode the
// services an app has no credentials for get a sender that logs instead.
// Errors are *envflag.Error naming the setting at fault.
func Build(ctx context.Context, def Config, defName Namer, others map[string]Config, dev bool, log *slog.Logger) (*Senders, error) {
	out := &Senders{}
	var err error
	out.Default, out.Configured, err = build(ctx, def, defName, dev, log)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(others))
	for name := range others {
		names = append(names, name)
	}
	slices.Sort(names)
	out.Apps = make(map[string]map[p2http.Service]p2http.Sender, len(names))
	out.AppsConfigured = make(map[string]map[p2http.Service]string, len(names))
	for _, name := range names {
		s, st, err := build(ctx, others[name], FileNamer(name), dev, log.With("app", name))
		if err != nil {
			return nil, err
		}
		out.Apps[name], out.AppsConfigured[name] = s, st
	}
	return out, nil
}

// build creates the sender of each service configured for one app and, in
// dev mode, log senders for the rest. name says how to call a field in an
// error.
func build(ctx context.Context, app Config, name Namer, dev bool, log *slog.Logger) (map[p2http.Service]p2http.Sender, map[p2http.Service]string, error) {
	senders := map[p2http.Service]p2http.Sender{}
	states := map[p2http.Service]string{}
	if app.FCMConfigured() {
		s, err := NewFCM(ctx, app, name, nil)
		if err != nil {
			return nil, nil, err
		}
		senders[p2http.FCM] = s
	}
	if app.APNsConfigured() {
		s, err := NewAPNs(app, name, nil)
		if err != nil {
			return nil, nil, err
		}
		senders[p2http.APNs] = s
	}
	for _, sv := range p2http.Services {
		switch {
		case senders[sv] != nil:
			states[sv] = StateOK
		case dev:
			senders[sv] = &devlog.Sender{Service: sv, Logger: log}
			states[sv] = StateDevLog
		default:
			states[sv] = StateNotConfigured
		}
	}
	return senders, states, nil
}

// NewFCM builds the FCM sender of app, whose FCM credentials must be
// configured, sending through client (nil: fcm's default). It reads the
// credentials file but contacts nobody. name says how to call a field in an
// error, an *envflag.Error.
func NewFCM(ctx context.Context, app Config, name Namer, client *http.Client) (*fcm.Sender, error) {
	fail := func(err error) error { return &envflag.Error{Var: name("fcm.credentials"), Msg: err.Error()} }
	creds, err := os.ReadFile(app.FCM.Credentials)
	if err != nil {
		return nil, fail(err)
	}
	s, err := fcm.New(ctx, fcm.Config{CredentialsJSON: creds, Endpoint: app.FCM.Endpoint, HTTPClient: client})
	if err != nil {
		return nil, fail(err)
	}
	return s, nil
}

// NewAPNs builds the APNs sender of app, whose APNs credentials must be
// configured, sending through client (nil: apns' default). It reads the key
// or the certificate but contacts nobody. name says how to call a field in
// an error, an *envflag.Error.
func NewAPNs(app Config, name Namer, client *http.Client) (*apns.Sender, error) {
	n := app.APNs
	ac := apns.Config{Endpoint: n.Endpoint, Sandbox: n.Sandbox, Topic: n.Topic, KeyID: n.KeyID, TeamID: n.TeamID, HTTPClient: client}
	field := "apns.key"
	fail := func(err error) error { return &envflag.Error{Var: name(field), Msg: err.Error()} }
	if n.Key != "" {
		key, err := os.ReadFile(n.Key)
		if err != nil {
			return nil, fail(err)
		}
		ac.SigningKey = key
	} else {
		field = "apns.cert"
		cert, err := tls.LoadX509KeyPair(n.Cert, n.CertKey)
		if err != nil {
			return nil, fail(err)
		}
		ac.Certificate = &cert
	}
	s, err := apns.New(ac)
	if err != nil {
		return nil, fail(err)
	}
	return s, nil
}

// Degraded reports whether service s currently refuses app's credentials
// or configuration, and why: relay.Relay's AppDegraded.
type Degraded func(app p2http.App, s p2http.Service) (bool, string)

// ServiceStates returns what /readyz says of the default app's services
// (api.Config.ServiceStates): their configured states, with the services
// that currently refuse the app's credentials marked StateDegraded.
func (s *Senders) ServiceStates(degraded Degraded) func() map[p2http.Service]string {
	return func() map[p2http.Service]string { return withDegraded(p2http.DefaultApp, s.Configured, degraded) }
}

// AppStates returns what /readyz says of the further apps' services
// (api.Config.AppStates), as ServiceStates does for the default app.
func (s *Senders) AppStates(degraded Degraded) func() map[string]map[p2http.Service]string {
	return func() map[string]map[p2http.Service]string {
		out := make(map[string]map[p2http.Service]string, len(s.AppsConfigured))
		for app, st := range s.AppsConfigured {
			out[app] = withDegraded(p2http.App(app), st, degraded)
		}
		return out
	}
}

// withDegraded is the configured state of app's services, with the ones
// that currently refuse its credentials marked degraded.
func withDegraded(app p2http.App, configured map[p2http.Service]string, degraded Degraded) map[p2http.Service]string {
	out := make(map[p2http.Service]string, len(configured))
	for sv, st := range configured {
		if bad, _ := degraded(app, sv); bad {
			st = StateDegraded
		}
		out[sv] = st
	}
	return out
}

// Given returns the Senders of senders already built: def for the default
// app, others for the further apps. A service with a sender is StateOK,
// one without StateNotConfigured. Tests use it to put fakes behind the real
// assembly.
func Given(def map[p2http.Service]p2http.Sender, others map[string]map[p2http.Service]p2http.Sender) *Senders {
	states := func(senders map[p2http.Service]p2http.Sender) map[p2http.Service]string {
		out := make(map[p2http.Service]string, len(p2http.Services))
		for _, sv := range p2http.Services {
			out[sv] = StateNotConfigured
			if senders[sv] != nil {
				out[sv] = StateOK
			}
		}
		return out
	}
	out := &Senders{Default: def, Configured: states(def),
		Apps:           make(map[string]map[p2http.Service]p2http.Sender, len(others)),
		AppsConfigured: make(map[string]map[p2http.Service]string, len(others))}
	for name, s := range others {
		out.Apps[name], out.AppsConfigured[name] = s, states(s)
	}
	return out
}

// Names returns the apps these Senders serve: the default app first, then
// the further apps by name.
func (s *Senders) Names() []p2http.App {
	out := make([]p2http.App, 0, 1+len(s.Apps))
	out = append(out, p2http.DefaultApp)
	for _, name := range slices.Sorted(maps.Keys(s.Apps)) {
		out = append(out, p2http.App(name))
	}
	return out
}
