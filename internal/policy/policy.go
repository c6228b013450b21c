// Package policy is pybox's static pre-filter: it parses the code in the Go
// process, before any sandbox sees it, and rejects imports, calls and
// attribute walks that an agent's code has no business using, each with a
// position and one sentence an LLM can act on.
//
// It is a fast, readable pre-filter and nothing more. Python is far too
// dynamic for a static check to be a boundary: the kernel sandbox is the
// boundary and contains whatever this misses (the security suites run the
// evasions with the policy off). What the policy buys is early, clear
// feedback and a smaller surface for the sandbox to absorb.
//
// Because it runs outside the sandbox, code in a session cannot weaken it
// for a later cell. Code it cannot parse is rejected (fail closed).
package policy

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/pybox-dev/pybox/internal/policy/pyast"
)

// Profile names a set of rules.
type Profile string

const (
	// Strict blocks the origin document's list (os, subprocess, sys,
	// shutil, socket, requests; eval, exec, compile, __import__, open)
	// and their obvious companions, and the introspection walks.
	Strict Profile = "strict"
	// Standard lets os, sys, shutil and open through, since the kernel
	// confines them, and blocks the rest of strict.
	Standard Profile = "standard"
	// Allowlist allows importing only the modules the rules name; the
	// call and attribute rules of standard apply too.
	Allowlist Profile = "allowlist"
	// Off checks nothing, not even syntax.
	Off Profile = "off"
)

// Profiles lists the valid profile names.
var Profiles = []Profile{Strict, Standard, Allowlist, Off}

// Rules is a policy's configuration: a profile and lists that adjust it.
// The zero value is strict.
type Rules struct {
	Profile Profile `json:"profile,omitempty"`
	// DenyModules are blocked in addition to the profile's own list;
	// denying "a" denies "a.b" too.
	DenyModules []string `json:"deny-modules,omitempty"`
	// AllowModules are, for the allowlist profile, the only modules code
	// may import (with their submodules); for strict and standard, they
	// take modules off the profile's own list.
	AllowModules []string `json:"allow-modules,omitempty"`
	// DenyCalls are builtin names blocked in addition to the profile's.
	DenyCalls []string `json:"deny-calls,omitempty"`
}

// Verdict is the outcome of a check.
type Verdict struct {
	Profile    Profile     `json:"profile"`
	Allowed    bool        `json:"allowed"`
	Violations []Violation `json:"violations,omitempty"`
}

// Summary is one line that lists every violation, for messages.
func (v Verdict) Summary() string {
	if v.Allowed {
		return "allowed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the code was rejected by the %s policy before it ran (%d violation", v.Profile, len(v.Violations))
	if len(v.Violations) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, x := range v.Violations {
		fmt.Fprintf(&b, " line %d:%d: %s", x.Line, x.Col, x.Message)
	}
	return b.String()
}

