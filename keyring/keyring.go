// Package keyring derives everything p2http protects from the one server key
// (P2_SECRET_KEY): the push secrets handed out at registration, the
// encryption of secrets that must be kept (imported from p2), and a
// fingerprint that lets the database notice a changed key (Load holds a
// database to the key it was first used with).
//
// A copy of the database alone therefore cannot be used to forge a push:
// derived secrets are never stored, kept ones only encrypted.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
	"sync"
)

// MinKeyLength is the shortest server key accepted, in characters.
const MinKeyLength = 32

// Keyring holds the keys derived from the server key.
type Keyring struct {
	macPool     sync.Pool // of hash.Hash keyed for secret derivation
	aead        cipher.AEAD
	fingerprint string
	node        nodeKey // seals stateless nodes (node.go)
}

// New derives the keyring from the server key.
func New(serverKey string) (*Keyring, error) {
	if len(serverKey) < MinKeyLength {
		return nil, fmt.Errorf("the server key must be at least %d characters long, it has %d", MinKeyLength, len(serverKey))
	}
	derive := func(purpose string) []byte {
		k, err := hkdf.Key(sha256.New, []byte(serverKey), nil, "p2http "+purpose+" v1", 32)
		if err != nil {
			panic(err) // only for lengths sha256's HKDF cannot produce
		}
		return k
	}
	secretKey := derive("secret")
	block, err := aes.NewCipher(derive("kept-secret"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	node, err := newNodeKey(derive)
	if err != nil {
		return nil, err
	}
	k := &Keyring{
		aead:        aead,
		fingerprint: "v1:" + hex.EncodeToString(derive("fingerprint")[:16]),
		node:        node,
	}
	k.macPool.New = func() any { return hmac.New(sha256.New, secretKey) }
	return k, nil
}

// Secret derives the push secret of a node: the first 18 bytes of
// HMAC-SHA-256 under the secret key, in standard Base64 — 24 characters, the
// shape of p2's random secrets.
func (k *Keyring) Secret(node string) string {
	var sum [sha256.Size]byte
	m := k.macPool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(node))
	m.Sum(sum[:0])
	k.macPool.Put(m)
	return base64.StdEncoding.EncodeToString(sum[:18])
}

// CheckSecret reports, in constant time, whether secret is the derived
// secret of node.
func (k *Keyring) CheckSecret(node, secret string) bool {
	return Equal(k.Secret(node), secret)
}

// Equal compares two strings in constant time (for equal lengths).
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Fingerprint identifies the server key without revealing it. It is stored
// at first start so that a later start with another key is refused.
func (k *Keyring) Fingerprint() string { return k.fingerprint }

// Seal encrypts a secret that must be kept, bound to its node so that a
// sealed secret cannot be moved to another row.
func (k *Keyring) Seal(node, secret string) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(secret)+k.aead.Overhead())
	rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, []byte(secret), []byte(node))
}

// ErrSealed is returned by Open when a sealed secret does not open under
// this key and node.
var ErrSealed = errors.New("kept secret does not open with this server key")

// Open decrypts a secret sealed for node.
func (k *Keyring) Open(node string, sealed []byte) (string, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return "", ErrSealed
	}
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(node))
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}

// LoadOrCreateKeyFile reads the server key from path, or, when the file does
// not exist, generates a new random key, writes it there readable by the
// owner only and reports created. A caller that must check the key against
// a database before anything is written uses ReadKeyFile, NewKey and
// WriteKeyFile instead.
func LoadOrCreateKeyFile(path string) (key string, created bool, err error) {
	key, err = ReadKeyFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	key = NewKey()
	if err := WriteKeyFile(path, key); err != nil {
		return "", false, err
	}
	return key, true, nil
}

// ReadKeyFile reads the server key from path. When the file does not exist
// the error wraps os.ErrNotExist.
func ReadKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	if len(key) < MinKeyLength {
		return "", fmt.Errorf("key file %s holds fewer than %d characters", path, MinKeyLength)
	}
	return key, nil
}

// NewKey returns a new random server key: 32 random bytes, 43 characters
// of unpadded URL-safe Base64.
func NewKey() string {
	var raw [32]byte
	rand.Read(raw[:])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// WriteKeyFile writes key to path, readable by the owner only. It never
// replaces a file: when path exists it fails with an error wrapping
// os.ErrExist. A write that fails leaves no file behind.
func WriteKeyFile(path, key string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(key + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
