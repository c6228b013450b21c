package pyast

import (
	"os"
	"testing"
)

// BenchmarkParse200Lines parses a 200-line pandas/matplotlib cell, the
// size of code the policy checks on every run.
func BenchmarkParse200Lines(b *testing.B) {
	src, err := os.ReadFile("testdata/cell200.py")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Parse(src); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}
