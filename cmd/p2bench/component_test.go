package main

import (
	"io"
	"strings"
	"testing"
)

// The stream scanner finds top-level elements across reads of any size.
func TestStanzaReader(t *testing.T) {
	stream := `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' id='abc' from='push.example.org'>` +
		`<handshake/>` +
		`<iq type='result' from='push.example.org' to='load.example.org' id='1'/>` +
		`<iq type="error" id="2" from='a&amp;b'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>` +
		`<message to='x'><body>a &gt; b</body></message>` +
		`</stream:stream>`
	for _, chunk := range []int{1, 7, 1 << 20} {
		r := stanzaReader{r: &chunked{s: stream, n: chunk}, buf: make([]byte, 16)}
		head, err := r.streamHeader()
		if err != nil || head.attr("id") != "abc" {
			t.Fatalf("chunk %d: stream header %q, %v", chunk, head.attr("id"), err)
		}
		var got []string
		for {
			st, err := r.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			got = append(got, st.name+"/"+st.attr("type")+"/"+st.attr("id")+"/"+st.attr("from"))
			if st.name == "iq" && st.attr("type") == "error" && !stanzaCondition.Match(st.raw) {
				t.Errorf("chunk %d: the error's raw text lost its condition: %s", chunk, st.raw)
			}
		}
		want := "handshake///|iq/result/1/push.example.org|iq/error/2/a&b|message///"
		if strings.Join(got, "|") != want {
			t.Errorf("chunk %d: got %s, want %s", chunk, strings.Join(got, "|"), want)
		}
	}
}

// chunked reads s n bytes at a time.
type chunked struct {
	s string
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.s))
	copy(p, c.s[:n])
	c.s = c.s[n:]
	return n, nil
}

func TestSeedMatchesTokens(t *testing.T) {
	if n := seedNode(42); len(n) != 12 {
		t.Errorf("seedNode(42) = %q, want 12 characters", n)
	}
	if d := seedDevice(42); len(d) != 40 || strings.Trim(d, "0123456789abcdef") != "" {
		t.Errorf("seedDevice(42) = %q, want 40 lowercase hex digits", d)
	}
	if rebindDollar("a = ? AND b = ?") != "a = $1 AND b = $2" {
		t.Error("rebindDollar")
	}
}