// strictModules are what strict blocks, each with why, so that the
// message says what to do instead.
var strictModules = map[string]string{
	"os":              "under the strict policy code gets no operating-system access. Read uploaded files with pandas or the csv module and keep paths as plain strings",
	"subprocess":      "the sandbox cannot start other programs. Do the work in Python instead",
	"sys":             "it exposes the interpreter's internals. Use print() for output and raise an exception to fail",
	"shutil":          "it copies and deletes files and trees. Work with the data in memory instead",
	"socket":          "the sandbox has no network. Remove the import",
	"requests":        "the sandbox has no network. Use data that is already in the workspace",
	"urllib":          "the sandbox has no network. Use data that is already in the workspace",
	"http":            "the sandbox has no network. Use data that is already in the workspace",
	"ftplib":          "the sandbox has no network",
	"smtplib":         "the sandbox has no network",
	"ssl":             "the sandbox has no network",
	"ctypes":          "it calls C code and reads memory directly. Use pure Python or numpy",
	"cffi":            "it calls C code directly. Use pure Python or numpy",
	"importlib":       "importing by computed name would bypass this check. Import modules with a plain import statement",
	"builtins":        "it reaches the interpreter's builtins directly. Use the builtins by name",
	"gc":              "it walks the interpreter's live objects. Remove it",
	"inspect":         "it reaches frames and the interpreter's internals. Remove it",
	"pty":             "the sandbox cannot start terminals or programs",
	"multiprocessing": "the sandbox limits processes; use plain loops, or numpy for speed",
	"signal":          "signal handlers are the sandbox's. Remove it",
	"marshal":         "it loads raw code objects. Use json or pickle-free formats",
	"pickle":          "unpickling runs arbitrary code. Use json or csv",
	"code":            "it runs code from strings. Write the code directly",
	"codeop":          "it compiles code from strings. Write the code directly",
	"runpy":           "it runs other modules as programs. Import what you need instead",
	"posix":           "it is the os module's C part. Remove it",
	"nt":              "it is the os module's C part. Remove it",
	"resource":        "the sandbox sets the resource limits. Remove it",
	"fcntl":           "it changes file descriptors directly. Remove it",
	"mmap":            "it maps memory and files directly. Remove it",
	"webbrowser":      "the sandbox has no browser or network",
	"telnetlib":       "the sandbox has no network",
	"xmlrpc":          "the sandbox has no network",
	"socketserver":    "the sandbox has no network",
	"zipimport":       "it imports code from archives. Import modules with a plain import statement",
	"pkgutil":         "it finds and loads modules by name. Import modules with a plain import statement",
	"faulthandler":    "it writes the interpreter's internals. Remove it",
	"tracemalloc":     "it walks the interpreter's memory. Remove it",
	// The C modules behind the ones above: the same doors, one level down.
	"_posixsubprocess":           "it forks and executes programs directly. Do the work in Python instead",
	"_ctypes":                    "it calls C code and reads memory directly. Use pure Python or numpy",
	"_socket":                    "the sandbox has no network. Remove the import",
	"_ssl":                       "the sandbox has no network. Remove the import",
	"_pickle":                    "unpickling runs arbitrary code. Use json or csv",
	"_imp":                       "it drives the import machinery directly. Use a plain import statement",
	"_frozen_importlib":          "it drives the import machinery directly. Use a plain import statement",
	"_frozen_importlib_external": "it drives the import machinery directly. Use a plain import statement",
	"_multiprocessing":           "the sandbox limits processes; use plain loops, or numpy for speed",
	"_posixshmem":                "it maps shared memory directly. Remove it",
	"_signal":                    "signal handlers are the sandbox's. Remove it",
	"_xxsubinterpreters":         "it runs code in other interpreters. Write the code directly",
	"_interpreters":              "it runs code in other interpreters. Write the code directly",
	"_testcapi":                  "it exposes the interpreter's C internals. Remove it",
}

// standardAllowed are the strict modules standard lets through: the kernel
// sandbox confines what they reach.
var standardAllowed = []string{"os", "sys", "shutil", "posix", "resource", "fcntl", "mmap"}

// strictCalls are builtins strict blocks, with why.
var strictCalls = map[string]string{
	"eval":       "it runs code from a string. Write the expression directly",
	"exec":       "it runs code from a string. Write the code directly",
	"compile":    "it turns strings into code. Write the code directly",
	"__import__": "importing by computed name would bypass this check. Use a plain import statement",
	"open":       "files are not opened directly under the strict policy. Read uploaded data with pandas.read_csv or similar",
	"globals":    "it exposes the module's namespace and builtins. Use the names directly",
	"locals":     "it exposes the frame's namespace. Use the names directly",
	"vars":       "it exposes an object's namespace. Use attributes directly",
	"breakpoint": "the debugger needs a terminal the sandbox does not have",
}

// standardAllowedCalls are the strict calls standard lets through.
var standardAllowedCalls = []string{"open"}

// deniedNames may not be named at all: each is a door to the builtins or
// the import machinery.
var deniedNames = map[string]bool{
	"__builtins__": true, "__import__": true, "__loader__": true, "__spec__": true,
}

