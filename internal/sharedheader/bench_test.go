package sharedheader_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/sharedheader"
)

// pipeTransport returns an http.Transport whose connections are in-memory
// pipes to a minimal HTTP/1.1 server that reads each request and answers
// 200 with a short body at once: net/http's own transport, so that
// http.Client treats it as it treats the senders' (a deadline, not a
// goroutine, for its Timeout), without the network's cost and noise.
func pipeTransport() *http.Transport {
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n" +
		`{"name":"projects/p/messages/1"}`
	return &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				r := bufio.NewReader(server)
				for {
					req, err := http.ReadRequest(r)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(server, answer); err != nil {
						return
					}
				}
			}()
			return client, nil
		},
		MaxIdleConnsPerHost: 4,
	}
}

// BenchmarkDo measures one push service request as the senders send it: the
// FCM sender's three headers and a body, within a context with a deadline
// (the relay's push deadline), through a client with a 30 s Timeout (the
// senders' default clients), over pipeTransport. "shared" is this package's
// way: the header shared, the request straight to the transport; "plain" is
// http.Client's: the header copied for the request, and Do (its redirect
// bookkeeping and its check of the Timeout against the deadline). The
// transport's cost is the same in both; the difference is what Client saves.
func BenchmarkDo(b *testing.B) {
	header := http.Header{
		"Authorization":             {"Bearer ya29.an-access-token-of-about-this-length-and-then-some-more"},
		"Content-Type":              {"application/json"},
		"X-Goog-Api-Format-Version": {"2"},
	}
	client := &http.Client{Transport: pipeTransport(), Timeout: 30 * time.Second}
	template, err := http.NewRequest(http.MethodPost, "http://fcm.example/v1/projects/p/messages:send", nil)
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 330)
	shared := sharedheader.New(client)
	for _, c := range []struct {
		name string
		do   func(*http.Request) (*http.Response, error)
	}{
		{"shared", func(req *http.Request) (*http.Response, error) { return shared.Do(req, header) }},
		{"plain", func(req *http.Request) (*http.Response, error) {
			req.Header = header.Clone()
			return client.Do(req)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the push deadline
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				req := template.WithContext(ctx)
				req.Body = io.NopCloser(bytes.NewReader(body))
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
				req.ContentLength = int64(len(body))
				res, err := c.do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
}
