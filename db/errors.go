package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/p2http/p2http"
)

// ErrNodeTaken is the cause of a Register that failed because the proposed
// node already belongs to another registration: p2http.ErrNodeTaken, wrapped
// in an EINTERNAL *p2http.Error. Test with errors.Is and retry with a new node.
var ErrNodeTaken = p2http.ErrNodeTaken

// errNodeTaken is what Register returns on a node collision.
func errNodeTaken() error {
	return &p2http.Error{Code: p2http.EINTERNAL, Message: "node already taken", Err: ErrNodeTaken}
}

// unavailable wraps a connection or driver failure.
func unavailable(op string, err error) error {
	return &p2http.Error{Code: p2http.EUNAVAILABLE, Message: "database unavailable", Err: fmt.Errorf("db: %s: %w", op, err)}
}

// Reason returns err, an error of Open, as a person reads it: the message
// and the cause, without the code and the package's prefix that would say
// the same again ("unavailable: database unavailable: db: ping: …" is
// "database unavailable: ping: …").
func Reason(err error) string {
	e, ok := err.(*p2http.Error)
	if !ok {
		return err.Error()
	}
	if e.Err == nil {
		return e.Message
	}
	cause := strings.TrimPrefix(e.Err.Error(), "db: ")
	if e.Message == "" {
		return cause
	}
	return e.Message + ": " + cause
}

// fail turns a database error into a *p2http.Error: EUNAVAILABLE when the
// database cannot be reached or the deadline passed, EINTERNAL otherwise.
// Messages never carry query arguments.
func (d *DB) fail(op string, err error) error {
	if isUnavailable(err) {
		return unavailable(op, err)
	}
	return &p2http.Error{Code: p2http.EINTERNAL, Message: "database error", Err: fmt.Errorf("db: %s (%s): %w", op, d.driver, err)}
}

// isUnavailable reports whether err says the database cannot be used right
// now (down, unreachable, closed, overloaded, locked, out of time) rather
// than that the request or the code is wrong.
func isUnavailable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	case err.Error() == "sql: database is closed":
		// database/sql does not export this error.
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	if pqErr := pq.As(err); pqErr != nil {
		switch pqErr.Code.Class() {
		case pqerror.ClassConnectionException, // 08
			pqerror.ClassInsufficientResources, // 53: disk full, too many connections
			pqerror.ClassOperatorIntervention,  // 57: shutting down, starting up, statement timeout
			pqerror.ClassSystemError,           // 58: I/O
			pqerror.ClassTransactionRollback:   // 40: serialization failure, deadlock
			return true
		}
		return pqErr.Code == pqerror.LockNotAvailable
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM,
			sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_READONLY:
			return true
		}
	}
	return false
}

// isNodeTaken reports whether err is a unique violation on the node column.
func isNodeTaken(err error) bool {
	if pqErr := pq.As(err, pqerror.UniqueViolation); pqErr != nil {
		return pqErr.Constraint == "registrations_node_key"
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) && sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		// SQLite names the columns, not the constraint: "UNIQUE constraint
		// failed: registrations.node".
		return strings.Contains(sqliteErr.Error(), "registrations.node")
	}
	return false
}
