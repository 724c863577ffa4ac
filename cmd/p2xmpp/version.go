package main

// version is set at build time with -ldflags "-X main.version=…" (make
// build, make release); buildinfo.Version reads it.
var version = ""
