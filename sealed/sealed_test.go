package sealed_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/keyring"
	"github.com/p2http/p2http/sealed"
)

const (
	// A 163-character FCM registration token, shaped like real ones.
	fcmToken = "cXy3dKq1R0eT:APA91bHq3mZ0kYvX7cT2pLw9sR4eN8uJ1fB6gD5hK0aQzWxVyUtSrPoNmLkJiHgFeDcBa" +
		"9876543210ZyXwVuTsRqPoNmLkJiHgFeDcBaZyXwVuTsRqPoNmLkJiHgFeDcBa0123456789_-AbCdeFg"
	apnsToken = "5f0a1c2e3d4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeef"
	device    = "ec164939a8485ee6b7f7871071a11c7bb18aead5"
	domain    = "conversations.im"
)

var ctx = context.Background()

func newKey(t testing.TB, name string) *keyring.Keyring {
	t.Helper()
	k, err := keyring.New(strings.Repeat(name, 32/len(name)+1))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newStore(t testing.TB, keys ...*keyring.Keyring) *sealed.Store {
	t.Helper()
	s, err := sealed.New(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var issued = time.Date(2026, 5, 17, 12, 34, 56, 789, time.UTC)

func registration(service p2http.Service, token string) p2http.Registration {
	return p2http.Registration{
		App:        p2http.DefaultApp,
		Service:    service,
		Device:     device,
		Domain:     domain,
		Token:      token,
		Node:       "ignoredNode0",
		SecretKind: p2http.SecretDerived,
		CreatedAt:  issued,
		UpdatedAt:  issued,
	}
}

func register(t testing.TB, s *sealed.Store, r p2http.Registration) p2http.Registration {
	t.Helper()
	got, created, err := s.Register(ctx, r)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if !created {
		t.Fatal("Register: created is false")
	}
	return got
}

func wantCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	if got := p2http.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func TestRoundTrip(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	cases := []struct {
		name string
		reg  p2http.Registration
	}{
		{"fcm", registration(p2http.FCM, fcmToken)},
		{"apns", registration(p2http.APNs, apnsToken)},
		{"apns uppercase", registration(p2http.APNs, strings.ToUpper(apnsToken))},
		{"named app", func() p2http.Registration {
			r := registration(p2http.FCM, fcmToken)
			r.App = "eu.siacs.conversations.beta"
			return r
		}()},
		{"empty app", func() p2http.Registration {
			r := registration(p2http.APNs, apnsToken)
			r.App = ""
			return r
		}()},
		{"raw token", registration(p2http.FCM, "legacy.token:with:colons")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := register(t, s, c.reg)
			want := c.reg
			if want.App == "" {
				want.App = p2http.DefaultApp
			}
			want.Node = got.Node
			want.CreatedAt = issued.Truncate(time.Second)
			want.UpdatedAt = want.CreatedAt
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Register returned\n%+v\nwant\n%+v", got, want)
			}
			if got.Node == c.reg.Node || strings.Trim(got.Node, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				t.Fatalf("node %q is not fresh unpadded base64url", got.Node)
			}
			looked, err := s.Lookup(ctx, got.Node)
			if err != nil {
				t.Fatal(err)
			}
			// A node holds no time.
			want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}
			if fmt.Sprint(looked) != fmt.Sprint(want) {
				t.Fatalf("Lookup returned\n%+v\nwant\n%+v", looked, want)
			}
			target, err := s.Resolve(ctx, p2http.PushRequest{Node: got.Node, Secret: k.Secret(got.Node), Domain: domain})
			if err != nil {
				t.Fatal(err)
			}
			wantTarget := p2http.Target{App: want.App, Service: want.Service, Domain: domain, Node: got.Node, Device: device,
				Token: c.reg.Token}
			if target != wantTarget {
				t.Fatalf("Resolve returned\n%+v\nwant\n%+v", target, wantTarget)
			}
			// No domain given: not checked.
			if _, err := s.Resolve(ctx, p2http.PushRequest{Node: got.Node, Secret: k.Secret(got.Node)}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Every token form, at every length its packing distinguishes, comes back
// exactly as registered. Only tokens p2http.ValidateToken accepts for a
// service are registered with it (APNs: hexadecimal).
func TestTokenForms(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	const url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	rnd := rand.New(rand.NewPCG(1, 2))
	randomOf := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		return string(b)
	}
	var tokens []string
	for pre := 0; pre <= 66; pre += 1 {
		for suf := 0; suf <= 13; suf++ {
			tokens = append(tokens, randomOf(url, pre)+":APA91b"+randomOf(url, suf))
		}
	}
	for n := 1; n <= 70; n++ {
		tokens = append(tokens, randomOf("0123456789abcdef", n), randomOf("0123456789ABCDEF", n),
			randomOf("0123456789abcdefABCDEF", n), randomOf("0123456789", n), randomOf(url, n))
	}
	tokens = append(tokens, ":APA91b", "a:APA91b:APA91bb", "ab:APA91b.x", "~:APA91bx", "!\"#$%&'()*+,./;<=>?@[\\]^`{|}~", "APA91bxyz",
		strings.Repeat("_", 63)+":APA91b"+strings.Repeat("-", 100), "__:APA91b____", "AAAA:APA91bAAAA")
	for _, tok := range tokens {
		for _, service := range p2http.Services {
			if p2http.ValidateToken(service, tok) != nil {
				continue
			}
			got := register(t, s, registration(service, tok))
			reg, err := s.Lookup(ctx, got.Node)
			if err != nil {
				t.Fatalf("token %q: %v", tok, err)
			}
			if reg.Token != tok || reg.Service != service {
				t.Fatalf("token %q (%s) came back as %q (%s)", tok, service, reg.Token, reg.Service)
			}
		}
	}
}

// The node lengths the package doc states.
func TestNodeLengths(t *testing.T) {
	s := newStore(t, newKey(t, "current"))
	if len(fcmToken) != 163 || len(apnsToken) != 64 {
		t.Fatalf("test tokens of %d and %d characters", len(fcmToken), len(apnsToken))
	}
	lengths := map[string]int{}
	for _, d := range []string{"example.org", "conversations.im", "jabber.example-university.edu"} {
		for _, c := range []struct {
			service p2http.Service
			token   string
		}{{p2http.FCM, fcmToken}, {p2http.APNs, apnsToken}} {
			r := registration(c.service, c.token)
			r.Domain = d
			node := register(t, s, r).Node
			t.Logf("%-4s token of %3d characters, domain %-29s → node of %3d characters", c.service, len(c.token), d, len(node))
			lengths[string(c.service)+" "+d] = len(node)
		}
	}
	for name, want := range map[string]int{
		"fcm example.org": 242, "fcm conversations.im": 248,
		"apns example.org": 127, "apns conversations.im": 134,
	} {
		if got := lengths[name]; got != want {
			t.Errorf("%s: node of %d characters; the package doc says %d", name, got, want)
		}
	}
}

func TestMaxNodeLength(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	_, _, err := s.Register(ctx, registration(p2http.FCM, strings.Repeat("x.", 2048)))
	wantCode(t, "4096-byte token", err, p2http.EINVALID)
	if p2http.ErrorField(err) != "token" {
		t.Fatalf("field %q, want token", p2http.ErrorField(err))
	}
	// The longest raw token that fits gives a node of at most MaxNodeLength.
	longest := ""
	for n := 1; ; n++ {
		tok := strings.Repeat(".", n)
		r, _, err := s.Register(ctx, registration(p2http.FCM, tok))
		if err != nil {
			wantCode(t, "long token", err, p2http.EINVALID)
			break
		}
		if len(r.Node) > sealed.MaxNodeLength {
			t.Fatalf("node of %d characters", len(r.Node))
		}
		longest = r.Node
	}
	if len(longest) < sealed.MaxNodeLength-3 {
		t.Fatalf("the longest node has %d characters", len(longest))
	}
	if _, err := s.Resolve(ctx, p2http.PushRequest{Node: longest, Secret: k.Secret(longest)}); err != nil {
		t.Fatal(err)
	}
	over := strings.Repeat("A", sealed.MaxNodeLength+1)
	_, err = s.Lookup(ctx, over)
	wantCode(t, "over-long node", err, p2http.ENOTFOUND)
}

func TestRegisterInvalid(t *testing.T) {
	s := newStore(t, newKey(t, "current"))
	for name, change := range map[string]func(*p2http.Registration){
		"service":       func(r *p2http.Registration) { r.Service = "gcm" },
		"short device":  func(r *p2http.Registration) { r.Device = device[:39] },
		"upper device":  func(r *p2http.Registration) { r.Device = strings.ToUpper(device) },
		"empty domain":  func(r *p2http.Registration) { r.Domain = "" },
		"empty token":   func(r *p2http.Registration) { r.Token = "" },
		"non-hex dev.":  func(r *p2http.Registration) { r.Device = "zz" + device[2:] },
		"huge app name": func(r *p2http.Registration) { r.App = p2http.App(strings.Repeat("a", 1000)) },
	} {
		r := registration(p2http.FCM, fcmToken)
		change(&r)
		_, _, err := s.Register(ctx, r)
		wantCode(t, name, err, p2http.EINVALID)
	}
}

// Register answers the update time, or the store's clock without one,
// truncated to seconds; none is sealed, so any time (before 1970, after 2106)
// gives the same node, and Lookup gives zero times and no push history.
func TestClock(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	s, err := sealed.New([]*keyring.Keyring{newKey(t, "current")}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	r := registration(p2http.FCM, fcmToken)
	r.UpdatedAt = time.Time{}
	got := register(t, s, r)
	if want := now.Truncate(time.Second); !got.UpdatedAt.Equal(want) || !got.CreatedAt.Equal(want) {
		t.Fatalf("Register answered %v / %v, want %v", got.CreatedAt, got.UpdatedAt, want)
	}
	reg, err := s.Lookup(ctx, got.Node)
	if err != nil {
		t.Fatal(err)
	}
	if !reg.UpdatedAt.IsZero() || !reg.CreatedAt.IsZero() {
		t.Fatalf("Lookup gave times %v / %v, want zero", reg.CreatedAt, reg.UpdatedAt)
	}
	if reg.PushHistory != (p2http.PushHistory{}) {
		t.Fatalf("Lookup gave a push history %+v; the stateless mode keeps none", reg.PushHistory)
	}
	for _, at := range []time.Time{issued, time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC)} {
		r.UpdatedAt = at
		again := register(t, s, r)
		if again.Node != got.Node || !again.UpdatedAt.Equal(at.Truncate(time.Second)) {
			t.Fatalf("registered at %v: node %q at %v, want %q", at, again.Node, again.UpdatedAt, got.Node)
		}
	}
	if _, err := sealed.New(nil, nil); err == nil {
		t.Fatal("New without keys succeeded")
	}
	if _, err := sealed.New([]*keyring.Keyring{nil}, nil); err == nil {
		t.Fatal("New with a nil key succeeded")
	}
}

func TestRotation(t *testing.T) {
	old, cur := newKey(t, "old"), newKey(t, "current")
	before := newStore(t, old)
	oldNode := register(t, before, registration(p2http.FCM, fcmToken)).Node
	oldSecret := old.Secret(oldNode)

	rotated := newStore(t, cur, old)
	target, err := rotated.Resolve(ctx, p2http.PushRequest{Node: oldNode, Secret: oldSecret, Domain: domain})
	if err != nil || target.Token != fcmToken {
		t.Fatalf("old node after rotation: %+v, %v", target, err)
	}
	// The secret is the one derived with the key that sealed the node.
	_, err = rotated.Resolve(ctx, p2http.PushRequest{Node: oldNode, Secret: cur.Secret(oldNode), Domain: domain})
	wantCode(t, "old node, secret of the current key", err, p2http.EFORBIDDEN)

	// New nodes are sealed with the current key only: registering again
	// gives another node (the XMPP server holds both until the old key is
	// removed), which every later registration repeats.
	newNode := register(t, rotated, registration(p2http.FCM, fcmToken)).Node
	if newNode == oldNode || newNode != register(t, rotated, registration(p2http.FCM, fcmToken)).Node {
		t.Fatal("registering again after a rotation: not one new node")
	}
	if again := register(t, before, registration(p2http.FCM, fcmToken)).Node; again != oldNode {
		t.Fatal("the old key seals the registration differently")
	}
	if _, err := newStore(t, cur).Resolve(ctx, p2http.PushRequest{Node: newNode, Secret: cur.Secret(newNode)}); err != nil {
		t.Fatalf("new node under the current key alone: %v", err)
	}
	_, err = before.Lookup(ctx, newNode)
	wantCode(t, "new node under the old key", err, p2http.ENOTFOUND)

	// The old key removed: its nodes are gone.
	retired := newStore(t, cur)
	_, err = retired.Lookup(ctx, oldNode)
	wantCode(t, "old node after retiring its key", err, p2http.ENOTFOUND)
	_, err = retired.Resolve(ctx, p2http.PushRequest{Node: oldNode, Secret: oldSecret})
	wantCode(t, "old node after retiring its key", err, p2http.ENOTFOUND)
}

// Two keys with the same 6-bit id: each node opens with the key that sealed
// it, whatever the order of the keys.
func TestKeyIDCollision(t *testing.T) {
	a := newKey(t, "collide")
	var b *keyring.Keyring
	for i := 0; b == nil; i++ {
		if i > 10000 {
			t.Fatal("no key id collision found")
		}
		k := newKey(t, fmt.Sprintf("other%d-", i))
		if k.NodeKeyID() == a.NodeKeyID() {
			b = k
		}
	}
	if a.NodeKeyID() >= 1<<keyring.NodeKeyIDBits {
		t.Fatalf("key id %d", a.NodeKeyID())
	}
	nodeA := register(t, newStore(t, a), registration(p2http.FCM, fcmToken)).Node
	nodeB := register(t, newStore(t, b), registration(p2http.APNs, apnsToken)).Node
	for _, s := range []*sealed.Store{newStore(t, a, b), newStore(t, b, a)} {
		for _, c := range []struct {
			node  string
			key   *keyring.Keyring
			other *keyring.Keyring
		}{{nodeA, a, b}, {nodeB, b, a}} {
			if _, err := s.Resolve(ctx, p2http.PushRequest{Node: c.node, Secret: c.key.Secret(c.node)}); err != nil {
				t.Fatal(err)
			}
			_, err := s.Resolve(ctx, p2http.PushRequest{Node: c.node, Secret: c.other.Secret(c.node)})
			wantCode(t, "secret of the colliding key", err, p2http.EFORBIDDEN)
		}
	}
}

func decode(t testing.TB, node string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(node)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Flipping any bit of a node makes it unknown, never another target.
func TestTamperEveryBit(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k, newKey(t, "old"))
	for _, tok := range []string{fcmToken, apnsToken} {
		node := register(t, s, registration(p2http.FCM, tok)).Node
		b := decode(t, node)
		for i := range b {
			for bit := range 8 {
				c := append([]byte(nil), b...)
				c[i] ^= 1 << bit
				tampered := base64.RawURLEncoding.EncodeToString(c)
				_, err := s.Lookup(ctx, tampered)
				wantCode(t, fmt.Sprintf("Lookup, byte %d bit %d flipped", i, bit), err, p2http.ENOTFOUND)
				for _, secret := range []string{k.Secret(node), k.Secret(tampered)} {
					target, err := s.Resolve(ctx, p2http.PushRequest{Node: tampered, Secret: secret})
					wantCode(t, fmt.Sprintf("Resolve, byte %d bit %d flipped", i, bit), err, p2http.ENOTFOUND)
					if target != (p2http.Target{}) {
						t.Fatalf("a tampered node gave a target: %+v", target)
					}
				}
			}
		}
	}
}

// A node cut at any length, in bytes or in characters, is unknown; so is
// one with anything appended.
func TestTruncation(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	node := register(t, s, registration(p2http.APNs, apnsToken)).Node
	b := decode(t, node)
	for n := range len(b) {
		cut := base64.RawURLEncoding.EncodeToString(b[:n])
		_, err := s.Resolve(ctx, p2http.PushRequest{Node: cut, Secret: k.Secret(cut)})
		wantCode(t, fmt.Sprintf("cut to %d bytes", n), err, p2http.ENOTFOUND)
	}
	for n := range len(node) {
		_, err := s.Lookup(ctx, node[:n])
		wantCode(t, fmt.Sprintf("cut to %d characters", n), err, p2http.ENOTFOUND)
	}
	for _, more := range []string{"A", "AA", "AAA", "AAAA"} {
		_, err := s.Lookup(ctx, node+more)
		wantCode(t, "extended by "+more, err, p2http.ENOTFOUND)
	}
}

// A node has one spelling: padding, standard Base64, line breaks, spaces or
// non-zero padding bits do not open it.
func TestOneSpelling(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	var node string
	for i := 0; node == "" || len(node)%4 < 2; i++ { // a length with padding bits
		node = register(t, s, registration(p2http.FCM, fcmToken+strings.Repeat(".", i))).Node
	}
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", node[len(node)-1])
	spellings := []string{
		node + "=", node + "==", node + "\n", node[:10] + "\r\n" + node[10:], " " + node, node + " ",
		strings.NewReplacer("-", "+", "_", "/").Replace(node),
		node[:len(node)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1]),
	}
	for _, sp := range spellings {
		if sp == node {
			continue
		}
		_, err := s.Resolve(ctx, p2http.PushRequest{Node: sp, Secret: k.Secret(sp)})
		wantCode(t, fmt.Sprintf("spelling %q", sp), err, p2http.ENOTFOUND)
	}
	for _, junk := range []string{"", "eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", strings.Repeat("A", 200), "\xff\xfe", "é"} {
		_, err := s.Lookup(ctx, junk)
		wantCode(t, fmt.Sprintf("node %q", junk), err, p2http.ENOTFOUND)
	}
}

func TestDomain(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k)
	r := registration(p2http.FCM, fcmToken)
	r.Domain = "a.example"
	node := register(t, s, r).Node
	secret := k.Secret(node)
	if _, err := s.Resolve(ctx, p2http.PushRequest{Node: node, Secret: secret, Domain: "a.example"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Resolve(ctx, p2http.PushRequest{Node: node, Secret: secret, Domain: "b.example"})
	wantCode(t, "pushed from b.example", err, p2http.ENOTFOUND)
	if p2http.ErrorMessage(err) != "no registration for this node" {
		t.Fatalf("message %q", p2http.ErrorMessage(err))
	}
	// So is the app, when the push names one.
	for _, app := range []p2http.App{"", p2http.DefaultApp} {
		if _, err := s.Resolve(ctx, p2http.PushRequest{Node: node, Secret: secret, App: app}); err != nil {
			t.Fatalf("app %q: %v", app, err)
		}
	}
	_, err = s.Resolve(ctx, p2http.PushRequest{Node: node, Secret: secret, App: "beta"})
	wantCode(t, "pushed to app beta", err, p2http.ENOTFOUND)
	// The domain is checked before the secret: another domain learns nothing.
	_, err = s.Resolve(ctx, p2http.PushRequest{Node: node, Secret: "wrong", Domain: "b.example"})
	wantCode(t, "pushed from b.example with a wrong secret", err, p2http.ENOTFOUND)
}

func TestSecret(t *testing.T) {
	k, other := newKey(t, "current"), newKey(t, "other")
	s := newStore(t, k)
	node := register(t, s, registration(p2http.FCM, fcmToken)).Node
	secret := k.Secret(node)
	for _, wrong := range []string{"", secret[:23], secret + "A", secret[:23] + "A", "KK4+H5WMfpRG/2zCbuKq6wpX", other.Secret(node)} {
		if wrong == secret {
			continue
		}
		target, err := s.Resolve(ctx, p2http.PushRequest{Node: node, Secret: wrong, Domain: domain})
		wantCode(t, fmt.Sprintf("secret %q", wrong), err, p2http.EFORBIDDEN)
		if target != (p2http.Target{}) {
			t.Fatalf("a wrong secret gave a target: %+v", target)
		}
	}
	// A node and secret of another key: unknown here.
	otherNode := register(t, newStore(t, other), registration(p2http.FCM, fcmToken)).Node
	_, err := s.Resolve(ctx, p2http.PushRequest{Node: otherNode, Secret: other.Secret(otherNode)})
	wantCode(t, "node of another key", err, p2http.ENOTFOUND)
	// The secret of one node does not work for another.
	node2 := register(t, s, registration(p2http.FCM, fcmToken+"2")).Node
	_, err = s.Resolve(ctx, p2http.PushRequest{Node: node2, Secret: secret})
	wantCode(t, "secret of another node", err, p2http.EFORBIDDEN)
}

// Registering again gives the same node and secret, as in the stored mode,
// whatever the request's node and times, and with any Store of the same
// key: the XMPP servers, which key push registrations by node, keep one per
// device. Any change of what is sealed gives another node.
func TestSameNode(t *testing.T) {
	k := newKey(t, "current")
	s := newStore(t, k, newKey(t, "old"))
	sameKey := newStore(t, newKey(t, "current")) // another Keyring, same server key
	for _, service := range p2http.Services {
		tok := fcmToken
		if service == p2http.APNs {
			tok = apnsToken
		}
		first := register(t, s, registration(service, tok))
		secret := k.Secret(first.Node)
		for i := range 20 {
			r := registration(service, tok)
			r.Node = fmt.Sprintf("previous%d", i)
			r.UpdatedAt = issued.Add(time.Duration(i) * time.Hour)
			if i%2 == 1 {
				r.UpdatedAt = time.Time{}
			}
			for _, st := range []*sealed.Store{s, sameKey} {
				again := register(t, st, r)
				if again.Node != first.Node || k.Secret(again.Node) != secret {
					t.Fatalf("%s registration %d: node %q, want %q", service, i, again.Node, first.Node)
				}
			}
		}
		if _, err := sameKey.Resolve(ctx, p2http.PushRequest{Node: first.Node, Secret: secret, Domain: domain}); err != nil {
			t.Fatal(err)
		}
	}

	base := registration(p2http.FCM, fcmToken)
	nodes := map[string]string{register(t, s, base).Node: "the registration"}
	for name, change := range map[string]func(*p2http.Registration){
		"new token":      func(r *p2http.Registration) { r.Token = fcmToken[:len(fcmToken)-1] + "h" },
		"longer token":   func(r *p2http.Registration) { r.Token += "A" },
		"other device":   func(r *p2http.Registration) { r.Device = device[:39] + "6" },
		"other domain":   func(r *p2http.Registration) { r.Domain = "conversations.in" },
		"other app":      func(r *p2http.Registration) { r.App = "eu.siacs.conversations.beta" },
		"hex FCM token":  func(r *p2http.Registration) { r.Token = apnsToken }, // "lowercase hex" differs in service only
		"domain → app":   func(r *p2http.Registration) { r.App, r.Domain = "c", "onversations.im" },
		"uppercase hex":  func(r *p2http.Registration) { r.Service, r.Token = p2http.APNs, strings.ToUpper(apnsToken) },
		"lowercase hex":  func(r *p2http.Registration) { r.Service, r.Token = p2http.APNs, apnsToken },
		"raw of the FCM": func(r *p2http.Registration) { r.Token = strings.Replace(fcmToken, ":APA91b", ":APA91c", 1) },
	} {
		r := base
		change(&r)
		node := register(t, s, r).Node
		if prev, dup := nodes[node]; dup {
			t.Fatalf("%s: the node of %s", name, prev)
		}
		nodes[node] = name
		if k.Secret(node) == k.Secret(register(t, s, base).Node) {
			t.Fatalf("%s: the secret of the registration", name)
		}
	}
}

// The store keeps nothing, so it is no p2http.Keeper: a relay over it has
// nothing to remove or record (TestRelay checks what it answers).
func TestNothingKept(t *testing.T) {
	var s any = newStore(t, newKey(t, "current"))
	if _, ok := s.(p2http.Keeper); ok {
		t.Fatal("the stateless store claims to keep registrations")
	}
}

// FuzzSealedNode: whatever the node, secret and domain, Lookup and Resolve
// do not panic and answer only ENOTFOUND or EFORBIDDEN, or succeed with a
// registration that seals back into the same node.
func FuzzSealedNode(f *testing.F) {
	k := newKey(f, "current")
	old := newKey(f, "old")
	s := newStore(f, k, old)
	byKey := map[*keyring.Keyring]*sealed.Store{k: newStore(f, k), old: newStore(f, old)}
	for _, r := range []p2http.Registration{registration(p2http.FCM, fcmToken), registration(p2http.APNs, apnsToken)} {
		for _, key := range []*keyring.Keyring{k, old} {
			node := register(f, newStore(f, key), r).Node
			f.Add(node, key.Secret(node), domain)
			f.Add(node, key.Secret(node), "b.example")
			f.Add(node, "", "")
			f.Add(node[:len(node)-1], key.Secret(node), "")
			f.Add(node[1:], key.Secret(node), "")
		}
	}
	f.Add("eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX", "example.org")
	f.Add(strings.Repeat("Q", 1024), "", "")
	f.Add("\n\r=", "\x00", "\xff")
	f.Fuzz(func(t *testing.T, node, secret, dom string) {
		reg, err := s.Lookup(ctx, node)
		if err != nil {
			wantCode(t, "Lookup", err, p2http.ENOTFOUND)
		} else {
			if reg.Node != node || len(node) > sealed.MaxNodeLength || reg.Token == "" || reg.Domain == "" ||
				!reg.Service.Valid() || len(reg.Device) != 40 {
				t.Fatalf("Lookup(%q) = %+v", node, reg)
			}
			// Sealed again with the key that opened it, it is the very
			// same node: one registration, one node.
			sealedBack := false
			for key, ks := range byKey {
				if _, err := ks.Lookup(ctx, node); err != nil {
					continue
				}
				again, _, err := ks.Register(ctx, reg)
				if err != nil {
					t.Fatalf("what Lookup returned does not seal again: %v", err)
				}
				if again.Node != node || key.Secret(again.Node) != key.Secret(node) {
					t.Fatalf("Lookup(%q) sealed again into %q", node, again.Node)
				}
				sealedBack = true
			}
			if !sealedBack {
				t.Fatalf("Lookup(%q) succeeded, but no key alone opens it", node)
			}
		}
		target, err := s.Resolve(ctx, p2http.PushRequest{Node: node, Secret: secret, Domain: dom})
		switch code := p2http.ErrorCode(err); code {
		case "":
			if reg.Node != node || target.Token != reg.Token || dom != "" && dom != reg.Domain {
				t.Fatalf("Resolve(%q, %q, %q) = %+v, Lookup = %+v", node, secret, dom, target, reg)
			}
			if !k.CheckSecret(node, secret) && !old.CheckSecret(node, secret) {
				t.Fatalf("Resolve accepted secret %q", secret)
			}
		case p2http.ENOTFOUND, p2http.EFORBIDDEN:
			if target != (p2http.Target{}) {
				t.Fatalf("failed Resolve returned a target: %+v", target)
			}
		default:
			t.Fatalf("Resolve(%q): %v", node, err)
		}
	})
}

// Register and Resolve of a typical FCM registration.
func BenchmarkSealOpen(b *testing.B) {
	k := newKey(b, "current")
	s := newStore(b, k, newKey(b, "old"))
	r := registration(p2http.FCM, fcmToken)
	b.ReportAllocs()
	for b.Loop() {
		reg, _, err := s.Register(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Resolve(ctx, p2http.PushRequest{Node: reg.Node, Secret: k.Secret(reg.Node), Domain: domain}); err != nil {
			b.Fatal(err)
		}
	}
}

// Open seals with the current key and opens with every key; a key it
// cannot use is named by its place.
func TestOpenRotation(t *testing.T) {
	old := "previous-server-key-0123456789abcdefghij"
	_, before, err := sealed.Open(old, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg, _, err := before.Register(ctx, registration(p2http.FCM, fcmToken))
	if err != nil {
		t.Fatal(err)
	}
	current, after, err := sealed.Open("current-server-key-0123456789abcdefghijk", []string{old})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := after.Lookup(ctx, reg.Node); err != nil {
		t.Fatalf("a node of the previous key: %v", err)
	}
	if current.Fingerprint() == "" {
		t.Fatal("no current keyring")
	}
	var ke *sealed.KeyError
	if _, _, err := sealed.Open("short", nil); !errors.As(err, &ke) || ke.Key != 0 {
		t.Fatalf("a short current key: %v", err)
	}
	if _, _, err := sealed.Open(old, []string{old + "x", "short"}); !errors.As(err, &ke) || ke.Key != 2 {
		t.Fatalf("a short second previous key: %v", err)
	}
}
