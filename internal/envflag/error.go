package envflag

// Error is a setting that cannot be used; it names the setting: its
// environment variable, or its place in a configuration file.
type Error struct {
	Var, Msg string
}

// Error implements error.
func (e *Error) Error() string { return "configuration: " + e.Var + ": " + e.Msg }
