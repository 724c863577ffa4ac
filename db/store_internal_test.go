package db

import (
	"reflect"
	"strings"
	"testing"
)

// recordScanner keeps the destinations it is given.
type recordScanner struct{ dest []any }

func (s *recordScanner) Scan(dest ...any) error {
	s.dest = dest
	return nil
}

// TestRowScanMatchesColumns checks that row.scan's destinations are the
// fields tagged with registrationColumns, in that order, then inserted.
func TestRowScanMatchesColumns(t *testing.T) {
	cols := strings.Split(registrationColumns, ",")
	for i := range cols {
		cols[i] = strings.TrimSpace(cols[i])
	}
	for _, inserted := range []bool{false, true} {
		want := cols
		if inserted {
			want = append(want[:len(want):len(want)], "inserted")
		}
		var r row
		var s recordScanner
		if err := r.scan(&s, inserted); err != nil {
			t.Fatal(err)
		}
		if len(s.dest) != len(want) {
			t.Fatalf("inserted %v: %d destinations for %d columns %q", inserted, len(s.dest), len(want), want)
		}
		v := reflect.ValueOf(&r).Elem()
		for i, col := range want {
			f, ok := v.Type().FieldByNameFunc(func(name string) bool {
				sf, _ := v.Type().FieldByName(name)
				return sf.Tag.Get("db") == col
			})
			if !ok {
				t.Errorf("column %q: no field of row is tagged with it", col)
				continue
			}
			field := v.FieldByIndex(f.Index).Addr().Interface()
			if reflect.ValueOf(s.dest[i]).Pointer() != reflect.ValueOf(field).Pointer() ||
				reflect.TypeOf(s.dest[i]) != reflect.TypeOf(field) {
				t.Errorf("inserted %v: destination %d is not row.%s, the field of column %q", inserted, i, f.Name, col)
			}
		}
	}
}
