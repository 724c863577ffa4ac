package p2import

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds one line of a dump: p2's columns hold well under 1 KiB.
const maxLine = 1 << 20

// TSV reads a tab-separated dump of p2's target table: one row a line, the
// seven columns in table order (see Columns). It is what
//
//	mysql -B -N -e 'select service, device, channel, domain, token, node, secret from target' p2 > p2.tsv
//
// prints: a NULL column is the word NULL, and tab, newline, carriage return,
// backslash and NUL inside a value are escaped as \t, \n, \r, \\ and \0.
// `SELECT … INTO OUTFILE` and `mysqldump --tab` dumps read too (NULL as \N).
// A first line naming the columns (mysql -B without -N) is skipped, and so
// are empty lines.
type TSV struct {
	sc   *bufio.Scanner
	c    io.Closer
	line int
}

// NewTSV reads a dump from r; Close closes r when it is an io.Closer.
func NewTSV(r io.Reader) *TSV {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	t := &TSV{sc: sc}
	if c, ok := r.(io.Closer); ok {
		t.c = c
	}
	return t
}

// Next implements Source. A line without seven columns is a *RowError.
func (t *TSV) Next(ctx context.Context) (Row, error) {
	for t.sc.Scan() {
		t.line++
		line := strings.TrimSuffix(t.sc.Text(), "\r")
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if t.line == 1 && strings.EqualFold(line, strings.Join(Columns, "\t")) {
			continue
		}
		pos := fmt.Sprintf("line %d", t.line)
		if len(f) != len(Columns) {
			return Row{}, &RowError{Pos: pos, Reason: fmt.Sprintf(reasonBadColumns, len(f))}
		}
		for i := range f {
			f[i] = unescape(f[i])
		}
		return Row{Service: f[0], Device: f[1], Channel: f[2], Domain: f[3], Token: f[4], Node: f[5], Secret: f[6], Pos: pos}, nil
	}
	if err := t.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Row{}, fmt.Errorf("p2import: line %d is longer than %d bytes: not a dump of p2's table", t.line+1, maxLine)
		}
		return Row{}, fmt.Errorf("p2import: read the dump: %w", err)
	}
	return Row{}, io.EOF
}

// Close implements Source.
func (t *TSV) Close() error {
	if t.c != nil {
		return t.c.Close()
	}
	return nil
}

// unescape undoes the escaping of mysql's batch output and of INTO OUTFILE;
// NULL (either spelling) becomes "".
func unescape(s string) string {
	if s == "NULL" || s == `\N` {
		return ""
	}
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i == len(s)-1 {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'b':
			b.WriteByte('\b')
		case 'Z':
			b.WriteByte(0x1a)
		default: // \\ and anything else: the character itself
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
