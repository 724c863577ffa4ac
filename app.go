package p2http

import "context"

// App names an app this instance serves: a phone app with its own FCM
// project or APNs topic, whose phones register at APP@component. The empty
// App is the default app (see OrDefault).
type App string

// DefaultApp is the name of the default app, the one at the component's
// own address and configured by the environment.
const DefaultApp App = "default"

// OrDefault returns the app a names: DefaultApp when a is empty, a
// otherwise. It is the one place where "no app means the default app" is
// decided; every layer that stores, compares or addresses an app asks it.
func (a App) OrDefault() App {
	if a == "" {
		return DefaultApp
	}
	return a
}

// IsDefault reports whether a is the default app, named or left empty.
func (a App) IsDefault() bool { return a.OrDefault() == DefaultApp }

// Valid reports whether a can name an app: 1 to 63 characters of lowercase
// ASCII letters, digits, '-', '_' and '.', starting with a letter or digit
// (a valid, already normalised JID localpart). DefaultApp is valid; the
// empty App is not a name (use OrDefault first).
func (a App) Valid() bool {
	if a == "" || len(a) > 63 {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Describer says what an instance serves (GET /v1/info): the domain's
// description service. relay.Relay implements it.
type Describer interface {
	Describe(ctx context.Context) (Info, error)
}

// Info describes what an instance serves.
type Info struct {
	// JID is the push component's address, where the default app's phones
	// register.
	JID string
	// Services are the push services the default app's phones can
	// register with, in the order of Services.
	Services []Service
	// Apps are the further apps, sorted by name; the default app is not
	// among them.
	Apps []AppInfo
}

// AppInfo describes one further app an instance serves.
type AppInfo struct {
	Name App
	// JID is the address its phones register at: APP@component.
	JID string
	// Services are the push services its phones can register with, in the
	// order of Services.
	Services []Service
}
