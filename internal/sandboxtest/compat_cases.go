package sandboxtest

// CompatCases are ordinary programs that must work inside the sandbox.
// sciPython is an interpreter with numpy, pandas and matplotlib.
func CompatCases(sciPython string) []Case {
	return []Case{
		{Name: "print", Code: `print(1+1)`, Want: "2"},
	}
}
