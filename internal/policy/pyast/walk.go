package pyast

// Walk visits n and its descendants in pre-order, children in source
// order. When fn returns false the node's children are skipped. Nil
// children are skipped.
func Walk(n Node, fn func(Node) bool) {
	if isNil(n) || !fn(n) {
		return
	}
	switch n := n.(type) {
	case *Module:
		stmts(n.Body, fn)
	case *FunctionDef:
		exprs(n.Decorators, fn)
		for _, tp := range n.TypeParams {
			walkPtr(tp, fn)
		}
		walkPtr(n.Args, fn)
		walkExpr(n.Returns, fn)
		stmts(n.Body, fn)
	case *ClassDef:
		exprs(n.Decorators, fn)
		for _, tp := range n.TypeParams {
			walkPtr(tp, fn)
		}
		argsAndKeywords(n.Bases, n.Keywords, fn)
		stmts(n.Body, fn)
	case *Return:
		walkExpr(n.Value, fn)
	case *Delete:
		exprs(n.Targets, fn)
	case *Assign:
		exprs(n.Targets, fn)
		walkExpr(n.Value, fn)
	case *TypeAlias:
		walkPtr(n.Name, fn)
		for _, tp := range n.TypeParams {
			walkPtr(tp, fn)
		}
		walkExpr(n.Value, fn)
	case *AugAssign:
		walkExpr(n.Target, fn)
		walkExpr(n.Value, fn)
	case *AnnAssign:
		walkExpr(n.Target, fn)
		walkExpr(n.Annotation, fn)
		walkExpr(n.Value, fn)
	case *For:
		walkExpr(n.Target, fn)
		walkExpr(n.Iter, fn)
		stmts(n.Body, fn)
		stmts(n.Orelse, fn)
	case *While:
		walkExpr(n.Test, fn)
		stmts(n.Body, fn)
		stmts(n.Orelse, fn)
	case *If:
		walkExpr(n.Test, fn)
		stmts(n.Body, fn)
		stmts(n.Orelse, fn)
	case *With:
		for _, it := range n.Items {
			walkPtr(it, fn)
		}
		stmts(n.Body, fn)
	case *Match:
		walkExpr(n.Subject, fn)
		for _, c := range n.Cases {
			walkPtr(c, fn)
		}
	case *Raise:
		walkExpr(n.Exc, fn)
		walkExpr(n.Cause, fn)
	case *Try:
		stmts(n.Body, fn)
		for _, h := range n.Handlers {
			walkPtr(h, fn)
		}
		stmts(n.Orelse, fn)
		stmts(n.Finalbody, fn)
	case *Assert:
		walkExpr(n.Test, fn)
		walkExpr(n.Msg, fn)
	case *Import:
		for _, a := range n.Names {
			walkPtr(a, fn)
		}
	case *ImportFrom:
		for _, a := range n.Names {
			walkPtr(a, fn)
		}
	case *ExprStmt:
		walkExpr(n.Value, fn)

	case *BoolOp:
		exprs(n.Values, fn)
	case *NamedExpr:
		walkPtr(n.Target, fn)
		walkExpr(n.Value, fn)
	case *BinOp:
		walkExpr(n.Left, fn)
		walkExpr(n.Right, fn)
	case *UnaryOp:
		walkExpr(n.Operand, fn)
	case *Lambda:
		walkPtr(n.Args, fn)
		walkExpr(n.Body, fn)
	case *IfExp: // source order: body if test else orelse
		walkExpr(n.Body, fn)
		walkExpr(n.Test, fn)
		walkExpr(n.Orelse, fn)
	case *Dict:
		for i := range n.Values {
			if i < len(n.Keys) {
				walkExpr(n.Keys[i], fn)
			}
			walkExpr(n.Values[i], fn)
		}
	case *Set:
		exprs(n.Elts, fn)
	case *ListComp:
		walkExpr(n.Elt, fn)
		comps(n.Generators, fn)
	case *SetComp:
		walkExpr(n.Elt, fn)
		comps(n.Generators, fn)
	case *GeneratorExp:
		walkExpr(n.Elt, fn)
		comps(n.Generators, fn)
	case *DictComp:
		walkExpr(n.Key, fn)
		walkExpr(n.Value, fn)
		comps(n.Generators, fn)
	case *Await:
		walkExpr(n.Value, fn)
	case *Yield:
		walkExpr(n.Value, fn)
	case *YieldFrom:
		walkExpr(n.Value, fn)
	case *Compare:
		walkExpr(n.Left, fn)
		exprs(n.Comparators, fn)
	case *Call:
		walkExpr(n.Func, fn)
		argsAndKeywords(n.Args, n.Keywords, fn)
	case *FormattedValue:
		walkExpr(n.Value, fn)
		walkPtr(n.FormatSpec, fn)
	case *JoinedStr:
		exprs(n.Values, fn)
	case *Attribute:
		walkExpr(n.Value, fn)
	case *Subscript:
		walkExpr(n.Value, fn)
		walkExpr(n.Slice, fn)
	case *Starred:
		walkExpr(n.Value, fn)
	case *List:
		exprs(n.Elts, fn)
	case *Tuple:
		exprs(n.Elts, fn)
	case *Slice:
		walkExpr(n.Lower, fn)
		walkExpr(n.Upper, fn)
		walkExpr(n.Step, fn)

	case *Arguments:
		// Each default follows its parameter, as in the source.
		pos := len(n.PosOnly) + len(n.Args)
		firstDefault := pos - len(n.Defaults)
		for i := 0; i < pos; i++ {
			if i < len(n.PosOnly) {
				walkPtr(n.PosOnly[i], fn)
			} else {
				walkPtr(n.Args[i-len(n.PosOnly)], fn)
			}
			if i >= firstDefault {
				walkExpr(n.Defaults[i-firstDefault], fn)
			}
		}
		walkPtr(n.Vararg, fn)
		for i, a := range n.KwOnly {
			walkPtr(a, fn)
			if i < len(n.KwDefaults) {
				walkExpr(n.KwDefaults[i], fn)
			}
		}
		walkPtr(n.Kwarg, fn)
	case *Arg:
		walkExpr(n.Annotation, fn)
	case *Keyword:
		walkExpr(n.Value, fn)
	case *WithItem:
		walkExpr(n.Context, fn)
		walkExpr(n.Vars, fn)
	case *ExceptHandler:
		walkExpr(n.Type, fn)
		stmts(n.Body, fn)
	case *Comprehension:
		walkExpr(n.Target, fn)
		walkExpr(n.Iter, fn)
		exprs(n.Ifs, fn)
	case *MatchCase:
		walkPattern(n.Pattern, fn)
		walkExpr(n.Guard, fn)
		stmts(n.Body, fn)
	case *TypeParam:
		walkExpr(n.Bound, fn)
		walkExpr(n.Default, fn)

	case *MatchValue:
		walkExpr(n.Value, fn)
	case *MatchSequence:
		patterns(n.Patterns, fn)
	case *MatchMapping:
		for i, k := range n.Keys {
			walkExpr(k, fn)
			if i < len(n.Patterns) {
				walkPattern(n.Patterns[i], fn)
			}
		}
		if len(n.Patterns) > len(n.Keys) {
			patterns(n.Patterns[len(n.Keys):], fn)
		}
	case *MatchClass:
		walkExpr(n.Cls, fn)
		patterns(n.Patterns, fn)
		patterns(n.KwdPatterns, fn)
	case *MatchAs:
		walkPattern(n.Pattern, fn)
	case *MatchOr:
		patterns(n.Patterns, fn)
	}
}

