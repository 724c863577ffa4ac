// Package sealed is p2http's stateless mode: no database, the node IS the
// registration. Register seals app, service, token, device hash and the
// account's domain into the node it hands out, and a push opens the node
// again to learn where to deliver. A Store is both the p2http.Store and the
// p2http.Resolver of a relay, and no p2http.Keeper: it keeps nothing.
//
// # What a node holds
//
//	node  = base64url, unpadded (RFC 4648 §5) of  H ‖ nonce ‖ ciphertext ‖ tag
//	H     = 0b01 (format 1) in the top 2 bits, the key id (keyring.NodeKeyID,
//	        6 bits) below; H is also the AEAD's additional data
//	nonce = 12 bytes, synthetic (keyring.Keyring.SealNode); tag = 16 bytes
//	        (AES-256-GCM)
//	plaintext = flags (1 byte: bit 0 service, 0 FCM / 1 APNs; bits 1-2 token
//	        form; bits 3-7 zero) ‖ device hash (20 bytes) ‖ uvarint len ‖
//	        app (empty for the default app) ‖ uvarint len ‖ domain ‖ token
//	        (the rest)
//
// Token forms: 0 raw bytes; 1 lowercase and 2 uppercase hexadecimal of even
// length, stored as the bytes they spell (APNs tokens; apns/ puts the token
// verbatim in the request path, so its case is given back exactly as
// registered); 3 an FCM token P ":APA91b" S whose P (under 64 characters)
// and S are base64url characters: one byte len(P) | (len(P)+len(S)) mod 4
// << 6, then the characters of P and S packed 6 bits each.
//
// # One registration, one node
//
// Sealing is deterministic (keyring.Keyring.SealNode): registering again
// with the same app, service, token, device and domain, under the same key,
// gives the very same node and secret, as registering again does in the
// stored mode; a new token gives a new node. This matters because
// Conversations registers at every login and then enables push on its XMPP
// server with the node it got, and Prosody and ejabberd key push
// registrations by (JID, node): were every registration sealed afresh, each
// login would add one more live node for the same token, and every message
// would wake the phone once per node, for as long as the token lives.
// Determinism reveals only that two nodes hold the same registration, which
// their being equal shows anyway.
//
// For the same reason a node holds no time. The issue that asked for this
// mode wanted the time of issue sealed in as well; that is a deliberate
// departure: a time would seal the same registration differently every
// second, which defeats the point, and a stateless server cannot know when a
// registration was first issued anyway. Register answers the request's
// update time (or now) without sealing it; Lookup and Resolve give zero
// times. A dead-token report therefore always retires the node (EGONE, and
// the XMPP server drops it), even one whose APNs timestamp the stored mode
// would find older than the registration: there is no registration time to
// compare it with. A phone that registers again gets its node back.
//
// # Why it is safe
//
// The node is encrypted and authenticated (AEAD) under a key derived from
// the server key with its own HKDF purpose. Nobody without the key can read
// the token, the device hash or the domain out of a node, nor make or alter
// one: a flipped bit, a truncation or a node of another key is
// ENOTFOUND. This is not an open relay like fpush, whose node is the raw
// device token, with no registration and no secret: there, whoever learns a
// token can push to it, and a node can name any token at all. Here a node
// only ever leads to a token a phone registered, from the domain it
// registered on.
//
// The secret is not in the node: it is derived from the node string with
// the key that sealed it (keyring.Keyring.Secret, HMAC-SHA-256), as in the
// stored mode, and checked in constant time. Knowing a node is not enough to
// push; the phone's XMPP server keeps node and secret, as with p2. A node
// pushed from another domain than its account's is unknown, as in p2, and
// so is one pushed to another app than its own.
// Strict decoding makes every node one string only: no second spelling of
// a node opens, and a node whose nonce is not the synthetic one of its
// content does not open either, so a registration has exactly one node per
// key.
//
// What statelessness costs: nothing can be revoked. An unregistration has
// nothing to remove (the relay answers it as done), and a node stays valid
// for as long as the key that sealed it is configured; the phone's XMPP
// server forgets it when the phone disables push or when a push answers
// EGONE (the relay, finding nothing kept to remove, reports the node
// removed).
//
// # Key rotation
//
// keys[0] seals new nodes and derives their secrets (it must be the relay's
// Keyring); the other keys only open nodes they sealed earlier, and the
// secret is checked with the key that opened the node. After a rotation a
// phone that registers again gets a node under the new key, a different
// one, while its old node keeps working for as long as the old key is in
// P2_PREVIOUS_SECRET_KEYS: until then its XMPP server holds both, and each
// message wakes the phone twice. Keep previous keys only until phones have
// registered again (Conversations does at every login), then remove them.
// Removing a key retires all its nodes: their pushes get ENOTFOUND, the XMPP
// servers drop them, and phones that have not yet registered again do so.
//
// # Choice of AEAD
//
// AES-256-GCM with a synthetic 96-bit nonce (HMAC-SHA-256 of the additional
// data and plaintext under a key of its own, see keyring.Keyring.SealNode)
// rather than XChaCha20-Poly1305 or AES-GCM-SIV: its 28 bytes of overhead
// are 12 bytes (16 characters) shorter than XChaCha's 40, and everything it
// needs is in the standard library (golang.org/x/crypto is only an indirect
// dependency here, and has no AES-GCM-SIV) with hardware AES on servers;
// the keyring already uses AES-GCM for kept secrets. Sealing the same
// registration again reuses a nonce only with the same plaintext, which
// gives the same output and nothing more; distinct registrations get
// distinct nonces except with probability 2⁻⁹⁶ per pair.
//
// # Sizes
//
// Measured (TestNodeLengths): a 163-character FCM token gives a node of 242
// characters with the domain example.org, 248 with conversations.im; a
// 64-hex APNs token one of 127 and 134 characters. Each further character
// of domain adds 4/3 of a character. Every node is at most MaxNodeLength
// characters; a token that would make a longer one is refused (EINVALID,
// field "token"); api/ and xmpp/ accept pushed nodes of up to
// p2http.MaxNodeLength characters, the same bound.
package sealed

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/keyring"
)

