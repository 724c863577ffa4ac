package main

import "runtime/debug"

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// buildVersion is the version p2xmpp_build_info reports: the one set at
// build time, else the module's, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
