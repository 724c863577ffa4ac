package xmppdoctor

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/internal/checkup"
)

// runP2HTTP runs the checks of p2http with a client of url and token,
// dialling dial instead of url's host when dial is not "".
func runP2HTTP(t *testing.T, rawURL, token, dial string) *checkup.Report {
	t.Helper()
	cc := api.ClientConfig{BaseURL: rawURL, Token: token}
	if dial != "" {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, dial)
		}
		cc.Transport = tr
	}
	c, err := api.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{JID: compJID, API: rawURL, APIToken: token != "", Registrar: c, Pusher: c, Describer: c, Timeout: DefaultTimeout}
	r := newReport()
	checkAPIToken(context.Background(), cfg, r, checkP2HTTP(context.Background(), cfg, r))
	return r
}

func TestP2HTTPChecks(t *testing.T) {
	withToken := startP2HTTP(t, compJID)
	open := startP2HTTPWith(t, compJID, nil, nil)
	notP2HTTP := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notP2HTTP.Close)

	t.Run("token", func(t *testing.T) {
		r := runP2HTTP(t, withToken.URL, apiToken, "")
		expect(t, r, CheckP2HTTP, checkup.OK, "serves push.example.org with fcm")
		expect(t, r, CheckAPIToken, checkup.OK, "p2http accepts P2XMPP_API_TOKEN")
	})
	t.Run("token missing", func(t *testing.T) {
		r := runP2HTTP(t, withToken.URL, "", "")
		expect(t, r, CheckAPIToken, checkup.Fail, "requires an API token and P2XMPP_API_TOKEN is unset", "fix:", "P2_API_TOKENS")
	})
	t.Run("no token needed, no service", func(t *testing.T) {
		r := runP2HTTP(t, open.URL, "", "")
		expect(t, r, CheckP2HTTP, checkup.Warn, "offers no push service", "fix:", "p2http doctor")
		expect(t, r, CheckAPIToken, checkup.OK, "asks for no API token")
		if !r.OK {
			t.Fatal("warnings failed the report")
		}
	})
	t.Run("not p2http", func(t *testing.T) {
		r := runP2HTTP(t, notP2HTTP.URL, apiToken, "")
		expect(t, r, CheckP2HTTP, checkup.Fail, "HTTP 404", "something other than p2http answers there", "fix:", "P2XMPP_API")
	})
	t.Run("host refused", func(t *testing.T) {
		u, _ := url.Parse(open.URL)
		r := runP2HTTP(t, "http://p2http.internal:"+u.Port(), "", u.Host)
		expect(t, r, CheckP2HTTP, checkup.Fail, "refuses the host name of P2XMPP_API (421)", "fix:", "P2_ALLOWED_HOSTS")
	})
}
