package admin

import (
	"context"
	"errors"
	"log/slog"

	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/internal/envflag"
	"github.com/p2http/p2http/keyring"
)

// KeyFile returns the file the server key is kept in when secretKey
// (P2_SECRET_KEY) is empty: the key file beside the SQLite database of
// databaseURL; "" when secretKey is set. Without either, the error is an
// *envflag.Error naming P2_SECRET_KEY.
func KeyFile(secretKey, databaseURL string) (string, error) {
	if secretKey != "" {
		return "", nil
	}
	path, ok := db.SQLitePath(databaseURL)
	if !ok {
		return "", &envflag.Error{Var: "P2_SECRET_KEY", Msg: "is required unless the database is a SQLite file"}
	}
	return path + ".key", nil
}

// LoadKeyring takes the server key from secretKey (P2_SECRET_KEY) or, for
// SQLite, from the key file beside the database (KeyFile), and refuses a
// key other than the one the database behind pins was first used with
// (keyring.Load). A key that cannot be used is an *envflag.Error naming
// P2_SECRET_KEY. A key file it generates is logged to log.
func LoadKeyring(ctx context.Context, secretKey, databaseURL string, pins keyring.Pins, log *slog.Logger) (*keyring.Keyring, error) {
	keyFile, err := KeyFile(secretKey, databaseURL)
	if err != nil {
		return nil, err
	}
	keys, created, err := keyring.Load(ctx, secretKey, keyFile, pins)
	var ke *keyring.KeyError
	if errors.As(err, &ke) {
		return nil, &envflag.Error{Var: "P2_SECRET_KEY", Msg: ke.Msg}
	}
	if err != nil {
		return nil, err
	}
	if created != "" {
		log.Warn("generated a new server key; back it up with the database", "file", created)
	}
	return keys, nil
}
