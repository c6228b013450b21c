// Package agent is an example agent loop over pybox's MCP tools: a model
// (here a scripted one, so that it runs without an LLM) emits tool calls,
// the loop runs them through an MCP client session and hands the results
// back to the model, until the model has its answer. agent_test.go runs
// it against `pybox serve` (/mcp) and `pybox mcp` (stdio); agent.py is
// the same loop over the Python client.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// ToolCall is what a model asks for: a tool by name, with arguments.
type ToolCall struct {
	Name string
	Args map[string]any
}

// Turn is one tool call and what it returned.
type Turn struct {
	Call   ToolCall
	Result *sdk.CallToolResult
}

// Model chooses the next tool call from the turns so far, or returns nil
// when it is done. A real agent asks an LLM here.
type Model interface {
	Next(history []Turn) (*ToolCall, error)
}

// Run drives m against an MCP session for at most maxTurns calls and
// returns the conversation. Tool errors (isError) go back to the model,
// as they would to an LLM; only transport failures stop the loop.
func Run(ctx context.Context, cs *sdk.ClientSession, m Model, maxTurns int) ([]Turn, error) {
	var history []Turn
	for len(history) < maxTurns {
		call, err := m.Next(history)
		if err != nil || call == nil {
			return history, err
		}
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: call.Name, Arguments: call.Args})
		if err != nil {
			return history, fmt.Errorf("calling %s: %w", call.Name, err)
		}
		history = append(history, Turn{Call: *call, Result: res})
	}
	return history, fmt.Errorf("the model did not finish in %d turns", maxTurns)
}

// Text joins the text content of a tool result.
func Text(r *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// Images returns the PNG images of a tool result.
func Images(r *sdk.CallToolResult) [][]byte {
	var out [][]byte
	for _, c := range r.Content {
		if im, ok := c.(*sdk.ImageContent); ok && im.MIMEType == "image/png" {
			out = append(out, im.Data)
		}
	}
	return out
}

// Analyst is a scripted model for one task: "here is sales.csv: which
// region earns most, and plot revenue by region". It uploads the CSV into
// a session, computes the totals with pandas, reads them from the tool's
// output, and asks for a matplotlib chart titled with the top region.
// Like an LLM, it reacts to what the tools return: an error ends the
// script with the error as its answer.
type Analyst struct {
	CSV     string // the file the user gave
	Session string // the session name to use

	// Totals are the revenue per region the model read from the tool;
	// Top is the region it found; Answer its final message.
	Totals map[string]float64
	Top    string
	Answer string
}

// The code the model writes. It runs under the strict policy: the CSV is
// read with pandas, not open().
const (
	summaryCode = `import pandas as pd
df = pd.read_csv("sales.csv")
df["revenue"] = df.units * df.price
totals = df.groupby("region").revenue.sum().sort_values(ascending=False)
print(totals.round(2).to_json())`
	plotCode = `import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 4))
totals.plot.bar(ax=ax, color="tab:blue")
ax.set_title("Revenue by region (top: %s)")
ax.set_ylabel("revenue")
fig.tight_layout()`
)

// Next implements Model.
func (a *Analyst) Next(h []Turn) (*ToolCall, error) {
	if n := len(h); n > 0 && h[n-1].Result.IsError {
		a.Answer = "I could not finish: " + Text(h[n-1].Result)
		return nil, nil
	}
	switch len(h) {
	case 0:
		return &ToolCall{Name: "write_file", Args: map[string]any{"session": a.Session, "path": "sales.csv", "content": a.CSV}}, nil
	case 1:
		return &ToolCall{Name: "run_python", Args: map[string]any{"session": a.Session, "code": summaryCode}}, nil
	case 2:
		// Read the totals from the tool's stdout, as an LLM would.
		out := Text(h[1].Result)
		_, after, ok := strings.Cut(out, "--- stdout ---\n")
		if !ok {
			return nil, fmt.Errorf("no stdout in %q", out)
		}
		line, _, _ := strings.Cut(after, "\n")
		if err := json.Unmarshal([]byte(line), &a.Totals); err != nil {
			return nil, fmt.Errorf("reading the totals %q: %w", line, err)
		}
		for r, v := range a.Totals {
			if a.Top == "" || v > a.Totals[a.Top] {
				a.Top = r
			}
		}
		return &ToolCall{Name: "run_python", Args: map[string]any{"session": a.Session, "code": fmt.Sprintf(plotCode, a.Top)}}, nil
	}
	a.Answer = fmt.Sprintf("%s earns most (%.2f). The chart of revenue by region is attached.", a.Top, a.Totals[a.Top])
	return nil, nil
}
