package sandboxtest

import "github.com/pybox-dev/pybox/internal/sandbox"

// SecurityCases are the attack programs, one or more per class of
// shared/docs/security-testing.md. Each prints Effect when its attack
// worked; see Case for the contract and Expand for placeholders.
func SecurityCases() []Case {
	var all []Case
	for _, group := range [][]Case{
		hostFileCases,
	} {
		all = append(all, group...)
	}
	return all
}

var anyStatus []sandbox.Status

var hostFileCases = []Case{
	{
		Name:  "read-canary-file",
		Class: "host-files",
		Code: `
try:
    print("EFFECT: " + open("{{CANARY_FILE}}").read())
except OSError as e:
    print("denied:", e)
`,
	},
	{
		Name:  "read-etc-shadow",
		Class: "host-files",
		Code: `
try:
    data = open("/etc/shadow").read()
    print("EFFECT: read /etc/shadow", len(data))
except OSError as e:
    print("denied:", e)
`,
	},
	{
		Name:  "seccomp-blocks-ptrace",
		Class: "processes",
		Code: `{{PRELUDE}}
reached(101, 16, 1, 0, 0, label="ptrace(PTRACE_ATTACH, 1)")
`,
	},
}
