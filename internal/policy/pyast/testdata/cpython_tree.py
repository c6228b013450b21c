"""Dump CPython's syntax trees in pyast's Walk order, for the differential
test (corpus_test.go). Usage:

    cpython_tree.py hash ROOT     one JSON line per .py file under ROOT
    cpython_tree.py full FILE...  the same with the full node sequence

Each node is "Type@line:col|extra": pyast's type name, the 1-based column
in code points ("-" where CPython records no position or where 3.11's is
not meaningful, see NOPOS and in_fstring), and the names, operators and
decoded literal values that pyast keeps. Keep in step with corpusEntries.
"""
import ast, hashlib, io, json, os, struct, sys, tokenize, warnings
from multiprocessing import Pool

warnings.simplefilter("ignore")

RENAME = {
    "AsyncFunctionDef": "FunctionDef", "AsyncFor": "For", "AsyncWith": "With",
    "TryStar": "Try", "Expr": "ExprStmt", "arguments": "Arguments", "arg": "Arg",
    "keyword": "Keyword", "alias": "Alias", "withitem": "WithItem",
    "comprehension": "Comprehension", "match_case": "MatchCase",
    "TypeVar": "TypeParam", "ParamSpec": "TypeParam", "TypeVarTuple": "TypeParam",
}
# CPython gives these no position.
NOPOS = {"Module", "Arguments", "WithItem", "Comprehension", "MatchCase"}
OPS = {
    "Add": "+", "Sub": "-", "Mult": "*", "MatMult": "@", "Div": "/", "Mod": "%",
    "Pow": "**", "LShift": "<<", "RShift": ">>", "BitOr": "|", "BitXor": "^",
    "BitAnd": "&", "FloorDiv": "//", "Invert": "~", "Not": "not", "UAdd": "+",
    "USub": "-", "And": "and", "Or": "or", "Eq": "==", "NotEq": "!=", "Lt": "<",
    "LtE": "<=", "Gt": ">", "GtE": ">=", "Is": "is", "IsNot": "is not", "In": "in",
    "NotIn": "not in",
}
# For 3.12+, whose f-string parts have real positions (see nopos below).
ALLPOS = os.environ.get("PYAST_ALLPOS") == "1"
SKIP = (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)


def val(b):
    if len(b) <= 40 and all(0x21 <= c <= 0x7E and c not in (0x7C, 0x5C) for c in b):
        return b.decode()
    return "#" + hashlib.sha1(b).hexdigest()[:16]


def const(v):
    if isinstance(v, str):
        return "str:" + val(v.encode("utf-8", "surrogatepass"))
    if isinstance(v, bytes):
        return "bytes:" + val(v)
    if isinstance(v, bool):
        return "bool:" + str(v)
    if isinstance(v, int):
        return "int:" + str(v)
    if isinstance(v, float):
        return "float:" + struct.pack(">d", v).hex()
    if isinstance(v, complex):
        return "complex:" + struct.pack(">d", v.imag).hex()
    if v is None:
        return "None:"
    if v is Ellipsis:
        return "Ellipsis:"
    return "?:" + repr(v)


def extra(n, t):
    if t == "Name":
        return n.id
    if t == "Attribute":
        return n.attr
    if t == "Constant":
        return const(n.value)
    if t in ("FunctionDef", "AsyncFunctionDef"):
        return n.name + ("/async" if t == "AsyncFunctionDef" else "")
    if t == "ClassDef":
        return n.name
    if t == "arg":
        return n.arg
    if t == "keyword":
        return n.arg or ""
    if t == "alias":
        return n.name + "/" + (n.asname or "")
    if t == "ImportFrom":
        return (n.module or "") + "/" + str(n.level)
    if t in ("Global", "Nonlocal"):
        return ",".join(n.names)
    if t in ("BinOp", "UnaryOp", "BoolOp"):
        return OPS[type(n.op).__name__]
    if t == "AugAssign":
        return OPS[type(n.op).__name__] + "="
    if t == "Compare":
        return ",".join(OPS[type(o).__name__] for o in n.ops)
    if t == "FormattedValue":
        return chr(n.conversion) if n.conversion > 0 else ""
    if t == "ExceptHandler":
        return n.name or ""
    if t in ("MatchAs", "MatchStar"):
        return n.name or ""
    if t == "MatchMapping":
        return n.rest or ""
    if t == "MatchClass":
        return ",".join(n.kwd_attrs)
    if t == "MatchSingleton":
        return str(n.value)
    if t in ("AsyncFor", "AsyncWith"):
        return "async"
    if t == "TryStar":
        return "star"
    if t == "comprehension":
        return "async" if n.is_async else ""
    if t in ("TypeVar", "ParamSpec", "TypeVarTuple"):
        return t + "/" + n.name
    return ""


def bypos(xs):
    return sorted(xs, key=lambda x: (x.lineno, x.col_offset))