// MaxNodeLength bounds the length of a node, in characters. Prosody and
// ejabberd keep nodes as text and send them back in an attribute, and
// ejabberd's SQL schema indexes their first 191 characters: anything up to a
// few hundred characters is fine; 1023 leaves room for long tokens.
const MaxNodeLength = p2http.MaxNodeLength

// Layout constants.
const (
	format     = 1 << 6 // format 1, in the top two bits of the header
	formatMask = 0xc0
	headerLen  = 1
	deviceLen  = 20
	fixedLen   = 1 + deviceLen         // flags, device
	maxSealed  = MaxNodeLength * 3 / 4 // bytes a MaxNodeLength node decodes to

	serviceAPNs = 1 << 0
	formShift   = 1
	formMask    = 3 << formShift
	formRaw     = 0
	formHexLow  = 1
	formHexUp   = 2
	formFCM     = 3
	fcmMarker   = ":APA91b"
	maxFCMPre   = 63
)

var enc = base64.RawURLEncoding.Strict()

// Store seals registrations into nodes and opens them again. It keeps
// nothing and is safe for concurrent use.
type Store struct {
	keys []*keyring.Keyring
	now  func() time.Time
}

var (
	_ p2http.Store    = (*Store)(nil)
	_ p2http.Resolver = (*Store)(nil)
)

