package p2http

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SecretKind says how the secret of a registration is obtained.
type SecretKind string

const (
	// SecretDerived secrets are recomputed from the node and the server key;
	// nothing about them is stored.
	SecretDerived SecretKind = "derived"
	// SecretKept secrets (imported from p2) are stored, encrypted under the
	// server key.
	SecretKept SecretKind = "kept"
)

// Registration is one phone registered for push, as stored. It holds no
// account JID: only the device hash and the account's domain.
type Registration struct {
	App        App
	Service    Service
	Device     string // lowercase hex SHA-1 of bare JID + NUL + device id
	Domain     string // the account's domain, lowercase
	Token      string // the FCM registration token or the APNs device token
	Node       string
	SecretKind SecretKind
	SecretEnc  []byte // the kept secret, encrypted; nil for derived secrets
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// PushHistory is what became of the pushes to the registration: kept
	// by a store that keeps registrations, empty otherwise.
	PushHistory
}

// Validate checks r as it is stored. It is the one rule for a
// registration, and every writer is held to it: the stores check what they
// are given (db's Register, Import and CopyTo, sealed's Register), and the
// import from p2 checks each row it converts. An empty App is the default
// app and an empty SecretKind a derived secret, as the stores fill them.
// It returns an EINVALID *Error whose message names the field at fault,
// never its value.
func (r Registration) Validate() error {
	if !r.App.OrDefault().Valid() {
		return Errorf(EINVALID, "app is not a valid app name")
	}
	if err := r.Service.Validate(); err != nil {
		return err
	}
	switch {
	case !IsDeviceHash(r.Device):
		return Errorf(EINVALID, "device must be 40 lowercase hexadecimal digits")
	case r.Domain == "":
		return Errorf(EINVALID, "domain is empty")
	}
	if err := ValidateToken(r.Service, r.Token); err != nil {
		return err
	}
	switch {
	case r.Node == "":
		return Errorf(EINVALID, "node is empty")
	case len(r.Node) > MaxNodeLength:
		return Errorf(EINVALID, "node is longer than %d bytes", MaxNodeLength)
	}
	switch r.SecretKind {
	case SecretDerived, "":
		if len(r.SecretEnc) > 0 {
			return Errorf(EINVALID, "a derived secret is not stored")
		}
	case SecretKept:
		if len(r.SecretEnc) == 0 {
			return Errorf(EINVALID, "a kept secret needs its encrypted bytes")
		}
	default:
		return Errorf(EINVALID, "unknown secret kind")
	}
	return nil
}

// Limits on what a phone registers with.
const (
	MaxDeviceIDLength = 256
	MaxTokenLength    = 4096
	MaxAccountLength  = 3071 // RFC 7622: three parts of at most 1023 bytes
)

// Registrar registers phones, removes their registrations and looks them
// up: the domain's registration service. relay.Relay implements it over a
// Store; api serves it over HTTP. Failures are *Error values: EINVALID for
// a request Validate refuses or an account that is not a bare JID,
// ENOTFOUND for an app this instance does not serve (and as said below),
// and the codes of the Store.
type Registrar interface {
	// Register registers the phone's token under the device hash of its
	// account and device id, and returns the node and secret its XMPP
	// server must push with. Registering the same device again keeps node
	// and secret, replaces the token, and answers Created false.
	// ENOTCONFIGURED when the service has no credentials here, ERATELIMIT
	// when the account's domain registers too often.
	Register(ctx context.Context, req RegisterRequest) (Registered, error)
	// Unregister removes the registration of the account's device;
	// ENOTFOUND when there is none.
	Unregister(ctx context.Context, req UnregisterRequest) error
	// Lookup returns the registration holding node, for administrators;
	// ENOTFOUND when none does. Its token and secret are never to be shown.
	Lookup(ctx context.Context, node string) (Registration, error)
}

// RegisterRequest is a phone's request to be woken through a push service.
type RegisterRequest struct {
	// App is the app the phone registers with; empty means the default
	// app. Whether this instance serves it is the Registrar's to say.
	App     App
	Service Service
	// Account is the phone's account, a bare JID: normalised, hashed with
	// DeviceID into the registration's device, then forgotten.
	Account  string
	DeviceID string
	Token    string
}

// Validate checks req as far as that needs no knowledge of an instance:
// a known service, an account and a device id within their limits, and a
// token ValidateToken accepts. It returns an EINVALID *Error naming the
// request field at fault, never its value. A Registrar also checks that the
// app and service are served here and that the account is a bare JID.
func (req RegisterRequest) Validate() error {
	if err := req.Service.Validate(); err != nil {
		return err
	}
	if err := ValidateAccount(req.Account); err != nil {
		return err
	}
	if err := validateDeviceID(req.DeviceID); err != nil {
		return err
	}
	return ValidateToken(req.Service, req.Token)
}

// Registered is what a phone is told after registering.
type Registered struct {
	// JID is the address the phone registered at, where its XMPP server
	// sends the pushes: the push component's own for the default app,
	// APP@component for another.
	JID    string
	Node   string
	Secret string
	// Created is false when the device was registered already; node and
	// secret are then the ones it had.
	Created bool
}

// UnregisterRequest asks to remove the registration of a phone's device.
type UnregisterRequest struct {
	// App is the app the phone registered with; empty means the default
	// app.
	App      App
	Service  Service
	Account  string // a bare JID, as registered
	DeviceID string
}

