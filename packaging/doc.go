// Package packaging holds no code: it is the home of the systemd units
// (systemd/), the example environment files (env/) and the test that keeps
// them in step with the programs. See README.md in this directory.
package packaging
