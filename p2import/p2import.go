// Package p2import reads the registrations of p2 (the Conversations push
// proxy) and imports them into a p2http database, so that every XMPP server
// keeps pushing with the node and secret it already has and no phone needs
// to register again.
//
// p2 kept everything in one MariaDB table, target (see Schema), with the
// secrets in clear. Its rows are read straight from MariaDB (OpenMySQL) or
// from a tab-separated dump of the table (NewTSV). Import turns each row into
// a registration whose secret is kept, sealed with the server key
// (keyring.Seal, bound to the node): never stored in clear.
//
// Importing is idempotent. A row whose device is already registered in
// p2http — with the same node from an earlier import, or with another node
// because the phone registered with p2http since — is skipped and counted:
// the phone's XMPP server holds the node p2http handed out last, so the
// stored registration is kept. The one exception keeps a second import
// (at switch-over, after a first one while p2 still ran) useful: a row
// imported earlier whose phone has not registered with p2http since takes
// p2's newer token. Rows that cannot be imported are counted by
// reason; no token, secret or node is ever part of a reason or a message.
package p2import

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
	"github.com/p2http/p2http/keyring"
)

// Schema is p2's table, exactly as p2 creates it in MariaDB.
const Schema = `create table if not exists target(
  service char(4),
  device  CHAR(40) NOT NULL,
  channel CHAR(40) NOT NULL DEFAULT '',
  domain  varchar(253),
  token   varchar(255),
  node    char(12),
  secret  char(24),
  primary key(device, channel),
  index nodeDomain (node,domain))`

// Columns are the columns of p2's target table in table order: the order of
// Row's fields, of OpenMySQL's query and of a tab-separated dump.
var Columns = []string{"service", "device", "channel", "domain", "token", "node", "secret"}

// Row is one row of p2's target table. A NULL column reads as "".
type Row struct {
	Service string // "FCM" or "APNS"
	Device  string // the 40-hex device hash
	Channel string // "" for a phone; a MUC channel otherwise (not supported)
	Domain  string // the account's domain
	Token   string
	Node    string
	Secret  string // in clear
	// Pos says where the row was read, for reports: "line 12" of a dump,
	// "row 12" of the table (in device, channel order).
	Pos string
}

// Source yields p2's rows.
type Source interface {
	// Next returns the next row, io.EOF after the last. A *RowError is a
	// row that cannot be read (a malformed line): the caller counts it and
	// goes on. Any other error ends the reading.
	Next(ctx context.Context) (Row, error)
	// Close releases the source.
	Close() error
}

// RowError is a row a Source could not read; reading goes on after it.
type RowError struct {
	Pos    string
	Reason string
}

// Error implements error: the row's position and the reason, never a value.
func (e *RowError) Error() string { return e.Pos + ": " + e.Reason }

// The reasons a row is not imported, as reported.
const (
	ReasonService    = "unknown service (want FCM or APNS)"
	ReasonChannel    = "MUC channel registration (channel is not empty; not supported)"
	ReasonDevice     = "device is not 40 lowercase hexadecimal digits"
	ReasonNoDomain   = "domain is missing"
	ReasonBadDomain  = "domain is not a domain name"
	ReasonNoToken    = "token is missing"
	ReasonNoNode     = "node is missing"
	ReasonBadNode    = "node is not printable ASCII of at most 256 bytes"
	ReasonNoSecret   = "secret is missing"
	ReasonBadSecret  = "secret is not printable ASCII of at most 256 bytes"
	reasonBadColumns = "malformed line: %d columns, want 7"
)

// Convert turns a row of p2 into the registration p2http stores for app
// (empty means p2http.DefaultApp): the service mapped to fcm or apns, the
// domain normalised as pushes are, the node kept, the secret sealed with
// keys for the node. It returns a *RowError naming the reason when the row
// cannot be imported; the reason never holds a value of the row.
func Convert(r Row, keys *keyring.Keyring, app p2http.App) (p2http.Registration, error) {
	bad := func(reason string) (p2http.Registration, error) {
		return p2http.Registration{}, &RowError{Pos: r.Pos, Reason: reason}
	}
	var svc p2http.Service
	switch strings.ToUpper(strings.TrimSpace(r.Service)) {
	case "FCM":
		svc = p2http.FCM
	case "APNS":
		svc = p2http.APNs
	default:
		return bad(ReasonService)
	}
	if strings.TrimSpace(r.Channel) != "" {
		return bad(ReasonChannel)
	}
	if !p2http.IsDeviceHash(r.Device) {
		return bad(ReasonDevice)
	}
	if r.Domain == "" {
		return bad(ReasonNoDomain)
	}
	d, err := jid.Parse(r.Domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return bad(ReasonBadDomain)
	}
	if r.Token == "" {
		return bad(ReasonNoToken)
	}
	if err := p2http.ValidateToken(svc, r.Token); err != nil {
		return bad(p2http.ErrorMessage(err))
	}
	switch {
	case r.Node == "":
		return bad(ReasonNoNode)
	case !printable(r.Node):
		return bad(ReasonBadNode)
	case r.Secret == "":
		return bad(ReasonNoSecret)
	case !printable(r.Secret):
		return bad(ReasonBadSecret)
	}
	reg := p2http.Registration{
		App:        app.OrDefault(),
		Service:    svc,
		Device:     r.Device,
		Domain:     d.Domainpart(),
		Token:      r.Token,
		Node:       r.Node,
		SecretKind: p2http.SecretKept,
		SecretEnc:  keys.Seal(r.Node, r.Secret),
	}
	if err := reg.Validate(); err != nil {
		return bad(p2http.ErrorMessage(err))
	}
	return reg, nil
}