def children(n):
    t = type(n)
    if t in (ast.FunctionDef, ast.AsyncFunctionDef):
        return (n.decorator_list + getattr(n, "type_params", []) + [n.args]
                + ([n.returns] if n.returns else []) + n.body)
    if t is ast.ClassDef:
        return (n.decorator_list + getattr(n, "type_params", [])
                + bypos(n.bases + n.keywords) + n.body)
    if t is ast.Call:
        return [n.func] + bypos(n.args + n.keywords)
    if t is ast.IfExp:
        return [n.body, n.test, n.orelse]
    if t is ast.Dict:
        out = []
        for k, v in zip(n.keys, n.values):
            if k is not None:
                out.append(k)
            out.append(v)
        return out
    if t is ast.MatchMapping:
        out = []
        for k, v in zip(n.keys, n.patterns):
            out += [k, v]
        return out
    if t is ast.arguments:
        out = []
        pos = n.posonlyargs + n.args
        first = len(pos) - len(n.defaults)
        for i, a in enumerate(pos):
            out.append(a)
            if i >= first:
                out.append(n.defaults[i - first])
        if n.vararg:
            out.append(n.vararg)
        for a, d in zip(n.kwonlyargs, n.kw_defaults):
            out.append(a)
            if d is not None:
                out.append(d)
        if n.kwarg:
            out.append(n.kwarg)
        return out
    return [c for c in ast.iter_child_nodes(n) if not isinstance(c, SKIP)]


def entries(tree, src):
    if src.startswith(b"\xef\xbb\xbf"):
        src = src[3:]
    lines = src.splitlines(keepends=True)
    out = []
    # (node, nopos): the literal parts, the FormattedValues and the format
    # specs of an f-string carry the position of the whole string in 3.11,
    # not their own, and an unparenthesised tuple in a replacement field
    # ({a, b}) starts at the "{" because 3.11 parses the field wrapped in
    # parentheses; 3.12 (PEP 701) gives real positions, as pyast does.
    stack = [(tree, False)]
    while stack:
        n, fpart = stack.pop()
        t = type(n).__name__
        name = RENAME.get(t, t)
        if name in NOPOS or (fpart and not ALLPOS) or not hasattr(n, "lineno"):
            pos = "-"
        else:
            line = lines[n.lineno - 1] if n.lineno - 1 < len(lines) else b""
            c = n.col_offset
            if not line.isascii():
                c = len(line[:c].decode("utf-8", "replace"))
            pos = "%d:%d" % (n.lineno, c + 1)
        out.append("%s@%s|%s" % (name, pos, extra(n, t)))
        kids = children(n)
        if t == "JoinedStr":
            kids = [(k, True) for k in kids]
        elif t == "FormattedValue":
            kids = [(n.value, isinstance(n.value, ast.Tuple))] + ([(n.format_spec, True)] if n.format_spec else [])
        else:
            kids = [(k, False) for k in kids]
        stack.extend(reversed(kids))
    return out


def one(path, full=False):
    rec = {"path": path}
    try:
        with open(path, "rb") as f:
            src = f.read()
        try:
            src.decode("utf-8")
            rec["utf8"] = True
        except UnicodeDecodeError:
            rec["utf8"] = False
        rec["ascii"] = src.isascii()
        try:
            rec["enc"] = tokenize.detect_encoding(io.BytesIO(src).readline)[0]
        except SyntaxError:
            rec["enc"] = "?"
        tree = ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        rec["ok"] = False
        rec["err"] = "%s: %s" % (type(e).__name__, e)
        return json.dumps(rec)
    seq = entries(tree, src)
    rec["ok"] = True
    rec["n"] = len(seq)
    rec["hash"] = hashlib.sha1("\n".join(seq).encode("utf-8", "surrogatepass")).hexdigest()
    if full:
        rec["seq"] = seq
    return json.dumps(rec)


def files(root):
    out = []
    for d, ds, fs in os.walk(root):
        ds[:] = sorted(x for x in ds if x not in ("site-packages", "__pycache__"))
        out += [os.path.join(d, f) for f in sorted(fs) if f.endswith(".py")]
    return out


def main():
    sys.setrecursionlimit(10000)
    if sys.argv[1] == "snippets":
        # A JSON list of sources on stdin; one line of entries per source.
        for src in json.load(sys.stdin):
            try:
                tree = ast.parse(src)
            except SyntaxError as e:
                print(json.dumps("ERR %d %s" % (e.lineno or 0, e.msg)))
                continue
            print(json.dumps(" ".join(entries(tree, src.encode("utf-8", "surrogatepass")))))
        return
    if sys.argv[1] == "full":
        for p in sys.argv[2:]:
            print(one(p, True), flush=True)
        return
    with Pool(int(os.environ.get("PYAST_JOBS", "2"))) as pool:
        for line in pool.imap(one, files(sys.argv[2]), chunksize=4):
            sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
