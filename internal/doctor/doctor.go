// Package doctor checks which isolation layers this host offers and
// proves that they are active by running a probe program in a real
// sandbox and reading its state from the inside.
package doctor

import (
	"fmt"
	"io"
)

// State of one layer.
type State string

const (
	Active      State = "active"      // applied to every sandbox, verified by the probe
	Degraded    State = "degraded"    // applied in a weaker form; Detail says how
	Unavailable State = "unavailable" // not applied; Detail says why and how to fix
	Info        State = "info"
)

// Check is one line of the report.
type Check struct {
	Layer  string
	State  State
	Detail string
}

// Print writes the report as aligned lines.
func Print(w io.Writer, checks []Check) {
	for _, c := range checks {
		fmt.Fprintf(w, "%-18s %-12s %s\n", c.Layer, c.State, c.Detail)
	}
}

// OK reports whether every layer is active.
func OK(checks []Check) bool {
	for _, c := range checks {
		if c.State == Unavailable || c.State == Degraded {
			return false
		}
	}
	return true
}