// printable reports whether s is printable ASCII without spaces, at most 256
// bytes: what a pubsub node and a secret reach the API as.
func printable(s string) bool {
	if len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// Options tune Import.
type Options struct {
	// App the registrations belong to; empty means p2http.DefaultApp.
	App p2http.App
	// DryRun reads and checks everything and writes nothing; the report
	// says what would have been done.
	DryRun bool
	// Batch is the number of rows written per transaction; 0 means 500.
	Batch int
	// Progress, when set, is called after each batch.
	Progress func(Report)
}

// maxListed bounds the invalid rows a report lists by position.
const maxListed = 100

// Report counts what Import did. Its fields hold counts and positions only.
type Report struct {
	// Read counts the rows read, malformed ones included.
	Read int64 `json:"read"`
	// Imported: new registrations written (or, in a dry run, to be).
	Imported int64 `json:"imported"`
	// AlreadyImported: the device is registered with this very node — an
	// earlier import. Skipped.
	AlreadyImported int64 `json:"already_imported"`
	// TokenUpdated: imported earlier, and p2 has a new token for the phone
	// while the phone has not registered with p2http since: the token was
	// replaced.
	TokenUpdated int64 `json:"token_updated"`
	// RegisteredSince: the device registered with p2http since, with
	// another node, which its XMPP server now holds. Skipped; ours kept.
	RegisteredSince int64 `json:"registered_since"`
	// NodeTaken: another registration here holds the node. Skipped.
	NodeTaken int64 `json:"node_taken"`
	// Invalid rows, not imported, by reason.
	Invalid        int64            `json:"invalid"`
	InvalidReasons map[string]int64 `json:"invalid_reasons,omitempty"`
	// InvalidRows lists the first invalid rows as "POS: reason".
	InvalidRows []string `json:"invalid_rows,omitempty"`
	DryRun      bool     `json:"dry_run,omitempty"`
}

// Skipped counts the valid rows not imported because of what is stored.
func (r Report) Skipped() int64 { return r.AlreadyImported + r.RegisteredSince + r.NodeTaken }

func (r *Report) invalid(e *RowError) {
	r.Invalid++
	if r.InvalidReasons == nil {
		r.InvalidReasons = map[string]int64{}
	}
	r.InvalidReasons[e.Reason]++
	if len(r.InvalidRows) < maxListed {
		r.InvalidRows = append(r.InvalidRows, e.Error())
	}
}

// Reasons returns the invalid reasons, most frequent first.
func (r Report) Reasons() []string {
	out := slices.Collect(maps.Keys(r.InvalidReasons))
	slices.SortFunc(out, func(a, b string) int {
		if d := r.InvalidReasons[b] - r.InvalidReasons[a]; d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	return out
}

// Import reads every row of src and imports it into store under the server
// key keys (the one store's fingerprint pins: the caller checks that), in
// batches. It stops at the first error that is not about one row, returning
// the report so far: the batches written before it stay written, and running
// the import again completes it.
func Import(ctx context.Context, src Source, store *db.DB, keys *keyring.Keyring, opt Options) (Report, error) {
	rep := Report{DryRun: opt.DryRun}
	batch := opt.Batch
	if batch <= 0 {
		batch = 500
	}
	pending := make([]p2http.Registration, 0, batch)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		outcomes, err := store.Import(ctx, pending, opt.DryRun)
		for _, o := range outcomes {
			switch o {
			case db.ImportInserted:
				rep.Imported++
			case db.ImportAlreadyPresent:
				rep.AlreadyImported++
			case db.ImportTokenUpdated:
				rep.TokenUpdated++
			case db.ImportDeviceRegistered:
				rep.RegisteredSince++
			case db.ImportNodeTaken:
				rep.NodeTaken++
			}
		}
		pending = pending[:0]
		if err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress(rep)
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		row, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		var rowErr *RowError
		if errors.As(err, &rowErr) {
			rep.Read++
			rep.invalid(rowErr)
			continue
		}
		if err != nil {
			return rep, err
		}
		rep.Read++
		reg, err := Convert(row, keys, opt.App)
		if errors.As(err, &rowErr) {
			rep.invalid(rowErr)
			continue
		}
		if err != nil {
			return rep, err
		}
		pending = append(pending, reg)
		if len(pending) == batch {
			if err := flush(); err != nil {
				return rep, fmt.Errorf("import: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	return rep, nil
}
