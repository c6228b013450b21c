package policy

// Violation is one thing the policy refuses, with where it is and what to
// do instead.
type Violation struct {
	// Rule is a stable id such as "import-denied" or "dunder-access".
	Rule string `json:"rule"`
	// Line and Col are 1-based; Col counts Unicode code points.
	Line int `json:"line"`
	Col  int `json:"col"`
	// Text is the offending source text (one line at most, shortened).
	Text string `json:"text"`
	// Message is one sentence a person or an LLM can act on.
	Message string `json:"message"`
}
