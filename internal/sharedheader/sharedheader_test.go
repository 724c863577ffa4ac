package sharedheader_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/p2http/p2http/internal/sharedheader"
	"github.com/p2http/p2http/internal/testutil"
)

// send posts to url with header from 10 goroutines at once.
func send(t *testing.T, c *sharedheader.Client, url string, header http.Header) {
	t.Helper()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, url, nil)
			if err != nil {
				t.Error(err)
				return
			}
			res, err := c.Do(req, header)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
		})
	}
	wg.Wait()
}

func TestSharedHeader(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
	}))
	defer srv.Close()
	jar := testutil.CookieJar(t, srv.URL, &http.Cookie{Name: "jar", Value: "1"})

	for _, c := range []struct {
		name   string
		client *http.Client
		cookie string
	}{
		{"straight to the transport", &http.Client{}, ""},
		{"through http.Client, with a jar", &http.Client{Jar: jar}, "jar=1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			header := http.Header{"X-Shared": {"1"}}
			send(t, sharedheader.New(c.client), srv.URL, header)
			if len(header) != 1 || len(header["X-Shared"]) != 1 {
				t.Errorf("the shared header was written: %v", header)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 10 {
				t.Fatalf("%d requests, want 10", len(seen))
			}
			for i, h := range seen {
				if got := h.Values("Cookie"); h.Get("X-Shared") != "1" || len(got) > 1 || h.Get("Cookie") != c.cookie {
					t.Errorf("request %d: X-Shared %q, Cookie %q; want 1 and %q", i, h.Get("X-Shared"), got, c.cookie)
				}
			}
		})
	}
}

func TestErrorIsURLError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sharedheader.New(&http.Client{}).Do(req, http.Header{})
	var ue *url.Error
	if !errors.As(err, &ue) || ue.Op != "Post" || ue.URL != srv.URL+"/x" {
		t.Errorf("error %v (%T), want a *url.Error for Post %s", err, err, srv.URL+"/x")
	}
}

func TestWithTimeout(t *testing.T) {
	c := sharedheader.New(&http.Client{Timeout: time.Minute})
	ctx, cancel := c.WithTimeout(context.Background())
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Minute || time.Until(d) < 50*time.Second {
		t.Errorf("no deadline about a minute away: %v, %v", d, ok)
	}
	own, cancelOwn := context.WithTimeout(context.Background(), time.Second)
	defer cancelOwn()
	if got, _ := c.WithTimeout(own); got != own {
		t.Error("a context with a deadline of its own was bounded again")
	}
	if got, _ := sharedheader.New(&http.Client{}).WithTimeout(context.Background()); got != context.Background() {
		t.Error("a client without a Timeout bounded a context")
	}
}