// safeDunders are the dunder attributes ordinary code uses; every other
// dunder attribute is refused, since dunder walks (__class__.__bases__,
// __subclasses__, __globals__, __code__ ...) are how Python-level escapes
// reach objects they were never given.
var safeDunders = map[string]bool{
	"__name__": true, "__qualname__": true, "__doc__": true, "__module__": true,
	"__version__": true, "__class__": true, "__init__": true, "__new__": true,
	"__call__": true, "__repr__": true, "__str__": true, "__format__": true,
	"__len__": true, "__iter__": true, "__next__": true, "__contains__": true,
	"__getitem__": true, "__setitem__": true, "__delitem__": true,
	"__enter__": true, "__exit__": true, "__aenter__": true, "__aexit__": true,
	"__eq__": true, "__ne__": true, "__lt__": true, "__le__": true, "__gt__": true, "__ge__": true,
	"__hash__": true, "__bool__": true, "__add__": true, "__sub__": true, "__mul__": true,
	"__truediv__": true, "__floordiv__": true, "__mod__": true, "__pow__": true,
	"__neg__": true, "__pos__": true, "__abs__": true, "__radd__": true, "__rmul__": true,
	"__annotations__": true, "__post_init__": true, "__slots__": true, "__all__": true,
	"__copy__": true, "__deepcopy__": true, "__array__": true, "__float__": true, "__int__": true,
	"__index__": true, "__round__": true, "__main__": true, "__file__": true,
}

// dangerousAttrs are the internals that escapes walk through; a string
// literal naming one (a getattr argument or dict key in disguise) is
// refused too.
var dangerousAttrs = map[string]bool{
	"__globals__": true, "__subclasses__": true, "__builtins__": true, "__code__": true,
	"__closure__": true, "__bases__": true, "__base__": true, "__mro__": true, "__dict__": true,
	"__getattribute__": true, "__reduce__": true, "__reduce_ex__": true, "__import__": true,
	"__loader__": true, "__spec__": true, "__self__": true, "__func__": true, "__traceback__": true,
	"__init_subclass__": true, "__subclasshook__": true, "__set_name__": true, "__getattr__": true,
	"__setattr__": true, "__delattr__": true, "__objclass__": true, "__wrapped__": true,
}

// frameAttrs are the non-dunder attributes of frames, tracebacks,
// generators and code objects that lead back into the interpreter.
var frameAttrs = map[string]bool{
	"gi_frame": true, "gi_code": true, "gi_yieldfrom": true, "cr_frame": true, "cr_code": true,
	"cr_await": true, "ag_frame": true, "ag_code": true, "f_back": true, "f_globals": true,
	"f_locals": true, "f_builtins": true, "f_code": true, "tb_frame": true, "tb_next": true,
	"co_code": true, "co_consts": true, "_getframe": true, "_current_frames": true,
	"func_globals": true, "mro": true,
}

// dynamicAttrCalls take an attribute name as their second argument.
var dynamicAttrCalls = map[string]bool{"getattr": true, "setattr": true, "delattr": true, "hasattr": true}

// Checker applies one set of rules; it is safe for concurrent use.
type Checker struct {
	profile       Profile
	denyModules   map[string]string // module → why
	allowModules  map[string]bool   // allowlist profile only
	denyCalls     map[string]string
	allowDunderOK bool
}