// New returns a Store sealing with keys[0] and opening with any of keys.
// now is the clock that gives the times Register answers for a registration
// without update time (they are not sealed); nil means time.Now.
func New(keys []*keyring.Keyring, now func() time.Time) (*Store, error) {
	if len(keys) == 0 {
		return nil, errors.New("sealed: at least one key is needed")
	}
	for _, k := range keys {
		if k == nil {
			return nil, errors.New("sealed: nil key")
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Store{keys: append([]*keyring.Keyring(nil), keys...), now: now}, nil
}

// Register seals r into its node: the same app, service, device, domain and
// token under the same keys[0] always give the same node, and so the same
// secret, keys[0].Secret(node). r must pass p2http.Registration.Validate,
// as with any store (else its EINVALID error); the node it proposes is
// replaced by the sealed one, and a kept secret is not sealed (the secret
// is always derived). A token whose node would be longer than
// MaxNodeLength is EINVALID too (field "token"). The registration returned
// holds the node, a derived secret kind, and r.UpdatedAt (or the clock's
// time when zero) truncated to seconds as creation and update time, which
// are not sealed; created is always true (nothing is kept to tell a new
// registration from a repeated one).
func (s *Store) Register(ctx context.Context, r p2http.Registration) (p2http.Registration, bool, error) {
	if err := r.Validate(); err != nil {
		return p2http.Registration{}, false, err
	}
	var device [deviceLen]byte
	hexBytes(device[:0], r.Device)
	var app string // the default app is sealed as the empty name
	if !r.App.IsDefault() {
		app = string(r.App)
	}

	pt := make([]byte, fixedLen, fixedLen+2*binary.MaxVarintLen64+len(app)+len(r.Domain)+len(r.Token)+1)
	if r.Service == p2http.APNs {
		pt[0] = serviceAPNs
	}
	copy(pt[1:], device[:])
	pt = binary.AppendUvarint(pt, uint64(len(app)))
	pt = append(pt, app...)
	pt = binary.AppendUvarint(pt, uint64(len(r.Domain)))
	pt = append(pt, r.Domain...)
	var form byte
	pt, form = appendToken(pt, r.Token)
	pt[0] |= form << formShift

	if enc.EncodedLen(headerLen+keyring.NodeOverhead+len(pt)) > MaxNodeLength {
		return p2http.Registration{}, false, p2http.Invalid("token", "the token and the account's domain are too long to be sealed into a node of at most %d characters", MaxNodeLength)
	}
	k := s.keys[0]
	header := [headerLen]byte{format | k.NodeKeyID()}
	sealed := make([]byte, 0, headerLen+keyring.NodeOverhead+len(pt))
	sealed = append(sealed, header[:]...)
	sealed = k.SealNode(sealed, pt, header[:])

	// The time is answered, not sealed (see the package doc).
	t := r.UpdatedAt
	if t.IsZero() {
		t = s.now()
	}
	t = time.Unix(t.Unix(), 0).UTC()
	return p2http.Registration{
		App:        r.App.OrDefault(),
		Service:    r.Service,
		Device:     r.Device,
		Domain:     r.Domain,
		Token:      r.Token,
		Node:       enc.EncodeToString(sealed),
		SecretKind: p2http.SecretDerived,
		CreatedAt:  t,
		UpdatedAt:  t,
	}, true, nil
}

// Lookup opens node; ENOTFOUND when it does not open with any key. The
// registration has zero creation and update times, a node holds none, and
// an empty push history whose Recorded is false: the stateless mode keeps
// nothing of pushes, and GET /v1/registration says so (push_history none).
func (s *Store) Lookup(ctx context.Context, node string) (p2http.Registration, error) {
	reg, _, err := s.open(node)
	return reg, err
}

// Resolve opens the node, checks domain and app when the request names them,
// and then, in constant time, the secret derived with the key that opened
// it. The target's UpdatedAt is zero: a node holds no time, so any
// dead-token report, dated or not, retires it.
func (s *Store) Resolve(ctx context.Context, req p2http.PushRequest) (p2http.Target, error) {
	reg, k, err := s.open(req.Node)
	if err != nil {
		return p2http.Target{}, err
	}
	if req.Domain != "" && req.Domain != reg.Domain || req.App != "" && req.App != reg.App {
		// A node of another domain (or app) is as unknown as a missing one,
		// as in p2.
		return p2http.Target{}, notFound(nil)
	}
	if !keyring.Equal(k.Secret(reg.Node), req.Secret) {
		return p2http.Target{}, p2http.Errorf(p2http.EFORBIDDEN, "wrong secret for this node")
	}
	return reg.Target(), nil
}

var (
	errEncoding = errors.New("sealed node: not a node of this server's shape")
	errNoKey    = errors.New("sealed node: no configured key opens it")
	errLayout   = errors.New("sealed node: opened but malformed")
)

func notFound(cause error) error {
	return &p2http.Error{Code: p2http.ENOTFOUND, Message: "no registration for this node", Err: cause}
}

// open decodes and opens node, returning the registration and the key that
// opened it.
func (s *Store) open(node string) (p2http.Registration, *keyring.Keyring, error) {
	if len(node) > MaxNodeLength || len(node) < enc.EncodedLen(headerLen+keyring.NodeOverhead+fixedLen) {
		return p2http.Registration{}, nil, notFound(errEncoding)
	}
	for i := 0; i < len(node); i++ {
		// The decoder skips CR and LF: refuse them, and all else outside
		// the alphabet, so that a node has one spelling.
		if !isURLChar(node[i]) {
			return p2http.Registration{}, nil, notFound(errEncoding)
		}
	}
	var buf [maxSealed]byte
	n, err := enc.Decode(buf[:], []byte(node))
	if err != nil || buf[0]&formatMask != format {
		return p2http.Registration{}, nil, notFound(errEncoding)
	}
	b := buf[:n]
	plain := make([]byte, 0, n-headerLen-keyring.NodeOverhead)
	id := b[0] &^ formatMask
	for _, k := range s.keys {
		if k.NodeKeyID() != id {
			continue
		}
		pt, err := k.OpenNode(plain, b[headerLen:], b[:headerLen])
		if err != nil {
			continue // a key id shared with another key: try the next
		}
		reg, ok := parse(pt)
		if !ok {
			return p2http.Registration{}, nil, notFound(errLayout)
		}
		reg.Node = node
		return reg, k, nil
	}
	return p2http.Registration{}, nil, notFound(errNoKey)
}

// parse reads an opened plaintext.
func parse(pt []byte) (p2http.Registration, bool) {
	if len(pt) < fixedLen || pt[0]&^(serviceAPNs|formMask) != 0 {
		return p2http.Registration{}, false
	}
	reg := p2http.Registration{Service: p2http.FCM, SecretKind: p2http.SecretDerived}
	if pt[0]&serviceAPNs != 0 {
		reg.Service = p2http.APNs
	}
	form := pt[0] & formMask >> formShift
	reg.Device = hex.EncodeToString(pt[1:fixedLen])
	rest := pt[fixedLen:]
	app, rest, ok := field(rest)
	if !ok {
		return p2http.Registration{}, false
	}
	reg.App = p2http.App(app).OrDefault()
	domain, rest, ok := field(rest)
	if !ok || len(domain) == 0 {
		return p2http.Registration{}, false
	}
	reg.Domain = string(domain)
	if reg.Token, ok = decodeToken(form, rest); !ok || reg.Token == "" {
		return p2http.Registration{}, false
	}
	return reg, true
}

// field reads one length-prefixed field.
func field(b []byte) (f, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	return b[w : w+int(n)], b[w+int(n):], true
}

// appendToken appends the shortest form of token and says which it is.
func appendToken(dst []byte, token string) ([]byte, byte) {
	if len(token)%2 == 0 {
		switch {
		case isHex(token, false):
			return hexBytes(dst, token), formHexLow
		case isHex(token, true):
			return hexBytes(dst, token), formHexUp
		}
	}
	if i := strings.Index(token, fcmMarker); 0 <= i && i <= maxFCMPre {
		pre, suf := token[:i], token[i+len(fcmMarker):]
		if allURL(pre) && allURL(suf) {
			n := len(pre) + len(suf)
			dst = append(dst, byte(len(pre))|byte(n%4)<<6)
			return pack(dst, pre, suf), formFCM
		}
	}
	return append(dst, token...), formRaw
}

// decodeToken restores a token from its form.
func decodeToken(form byte, b []byte) (string, bool) {
	switch form {
	case formRaw:
		return string(b), true
	case formHexLow:
		return hex.EncodeToString(b), true
	case formHexUp:
		return strings.ToUpper(hex.EncodeToString(b)), true
	}
	// formFCM
	if len(b) < 1 {
		return "", false
	}
	pre, mod := int(b[0]&maxFCMPre), int(b[0]>>6)
	b = b[1:]
	n := len(b) * 8 / 6
	if n%4 != mod {
		n--
	}
	if n < 0 || n%4 != mod || packedLen(n) != len(b) || pre > n {
		return "", false
	}
	out := make([]byte, n+len(fcmMarker))
	syms := out[:pre]
	var acc uint32
	bits := 0
	j := 0
	for i := 0; i < n; i++ {
		for bits < 6 {
			acc = acc<<8 | uint32(b[j])
			j++
			bits += 8
		}
		bits -= 6
		c := urlAlphabet[acc>>bits&63]
		if i < pre {
			syms[i] = c
		} else {
			out[i+len(fcmMarker)] = c
		}
	}
	if acc&(1<<bits-1) != 0 {
		return "", false // padding bits are zero in a node we sealed
	}
	copy(out[pre:], fcmMarker)
	return string(out), true
}

const urlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// packedLen is the number of bytes n 6-bit symbols take.
func packedLen(n int) int { return (n*6 + 7) / 8 }

// pack appends the characters of a and b, 6 bits each, most significant
// first, the last byte padded with zero bits.
func pack(dst []byte, a, b string) []byte {
	var acc uint32
	bits := 0
	for _, s := range [2]string{a, b} {
		for i := 0; i < len(s); i++ {
			acc = acc<<6 | uint32(urlValue(s[i]))
			bits += 6
			if bits >= 8 {
				bits -= 8
				dst = append(dst, byte(acc>>bits))
			}
		}
	}
	if bits > 0 {
		dst = append(dst, byte(acc<<(8-bits)))
	}
	return dst
}

func urlValue(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26
	case '0' <= c && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63 // '_'
}

func isURLChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func allURL(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isURLChar(s[i]) {
			return false
		}
	}
	return true
}

// isHex reports whether s is all hexadecimal digits, their letters of one
// case (upper when upper is set).
func isHex(s string, upper bool) bool {
	lo, hi := byte('a'), byte('f')
	if upper {
		lo, hi = 'A', 'F'
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < lo || c > hi) {
			return false
		}
	}
	return true
}

func hexBytes(dst []byte, s string) []byte {
	for i := 0; i < len(s); i += 2 {
		dst = append(dst, hexValue(s[i])<<4|hexValue(s[i+1]))
	}
	return dst
}

func hexValue(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
