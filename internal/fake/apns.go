package fake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNs is a fake APNs provider API speaking HTTP/2 over TLS.
type APNs struct {
	recorder
	Server *httptest.Server
	Client *http.Client
	// SigningKey is a fresh .p8 (PKCS#8 P-256) key in PEM, with KeyID and
	// TeamID, for token authentication.
	SigningKey    []byte
	PublicKey     *ecdsa.PublicKey
	KeyID, TeamID string
	// Topic is the bundle id of the app the fake's device tokens belong
	// to, one of the team's.
	Topic string
	// TeamTopics are the bundle ids of the team's other apps: a push to one
	// of them is answered DeviceTokenNotForTopic, as Apple answers a device
	// token of another app; a topic that is none of the team's is
	// TopicDisallowed.
	TeamTopics []string

	skew  atomic.Int64 // how far the fake's clock runs ahead, in ns
	known knownTokens
	// verified holds the provider tokens whose signature, key id and team
	// were checked, with the verdict: each is verified once.
	verifiedMu sync.Mutex
	verified   map[string]bool
}

// NewAPNs starts a fake APNs; Close it when done.
func NewAPNs() *APNs {
	a := &APNs{KeyID: "ABC123DEFG", TeamID: "DEF123GHIJ", Topic: "eu.siacs.Conversations", verified: map[string]bool{}}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	a.SigningKey = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	a.PublicKey = &key.PublicKey
	a.Server, a.Client = startTLS(http.HandlerFunc(a.serve))
	return a
}

// Endpoint is the base URL to configure.
func (a *APNs) Endpoint() string { return a.Server.URL }

// Close stops the server.
func (a *APNs) Close() { a.Server.Close() }

func (a *APNs) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ans, latency := a.take(Request{Method: r.Method, Path: r.URL.Path, Proto: r.ProtoMajor, Header: r.Header.Clone(), Body: body})
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
	if ans != nil {
		write(w, *ans)
		return
	}
	bearer, hasBearer := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
	topic := r.Header.Get("apns-topic")
	// Apple's order: the request, its authentication, its topic, the
	// device token.
	switch {
	case r.ProtoMajor != 2:
		write(w, APNsError(405, "MethodNotAllowed", 0))
	case !strings.HasPrefix(r.URL.Path, "/3/device/"):
		write(w, APNsError(404, "BadPath", 0))
	case !hasBearer:
		write(w, APNsError(403, "MissingProviderToken", 0))
	case !a.validProviderToken(bearer):
		write(w, APNsError(403, "InvalidProviderToken", 0))
	case a.issuedAhead(bearer):
		write(w, APNsError(403, "InvalidProviderToken", 0))
	case a.expired(bearer):
		write(w, APNsError(403, "ExpiredProviderToken", 0))
	case topic != a.Topic && slices.Contains(a.TeamTopics, topic):
		write(w, APNsError(400, "DeviceTokenNotForTopic", 0))
	case topic != a.Topic:
		write(w, APNsError(400, "TopicDisallowed", 0))
	case !a.known.has(strings.TrimPrefix(r.URL.Path, "/3/device/")):
		write(w, APNsError(400, "BadDeviceToken", 0))
	default:
		write(w, Answer{Status: 200, Delay: latency})
	}
}

// Known makes the fake know only the given device tokens (and those of
// later calls): it answers any other token 400 BadDeviceToken, as Apple
// answers a token it never issued, or one of the other environment. Until
// the first call every token is known.
func (a *APNs) Known(tokens ...string) { a.known.add(tokens) }

// SetClockSkew makes the fake's clock run d ahead of this machine's
// (behind when d is negative), by which it judges when a provider token
// was issued: a provider whose clock is behind Apple's by more than an
// hour signs tokens Apple finds expired.
func (a *APNs) SetClockSkew(d time.Duration) { a.skew.Store(int64(d)) }

// issuedAt returns the iat of a provider token validProviderToken took,
// and the fake's time now.
func (a *APNs) issuedAt(bearer string) (iat, now time.Time) {
	now = time.Now().Add(time.Duration(a.skew.Load()))
	t, _, err := jwt.NewParser().ParseUnverified(bearer, jwt.MapClaims{})
	if err != nil {
		return time.Time{}, now
	}
	if d, err := t.Claims.GetIssuedAt(); err == nil && d != nil {
		return d.Time, now
	}
	return time.Time{}, now
}

// issuedAhead reports whether a provider token has no iat, or one more
// than a minute ahead of the fake's clock: Apple refuses it as invalid.
func (a *APNs) issuedAhead(bearer string) bool {
	iat, now := a.issuedAt(bearer)
	return iat.IsZero() || iat.After(now.Add(time.Minute))
}

// expired reports whether a provider token was issued over an hour ago by
// the fake's clock, which Apple answers ExpiredProviderToken.
func (a *APNs) expired(bearer string) bool {
	iat, now := a.issuedAt(bearer)
	return now.Sub(iat) > time.Hour
}

// validProviderToken reports whether bearer is a provider token Apple would
// take from the fake's key: an ES256 JWT signed with SigningKey, whose kid
// is KeyID and whose iss is TeamID. Its age is not checked.
func (a *APNs) validProviderToken(bearer string) bool {
	a.verifiedMu.Lock()
	defer a.verifiedMu.Unlock()
	if ok, seen := a.verified[bearer]; seen {
		return ok
	}
	t, err := jwt.Parse(bearer, func(*jwt.Token) (any, error) { return a.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	ok := err == nil && t.Header["kid"] == a.KeyID
	if ok {
		iss, _ := t.Claims.GetIssuer()
		ok = iss == a.TeamID
	}
	a.verified[bearer] = ok
	return ok
}

// APNsError builds an APNs error answer; timestamp (ms since the epoch) is
// included when not zero, as Apple does for 410.
func APNsError(status int, reason string, timestamp int64) Answer {
	if timestamp != 0 {
		return Answer{Status: status, Body: fmt.Sprintf(`{"reason":%q,"timestamp":%d}`, reason, timestamp)}
	}
	return Answer{Status: status, Body: fmt.Sprintf(`{"reason":%q}`, reason)}
}

// DeviceTokens returns the device tokens of the pushes received, in order.
func (a *APNs) DeviceTokens() []string {
	var out []string
	for _, r := range a.Requests() {
		out = append(out, strings.TrimPrefix(r.Path, "/3/device/"))
	}
	return out
}
