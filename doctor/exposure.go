package doctor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/p2http/p2http/api"
)

// tlsExpiryWarning is how long before its expiry P2_TLS_CERT is warned
// about.
const tlsExpiryWarning = 14 * 24 * time.Hour

// checkExposure reports who can reach the listener and what they can do
// there: the listen address, the API tokens, TLS, the Host check and
// /metrics.
func (d *doctor) checkExposure() {
	cfg := d.cfg
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		d.fail("listener", "", fmt.Sprintf("P2_LISTEN %q is not host:port", cfg.Listen), "set P2_LISTEN to an address such as 127.0.0.1:8080")
		return
	}
	loopback := api.Loopback(host)
	tokens := cfg.APITokens > 0
	switch {
	case loopback:
		d.ok("listener", "", cfg.Listen+" is a loopback address: only this machine reaches it (an XMPP server, p2xmpp or a proxy here)")
	case tokens:
		d.ok("listener", "", cfg.Listen+" is reachable from other machines; registering, unregistering and the look-up need an API token")
	default:
		d.warn("listener", "", cfg.Listen+" is reachable from other machines and P2_API_TOKENS is not set (P2_ALLOW_OPEN_REGISTRATION): "+
			"anyone who reaches it can register phones and look registrations up",
			"set P2_API_TOKENS and give them to the XMPP servers' modules, or listen on 127.0.0.1 behind a proxy")
	}

	switch {
	case tokens:
		d.ok("api-tokens", "", fmt.Sprintf("%d API token%s: registering, unregistering, the look-up and /metrics need one; "+
			"a push needs its node's secret", cfg.APITokens, plural(cfg.APITokens)))
	case loopback:
		d.ok("api-tokens", "", "none: any program on this machine may register phones and look registrations up; a push needs its node's secret")
	default:
		d.warn("api-tokens", "", "none on a listener other machines reach", "set P2_API_TOKENS (at least 16 characters each: head -c 24 /dev/urandom | base64)")
	}

	d.checkTLS(loopback)

	switch {
	case cfg.AllowedHosts != nil:
		d.ok("allowed-hosts", "", "the Host header must name one of "+strings.Join(slices.Compact(slices.Sorted(slices.Values(cfg.AllowedHosts))), ", ")+
			" (any port); others are answered 421, which keeps DNS-rebinding pages out")
	case loopback:
		d.ok("allowed-hosts", "", "no Host check: with API tokens a page rebound to this machine can call no registration endpoint")
	default:
		d.ok("allowed-hosts", "", "no Host check; P2_ALLOWED_HOSTS can list the names clients use, and others are then answered 421")
	}

	switch mhost, _, err := net.SplitHostPort(cfg.Metrics); {
	case cfg.Metrics == "" && tokens:
		d.ok("metrics", "", "/metrics is on the main listener, behind the API tokens")
	case cfg.Metrics == "" && loopback:
		d.ok("metrics", "", "/metrics is on the main listener, open to this machine only")
	case cfg.Metrics == "":
		d.warn("metrics", "", "/metrics is on the main listener, open to everyone who reaches it (no API tokens)",
			"set P2_API_TOKENS, or P2_METRICS=127.0.0.1:9106 to move it")
	case err != nil:
		d.fail("metrics", "", fmt.Sprintf("P2_METRICS %q is not host:port", cfg.Metrics), "set P2_METRICS to an address such as 127.0.0.1:9106")
	case api.Loopback(mhost):
		d.ok("metrics", "", "/metrics is at http://"+cfg.Metrics+"/metrics, for this machine only")
	default:
		d.warn("metrics", "", "/metrics is at http://"+cfg.Metrics+"/metrics without a token, for everyone who reaches it: "+
			"it shows counts and latencies, no tokens or JIDs",
			"listen on 127.0.0.1, or let a firewall admit only the Prometheus host")
	}
}

// checkTLS checks P2_TLS_CERT and P2_TLS_KEY, or says what plain HTTP
// exposes.
func (d *doctor) checkTLS(loopback bool) {
	cfg := d.cfg
	if cfg.TLSCert == "" {
		if loopback {
			d.ok("tls", "", "plain HTTP, on loopback: nothing crosses the network")
			return
		}
		d.warn("tls", "", "plain HTTP on an address other machines reach: API tokens and push secrets cross the network in clear",
			"set P2_TLS_CERT and P2_TLS_KEY, or listen on 127.0.0.1 behind a TLS proxy")
		return
	}
	renew := "point P2_TLS_CERT and P2_TLS_KEY at a current certificate (PEM, with its chain) and its key"
	pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		d.fail("tls", "", "the service cannot serve HTTPS with P2_TLS_CERT and P2_TLS_KEY: "+err.Error(), renew)
		return
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			d.fail("tls", "", "cannot read P2_TLS_CERT: "+err.Error(), renew)
			return
		}
	}
	now, until := d.now(), leaf.NotAfter.UTC().Format(time.DateOnly)
	names := strings.Join(leaf.DNSNames, ", ")
	if names == "" {
		names = leaf.Subject.CommonName
	}
	switch {
	case now.After(leaf.NotAfter):
		d.fail("tls", "", "P2_TLS_CERT expired on "+until+": clients refuse the connection", renew)
	case now.Before(leaf.NotBefore):
		d.fail("tls", "", "P2_TLS_CERT is not valid before "+leaf.NotBefore.UTC().Format(time.DateOnly)+" (or this machine's clock is off)", renew)
	case leaf.NotAfter.Sub(now) < tlsExpiryWarning:
		d.warn("tls", "", "P2_TLS_CERT expires on "+until, "renew it before: "+renew+"; the service reads it at start")
	default:
		d.ok("tls", "", "HTTPS with a certificate for "+names+", valid until "+until)
	}
}
