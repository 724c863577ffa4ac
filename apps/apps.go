// Package apps configures the apps one p2http instance serves: the push
// credentials of each — the default app's from the environment, further
// apps' from the P2_CONFIG file (docs/apps.md) — the Senders built from
// them, and what /readyz says of each app's services.
package apps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/internal/envflag"
)

// Config holds the push credentials of one app. The default app's come
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
type Config struct {
	FCM  FCM  `yaml:"fcm"`
	APNs APNs `yaml:"apns"`
}

// FCM are an app's FCM settings.
type FCM struct {
	// Credentials is the Firebase service-account JSON file.
	Credentials string `yaml:"credentials"`
	// Endpoint overrides the base URL of the FCM HTTP v1 API.
	Endpoint string `yaml:"endpoint"`
}

// APNs are an app's APNs settings: token auth (Key, KeyID, TeamID) or
// certificate auth (Cert, CertKey), and the app's bundle id (Topic).
type APNs struct {
	Key     string `yaml:"key"`
	KeyID   string `yaml:"key_id"`
	TeamID  string `yaml:"team_id"`
	Cert    string `yaml:"cert"`
	CertKey string `yaml:"cert_key"`
	Topic   string `yaml:"topic"`
	// Sandbox uses Apple's development endpoint.
	Sandbox bool `yaml:"sandbox"`
	// Endpoint overrides the APNs base URL.
	Endpoint string `yaml:"endpoint"`
}

// file is the P2_CONFIG file.
type file struct {
	Apps map[string]Config `yaml:"apps"`
}

// A Namer says how a field of an app's settings ("fcm.credentials",
// "apns.key_id"…) is called in errors: the default app's by its
// environment variable, a further app's by its place in the P2_CONFIG file
// (FileNamer).
type Namer func(field string) string

// FileNamer names the fields of app in the P2_CONFIG file: the file and the
// field's path in it.
func FileNamer(app string) Namer {
	return func(field string) string { return "P2_CONFIG apps." + app + "." + field }
}

// MaxFileSize bounds the P2_CONFIG file read.
const MaxFileSize = 1 << 20

// LoadFile reads the apps declared in a P2_CONFIG file, by name. Unknown
// keys are refused, so that a misspelt setting is not silently ignored.
// Errors are *envflag.Error naming P2_CONFIG or the field at fault.
func LoadFile(path string) (map[string]Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &envflag.Error{Var: "P2_CONFIG", Msg: err.Error()}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &envflag.Error{Var: "P2_CONFIG", Msg: err.Error()}
	}
	if len(b) > MaxFileSize {
		return nil, &envflag.Error{Var: "P2_CONFIG", Msg: fmt.Sprintf("%s is larger than %d bytes", path, MaxFileSize)}
	}
	var fl file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fl); err != nil && !errors.Is(err, io.EOF) {
		return nil, &envflag.Error{Var: "P2_CONFIG", Msg: path + ": " + err.Error()}
	}
	for name, app := range fl.Apps {
		switch {
		case p2http.App(name) == p2http.DefaultApp:
			return nil, &envflag.Error{Var: "P2_CONFIG", Msg: `apps.default: the default app is configured by the environment (P2_FCM_*, P2_APNS_*), not in the file`}
		case !p2http.App(name).Valid():
			return nil, &envflag.Error{Var: "P2_CONFIG", Msg: fmt.Sprintf("apps.%s: an app name is 1 to 63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit", name)}
		case !app.FCMConfigured() && !app.APNsConfigured():
			return nil, &envflag.Error{Var: "P2_CONFIG", Msg: fmt.Sprintf("apps.%s: configures neither fcm nor apns", name)}
		}
		if err := app.Validate(FileNamer(name)); err != nil {
			return nil, err
		}
	}
	return fl.Apps, nil
}

// FCMConfigured reports whether FCM credentials were given.
func (a Config) FCMConfigured() bool { return a.FCM.Credentials != "" }

// APNsConfigured reports whether APNs credentials were given.
func (a Config) APNsConfigured() bool { return a.APNs.Key != "" || a.APNs.Cert != "" }

// Validate checks an app's settings; name says how to call a field in the
// error, an *envflag.Error.
func (a Config) Validate(name Namer) error {
	fail := func(field, msg string) error { return &envflag.Error{Var: name(field), Msg: msg} }
	for _, e := range []struct{ field, val string }{{"fcm.endpoint", a.FCM.Endpoint}, {"apns.endpoint", a.APNs.Endpoint}} {
		if e.val == "" {
			continue
		}
		if u, err := url.Parse(e.val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail(e.field, fmt.Sprintf("%q is not an http(s) URL", e.val))
		}
	}
	n := a.APNs
	tokenAuth := n.Key != "" || n.KeyID != "" || n.TeamID != ""
	certAuth := n.Cert != "" || n.CertKey != ""
	switch {
	case tokenAuth && certAuth:
		return fail("apns.cert", "use either token auth ("+name("apns.key")+"…) or certificate auth, not both")
	case tokenAuth && n.Key == "":
		return fail("apns.key", "is required with "+name("apns.key_id")+" and "+name("apns.team_id"))
	case tokenAuth && n.KeyID == "":
		return fail("apns.key_id", "is required with "+name("apns.key"))
	case tokenAuth && n.TeamID == "":
		return fail("apns.team_id", "is required with "+name("apns.key"))
	case certAuth && n.Cert == "":
		return fail("apns.cert", "is required with "+name("apns.cert_key"))
	case certAuth && n.CertKey == "":
		return fail("apns.cert_key", "is required with "+name("apns.cert"))
	case (tokenAuth || certAuth) && n.Topic == "":
		return fail("apns.topic", "the app's bundle id is required when APNs is configured")
	}
	return nil
}
