// Package buildinfo tells which build of p2http or p2xmpp is running, for
// their version command and their build_info metric.
package buildinfo

import "runtime/debug"

// Version is set, the version the build was given with -ldflags "-X
// main.version=…" (make build, make release, make image), else the
// module's version from the build information (go install), else "dev".
func Version(set string) string {
	if set != "" {
		return set
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
