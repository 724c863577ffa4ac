package keyring_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/p2http/p2http/keyring"
)

func TestNodeSealing(t *testing.T) {
	k, _ := keyring.New(key)
	same, _ := keyring.New(key)
	other, _ := keyring.New(key + "x")
	if k.NodeKeyID() != same.NodeKeyID() || k.NodeKeyID() >= 1<<keyring.NodeKeyIDBits {
		t.Fatalf("node key ids %d, %d", k.NodeKeyID(), same.NodeKeyID())
	}
	plain, ad := []byte("a registration"), []byte{0x41}
	sealed := k.SealNode([]byte("prefix"), plain, ad)
	if !bytes.HasPrefix(sealed, []byte("prefix")) || len(sealed) != len("prefix")+len(plain)+keyring.NodeOverhead {
		t.Fatalf("sealed %d bytes", len(sealed))
	}
	sealed = sealed[len("prefix"):]
	if bytes.Contains(sealed, plain) {
		t.Fatal("plaintext visible in the sealed node")
	}
	got, err := same.OpenNode(nil, sealed, ad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("OpenNode: %q, %v", got, err)
	}
	got, err = k.OpenNode([]byte("prefix"), sealed, ad)
	if err != nil || string(got) != "prefix"+string(plain) {
		t.Fatalf("OpenNode after a prefix: %q, %v", got, err)
	}
	if _, err := k.OpenNode(nil, sealed, []byte{0x42}); err != keyring.ErrNodeSealed {
		t.Fatalf("other additional data: %v", err)
	}
	if _, err := other.OpenNode(nil, sealed, ad); err != keyring.ErrNodeSealed {
		t.Fatalf("other key: %v", err)
	}
	for n := range len(sealed) {
		if _, err := k.OpenNode(nil, sealed[:n], ad); err != keyring.ErrNodeSealed {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
	for i := range sealed {
		c := bytes.Clone(sealed)
		c[i] ^= 0x80
		if _, err := k.OpenNode(nil, c, ad); err != keyring.ErrNodeSealed {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	// The node key is none of the other derived keys: a kept secret sealed
	// for a node does not open as a node, nor the reverse.
	if _, err := k.OpenNode(nil, k.Seal("node", "secret"), []byte("node")); err != keyring.ErrNodeSealed {
		t.Fatalf("kept secret opened as a node: %v", err)
	}
	if _, err := k.Open("", k.SealNode(nil, plain, nil)); err == nil {
		t.Fatal("node opened as a kept secret")
	}
}

// Sealing is deterministic: equal inputs under one server key give equal
// outputs, in any Keyring made from it; any other input, another.
func TestNodeSealingDeterministic(t *testing.T) {
	k, _ := keyring.New(key)
	same, _ := keyring.New(key)
	other, _ := keyring.New(key + "x")
	plain, ad := []byte("a registration"), []byte{0x41}
	sealed := k.SealNode(nil, plain, ad)
	if !bytes.Equal(sealed, k.SealNode(nil, plain, ad)) || !bytes.Equal(sealed, same.SealNode(nil, plain, ad)) {
		t.Fatal("two seals of one plaintext under one key differ")
	}
	seen := map[string]string{string(sealed): "original"}
	for what, s := range map[string][]byte{
		"other key":             other.SealNode(nil, plain, ad),
		"other additional data": k.SealNode(nil, plain, []byte{0x42}),
		"no additional data":    k.SealNode(nil, plain, nil),
		"one bit of plaintext":  k.SealNode(nil, []byte("a registratioo"), ad),
		"longer plaintext":      k.SealNode(nil, []byte("a registration."), ad),
		"shorter plaintext":     k.SealNode(nil, plain[:len(plain)-1], ad),
		// The encoding is length-prefixed: moving a byte between
		// additional data and plaintext changes the nonce.
		"byte moved to the additional data": k.SealNode(nil, plain[1:], append(bytes.Clone(ad), plain[0])),
	} {
		if prev, dup := seen[string(s)]; dup {
			t.Fatalf("%s seals as %s does", what, prev)
		}
		if bytes.Equal(s[:12], sealed[:12]) {
			t.Fatalf("%s: same nonce as the original", what)
		}
		seen[string(s)] = what
	}
	// Sealing writes nothing into the plaintext or the additional data.
	if string(plain) != "a registration" || ad[0] != 0x41 {
		t.Fatal("inputs modified")
	}
}

// reference seals as the package documents it, with the standard library
// alone: HKDF keys, HMAC-SHA-256 nonce over the length-prefixed encoding,
// plain AES-256-GCM.
type reference struct {
	aead   cipher.AEAD
	sivKey []byte
}

func newReference(t *testing.T, serverKey string) reference {
	t.Helper()
	derive := func(purpose string) []byte {
		k, err := hkdf.Key(sha256.New, []byte(serverKey), nil, "p2http "+purpose+" v1", 32)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	block, err := aes.NewCipher(derive("node"))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return reference{aead: aead, sivKey: derive("node-siv")}
}

func (r reference) nonce(plain, ad []byte) []byte {
	m := hmac.New(sha256.New, r.sivKey)
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(ad))))
	m.Write(ad)
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(plain))))
	m.Write(plain)
	return m.Sum(nil)[:12]
}

