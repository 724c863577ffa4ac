package api

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/p2http/p2http"
)

// hostSet is Config.AllowedHosts, ready to match a Host header against.
type hostSet struct {
	names map[string]bool // lowercase, without a trailing dot
	addrs []netip.Addr    // IP addresses, compared as addresses: [::1] is [0:0:0:0:0:0:0:1]
}

func newHostSet(hosts []string) *hostSet {
	h := &hostSet{names: map[string]bool{}}
	for _, host := range hosts {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if a, err := netip.ParseAddr(host); err == nil {
			h.addrs = append(h.addrs, a.Unmap())
			continue
		}
		h.names[strings.ToLower(strings.TrimSuffix(host, "."))] = true
	}
	return h
}

// allows reports whether the Host header value host (a name or an IP
// address, with or without a port) names one of the allowed hosts.
func (h *hostSet) allows(host string) bool {
	if name, _, err := net.SplitHostPort(host); err == nil {
		host = name
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		for _, allowed := range h.addrs {
			if a == allowed {
				return true
			}
		}
		return false
	}
	return h.names[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// checkHost answers 421 to a request whose Host is not allowed. A web page
// whose own name was rebound to 127.0.0.1 (DNS rebinding) reaches a
// loopback listener with its own name in Host, and is refused here before
// any route.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allows(r.Host) {
			s.problem(w, r, p2http.Errorf(codeMisdirected, "this p2http does not serve the host named in the Host header "+
				"(a guard against DNS rebinding): use localhost, 127.0.0.1 or [::1], or add the name to P2_ALLOWED_HOSTS"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// HostsToCheck returns the names and addresses the Host header may hold
// (Config.AllowedHosts) for a service listening on listen (host:port), with
// API tokens or without, and allowed the names its operator lists besides
// (P2_ALLOWED_HOSTS); nil for no check. On a loopback listener without API
// tokens they are localhost, 127.0.0.1, ::1, the listen host and allowed:
// there a web page in a browser on the same machine could otherwise reach
// the open API through DNS rebinding. Elsewhere the names clients use are
// the operator's to know: the check applies only when allowed lists them.
// (With tokens, a rebound page can call no registration endpoint, and a
// push needs a node's secret.)
func HostsToCheck(listen string, tokens bool, allowed []string) []string {
	host, _, _ := net.SplitHostPort(listen)
	if len(allowed) == 0 && (!Loopback(host) || tokens) {
		return nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		hosts = append(hosts, host)
	}
	return append(hosts, allowed...)
}

// CheckHostName accepts a name for the allowed hosts: a DNS name (letters,
// digits, '-' and '_' in labels of at most 63 characters, an optional
// final dot) or an IP address, IPv6 with or without brackets; never a
// port, a scheme or a wildcard.
func CheckHostName(h string) error {
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return errors.New("is not a host name")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("is not a host name")
		}
		for _, ch := range label {
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
				return errors.New("is not a host name: give names and addresses only, without scheme or port (any port is accepted)")
			}
		}
	}
	return nil
}

// Loopback reports whether a listener on host only accepts connections
// from this machine.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