// New compiles rules, checking the profile and the module names.
func New(r Rules) (*Checker, error) {
	if r.Profile == "" {
		r.Profile = Strict
	}
	if !slices.Contains(Profiles, r.Profile) {
		return nil, fmt.Errorf("policy profile %q: want one of strict, standard, allowlist, off", r.Profile)
	}
	for _, list := range [][]string{r.DenyModules, r.AllowModules, r.DenyCalls} {
		for _, m := range list {
			if !validDotted(m) {
				return nil, fmt.Errorf("policy: %q is not a module or name", m)
			}
		}
	}
	c := &Checker{profile: r.Profile, denyModules: map[string]string{}, denyCalls: map[string]string{}}
	switch r.Profile {
	case Strict, Standard:
		for m, why := range strictModules {
			c.denyModules[m] = why
		}
		for n, why := range strictCalls {
			c.denyCalls[n] = why
		}
		if r.Profile == Standard {
			for _, m := range standardAllowed {
				delete(c.denyModules, m)
			}
			for _, n := range standardAllowedCalls {
				delete(c.denyCalls, n)
			}
		}
		for _, m := range r.AllowModules {
			delete(c.denyModules, m)
		}
	case Allowlist:
		if len(r.AllowModules) == 0 {
			return nil, fmt.Errorf("policy profile allowlist needs allow-modules (the modules code may import)")
		}
		c.allowModules = map[string]bool{}
		for _, m := range r.AllowModules {
			c.allowModules[m] = true
		}
		for n, why := range strictCalls {
			c.denyCalls[n] = why
		}
		for _, n := range standardAllowedCalls {
			delete(c.denyCalls, n)
		}
	}
	for _, m := range r.DenyModules {
		c.denyModules[m] = "this server's configuration denies it"
	}
	for _, n := range r.DenyCalls {
		c.denyCalls[n] = "this server's configuration denies it"
	}
	return c, nil
}

// MustNew is New for rules known to be valid.
func MustNew(r Rules) *Checker {
	c, err := New(r)
	if err != nil {
		panic(err)
	}
	return c
}

// Profile is the checker's profile.
func (c *Checker) Profile() Profile { return c.profile }

// Compiled on first use, not at every pybox process start.
var dottedRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
})

func validDotted(s string) bool { return dottedRE().MatchString(s) }

// maxViolations bounds a report: an agent needs the first few to act.
const maxViolations = 50

// Check parses src and applies the rules, reporting every violation.
func (c *Checker) Check(src []byte) Verdict {
	v := Verdict{Profile: c.profile, Allowed: true}
	if c.profile == Off {
		return v
	}
	k := &check{c: c, src: src}
	if enc, line, ok := declaredEncoding(src); ok && !isUTF8Name(enc) {
		k.add("encoding", pyast.Pos{Line: line, Col: 1},
			fmt.Sprintf("The source declares the encoding %q: pybox accepts only UTF-8 source. Remove the coding line and send UTF-8.", enc))
	} else if mod, err := pyast.Parse(src); err != nil {
		pos := pyast.Pos{Line: 1, Col: 1}
		msg := err.Error()
		if se, ok := err.(*pyast.SyntaxError); ok {
			pos = se.Pos
		}
		k.add("syntax", pos, fmt.Sprintf("The code could not be parsed (%s), and the policy rejects code it cannot read. Fix the syntax error.", msg))
	} else {
		pyast.Walk(mod, k.visit)
	}
	if len(k.out) > 0 {
		v.Allowed = false
		v.Violations = k.out
	}
	return v
}

type check struct {
	c    *Checker
	src  []byte
	out  []Violation
	seen map[[3]any]bool
}

func (k *check) add(rule string, p pyast.Pos, msg string) {
	key := [3]any{rule, p.Line, p.Col}
	if k.seen == nil {
		k.seen = map[[3]any]bool{}
	}
	if k.seen[key] || len(k.out) >= maxViolations {
		return
	}
	k.seen[key] = true
	k.out = append(k.out, Violation{Rule: rule, Line: p.Line, Col: p.Col, Text: lineText(k.src, p.Line), Message: msg})
}