// Validate checks req as RegisterRequest.Validate does, less the token.
func (req UnregisterRequest) Validate() error {
	if err := req.Service.Validate(); err != nil {
		return err
	}
	if err := ValidateAccount(req.Account); err != nil {
		return err
	}
	return validateDeviceID(req.DeviceID)
}

// ValidateAccount checks that an account is given and within
// MaxAccountLength bytes; that it is a bare JID needs a JID parser, which
// the Registrar has. It returns an EINVALID *Error about the field
// "account".
func ValidateAccount(account string) error {
	switch {
	case account == "":
		return Invalid("account", "account is required")
	case len(account) > MaxAccountLength:
		return Invalid("account", "account is longer than %d bytes", MaxAccountLength)
	}
	return nil
}

func validateDeviceID(id string) error {
	switch {
	case id == "":
		return Invalid("device_id", "device_id is required")
	case len(id) > MaxDeviceIDLength:
		return Invalid("device_id", "device_id is longer than %d bytes", MaxDeviceIDLength)
	case !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0:
		return Invalid("device_id", "device_id must be UTF-8 text without control characters")
	}
	return nil
}

// ValidateToken checks a push token of service s: at most MaxTokenLength
// bytes of printable ASCII without spaces, and hexadecimal for APNs. It
// returns an EINVALID *Error about the field "token".
func ValidateToken(s Service, token string) error {
	if token == "" {
		return Invalid("token", "token is required")
	}
	if len(token) > MaxTokenLength {
		return Invalid("token", "token is longer than %d bytes", MaxTokenLength)
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if s == APNs && !isHex(c) {
			return Invalid("token", "an APNs device token is hexadecimal")
		}
		if c <= ' ' || c > '~' {
			return Invalid("token", "token must be printable ASCII without spaces")
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Target is where a push to r goes: every resolver, stored or stateless,
// builds its target here.
func (r Registration) Target() Target {
	return Target{
		App:         r.App,
		Service:     r.Service,
		Domain:      r.Domain,
		Node:        r.Node,
		Device:      r.Device,
		Token:       r.Token,
		UpdatedAt:   r.UpdatedAt,
		PushHistory: r.PushHistory,
	}
}

// IsDeviceHash reports whether s has the form of a DeviceHash: 40
// lowercase hexadecimal digits.
func IsDeviceHash(s string) bool {
	if len(s) != 2*sha1.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// DeviceHash computes p2's device identifier: the lowercase hex SHA-1 of the
// UTF-8 bytes of the bare JID, a U+0000 separator and the device id. The
// phone computes the same value to know which account a push is for.
func DeviceHash(bareJID, deviceID string) string {
	h := sha1.New()
	h.Write([]byte(bareJID))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	return hex.EncodeToString(h.Sum(nil))
}

// Store turns a registration into the node its pushes are addressed to, and
// a node back into its registration: what both modes mean by storing. The
// stored mode keeps each registration in a database (db/); the stateless
// mode seals it into its node and keeps nothing (sealed/). What only a store
// that keeps registrations can do is Keeper. Implementations return *Error
// values with the codes below (EINVALID, ENOTFOUND, EUNAVAILABLE) so that
// callers can map them.
type Store interface {
	// Register stores r, which must pass Registration.Validate (else
	// EINVALID) and holds a freshly drawn node. It returns the registration
	// as stored, with the node its pushes are addressed to, and whether this
	// call created it. Registering the same app, service and device again
	// keeps the node of the first registration where the store keeps one
	// (two concurrent first registrations yield one), and gives the same
	// node for the same registration where it seals one. ErrNodeTaken: the
	// proposed node is another registration's; draw another.
	Register(ctx context.Context, r Registration) (stored Registration, created bool, err error)
	// Lookup returns the registration holding node; ENOTFOUND when none.
	Lookup(ctx context.Context, node string) (Registration, error)
}

// Keeper is what a Store that keeps registrations can do beyond Store:
// remove them and record what became of their pushes. The stored mode's store is one; the
// stateless mode's is not, since there is nothing kept to remove or write
// (a relay over it answers an unregistration as done, and a token reported
// dead as its registration removed). Its methods return *Error values as
// Store's do.
type Keeper interface {
	// Unregister removes the registration of app ("" is the default app),
	// service and device; ENOTFOUND when there was none.
	Unregister(ctx context.Context, app App, service Service, device string) error
	// RemoveDead removes the registration holding node when it was last
	// updated before the given time (the token was reported dead then), and
	// reports whether it did.
	RemoveDead(ctx context.Context, node string, before time.Time) (bool, error)
	// RecordPushes adds each record to its node's PushHistory
	// (PushHistory.Add), all of them in one statement where the database
	// allows: the relay collects the pushes of about a second and hands
	// them over together, each node at most once. Nodes not registered
	// (any more) are skipped. How often a node is recorded is the caller's
	// to keep down: every record writes a new version of its row.
	RecordPushes(ctx context.Context, recs ...PushRecord) error
}

// MaxNodeLength bounds a node, in bytes: the 12 characters of a stored
// node, and the sealed registrations of the stateless mode, which carry the
// push token (about 250 characters for an FCM token).
const MaxNodeLength = 1023

// MaxSecretLength bounds a secret, in bytes: p2http's are 24 characters,
// and import-p2 keeps none longer than this.
const MaxSecretLength = 256

// NewNode draws a fresh node name: standard Base64 of 9 random bytes, 12
// characters, as p2 makes them.
func NewNode() string {
	var b [9]byte
	rand.Read(b[:]) // crypto/rand.Read never fails; it aborts the program instead
	return base64.StdEncoding.EncodeToString(b[:])
}
