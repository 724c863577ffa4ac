package keyring_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2http/p2http/keyring"
)

const key = "0123456789abcdef0123456789abcdef"

func TestSecretShapeAndStability(t *testing.T) {
	k, err := keyring.New(key)
	if err != nil {
		t.Fatal(err)
	}
	s := k.Secret("eKxTS5n3bOe0")
	if len(s) != 24 {
		t.Fatalf("secret %q has %d characters, want 24 like p2's", s, len(s))
	}
	if s != k.Secret("eKxTS5n3bOe0") {
		t.Fatal("secret not stable")
	}
	if s == k.Secret("eKxTS5n3bOe1") {
		t.Fatal("different nodes share a secret")
	}
	k2, _ := keyring.New(key + "x")
	if k2.Secret("eKxTS5n3bOe0") == s {
		t.Fatal("another server key derives the same secret")
	}
	if !k.CheckSecret("eKxTS5n3bOe0", s) || k.CheckSecret("eKxTS5n3bOe0", s[:23]+"A") || k.CheckSecret("eKxTS5n3bOe0", "") {
		t.Fatal("CheckSecret wrong")
	}
	if k.Fingerprint() == k2.Fingerprint() || !strings.HasPrefix(k.Fingerprint(), "v1:") {
		t.Fatalf("fingerprints %q %q", k.Fingerprint(), k2.Fingerprint())
	}
	if strings.Contains(k.Fingerprint(), key) {
		t.Fatal("fingerprint reveals the key")
	}
}

func TestShortKeyRefused(t *testing.T) {
	if _, err := keyring.New(strings.Repeat("a", 31)); err == nil {
		t.Fatal("31-character key accepted")
	}
}

func TestSealOpen(t *testing.T) {
	k, _ := keyring.New(key)
	sealed := k.Seal("node1", "KK4+H5WMfpRG/2zCbuKq6wpX")
	if strings.Contains(string(sealed), "KK4+H5WMfpRG") {
		t.Fatal("sealed secret holds the clear text")
	}
	got, err := k.Open("node1", sealed)
	if err != nil || got != "KK4+H5WMfpRG/2zCbuKq6wpX" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := k.Open("node2", sealed); err == nil {
		t.Fatal("sealed secret opened for another node")
	}
	k2, _ := keyring.New(key + "x")
	if _, err := k2.Open("node1", sealed); err == nil {
		t.Fatal("sealed secret opened under another key")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := k.Open("node1", sealed); err == nil {
		t.Fatal("tampered secret opened")
	}
	if _, err := k.Open("node1", []byte{1, 2}); err == nil {
		t.Fatal("truncated secret opened")
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p2.db.key")
	k1, created, err := keyring.LoadOrCreateKeyFile(path)
	if err != nil || !created || len(k1) < keyring.MinKeyLength {
		t.Fatalf("create: %q %v %v", k1, created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	k2, created, err := keyring.LoadOrCreateKeyFile(path)
	if err != nil || created || k2 != k1 {
		t.Fatalf("reload: %v %v same=%v", created, err, k1 == k2)
	}
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, _, err := keyring.LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("short key file accepted")
	}

	// The parts, for a caller that checks a key before writing it.
	other := filepath.Join(t.TempDir(), "other.key")
	if _, err := keyring.ReadKeyFile(other); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read a missing key file: %v", err)
	}
	k3 := keyring.NewKey()
	if len(k3) < keyring.MinKeyLength || k3 == keyring.NewKey() {
		t.Fatalf("NewKey: %d characters, or the same key twice", len(k3))
	}
	if err := keyring.WriteKeyFile(other, k3); err != nil {
		t.Fatal(err)
	}
	if err := keyring.WriteKeyFile(other, keyring.NewKey()); !errors.Is(err, os.ErrExist) {
		t.Fatalf("WriteKeyFile over an existing file: %v", err)
	}
	if got, err := keyring.ReadKeyFile(other); err != nil || got != k3 {
		t.Fatalf("read back: same=%v %v", got == k3, err)
	}
}

func BenchmarkSecret(b *testing.B) {
	k, _ := keyring.New(key)
	b.ReportAllocs()
	for b.Loop() {
		k.CheckSecret("eKxTS5n3bOe0", "KK4+H5WMfpRG/2zCbuKq6wpX")
	}
}