func (k *check) visit(n pyast.Node) bool {
	switch n := n.(type) {
	case *pyast.Import:
		for _, a := range n.Names {
			k.module(a.Name, a.Position())
		}
	case *pyast.ImportFrom:
		if n.Level == 0 {
			k.module(n.Module, n.Position())
			// "from x import y" may name a submodule y of x.
			for _, a := range n.Names {
				if a.Name != "*" {
					k.submodule(n.Module+"."+a.Name, a.Position())
				}
			}
		}
	case *pyast.Name:
		k.name(n.ID, n.Position())
	case *pyast.Attribute:
		k.attribute(n)
	case *pyast.Call:
		k.call(n)
	case *pyast.Constant:
		if n.Kind == "str" {
			k.str(n.Str, n.Position())
		}
	case *pyast.FunctionDef:
		k.def(n.Name, n.Position())
	case *pyast.ClassDef:
		k.def(n.Name, n.Position())
	}
	return true
}

// module checks an imported module name against the lists.
func (k *check) module(name string, p pyast.Pos) {
	if k.c.allowModules != nil {
		if !prefixIn(name, k.c.allowModules) {
			k.add("import-not-allowed", p, fmt.Sprintf("Importing %q is not allowed: this server allows only %s. Use one of those or plain Python.", name, listOf(k.c.allowModules)))
		}
	}
	if why, denied := k.deniedModule(name); denied {
		k.add("import-denied", p, fmt.Sprintf("Importing %q is not allowed: %s.", name, strings.TrimSuffix(why, ".")))
	}
}

// submodule checks "from x import y" where x.y may be a module.
func (k *check) submodule(name string, p pyast.Pos) {
	if why, denied := k.deniedModule(name); denied {
		k.add("import-denied", p, fmt.Sprintf("Importing %q is not allowed: %s.", name, strings.TrimSuffix(why, ".")))
	}
}

func (k *check) deniedModule(name string) (string, bool) {
	for m := name; m != ""; m = parent(m) {
		if why, ok := k.c.denyModules[m]; ok {
			return why, true
		}
	}
	return "", false
}

func prefixIn(name string, set map[string]bool) bool {
	for m := name; m != ""; m = parent(m) {
		if set[m] {
			return true
		}
	}
	return false
}

func parent(m string) string {
	if i := strings.LastIndexByte(m, '.'); i >= 0 {
		return m[:i]
	}
	return ""
}