// isNil catches both a nil interface and a typed nil pointer in one.
func isNil(n Node) bool {
	if n == nil {
		return true
	}
	switch n := n.(type) {
	case *Arg:
		return n == nil
	case *Arguments:
		return n == nil
	case *Keyword:
		return n == nil
	case *Alias:
		return n == nil
	case *WithItem:
		return n == nil
	case *ExceptHandler:
		return n == nil
	case *Comprehension:
		return n == nil
	case *MatchCase:
		return n == nil
	case *TypeParam:
		return n == nil
	case *JoinedStr:
		return n == nil
	case *Name:
		return n == nil
	case *Module:
		return n == nil
	}
	return false
}

func walkPtr(n Node, fn func(Node) bool) { Walk(n, fn) }

func walkExpr(e Expr, fn func(Node) bool) {
	if e != nil {
		Walk(e, fn)
	}
}

func walkPattern(pt Pattern, fn func(Node) bool) {
	if pt != nil {
		Walk(pt, fn)
	}
}

func stmts(l []Stmt, fn func(Node) bool) {
	for _, s := range l {
		if s != nil {
			Walk(s, fn)
		}
	}
}

func exprs(l []Expr, fn func(Node) bool) {
	for _, e := range l {
		walkExpr(e, fn)
	}
}

func patterns(l []Pattern, fn func(Node) bool) {
	for _, pt := range l {
		walkPattern(pt, fn)
	}
}

func comps(l []*Comprehension, fn func(Node) bool) {
	for _, c := range l {
		walkPtr(c, fn)
	}
}

// argsAndKeywords visits positional and keyword arguments merged in
// source order: f(a, k=1, *b) has a starred argument after a keyword.
func argsAndKeywords(args []Expr, kws []*Keyword, fn func(Node) bool) {
	i, j := 0, 0
	for i < len(args) || j < len(kws) {
		if j >= len(kws) || i < len(args) && args[i] != nil && kws[j] != nil && before(args[i].Position(), kws[j].P) {
			walkExpr(args[i], fn)
			i++
		} else if j < len(kws) {
			walkPtr(kws[j], fn)
			j++
		} else {
			i++
		}
	}
}

func before(a, b Pos) bool { return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col }
