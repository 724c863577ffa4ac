package api

import (
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
