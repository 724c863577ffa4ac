package db

import (
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lib/pq"
)

// Location is where a database URL points, for a log line: the SQLite
// file, or PostgreSQL's host and database. It never holds a user, a
// password or a parameter of the URL.
type Location struct {
	// Driver is DriverSQLite or DriverPostgres; "" for a URL of another
	// form.
	Driver string
	// File is the SQLite file (":memory:" for the in-memory database).
	File string
	// Host is PostgreSQL's host:port, or the directory of its socket;
	// several are separated by commas.
	Host string
	// Name is PostgreSQL's database.
	Name string
}

// Locate says where rawURL points. For PostgreSQL it resolves the URL as
// lib/pq does when it connects, the PG* variables of the environment
// included.
func Locate(rawURL string) Location {
	t, err := parseURL(rawURL)
	switch {
	case err != nil:
		return Location{}
	case t.driver == DriverSQLite && t.memory:
		return Location{Driver: DriverSQLite, File: ":memory:"}
	case t.driver == DriverSQLite:
		return Location{Driver: DriverSQLite, File: t.path}
	}
	cfg, err := pq.NewConfig(t.dsn)
	if err != nil {
		return Location{Driver: DriverPostgres}
	}
	hostPort := func(host string, port uint16) string {
		if strings.HasPrefix(host, "/") {
			return host // a socket's directory
		}
		// lib/pq keeps an IPv6 address's brackets when the URL gives no port.
		return net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(int(port)))
	}
	hosts := []string{hostPort(cfg.Host, cfg.Port)}
	for _, m := range cfg.Multi {
		hosts = append(hosts, hostPort(m.Host, m.Port))
	}
	name := cfg.Database
	if name == "" {
		name = cfg.User // PostgreSQL's default database
	}
	return Location{Driver: DriverPostgres, Host: strings.Join(hosts, ","), Name: name}
}

// Attr is l as a log line names it: database_file, the SQLite file made
// absolute, so that the line says which file whatever the working
// directory was; or database_host and database_name.
func (l Location) Attr() slog.Attr {
	if l.Driver != DriverSQLite {
		return slog.Group("", "database_host", l.Host, "database_name", l.Name)
	}
	if abs, err := filepath.Abs(l.File); err == nil && l.File != ":memory:" {
		l.File = abs
	}
	return slog.String("database_file", l.File)
}
