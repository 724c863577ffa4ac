package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apns"
	"github.com/p2http/p2http/devlog"
	"github.com/p2http/p2http/fcm"
)

// appConfig holds the push credentials of one app. The default app's come
// from the environment (P2_FCM_*, P2_APNS_*), further apps' from the
// P2_CONFIG file, under the same names:
//
//	apps:
//	  quicksy:
//	    fcm:
//	      credentials: /etc/p2http/quicksy-firebase.json
//	    apns:
//	      key: /etc/p2http/quicksy.p8
//	      key_id: ABC123DEFG
//	      team_id: DEF123GHIJ
//	      topic: im.quicksy.Quicksy
type appConfig struct {
	FCM  fcmConfig  `yaml:"fcm"`
	APNs apnsConfig `yaml:"apns"`
}

type fcmConfig struct {
	Credentials string `yaml:"credentials"`
	Endpoint    string `yaml:"endpoint"`
}

type apnsConfig struct {
	Key      string `yaml:"key"`
	KeyID    string `yaml:"key_id"`
	TeamID   string `yaml:"team_id"`
	Cert     string `yaml:"cert"`
	CertKey  string `yaml:"cert_key"`
	Topic    string `yaml:"topic"`
	Sandbox  bool   `yaml:"sandbox"`
	Endpoint string `yaml:"endpoint"`
}

// appsFile is the P2_CONFIG file.
type appsFile struct {
	Apps map[string]appConfig `yaml:"apps"`
}

// envNames maps the fields of an appConfig, as named in the P2_CONFIG file,
// to the environment variables of the default app.
var envNames = map[string]string{
	"fcm.credentials": "P2_FCM_CREDENTIALS", "fcm.endpoint": "P2_FCM_ENDPOINT",
	"apns.key": "P2_APNS_KEY", "apns.key_id": "P2_APNS_KEY_ID", "apns.team_id": "P2_APNS_TEAM_ID",
	"apns.cert": "P2_APNS_CERT", "apns.cert_key": "P2_APNS_CERT_KEY", "apns.topic": "P2_APNS_TOPIC",
	"apns.sandbox": "P2_APNS_SANDBOX", "apns.endpoint": "P2_APNS_ENDPOINT",
}

// envName names a field of the default app: its environment variable.
func envName(field string) string { return envNames[field] }

// fileName returns how a field of app is named in errors: the file and the
// field's path in it.
func fileName(app string) func(string) string {
	return func(field string) string { return "P2_CONFIG apps." + app + "." + field }
}

// maxConfigFile bounds the P2_CONFIG file read.
const maxConfigFile = 1 << 20

// loadAppsFile reads the apps declared in a P2_CONFIG file. Unknown keys
// are refused, so that a misspelt setting is not silently ignored.
func loadAppsFile(path string) (map[string]appConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &configError{"P2_CONFIG", err.Error()}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, &configError{"P2_CONFIG", err.Error()}
	}
	if len(b) > maxConfigFile {
		return nil, &configError{"P2_CONFIG", fmt.Sprintf("%s is larger than %d bytes", path, maxConfigFile)}
	}
	var file appsFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, &configError{"P2_CONFIG", path + ": " + err.Error()}
	}
	for name, app := range file.Apps {
		switch {
		case p2http.App(name) == p2http.DefaultApp:
			return nil, &configError{"P2_CONFIG", `apps.default: the default app is configured by the environment (P2_FCM_*, P2_APNS_*), not in the file`}
		case !p2http.App(name).Valid():
			return nil, &configError{"P2_CONFIG", fmt.Sprintf("apps.%s: an app name is 1 to 63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit", name)}
		case !app.fcmConfigured() && !app.apnsConfigured():
			return nil, &configError{"P2_CONFIG", fmt.Sprintf("apps.%s: configures neither fcm nor apns", name)}
		}
		if err := app.validate(fileName(name)); err != nil {
			return nil, err
		}
	}
	return file.Apps, nil
}

// fcmConfigured reports whether FCM credentials were given.
func (a appConfig) fcmConfigured() bool { return a.FCM.Credentials != "" }

// apnsConfigured reports whether APNs credentials were given.
func (a appConfig) apnsConfigured() bool { return a.APNs.Key != "" || a.APNs.Cert != "" }

