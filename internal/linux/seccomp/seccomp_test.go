//go:build linux

package seccomp

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden pins the compiled filter for each supported architecture, so
// that any change to the allowlist shows up in review as a diff of the
// program the kernel will run.
func TestGolden(t *testing.T) {
	for _, a := range []*Arch{X86_64, AARCH64} {
		t.Run(a.Name, func(t *testing.T) {
			p, err := Compile(Profile, a, unix.EPERM)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Assemble(); err != nil {
				t.Fatal(err)
			}
			got := p.Dump()
			file := filepath.Join("testdata", a.Name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("compiled filter differs from %s; review the change and run go test ./internal/linux/seccomp -update", file)
			}
		})
	}
}

// TestProfileNamesExist guards against typos: a misspelled name would be
// skipped silently by Compile on every architecture.
func TestProfileNamesExist(t *testing.T) {
	for _, r := range Profile {
		_, x86 := X86_64.Lookup(r.Name)
		_, arm := AARCH64.Lookup(r.Name)
		if !x86 && !arm {
			t.Errorf("syscall %q exists on no supported architecture", r.Name)
		}
	}
}

func TestCompileRejectsBadInput(t *testing.T) {
	cases := map[string][]Rule{
		"duplicate": {{Name: "read"}, {Name: "read"}},
		"bad arg":   {{Name: "socket", Op: OpIn, Arg: 7, Values: []uint32{1}}},
		"no values": {{Name: "socket", Op: OpIn}},
	}
	for name, rules := range cases {
		if _, err := Compile(rules, X86_64, unix.EPERM); err == nil {
			t.Errorf("%s: Compile accepted invalid rules", name)
		}
	}
	if _, err := Compile(Profile, X86_64, 0); err == nil {
		t.Error("Compile accepted errno 0")
	}
}
