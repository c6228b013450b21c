package mcp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
)

// maxReadBytes is the most read_file returns; larger files are for the
// code to process, not for the model's context.
const maxReadBytes = 4 << 20

// maxReadText is the most text read_file puts in the model's context.
const maxReadText = 200 << 10

func textResult(text string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}}
}

func errorResult(text string) *sdk.CallToolResult {
	r := textResult(text)
	r.IsError = true
	return r
}

// problemResult turns a failure into a tool error the model can act on:
// the server's problem (rate limits, quotas, bad paths, ...) in words.
func problemResult(err error) *sdk.CallToolResult {
	var pe *client.Error
	var ee *endedError
	switch {
	case errors.As(err, &ee):
		return errorResult("The session ended: " + ee.Error())
	case errors.As(err, &pe):
		var b strings.Builder
		fmt.Fprintf(&b, "pybox refused this call: %s", pe.Title)
		if pe.Detail != "" {
			fmt.Fprintf(&b, ": %s", pe.Detail)
		}
		if pe.Field != "" {
			fmt.Fprintf(&b, " (field %s)", pe.Field)
		}
		if pe.RetryAfter > 0 {
			fmt.Fprintf(&b, ". Retry after %s", pe.RetryAfter)
		}
		b.WriteString(".")
		return errorResult(b.String())
	}
	return errorResult("pybox could not complete this call: " + err.Error())
}

// section appends a labelled block of text when it is not empty.
func section(b *strings.Builder, label, text string, truncated bool) {
	if text == "" {
		return
	}
	fmt.Fprintf(b, "\n--- %s", label)
	if truncated {
		b.WriteString(" (too long: the middle was cut)")
	}
	b.WriteString(" ---\n")
	b.WriteString(text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteString("\n")
	}
}

func violations(b *strings.Builder, vs []api.Violation) {
	for _, v := range vs {
		fmt.Fprintf(b, "line %d, col %d: %s\n", v.Line, v.Col, v.Message)
		if v.Text != "" {
			fmt.Fprintf(b, "    %s\n", v.Text)
		}
	}
}

// oneShotResult is a one-shot's outcome: status, output, and an error
// result unless it ended ok.
func oneShotResult(res *api.Result) *sdk.CallToolResult {
	var b strings.Builder
	if res.Status == api.StatusPolicyViolation {
		b.WriteString("status: policy_violation\nThe static policy rejected the code before it ran. Rewrite it without what is listed:\n")
		violations(&b, res.Violations)
	} else {
		fmt.Fprintf(&b, "status: %s (exit code %d, %.0f ms)", res.Status, res.ExitCode, res.WallMS)
		if res.Message != "" {
			fmt.Fprintf(&b, "\n%s", res.Message)
		}
	}
	section(&b, "stdout", res.Stdout, res.StdoutTruncated)
	section(&b, "stderr", res.Stderr, res.StderrTruncated)
	r := textResult(b.String())
	r.IsError = res.Status != api.StatusOK
	return r
}

// cellResult is a cell's outcome: status, output, the last expression's
// value, the error with its traceback, and each figure as an image.
func cellResult(name string, res *api.CellResult, note string) *sdk.CallToolResult {
	var b strings.Builder
	b.WriteString(note)
	if res.Status == api.StatusPolicyViolation {
		fmt.Fprintf(&b, "status: policy_violation (session %q)\nThe static policy rejected the cell before it ran; the session is unchanged. Rewrite it without what is listed:\n", name)
		violations(&b, res.Violations)
	} else {
		fmt.Fprintf(&b, "status: %s (session %q, cell %d, %.0f ms)", res.Status, name, res.ExecutionCount, res.WallMS)
		if res.Message != "" {
			fmt.Fprintf(&b, "\n%s", res.Message)
		}
	}
	if res.SessionEnded {
		fmt.Fprintf(&b, "\nThe session did not survive this cell: its variables and files are gone; the next call with session %q starts a new, empty one.", name)
	}
	section(&b, "stdout", res.Stdout, res.StdoutTruncated)
	section(&b, "stderr", res.Stderr, res.StderrTruncated)
	if v := res.Value["text/plain"]; v != "" {
		section(&b, "value", v, false)
	}
	if res.Error != nil {
		section(&b, "error", res.Error.Traceback, false)
		if res.Error.Traceback == "" {
			section(&b, "error", res.Error.Type+": "+res.Error.Message, false)
		}
	}
	content := []sdk.Content{&sdk.TextContent{Text: b.String()}}
	for _, d := range res.Display {
		switch d.MIME {
		case "image/png":
			data, err := base64.StdEncoding.DecodeString(d.Data)
			if err == nil {
				content = append(content, &sdk.ImageContent{Data: data, MIMEType: d.MIME})
			}
		case "text/plain":
			content = append(content, &sdk.TextContent{Text: d.Data})
		}
	}
	return &sdk.CallToolResult{Content: content, IsError: res.Status != api.StatusOK}
}

