package main

import "runtime/debug"

// version is set at build time with -ldflags "-X main.version=…" (make
// build, make release).
var version = ""

// buildVersion is version, else the module's version from the build
// information, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
