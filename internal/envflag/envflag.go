// Package envflag declares a binary's settings once: each is an environment
// variable that a flag of the same meaning may override, except the
// secrets, which come from the environment only (command lines are visible
// to every user of the machine).
package envflag
