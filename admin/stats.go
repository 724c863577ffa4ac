package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
)

// StatsOptions are the settings of `p2http stats`.
type StatsOptions struct {
	// JSON prints JSON.
	JSON bool
	// Top lists only the Top largest domains; 0 lists all.
	Top int
	// Node, when set, shows the registration holding it instead of the
	// counts: what GET /v1/registration shows, as the database has it.
	Node string
}

// Flags declares stats' flags into fs.
func (o *StatsOptions) Flags(fs *flag.FlagSet) {
	fs.BoolVar(&o.JSON, "json", false, "print JSON")
	fs.IntVar(&o.Top, "top", 0, "list only the N largest domains (0: all)")
	fs.StringVar(&o.Node, "node", "", "show the registration holding `NODE` instead: its service, domain, times and what became of its pushes (never its token)")
}

// Validate checks the options before anything is opened.
func (o *StatsOptions) Validate() error {
	switch {
	case o.Top < 0:
		return errors.New("stats: --top must not be negative")
	case o.Node != "" && o.Top != 0:
		return errors.New("stats: --top counts domains; it does not go with --node")
	case len(o.Node) > p2http.MaxNodeLength:
		return fmt.Errorf("stats: --node is longer than %d bytes", p2http.MaxNodeLength)
	}
	return nil
}

// Stats writes the counts of store's registrations by service, secret
// kind, app (and each app's per service) and domain to w; with o.Node, the
// registration holding it.
func Stats(ctx context.Context, store *db.DB, o StatsOptions, w io.Writer) error {
	if o.Node != "" {
		return nodeStats(ctx, store, o, w)
	}
	st, err := store.Stats(ctx)
	if err != nil {
		return err
	}
	omitted := 0
	if o.Top > 0 && len(st.Domains) > o.Top {
		omitted = len(st.Domains) - o.Top
		st.Domains = st.Domains[:o.Top]
	}
	if o.JSON {
		return writeJSON(w, struct {
			db.Stats
			DomainsOmitted int `json:"domains_omitted"`
		}{st, omitted})
	}
	fmt.Fprintf(w, "registrations %d\n", st.Total)
	section := func(title string, keys []string, n func(string) int64) {
		fmt.Fprintf(w, "\n%s\n", title)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-20s %10d\n", k, n(k))
		}
	}
	var services []string
	for _, s := range p2http.Services {
		services = append(services, string(s))
	}
	section("by service", services, func(k string) int64 { return st.ByService[p2http.Service(k)] })
	section("by secret", []string{string(p2http.SecretDerived), string(p2http.SecretKept) + " (from p2)"},
		func(k string) int64 { return st.BySecret[p2http.SecretKind(strings.Fields(k)[0])] })
	// By app, with each app's registrations per service beside its total.
	fmt.Fprintf(w, "\n%-22s %10s", "by app", "total")
	for _, s := range services {
		fmt.Fprintf(w, " %10s", s)
	}
	fmt.Fprintln(w)
	for _, app := range slices.Sorted(maps.Keys(st.ByApp)) {
		fmt.Fprintf(w, "  %-20s %10d", app, st.ByApp[app])
		for _, s := range p2http.Services {
			fmt.Fprintf(w, " %10d", st.ByAppService[app][s])
		}
		fmt.Fprintln(w)
	}

	width := len("domain")
	for _, ds := range st.Domains {
		width = max(width, len(ds.Domain))
	}
	fmt.Fprintf(w, "\n%-*s %10s", width, "domain", "total")
	for _, s := range services {
		fmt.Fprintf(w, " %10s", s)
	}
	fmt.Fprintln(w)
	for _, ds := range st.Domains {
		fmt.Fprintf(w, "%-*s %10d", width, ds.Domain, ds.Total)
		for _, s := range p2http.Services {
			fmt.Fprintf(w, " %10d", ds.ByService[s])
		}
		fmt.Fprintln(w)
	}
	if omitted > 0 {
		fmt.Fprintf(w, "… and %d more domains\n", omitted)
	}
	return nil
}

// NodeInfo is what `p2http stats --node` shows of a registration: the
// fields of GET /v1/registration, under the same names, as the database has
// them. Neither the token nor the secret is shown, no account is stored,
// and the node is not repeated (no command prints one).
type NodeInfo struct {
	App               p2http.App          `json:"app"`
	Service           p2http.Service      `json:"service"`
	Domain            string              `json:"domain"`
	SecretKind        p2http.SecretKind   `json:"secret_kind"`
	CreatedAt         time.Time           `json:"created_at"`
	UpdatedAt         time.Time           `json:"updated_at"`
	PushCount         int64               `json:"push_count"`
	LastPushAt        *time.Time          `json:"last_push_at"`
	LastPushOutcome   *p2http.PushOutcome `json:"last_push_outcome"`
	LastFailureAt     *time.Time          `json:"last_failure_at"`
	LastFailureReason *string             `json:"last_failure_reason"`
}

// nodeStats writes the registration holding o.Node.
func nodeStats(ctx context.Context, store *db.DB, o StatsOptions, w io.Writer) error {
	reg, err := store.Lookup(ctx, o.Node)
	if p2http.ErrorCode(err) == p2http.ENOTFOUND {
		return errors.New("stats: no registration holds this node (a stored-mode node has 12 characters; quote it, it may hold + and /)")
	}
	if err != nil {
		return err
	}
	h := reg.PushHistory
	info := NodeInfo{App: reg.App, Service: reg.Service, Domain: reg.Domain, SecretKind: reg.SecretKind,
		CreatedAt: reg.CreatedAt, UpdatedAt: reg.UpdatedAt, PushCount: h.Pushes, LastPushAt: h.LastPushAt, LastFailureAt: h.LastFailureAt}
	if h.LastOutcome != "" {
		info.LastPushOutcome = &h.LastOutcome
	}
	if h.LastFailureAt != nil {
		info.LastFailureReason = &h.LastFailureReason
	}
	if o.JSON {
		return writeJSON(w, info)
	}
	when := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.Format(time.RFC3339)
	}
	last := when(h.LastPushAt)
	if h.LastOutcome != "" {
		last += " " + string(h.LastOutcome)
	}
	failure := when(h.LastFailureAt)
	if h.LastFailureAt != nil {
		failure += " " + h.LastFailureReason
	}
	for _, l := range [][2]string{
		{"app", string(reg.App)}, {"service", string(reg.Service)}, {"domain", reg.Domain},
		{"secret", string(reg.SecretKind)}, {"registered", reg.CreatedAt.Format(time.RFC3339)},
		{"updated", reg.UpdatedAt.Format(time.RFC3339)}, {"pushes", fmt.Sprint(h.Pushes)},
		{"last push", last}, {"last failure", failure},
	} {
		fmt.Fprintf(w, "%-13s %s\n", l[0], l[1])
	}
	return nil
}