func (r reference) seal(nonce, plain, ad []byte) []byte {
	return r.aead.Seal(bytes.Clone(nonce), nonce, plain, ad)
}

// SealNode is exactly the documented construction (nodes already handed
// out depend on it), and OpenNode accepts a GCM message under the node key
// only with the synthetic nonce of its content.
func TestNodeSyntheticNonce(t *testing.T) {
	k, _ := keyring.New(key)
	ref := newReference(t, key)
	for _, c := range []struct{ plain, ad []byte }{
		{[]byte("a registration"), []byte{0x41}},
		{nil, nil},
		{[]byte{}, []byte("header")},
		{bytes.Repeat([]byte{0xff}, 1000), nil},
	} {
		want := ref.seal(ref.nonce(c.plain, c.ad), c.plain, c.ad)
		got := k.SealNode(nil, c.plain, c.ad)
		if !bytes.Equal(got, want) {
			t.Fatalf("SealNode(%q, %q) = %x, want %x", c.plain, c.ad, got, want)
		}
		if pt, err := k.OpenNode(nil, want, c.ad); err != nil || !bytes.Equal(pt, c.plain) {
			t.Fatalf("OpenNode of the reference: %q, %v", pt, err)
		}

		// Correctly sealed under the node key, but with another nonce: a
		// random-looking one, the synthetic nonce of another message, a
		// zero one. GCM authenticates each; OpenNode refuses them all.
		for _, nonce := range [][]byte{
			[]byte("not-the-siv!"),
			ref.nonce(append(bytes.Clone(c.plain), 0), c.ad),
			ref.nonce(c.plain, append(bytes.Clone(c.ad), 0)),
			make([]byte, 12),
		} {
			forged := ref.seal(nonce, c.plain, c.ad)
			if _, err := ref.aead.Open(nil, forged[:12], forged[12:], c.ad); err != nil {
				t.Fatalf("the reference does not open its own seal: %v", err)
			}
			if pt, err := k.OpenNode(nil, forged, c.ad); err != keyring.ErrNodeSealed || pt != nil {
				t.Fatalf("OpenNode accepted nonce %x: %q, %v", nonce, pt, err)
			}
		}
		// The original ciphertext and tag under another (valid-looking)
		// nonce do not even authenticate.
		moved := append(ref.nonce(c.plain, append(bytes.Clone(c.ad), 0)), want[12:]...)
		if _, err := k.OpenNode(nil, moved, c.ad); err != keyring.ErrNodeSealed {
			t.Fatalf("ciphertext under another nonce: %v", err)
		}
	}
	// A refused message leaves nothing of its plaintext in dst's storage.
	forged := ref.seal([]byte("not-the-siv!"), []byte("secret stuff"), nil)
	dst := make([]byte, 0, 64)
	if _, err := k.OpenNode(dst, forged, nil); err != keyring.ErrNodeSealed {
		t.Fatal(err)
	}
	if bytes.Contains(dst[:cap(dst)], []byte("secret")) {
		t.Fatal("a refused plaintext stays in dst")
	}
}

func BenchmarkSealNode(b *testing.B) {
	k, _ := keyring.New(key)
	plain, ad := bytes.Repeat([]byte{0x5a}, 160), []byte{0x41}
	buf := make([]byte, 0, len(plain)+keyring.NodeOverhead)
	b.ReportAllocs()
	for b.Loop() {
		buf = k.SealNode(buf[:0], plain, ad)
	}
}

func BenchmarkOpenNode(b *testing.B) {
	k, _ := keyring.New(key)
	plain, ad := bytes.Repeat([]byte{0x5a}, 160), []byte{0x41}
	sealed := k.SealNode(nil, plain, ad)
	buf := make([]byte, 0, len(plain))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.OpenNode(buf[:0], sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}
