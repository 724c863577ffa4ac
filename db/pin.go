package db

import "context"

// PinnedFingerprint returns the fingerprint of the server key this database
// was first used with (MetaKeyFingerprint), or "" before its first use.
// With PinFingerprint it makes a DB the keyring.Pins that keyring.Load
// checks the server key against.
func (d *DB) PinnedFingerprint(ctx context.Context) (string, error) {
	meta, err := d.AllMeta(ctx)
	if err != nil {
		return "", err
	}
	return meta[MetaKeyFingerprint], nil
}

// PinFingerprint pins fingerprint as the server key's unless the database
// holds one already, and returns the fingerprint pinned afterwards.
func (d *DB) PinFingerprint(ctx context.Context, fingerprint string) (string, error) {
	return d.EnsureMeta(ctx, MetaKeyFingerprint, fingerprint)
}
