package p2import

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQLConfig parses a URL of p2's MariaDB (or MySQL) database:
//
//	mysql://USER:PASSWORD@HOST:PORT/DATABASE
//	mysql://USER@HOST/DATABASE?tls=true            TLS: true, skip-verify, preferred or false
//	mysql://USER@/DATABASE?socket=/run/mysqld/mysqld.sock
//
// HOST defaults to 127.0.0.1 and PORT to 3306; the user name and password
// may be percent-encoded. Errors never repeat the URL, which holds a
// password.
func MySQLConfig(rawURL string) (*mysql.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return nil, errors.New("p2import: the MariaDB URL must look like mysql://user:password@host:port/database")
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(cfg.DBName, "/") {
		return nil, errors.New("p2import: the MariaDB URL names a database path with a slash")
	}
	cfg.Timeout = 10 * time.Second
	q := u.Query()
	for k := range q {
		switch k {
		case "tls", "socket":
		default:
			return nil, fmt.Errorf("p2import: unknown parameter %q in the MariaDB URL (known: tls, socket)", k)
		}
	}
	switch tls := q.Get("tls"); tls {
	case "", "false", "true", "skip-verify", "preferred":
		cfg.TLSConfig = tls
	default:
		return nil, errors.New("p2import: tls in the MariaDB URL must be true, false, skip-verify or preferred")
	}
	if socket := q.Get("socket"); socket != "" {
		cfg.Net, cfg.Addr = "unix", socket
	} else {
		host, port := u.Hostname(), u.Port()
		if host == "" {
			host = "127.0.0.1"
		}
		if port == "" {
			port = "3306"
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, port)
	}
	return cfg, nil
}

// OpenMySQLDB opens a pool on the database rawURL names (see MySQLConfig)
// and checks that it answers.
func OpenMySQLDB(ctx context.Context, rawURL string) (*sql.DB, error) {
	cfg, err := MySQLConfig(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("p2import: MariaDB URL: %w", err)
	}
	sqlDB := sql.OpenDB(conn)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("p2import: connect to MariaDB at %s: %w", cfg.Addr, err)
	}
	return sqlDB, nil
}

// MySQL reads p2's target table from MariaDB, in primary-key order (device,
// channel), so that "row N" in a report is the N-th row of
//
//	select * from target order by device, channel
type MySQL struct {
	db   *sql.DB
	rows *sql.Rows
	n    int
}

// OpenMySQL connects to p2's database (see MySQLConfig for the URL) and
// starts reading its target table.
func OpenMySQL(ctx context.Context, rawURL string) (*MySQL, error) {
	sqlDB, err := OpenMySQLDB(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	rows, err := sqlDB.QueryContext(ctx, `SELECT `+strings.Join(Columns, ", ")+` FROM target ORDER BY device, channel`)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("p2import: read p2's target table: %w", err)
	}
	return &MySQL{db: sqlDB, rows: rows}, nil
}

// Next implements Source.
func (m *MySQL) Next(ctx context.Context) (Row, error) {
	if !m.rows.Next() {
		if err := m.rows.Err(); err != nil {
			return Row{}, fmt.Errorf("p2import: read p2's target table: %w", err)
		}
		return Row{}, io.EOF
	}
	m.n++
	var f [7]sql.NullString
	if err := m.rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]); err != nil {
		return Row{}, fmt.Errorf("p2import: read p2's target table: %w", err)
	}
	return Row{Service: f[0].String, Device: f[1].String, Channel: f[2].String, Domain: f[3].String,
		Token: f[4].String, Node: f[5].String, Secret: f[6].String, Pos: fmt.Sprintf("row %d", m.n)}, nil
}

// Close implements Source.
func (m *MySQL) Close() error {
	return errors.Join(m.rows.Close(), m.db.Close())
}
