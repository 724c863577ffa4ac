package db

import (
	"fmt"
	"time"
)

// timeArg converts t for a query: a TIMESTAMPTZ value for PostgreSQL, unix
// microseconds for SQLite's INTEGER columns. Both keep microseconds, so
// comparisons agree between the two databases.
func (d *DB) timeArg(t time.Time) any {
	if d.driver == DriverSQLite {
		return t.UnixMicro()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// timestamp scans a NOT NULL timestamp column of either database into a
// time.Time in UTC.
type timestamp struct{ Time time.Time }

// Scan implements sql.Scanner.
func (t *timestamp) Scan(src any) error {
	v, err := scanTime(src)
	if err != nil {
		return err
	}
	if v == nil {
		return fmt.Errorf("db: NULL in a NOT NULL timestamp column")
	}
	t.Time = *v
	return nil
}

// nullTimestamp scans a nullable timestamp column; Time is nil for NULL.
type nullTimestamp struct{ Time *time.Time }

// Scan implements sql.Scanner.
func (t *nullTimestamp) Scan(src any) error {
	v, err := scanTime(src)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// scanTime reads unix microseconds (SQLite) or a time.Time (PostgreSQL).
func scanTime(src any) (*time.Time, error) {
	var t time.Time
	switch v := src.(type) {
	case nil:
		return nil, nil
	case int64:
		t = time.UnixMicro(v).UTC()
	case time.Time:
		t = v.UTC()
	default:
		return nil, fmt.Errorf("db: cannot scan %T into a timestamp", src)
	}
	return &t, nil
}
