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

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/db"
)

// StatsOptions are the settings of `p2http stats`.
type StatsOptions struct {
	// JSON prints JSON.
	JSON bool
	// Top lists only the Top largest domains; 0 lists all.
	Top int
}

// Flags declares stats' flags into fs.
func (o *StatsOptions) Flags(fs *flag.FlagSet) {
	fs.BoolVar(&o.JSON, "json", false, "print JSON")
	fs.IntVar(&o.Top, "top", 0, "list only the N largest domains (0: all)")
}

// Validate checks the options before anything is opened.
func (o *StatsOptions) Validate() error {
	if o.Top < 0 {
		return errors.New("stats: --top must not be negative")
	}
	return nil
}

// Stats writes the counts of store's registrations by service, secret
// kind, app (and each app's per service) and domain to w.
func Stats(ctx context.Context, store *db.DB, o StatsOptions, w io.Writer) error {
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
