package xmppdoctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/api"
	"github.com/p2http/p2http/internal/checkup"
	"mellium.im/xmpp/jid"
)

// checkP2HTTP asks p2http for its info (GET /v1/info) and checks that it
// serves the component's jid. It reports whether p2http answered at all.
func checkP2HTTP(ctx context.Context, cfg Config, r *checkup.Report) (answered bool) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	info, err := cfg.Describer.Describe(ctx)
	if err != nil {
		r.Add(p2httpFailure(cfg, "GET /v1/info", err))
		return p2http.ErrorCode(err) != p2http.EUNREACHABLE
	}
	own, _ := jid.Parse(cfg.JID)
	if got, err := jid.Parse(info.JID); err != nil || !got.Equal(own) {
		r.Add(checkup.Check{ID: CheckP2HTTP, Status: checkup.Fail,
			Message: fmt.Sprintf("p2http at %s serves the jid %s (P2_JID), this component is %s (P2XMPP_JID): phones would enable push towards the wrong address, so p2xmpp answers every request with a wait error",
				cfg.API, info.JID, own),
			Fix: "set P2_JID (p2http) and P2XMPP_JID (p2xmpp) to the same address, the component's"})
		return true
	}
	detail := fmt.Sprintf("p2http at %s serves %s", cfg.API, own)
	if len(info.Services) > 0 {
		detail += " with " + joinServices(info.Services)
	}
	var apps []string
	for _, a := range info.Apps {
		apps = append(apps, a.JID)
	}
	if len(apps) > 0 {
		detail += ", and the apps " + strings.Join(apps, ", ")
	}
	if len(info.Services) == 0 && len(info.Apps) == 0 {
		r.Add(checkup.Check{ID: CheckP2HTTP, Status: checkup.Warn,
			Message: detail + ", but offers no push service: every registration is refused",
			Fix:     "give p2http credentials for FCM (P2_FCM_CREDENTIALS) or APNs; `p2http doctor` checks them"})
		return true
	}
	r.Add(checkup.Check{ID: CheckP2HTTP, Status: checkup.OK, Message: detail})
	return true
}

// checkAPIToken looks up a node that cannot exist (GET /v1/registration):
// p2http answers it 404 when it accepts the caller, 401 when not, and
// changes nothing either way.
func checkAPIToken(ctx context.Context, cfg Config, r *checkup.Report, reachable bool) {
	if !reachable {
		r.Add(checkup.Check{ID: CheckAPIToken, Status: checkup.Warn, Message: "not checked: p2http did not answer",
			Fix: "make p2http reachable first (see the p2http check)"})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	_, err := cfg.Registrar.Lookup(ctx, "p2xmpp-doctor-probe")
	switch code := p2http.ErrorCode(err); {
	case err == nil || code == p2http.ENOTFOUND:
		detail := "p2http accepts P2XMPP_API_TOKEN"
		if !cfg.APIToken {
			detail = "p2http asks for no API token (P2XMPP_API_TOKEN and p2http's P2_API_TOKENS are unset)"
		}
		r.Add(checkup.Check{ID: CheckAPIToken, Status: checkup.OK, Message: detail})
	case code == p2http.EUNAUTHORIZED && !cfg.APIToken:
		r.Add(checkup.Check{ID: CheckAPIToken, Status: checkup.Fail,
			Message: "p2http requires an API token and P2XMPP_API_TOKEN is unset: every registration and push would fail",
			Fix:     "set P2XMPP_API_TOKEN to one of p2http's P2_API_TOKENS"})
	case code == p2http.EUNAUTHORIZED:
		r.Add(checkup.Check{ID: CheckAPIToken, Status: checkup.Fail,
			Message: "p2http refuses P2XMPP_API_TOKEN (401): every registration and push would fail",
			Fix:     "set P2XMPP_API_TOKEN to one of p2http's P2_API_TOKENS"})
	default:
		c := p2httpFailure(cfg, "GET /v1/registration", err)
		c.ID = CheckAPIToken
		r.Add(c)
	}
}

// p2httpFailure is the failed p2http check for a call that failed.
func p2httpFailure(cfg Config, op string, err error) checkup.Check {
	c := checkup.Check{ID: CheckP2HTTP, Status: checkup.Fail}
	var re *api.ResponseError
	switch {
	case p2http.ErrorCode(err) == p2http.EUNREACHABLE:
		c.Message = fmt.Sprintf("no answer from p2http at %s: %v", cfg.API, cause(err))
		c.Fix = "start p2http, or set P2XMPP_API to the address it listens on (P2_LISTEN)"
	case errors.As(err, &re) && re.Status == http.StatusMisdirectedRequest:
		c.Message = fmt.Sprintf("p2http at %s refuses the host name of P2XMPP_API (421)", cfg.API)
		c.Fix = "add the host of P2XMPP_API to p2http's P2_ALLOWED_HOSTS, or use 127.0.0.1"
	case errors.As(err, &re) && re.Type == "":
		c.Message = fmt.Sprintf("%s at %s answered %v: something other than p2http answers there", op, cfg.API, re)
		c.Fix = "set P2XMPP_API to p2http's base URL (the scheme, host and port of P2_LISTEN, no path)"
	default:
		c.Message = fmt.Sprintf("%s at %s failed: %v", op, cfg.API, err)
		c.Fix = "see p2http's log for the request; `p2http doctor` checks its configuration"
	}
	return c
}

// cause is the innermost error of a failed call, without the layers that
// repeat the operation.
func cause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func joinServices(s []p2http.Service) string {
	names := make([]string, len(s))
	for i, v := range s {
		names[i] = string(v)
	}
	return strings.Join(names, " and ")
}
