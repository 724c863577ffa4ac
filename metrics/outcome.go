package metrics

import "github.com/p2http/p2http"

// Push outcomes, the values of the outcome label of p2http_pushes_total.
// Rejected pushes are the caller's doing (a stale node, a wrong secret, a
// spent budget, a malformed request): ordinary XMPP-server noise that no
// alert on delivery should count. Failed pushes are ours or the provider's:
// those are what a delivery alert watches.
const (
	Delivered = "delivered"
	Coalesced = "coalesced"
	DeadToken = "dead_token"
	Rejected  = "rejected"
	Failed    = "failed"
)

// outcome is one row of the table: a pair of the outcome and reason
// labels, and the domain error code that leads to it ("" for the delivered
// and coalesced pushes).
type outcome struct{ code, outcome, reason string }

// outcomes is the one table from the domain's error codes to the outcome
// and reason of a push (and to the reason of a failed provider call). The
// Metrics hold one counter per row and per app and service, exported at
// zero from the start. A code it lacks counts as failed/internal.
//
// EUNAUTHORIZED is failed, not rejected: a push never reaches the relay
// without its token, so only p2xmpp sees it, and there it means that
// p2xmpp's own token (our configuration) was refused.
var outcomes = [...]outcome{
	{"", Delivered, ""},
	{"", Coalesced, ""},
	{p2http.EGONE, DeadToken, "dead_token"},
	{p2http.EINVALID, Rejected, "invalid"},
	{p2http.ENOTFOUND, Rejected, "unknown_node"},
	{p2http.EFORBIDDEN, Rejected, "forbidden"},
	{p2http.ERATELIMIT, Rejected, "rate_limited"},
	{p2http.ENOTCONFIGURED, Rejected, "not_configured"},
	{p2http.EUNAVAILABLE, Failed, "unavailable"},
	{p2http.ETIMEOUT, Failed, "timeout"},
	{p2http.EUPSTREAM, Failed, "upstream_rejected"},
	{p2http.EUNAUTHORIZED, Failed, "unauthorized"},
	{p2http.EUNREACHABLE, Failed, "unreachable"},
	{p2http.EINTERNAL, Failed, "internal"},
}

const (
	iDelivered = 0
	iCoalesced = 1
	iInternal  = len(outcomes) - 1
)

// byCode indexes outcomes by code.
var byCode = func() map[string]int {
	m := make(map[string]int, len(outcomes))
	for i, o := range outcomes {
		if o.code != "" {
			m[o.code] = i
		}
	}
	return m
}()

// outcomeIndex returns the index in outcomes of a push that ended with err,
// or was coalesced.
func outcomeIndex(err error, coalesced bool) int {
	switch {
	case coalesced:
		return iCoalesced
	case err == nil:
		return iDelivered
	}
	if i, ok := byCode[p2http.ErrorCode(err)]; ok {
		return i
	}
	return iInternal
}

// DomainCode reports whether code is one of the domain's error codes, which
// the table knows.
func DomainCode(code string) bool {
	_, ok := byCode[code]
	return ok
}

// Outcome returns the outcome and reason labels of a push that ended with
// err (coalesced: merged into another push): delivered, coalesced,
// dead_token, rejected or failed, and for the last three the reason, from
// err's code (p2http.ErrorCode).
func Outcome(err error, coalesced bool) (outcome, reason string) {
	o := outcomes[outcomeIndex(err, coalesced)]
	return o.outcome, o.reason
}

// Reason returns the reason label of err, as Outcome has it: the name of
// its code in the metrics ("unknown_node" for ENOTFOUND, …), "" for nil.
func Reason(err error) string {
	_, r := Outcome(err, false)
	return r
}