func listOf(set map[string]bool) string {
	var names []string
	for m := range set {
		names = append(names, m)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// name checks a bare name, wherever it appears: "f = eval; f(s)" must not
// get past a rule that only looks at calls.
func (k *check) name(id string, p pyast.Pos) {
	if strings.HasPrefix(id, "__") && deniedNames[id] {
		k.add("name-denied", p, fmt.Sprintf("Using %q is not allowed: it reaches the interpreter's builtins or import machinery. Use the builtins and import statements directly.", id))
		return
	}
	if why, ok := k.c.denyCalls[id]; ok {
		k.add("call-denied", p, fmt.Sprintf("Using %s() is not allowed: %s.", id, strings.TrimSuffix(why, ".")))
	}
}

// def refuses definitions that shadow a denied builtin: a later call to
// the name would be reported anyway, so say it where it starts.
func (k *check) def(name string, p pyast.Pos) {
	if deniedNames[name] {
		k.name(name, p)
	}
}

func (k *check) attribute(a *pyast.Attribute) {
	p := a.Position()
	if reason := k.deniedAttr(a.Attr); reason != "" {
		k.add("dunder-access", p, reason)
		return
	}
	// module.attr on a module the profile denies, reached without an
	// import (for example through an object that holds the module).
	if base, ok := a.Value.(*pyast.Name); ok {
		switch base.ID + "." + a.Attr {
		case "sys.modules":
			k.add("dunder-access", p, "Reading sys.modules is not allowed: it reaches modules the policy denies. Import what you need with a plain import statement.")
		}
	}
}

// deniedAttr says why an attribute name is refused, or "".
func (k *check) deniedAttr(attr string) string {
	if isDunder(attr) && !safeDunders[attr] {
		return fmt.Sprintf("Accessing the attribute %q is not allowed: dunder attributes reach the interpreter's internals. Use the object's public API.", attr)
	}
	if frameAttrs[attr] {
		return fmt.Sprintf("Accessing the attribute %q is not allowed: it reaches frames, code objects or the class hierarchy. Remove the introspection.", attr)
	}
	return ""
}

func isDunder(s string) bool {
	return len(s) > 4 && strings.HasPrefix(s, "__") && strings.HasSuffix(s, "__")
}

func (k *check) call(c *pyast.Call) {
	fn, ok := c.Func.(*pyast.Name)
	if !ok {
		return
	}
	if dynamicAttrCalls[fn.ID] && len(c.Args) >= 2 {
		switch arg := c.Args[1].(type) {
		case *pyast.Constant:
			if arg.Kind == "str" {
				if reason := k.deniedAttr(arg.Str); reason != "" {
					k.add("dunder-access", arg.Position(), reason)
				}
				return
			}
		}
		k.add("dynamic-attribute", c.Position(), fmt.Sprintf("Calling %s() with a computed attribute name is not allowed: the policy cannot see which attribute it reaches. Use obj.name directly or a dict.", fn.ID))
	}
}

// str checks a string literal for the names of denied attributes (used as
// getattr arguments or subscript keys through another route) and for
// format fields that walk attributes ("{0.__globals__}".format(f)).
func (k *check) str(s string, p pyast.Pos) {
	if len(s) > 2 && len(s) < 24 && (deniedNames[s] || dangerousAttrs[s] || frameAttrs[s]) {
		k.add("dunder-string", p, fmt.Sprintf("The string %q names an interpreter internal; code that looks it up by name is not allowed. Use the object's public API.", s))
		return
	}
	if !strings.Contains(s, "{") {
		return
	}
	for _, field := range formatFields(s) {
		for _, attr := range field {
			if k.deniedAttr(attr) != "" {
				k.add("format-traversal", p, fmt.Sprintf("The format string walks to the attribute %q, which is not allowed: format fields may name attributes only of plain data. Format the values directly.", attr))
				return
			}
		}
	}
}

// formatFields returns, for each replacement field of a str.format
// template, the attribute names its field name walks through
// ("{0.a.b[1].c}" → [a b c]).
func formatFields(s string) [][]string {
	var out [][]string
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			i++
			continue
		}
		end := strings.IndexAny(s[i+1:], "}!:")
		if end < 0 {
			break
		}
		name := s[i+1 : i+1+end]
		var attrs []string
		for _, part := range strings.Split(name, ".")[1:] {
			if j := strings.IndexByte(part, '['); j >= 0 {
				part = part[:j]
			}
			attrs = append(attrs, part)
		}
		if len(attrs) > 0 {
			out = append(out, attrs)
		}
		i += end
	}
	return out
}

// lineText is line n of src, trimmed and shortened for a message.
func lineText(src []byte, n int) string {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			return ""
		}
		src = src[j+1:]
	}
	if j := bytes.IndexByte(src, '\n'); j >= 0 {
		src = src[:j]
	}
	s := strings.TrimSpace(string(bytes.TrimSuffix(src, []byte("\r"))))
	const max = 120
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return s
}

// codingRE is PEP 263's encoding declaration.
var codingRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)`) })

// declaredEncoding finds a PEP 263 declaration on line 1 or 2.
func declaredEncoding(src []byte) (enc string, line int, ok bool) {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	for line = 1; line <= 2; line++ {
		l := src
		rest := []byte(nil)
		if j := bytes.IndexAny(src, "\r\n"); j >= 0 {
			l, rest = src[:j], src[j+1:]
		}
		if m := codingRE().FindSubmatch(l); m != nil {
			return string(m[1]), line, true
		}
		// Only a comment or blank first line lets line 2 declare.
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			return "", 0, false
		}
		src = bytes.TrimPrefix(rest, []byte("\n"))
	}
	return "", 0, false
}

// isUTF8Name follows CPython's get_normal_name: "utf-8" and "utf-8-*".
func isUTF8Name(enc string) bool {
	e := strings.ReplaceAll(strings.ToLower(enc), "_", "-")
	return e == "utf-8" || e == "utf8" || strings.HasPrefix(e, "utf-8-")
}
