package sealed

import (
	"fmt"

	"github.com/p2http/p2http/keyring"
)

// KeyError is a server key Open cannot use. Key is its place: 0 for the
// current key, i for the i-th previous one.
type KeyError struct {
	Key int
	Err error
}

// Error implements error.
func (e *KeyError) Error() string { return fmt.Sprintf("sealed: key %d: %v", e.Key, e.Err) }

// Unwrap returns the key's own error.
func (e *KeyError) Unwrap() error { return e.Err }

// Open returns the Store of a key rotation, and the keyring of current:
// current seals new nodes, and each of the previous server keys still
// opens the nodes it sealed, so that the server key can be rotated without
// dropping every registration at once. A key that cannot be used is a
// *KeyError.
func Open(current string, previous []string) (*keyring.Keyring, *Store, error) {
	keys := make([]*keyring.Keyring, 0, 1+len(previous))
	for i, k := range append([]string{current}, previous...) {
		kr, err := keyring.New(k)
		if err != nil {
			return nil, nil, &KeyError{Key: i, Err: err}
		}
		keys = append(keys, kr)
	}
	st, err := New(keys, nil)
	if err != nil {
		return nil, nil, err
	}
	return keys[0], st, nil
}
