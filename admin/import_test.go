package admin

import (
	"testing"

	"github.com/p2http/p2http/p2import"
)

// The password of --from may come from $MYSQL_PWD, as for the mysql client.
func TestImportP2PasswordFromEnvironment(t *testing.T) {
	got, err := mysqlURL("mysql://p2@db.example.org/p2", "s3cr/t")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := p2import.MySQLConfig(got)
	if err != nil || cfg.Passwd != "s3cr/t" || cfg.User != "p2" {
		t.Fatalf("%+v %v", cfg, err)
	}
	if got, _ := mysqlURL("mysql://p2:given@db/p2", "s3cr/t"); got != "mysql://p2:given@db/p2" {
		t.Fatalf("a password in the URL was replaced: %s", got)
	}
}
