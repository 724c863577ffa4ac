package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net"
	"sync"
	"time"

	"github.com/lib/pq"
)

// lib/pq honours a context only by sending PostgreSQL a cancel request: it
// never interrupts its own reads. A server that stops answering without
// closing its connections (frozen, paused, behind a network partition that
// drops packets) therefore holds a query, and the request behind it, long
// past its deadline; and without connect_timeout the start-up handshake of
// a new connection waits forever. The connections opened here are
// context-aware instead: every read and write on the socket gives up when
// the context of the operation using the connection ends.

// DefaultConnectTimeout bounds connecting to PostgreSQL (dial and start-up
// handshake) when the URL sets no connect_timeout; lib/pq would wait
// forever.
const DefaultConnectTimeout = 5 * time.Second

// PostgresCallTimeout bounds each call of the store on PostgreSQL, from
// waiting for a pooled connection through connecting to the statement's
// answer, when the caller's context allows longer (or sets no deadline, as
// for register). The store's statements touch one row by key: a call that
// takes this long means the database is down, frozen or overloaded, and the
// caller is better told to come back later (EUNAVAILABLE) than kept waiting.
const PostgresCallTimeout = 5 * time.Second

// openPostgres returns a pool for dsn whose connections obey contexts; the
// run-time parameters in params are set on every connection, over the
// DSN's.
func openPostgres(dsn string, params map[string]string) (*sql.DB, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, err
	}
	for k, v := range params {
		if cfg.Runtime == nil {
			cfg.Runtime = map[string]string{}
		}
		cfg.Runtime[k] = v
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	c, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.Dialer(ctxDialer{})
	return sql.OpenDB(&pgConnector{pq: c}), nil
}

// pgConnector opens lib/pq connections whose sockets follow the context of
// the operation at hand.
type pgConnector struct {
	pq *pq.Connector
}

// dialKey carries, in the context given to lib/pq's Connect, the context
// the start-up handshake must obey and where the dialer leaves the socket.
// (lib/pq hands the dialer a context that it cancels as soon as the dial
// returns, so that one cannot be bound.)
type dialKey struct{}

type dialSlot struct {
	ctx  context.Context
	conn *ctxConn
}

func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	slot := &dialSlot{ctx: ctx}
	conn, err := c.pq.Connect(context.WithValue(ctx, dialKey{}, slot))
	if slot.conn != nil {
		slot.conn.bind(context.Background()) // the start-up is over
	}
	if err != nil {
		return nil, err
	}
	if slot.conn == nil { // not dialed by ctxDialer: nothing to bind
		return conn, nil
	}
	return &pgConn{Conn: conn, nc: slot.conn}, nil
}

func (c *pgConnector) Driver() driver.Driver { return c.pq.Driver() }

// ctxDialer dials TCP (or a unix socket) and, for a connection Connect
// opens, binds the socket to Connect's context for the start-up handshake.
// lib/pq also dials through it to send cancel requests; those sockets keep
// only the deadline lib/pq gives them (connect_timeout).
type ctxDialer struct{}

func (ctxDialer) Dial(network, address string) (net.Conn, error) {
	return ctxDialer{}.DialContext(context.Background(), network, address)
}

func (ctxDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return ctxDialer{}.DialContext(ctx, network, address)
}

func (ctxDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer // as lib/pq's own dialer: Go's default keep-alives
	raw, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	c := &ctxConn{Conn: raw}
	if slot, ok := ctx.Value(dialKey{}).(*dialSlot); ok {
		c.bind(slot.ctx)
		slot.conn = c
	}
	return c, nil
}

// ctxConn is a socket whose deadline is the earliest of the one lib/pq set
// (connect_timeout during start-up) and the one of the bound context, and
// lies in the past once that context is done.
type ctxConn struct {
	net.Conn

	mu      sync.Mutex
	gen     uint64      // counts binds, so that a stale context's end is ignored
	stop    func() bool // stops watching the bound context
	own     time.Time   // deadline lib/pq set
	bound   time.Time   // deadline of the bound context
	expired bool        // the bound context is done
}

// bind makes ctx the context the socket obeys until the next bind.
func (c *ctxConn) bind(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	c.gen++
	c.expired = ctx.Err() != nil
	c.bound = time.Time{}
	if dl, ok := ctx.Deadline(); ok {
		c.bound = dl
	}
	if !c.expired && ctx.Done() != nil {
		gen := c.gen
		c.stop = context.AfterFunc(ctx, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.gen == gen {
				c.expired = true
				c.apply()
			}
		})
	}
	c.apply()
}

// apply sets the socket's deadline; c.mu is held.
func (c *ctxConn) apply() {
	dl := c.own
	if !c.bound.IsZero() && (dl.IsZero() || c.bound.Before(dl)) {
		dl = c.bound
	}
	if c.expired {
		dl = time.Unix(1, 0) // the past: blocked reads and writes return now
	}
	c.Conn.SetDeadline(dl)
}

func (c *ctxConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.own = t
	c.apply()
	return nil
}

// lib/pq sets only whole deadlines; these keep the same rule.
func (c *ctxConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *ctxConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }

func (c *ctxConn) Close() error {
	c.mu.Lock()
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	c.gen++
	c.mu.Unlock()
	return c.Conn.Close()
}

// pgConn is a lib/pq connection that binds its socket to the context of each
// operation. The binding lasts until the next operation, so rows read after
// QueryContext returned, and a transaction's Commit, obey the context that
// started them. database/sql uses a connection from one goroutine at a time.
type pgConn struct {
	driver.Conn
	nc *ctxConn
}

var (
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
	_ driver.NamedValueChecker  = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.Validator          = (*pgConn)(nil)
)

func (c *pgConn) bind(ctx context.Context) { c.nc.bind(ctx) }

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *pgConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.bind(ctx)
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &pgStmt{Stmt: st, c: c}, nil
}

func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.bind(ctx)
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.bind(ctx)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.bind(ctx)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *pgConn) Ping(ctx context.Context) error {
	c.bind(ctx)
	return c.Conn.(driver.Pinger).Ping(ctx)
}

func (c *pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

func (c *pgConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *pgConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// Close lets lib/pq send its goodbye under a short deadline of its own: the
// context of the last operation may be long over, and its past deadline
// would fail the write.
func (c *pgConn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.bind(ctx)
	return c.Conn.Close()
}

// pgStmt binds the socket to the context of each execution of a prepared
// statement.
type pgStmt struct {
	driver.Stmt
	c *pgConn
}

var (
	_ driver.StmtExecContext  = (*pgStmt)(nil)
	_ driver.StmtQueryContext = (*pgStmt)(nil)
)

func (s *pgStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.bind(ctx)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *pgStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.bind(ctx)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}