// validate checks an app's settings; name says how to call a field in the
// error.
func (a appConfig) validate(name func(field string) string) error {
	for _, e := range []struct{ field, val string }{{"fcm.endpoint", a.FCM.Endpoint}, {"apns.endpoint", a.APNs.Endpoint}} {
		if e.val == "" {
			continue
		}
		if u, err := url.Parse(e.val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &configError{name(e.field), fmt.Sprintf("%q is not an http(s) URL", e.val)}
		}
	}
	n := a.APNs
	tokenAuth := n.Key != "" || n.KeyID != "" || n.TeamID != ""
	certAuth := n.Cert != "" || n.CertKey != ""
	switch {
	case tokenAuth && certAuth:
		return &configError{name("apns.cert"), "use either token auth (" + name("apns.key") + "…) or certificate auth, not both"}
	case tokenAuth && n.Key == "":
		return &configError{name("apns.key"), "is required with " + name("apns.key_id") + " and " + name("apns.team_id")}
	case tokenAuth && n.KeyID == "":
		return &configError{name("apns.key_id"), "is required with " + name("apns.key")}
	case tokenAuth && n.TeamID == "":
		return &configError{name("apns.team_id"), "is required with " + name("apns.key")}
	case certAuth && n.Cert == "":
		return &configError{name("apns.cert"), "is required with " + name("apns.cert_key")}
	case certAuth && n.CertKey == "":
		return &configError{name("apns.cert_key"), "is required with " + name("apns.cert")}
	case (tokenAuth || certAuth) && n.Topic == "":
		return &configError{name("apns.topic"), "the app's bundle id is required when APNs is configured"}
	}
	return nil
}

// appSenders are the senders of every app, and what /readyz says of the
// default app's services.
type appSenders struct {
	Default map[p2http.Service]p2http.Sender
	States  map[p2http.Service]string
	Apps    map[string]map[p2http.Service]p2http.Sender
	// AppStates are the further apps' service states, by app.
	AppStates map[string]map[p2http.Service]string
}

// buildAllSenders builds the senders of the default app and of every app of
// the P2_CONFIG file.
func buildAllSenders(ctx context.Context, cfg *config, log *slog.Logger) (appSenders, error) {
	var out appSenders
	var err error
	out.Default, out.States, err = buildSenders(ctx, cfg.Default, envName, cfg.Dev, log)
	if err != nil {
		return out, err
	}
	names := make([]string, 0, len(cfg.Apps))
	for name := range cfg.Apps {
		names = append(names, name)
	}
	slices.Sort(names)
	out.Apps = make(map[string]map[p2http.Service]p2http.Sender, len(names))
	out.AppStates = make(map[string]map[p2http.Service]string, len(names))
	for _, name := range names {
		s, st, err := buildSenders(ctx, cfg.Apps[name], fileName(name), cfg.Dev, log.With("app", name))
		if err != nil {
			return out, err
		}
		out.Apps[name], out.AppStates[name] = s, st
	}
	return out, nil
}

// buildSenders creates the sender of each service configured for one app
// and, in dev mode, log senders for the rest. name says how to call a field
// in an error.
func buildSenders(ctx context.Context, app appConfig, name func(string) string, dev bool, log *slog.Logger) (map[p2http.Service]p2http.Sender, map[p2http.Service]string, error) {
	senders := map[p2http.Service]p2http.Sender{}
	states := map[p2http.Service]string{}
	if app.fcmConfigured() {
		creds, err := os.ReadFile(app.FCM.Credentials)
		if err != nil {
			return nil, nil, &configError{name("fcm.credentials"), err.Error()}
		}
		s, err := fcm.New(ctx, fcm.Config{CredentialsJSON: creds, Endpoint: app.FCM.Endpoint})
		if err != nil {
			return nil, nil, &configError{name("fcm.credentials"), err.Error()}
		}
		senders[p2http.FCM] = s
	}
	if app.apnsConfigured() {
		n := app.APNs
		ac := apns.Config{Endpoint: n.Endpoint, Sandbox: n.Sandbox, Topic: n.Topic, KeyID: n.KeyID, TeamID: n.TeamID}
		field := "apns.key"
		if n.Key != "" {
			key, err := os.ReadFile(n.Key)
			if err != nil {
				return nil, nil, &configError{name(field), err.Error()}
			}
			ac.SigningKey = key
		} else {
			field = "apns.cert"
			cert, err := tls.LoadX509KeyPair(n.Cert, n.CertKey)
			if err != nil {
				return nil, nil, &configError{name(field), err.Error()}
			}
			ac.Certificate = &cert
		}
		s, err := apns.New(ac)
		if err != nil {
			return nil, nil, &configError{name(field), err.Error()}
		}
		senders[p2http.APNs] = s
	}
	for _, sv := range p2http.Services {
		switch {
		case senders[sv] != nil:
			states[sv] = "ok"
		case dev:
			senders[sv] = &devlog.Sender{Service: sv, Logger: log}
			states[sv] = "dev-log"
		default:
			states[sv] = "not-configured"
		}
	}
	return senders, states, nil
}
