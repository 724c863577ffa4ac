package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
)

// Node sealing: the keys of the stateless mode (package sealed), where a
// registration is not stored but sealed into its own node. The keyring only
// encrypts and authenticates; the layout of what is sealed belongs to the
// caller.
//
// Three values are derived from the server key with HKDF, each under a
// purpose of its own ("node", "node-siv" and "node-id", distinct from
// "secret", "kept-secret" and "fingerprint"): an AES-256-GCM key, an
// HMAC-SHA-256 key that makes the nonces, and a short key id that a sealed
// node carries in clear so that the key which sealed it can be found among
// several without trying them all.
//
// # Deterministic sealing
//
// Sealing is deterministic, in the synthetic-IV (SIV) style: the nonce is
// not random but the first 12 bytes of
//
//	HMAC-SHA-256(siv key, len(ad) ‖ ad ‖ len(plaintext) ‖ plaintext)
//
// (lengths 8 bytes big-endian), and then AES-256-GCM seals plaintext and ad
// under that nonce. The same plaintext and additional data under the same
// key therefore always give the same sealed bytes. That is the point: a
// phone that registers again with the same token must get the same node,
// as in the stored mode, because Prosody and ejabberd key push
// registrations by (JID, node); with a fresh node at every login (as
// Conversations registers) the servers would pile up live nodes for one
// token and wake the phone once per node for every message, forever.
//
// What determinism reveals: only whether two sealed nodes hold the same
// registration, which equal nodes show anyway. Different plaintexts get
// different nonces except with probability 2⁻⁹⁶ per pair (HMAC is a PRF
// under a key of its own), so GCM sees one nonce with two different
// plaintexts only with that probability; the same plaintext under the same
// nonce is just the same output again. OpenNode recomputes the nonce from what it opened and
// refuses any other, so each plaintext has exactly one sealed form.
//
// The bound that remains counts distinct plaintexts, not seals: sealing the
// same registration again costs nothing, where random nonces used up the
// 2³² seals per key at every re-registration. 2³² distinct registrations
// under one key would still keep the chance of any nonce collision below
// 2⁻³², orders of magnitude beyond a push server between two key
// rotations.

// NodeKeyIDBits is the width of NodeKeyID: node key ids are below
// 1<<NodeKeyIDBits. Two server keys share an id with probability 1/64;
// callers holding several keys try every key with the id a node names, and
// authentication decides.
const NodeKeyIDBits = 6

// NodeOverhead is what SealNode adds to a plaintext: a 12-byte synthetic
// nonce and a 16-byte authentication tag.
const NodeOverhead = nodeNonceLen + 16

const nodeNonceLen = 12

// ErrNodeSealed is returned by OpenNode when a sealed node does not open
// under this key: tampered, truncated, sealed under another key, or with a
// nonce that is not the synthetic one of its content.
var ErrNodeSealed = errors.New("sealed node does not open with this server key")

// nodeKey is the node-sealing part of a Keyring.
type nodeKey struct {
	aead cipher.AEAD // AES-256-GCM; nonces are synthetic (nonce)
	siv  *sync.Pool  // of *sivMAC
	id   byte
}

func newNodeKey(derive func(purpose string) []byte) (nodeKey, error) {
	block, err := aes.NewCipher(derive("node"))
	if err != nil {
		return nodeKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nodeKey{}, err
	}
	if aead.NonceSize() != nodeNonceLen || aead.Overhead()+nodeNonceLen != NodeOverhead {
		return nodeKey{}, errors.New("keyring: unexpected AES-GCM nonce size or overhead")
	}
	sivKey := derive("node-siv")
	return nodeKey{
		aead: aead,
		siv:  &sync.Pool{New: func() any { return &sivMAC{h: hmac.New(sha256.New, sivKey)} }},
		id:   derive("node-id")[0] & (1<<NodeKeyIDBits - 1),
	}, nil
}

// sivMAC is HMAC-SHA-256 under the "node-siv" key with scratch space, so
// that computing a nonce allocates nothing.
type sivMAC struct {
	h   hash.Hash
	buf [sha256.Size]byte
}

// nonce returns the synthetic nonce of plaintext and additionalData.
func (k *nodeKey) nonce(plaintext, additionalData []byte) [nodeNonceLen]byte {
	m := k.siv.Get().(*sivMAC)
	m.h.Reset()
	m.h.Write(binary.BigEndian.AppendUint64(m.buf[:0], uint64(len(additionalData))))
	m.h.Write(additionalData)
	m.h.Write(binary.BigEndian.AppendUint64(m.buf[:0], uint64(len(plaintext))))
	m.h.Write(plaintext)
	n := [nodeNonceLen]byte(m.h.Sum(m.buf[:0]))
	k.siv.Put(m)
	return n
}

// NodeKeyID identifies the node key among others without revealing it: 6
// bits, the same for every Keyring made from one server key.
func (k *Keyring) NodeKeyID() byte { return k.node.id }

// SealNode encrypts plaintext under the node key, authenticating
// additionalData too, and appends the synthetic nonce, the ciphertext and
// the tag (NodeOverhead bytes more than plaintext) to dst. It is
// deterministic: the same plaintext and additionalData under the same
// server key always give the same bytes (see the notes on deterministic
// sealing above). dst must not overlap plaintext.
func (k *Keyring) SealNode(dst, plaintext, additionalData []byte) []byte {
	nonce := k.node.nonce(plaintext, additionalData)
	dst = append(dst, nonce[:]...)
	// The nonce is read from dst (where it stays put, whatever Seal
	// appends), so that it does not escape to the heap on its own.
	return k.node.aead.Seal(dst, dst[len(dst)-nodeNonceLen:], plaintext, additionalData)
}

// OpenNode decrypts what SealNode made with the same additionalData and
// appends the plaintext to dst; ErrNodeSealed when sealed is not such an
// output of this key, including a message sealed under the right key with
// any nonce other than the synthetic one of its content. It never panics,
// whatever sealed holds.
func (k *Keyring) OpenNode(dst, sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < NodeOverhead {
		return nil, ErrNodeSealed
	}
	nonce := sealed[:nodeNonceLen]
	out, err := k.node.aead.Open(dst, nonce, sealed[nodeNonceLen:], additionalData)
	if err != nil {
		return nil, ErrNodeSealed
	}
	plain := out[len(dst):]
	want := k.node.nonce(plain, additionalData)
	if subtle.ConstantTimeCompare(want[:], nonce) != 1 {
		clear(plain)
		return nil, ErrNodeSealed
	}
	return out, nil
}