func fileListing(name string, fl *api.FileList) string {
	if len(fl.Files) == 0 {
		return fmt.Sprintf("The workspace of session %q is empty.", name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Files of session %q (paths relative to the code's working directory):\n", name)
	for _, f := range fl.Files {
		if f.Type == "dir" {
			fmt.Fprintf(&b, "%s/\n", f.Path)
			continue
		}
		fmt.Fprintf(&b, "%s\t%d bytes\n", f.Path, f.Size)
	}
	if fl.Truncated {
		b.WriteString("(the listing was cut: there are more files)\n")
	}
	return b.String()
}

// fileContent shows a file to the model: text as text, images as images,
// anything else as an embedded blob.
func fileContent(name, path string, data []byte) *sdk.CallToolResult {
	if len(data) > maxReadBytes {
		return errorResult(fmt.Sprintf("%s is larger than %d bytes, too large to return here; process it with run_python instead (e.g. print a summary)", path, maxReadBytes))
	}
	mt := http.DetectContentType(data)
	switch {
	case strings.HasPrefix(mt, "image/"):
		return &sdk.CallToolResult{Content: []sdk.Content{
			&sdk.TextContent{Text: fmt.Sprintf("%s (%s, %d bytes):", path, mt, len(data))},
			&sdk.ImageContent{Data: data, MIMEType: mt},
		}}
	case utf8.Valid(data) && !bytes.ContainsRune(data, 0):
		text := string(data)
		if len(text) > maxReadText {
			cut := maxReadText
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
			text = text[:cut] + fmt.Sprintf("\n[pybox: the file has %d bytes; only the first %d are shown. Use run_python to look at the rest]", len(data), cut)
		}
		return textResult(text)
	}
	return &sdk.CallToolResult{Content: []sdk.Content{
		&sdk.TextContent{Text: fmt.Sprintf("%s is a binary file (%s, %d bytes), attached:", path, mt, len(data))},
		&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "pybox://sessions/" + name + "/files/" + path, MIMEType: mt, Blob: data}},
	}}
}

func decodeContent(content, encoding string) ([]byte, error) {
	switch encoding {
	case "", "text":
		return []byte(content), nil
	case "base64":
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(content))
		if err != nil {
			return nil, fmt.Errorf("content is not valid base64: %v", err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("encoding %q is not valid: use text or base64", encoding)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Descriptions. They tell the model what the sandbox allows, so that its
// code works the first time.

func mib(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// human writes 10m rather than 10m0s.
func human(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func sandboxFacts(o Options) string {
	var b strings.Builder
	py := "Python 3"
	if o.Python != "" {
		py = "Python " + o.Python
	}
	fmt.Fprintf(&b, "The sandbox runs %s with no network access at all (no HTTP, no DNS, no pip install), ", py)
	fmt.Fprintf(&b, "%s of memory, %g CPU, %s per call, and %s of disk for files (the working directory). ",
		mib(o.Limits.MemoryBytes), o.Limits.CPU, human(time.Duration(o.Limits.TimeoutMS)*time.Millisecond), mib(o.Limits.TmpfsBytes))
	if len(o.Packages) > 0 {
		fmt.Fprintf(&b, "Installed besides the standard library: %s; nothing else can be installed. ", strings.Join(o.Packages, ", "))
	} else {
		b.WriteString("Only the standard library is installed; nothing else can be installed. ")
	}
	switch o.Policy {
	case "strict", "":
		b.WriteString("A static policy checks the code before it runs and rejects, with the line and the reason: importing os, sys, subprocess, shutil, socket, urllib, http, requests, ctypes, importlib, inspect, pickle, multiprocessing, signal and similar modules; calling open, eval, exec, compile, __import__, globals, locals, vars; and dunder attribute walks (__class__, __subclasses__, __globals__, ...). Read data files with pandas (pd.read_csv('data.csv')) or numpy instead of open(). ")
	case "standard":
		b.WriteString("A static policy checks the code before it runs and rejects, with the line and the reason: importing subprocess, socket, urllib, http, requests, ctypes, importlib, inspect, pickle, multiprocessing, signal and similar modules; calling eval, exec, compile, __import__; and dunder attribute walks. os, sys, shutil and open() are allowed. ")
	case "allowlist":
		b.WriteString("A static policy checks the code before it runs: only the modules the operator allowed may be imported; a rejected import names the line and the reason. ")
	}
	b.WriteString("Exceeding a limit ends the call with a status such as timeout or memory_limit.")
	return b.String()
}

func runDescription(o Options) string {
	ttl := "a while"
	if o.SessionTTL > 0 {
		ttl = human(o.SessionTTL)
	}
	return "Run Python code in an isolated sandbox. Returns the status, what the code printed (stdout, stderr), the value of the last expression as a REPL shows it, the error with its traceback if it raised, and every open matplotlib figure as a PNG image (draw with matplotlib.pyplot and leave the figure open; no plt.show() or savefig() needed).\n\n" +
		"Without `session`, the code runs once in a fresh sandbox and nothing is kept. With `session` (a name you choose, e.g. \"main\"), it runs as the next cell of a persistent session, like a Jupyter notebook: variables, imports and files stay between calls with the same name. A session is created on first use, and expires after " + ttl + " without use; reset_session starts it again empty. Use write_file to put data files into a session before running code on them.\n\n" +
		sandboxFacts(o)
}

const (
	resetDescription = "End a session and start it again empty: a new sandbox with no variables and no files. Use it when the session is in a bad state or to free its memory."
	listDescription  = "List the files in a session's workspace (the working directory of its code): what write_file put there and what the code wrote."
	readDescription  = "Read a file from a session's workspace: text comes back as text (up to 200 KiB), images (PNG, JPEG, GIF, WebP) as images, other files as an embedded blob. Files above 4 MiB are refused: summarise them with run_python instead."
	writeDescription = "Write a file into a session's workspace, where the session's code reads it by its relative path (e.g. pandas.read_csv('data.csv')). The session is created if it does not exist yet. Text is written as UTF-8; for binary files pass base64 with encoding=base64. Missing parent directories are created."
)

func instructions(o Options) string {
	return "pybox runs Python in a kernel sandbox. Use run_python with a session name (e.g. \"main\") to keep state between calls, write_file to upload data into the session first, and read_file or list_files to get results back. " + sandboxFacts(o)
}
