package keyring

import (
	"context"
	"errors"
	"os"
)

// Pins is where a database keeps the fingerprint of the server key it was
// first used with (db.DB is one).
type Pins interface {
	// PinnedFingerprint returns the fingerprint pinned, or "" when none is.
	PinnedFingerprint(ctx context.Context) (string, error)
	// PinFingerprint pins fingerprint unless one is pinned already, and
	// returns the one pinned afterwards.
	PinFingerprint(ctx context.Context, fingerprint string) (string, error)
}

// KeyError is a server key that cannot be used. Its message is written to
// follow the name of the setting that holds the key (P2_SECRET_KEY).
type KeyError struct {
	Msg string
}

// Error implements error.
func (e *KeyError) Error() string { return "server key: " + e.Msg }

// Load returns the keyring of the server key — key itself when it is not
// empty, else the key in keyFile — and refuses a key other than the one the
// database behind pins was first used with: with another key every push
// would fail with a wrong secret and XMPP servers would drop the
// registrations. A key that cannot be used is a *KeyError; an error of pins
// is returned as it is. created is the key file Load wrote, if any.
//
// A refused load writes no key file. A new key is generated only for a
// database that holds no fingerprint yet: one whose key file went missing
// is refused before anything is written, since a new key can never match
// and the file would be a wrong key in every later backup. The new file is
// written before its fingerprint is pinned (a pinned key without its file
// would be lost for good), and removed again if another process pinned a
// different key in between.
func Load(ctx context.Context, key, keyFile string, pins Pins) (kr *Keyring, created string, err error) {
	if key == "" {
		key, err = ReadKeyFile(keyFile)
		if errors.Is(err, os.ErrNotExist) {
			pinned, perr := pins.PinnedFingerprint(ctx)
			if perr != nil {
				return nil, "", perr
			}
			if pinned != "" {
				return nil, "", &KeyError{"not set, and the key file " + keyFile + " is missing, but the database " +
					"was first used with a key: restore the key file from the backup the database came from, or set " +
					"P2_SECRET_KEY to that key; no new key was written"}
			}
			key = NewKey()
			if err = WriteKeyFile(keyFile, key); err == nil {
				created = keyFile
			}
		}
		if err != nil {
			return nil, "", &KeyError{"not set, and the key file beside the database failed: " + err.Error()}
		}
	}
	kr, err = New(key)
	if err != nil {
		return nil, "", &KeyError{err.Error()}
	}
	// On an error the new key file stays: the database then holds either
	// its fingerprint or none, and the file is right for it either way.
	pinned, err := pins.PinFingerprint(ctx, kr.Fingerprint())
	if err != nil {
		return nil, "", err
	}
	if pinned != kr.Fingerprint() {
		if created != "" {
			os.Remove(created)
		}
		return nil, "", &KeyError{"differs from the key this database was first used with; " +
			"with another key every push would fail with a wrong secret and XMPP servers would drop the registrations"}
	}
	return kr, created, nil
}
