// Package mcp serves pybox's tools over the Model Context Protocol:
// run_python, reset_session, list_files, read_file and write_file. The
// tools work against API, the operations of the /v1 HTTP API, reached
// through a Caller that acts as the calling tenant: `pybox mcp` (stdio)
// and the /mcp endpoint of `pybox serve` (streamable HTTP) share these
// tools, and every call goes through the API's own checks (key, rate
// limits, quotas, static policy) and gets its audit record.
package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
)

// API is what the tools need of pybox: the /v1 operations, as the Go
// client provides them.
type API interface {
	Execute(ctx context.Context, req api.ExecuteRequest) (*api.Result, error)
	CreateSession(ctx context.Context, req api.CreateSessionRequest) (*api.Session, error)
	DeleteSession(ctx context.Context, id string) error
	Run(ctx context.Context, id string, req api.CellRequest) (*api.CellResult, error)
	Upload(ctx context.Context, id, path string, r io.Reader) (*api.FileInfo, error)
	Download(ctx context.Context, id, path string) (io.ReadCloser, error)
	Files(ctx context.Context, id, sub string) (*api.FileList, error)
}

var _ API = (*client.Client)(nil)

// Caller gives a tool call the API acting as its caller's tenant, and the
// scope the caller's session names live in: two callers with different
// scopes never share a session name.
type Caller func(req *sdk.CallToolRequest) (a API, scope string, err error)

// Options describe the sandbox to the model, so that the code it writes
// works the first time.
type Options struct {
	Version string
	// Limits are the limits of every run (the server's defaults).
	Limits api.Effective
	// Policy is the static policy profile ("strict", "standard",
	// "allowlist", "off").
	Policy string
	// Python is the interpreter's version; Packages the notable
	// third-party packages it has ("numpy 1.24.2").
	Python   string
	Packages []string
	// SessionTTL is how long an idle session lives.
	SessionTTL time.Duration
	Logger     *slog.Logger
}

// NewServer returns an MCP server with pybox's tools. It may serve any
// number of MCP sessions at once, over any transport.
func NewServer(o Options, call Caller) *sdk.Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	t := &tools{o: o, call: call, names: &names{m: map[string]*named{}}}
	srv := sdk.NewServer(&sdk.Implementation{Name: "pybox", Title: "pybox: sandboxed Python", Version: o.Version}, &sdk.ServerOptions{
		Instructions: instructions(o),
		Logger:       o.Logger,
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{}},
		// The pybox sessions an MCP session made end with it, rather
		// than idling until their TTL.
		InitializedHandler: func(_ context.Context, req *sdk.InitializedRequest) {
			if id := req.Session.ID(); id != "" {
				go func() {
					req.Session.Wait() //nolint:errcheck // it ended either way
					t.names.endMCPSession(id)
				}()
			}
		},
	})
	no := false
	sdk.AddTool(srv, &sdk.Tool{Name: "run_python", Title: "Run Python in a sandbox", Description: runDescription(o),
		Annotations: &sdk.ToolAnnotations{OpenWorldHint: &no}}, t.runPython)
	sdk.AddTool(srv, &sdk.Tool{Name: "reset_session", Title: "Reset a Python session", Description: resetDescription,
		Annotations: &sdk.ToolAnnotations{OpenWorldHint: &no}}, t.resetSession)
	sdk.AddTool(srv, &sdk.Tool{Name: "list_files", Title: "List a session's files", Description: listDescription,
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &no}}, t.listFiles)
	sdk.AddTool(srv, &sdk.Tool{Name: "read_file", Title: "Read a file of a session", Description: readDescription,
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &no}}, t.readFile)
	sdk.AddTool(srv, &sdk.Tool{Name: "write_file", Title: "Write a file into a session", Description: writeDescription,
		Annotations: &sdk.ToolAnnotations{OpenWorldHint: &no, IdempotentHint: true}}, t.writeFile)
	return srv
}

type tools struct {
	o     Options
	call  Caller
	names *names
}

// Arguments of the tools. Fields without omitempty are required.
type (
	runArgs struct {
		Code    string `json:"code" jsonschema:"the Python code to run; the value of its last line, if an expression, is returned as a REPL shows it"`
		Session string `json:"session,omitempty" jsonschema:"name of a persistent session (letters, digits, '.', '_', '-'; e.g. main) whose variables and files persist between calls; created on first use. Omit it to run once in a fresh sandbox"`
	}
	sessionArgs struct {
		Session string `json:"session" jsonschema:"the session's name"`
	}
	listArgs struct {
		Session string `json:"session" jsonschema:"the session's name"`
		Path    string `json:"path,omitempty" jsonschema:"a directory of the workspace to list; omit for all files"`
	}
	readArgs struct {
		Session string `json:"session" jsonschema:"the session's name"`
		Path    string `json:"path" jsonschema:"the file's path, relative to the workspace (the code's working directory), e.g. out/plot.png"`
	}
	writeArgs struct {
		Session  string `json:"session" jsonschema:"the session's name; created on first use"`
		Path     string `json:"path" jsonschema:"the file's path, relative to the workspace (the code's working directory), e.g. data.csv"`
		Content  string `json:"content" jsonschema:"the file's content"`
		Encoding string `json:"encoding,omitempty" jsonschema:"text (the default: content is written as UTF-8) or base64 (content is decoded first, for binary files)"`
	}
)

func (t *tools) runPython(ctx context.Context, req *sdk.CallToolRequest, in runArgs) (*sdk.CallToolResult, any, error) {
	a, scope, err := t.call(req)
	if err != nil {
		return nil, nil, err
	}
	if in.Session == "" {
		res, err := a.Execute(ctx, api.ExecuteRequest{Code: in.Code})
		if err != nil {
			return problemResult(err), nil, nil
		}
		return oneShotResult(res), nil, nil
	}
	var res *api.CellResult
	note, err := t.withSession(ctx, a, scope, mcpSessionID(req), in.Session, func(id string) (err error) {
		res, err = a.Run(ctx, id, api.CellRequest{Code: in.Code})
		return err
	})
	if err != nil {
		return problemResult(err), nil, nil
	}
	return cellResult(in.Session, res, note), nil, nil
}

func (t *tools) resetSession(ctx context.Context, req *sdk.CallToolRequest, in sessionArgs) (*sdk.CallToolResult, any, error) {
	a, scope, err := t.call(req)
	if err != nil {
		return nil, nil, err
	}
	if err := checkName(in.Session); err != nil {
		return errorResult(err.Error()), nil, nil
	}
	e := t.names.lock(scope, mcpSessionID(req), in.Session)
	defer e.use.Unlock()
	if _, _, err := e.resolve(ctx, a, true); err != nil {
		return problemResult(err), nil, nil
	}
	return textResult(fmt.Sprintf("Session %q was reset: a new sandbox with no variables and an empty workspace.", in.Session)), nil, nil
}

func (t *tools) listFiles(ctx context.Context, req *sdk.CallToolRequest, in listArgs) (*sdk.CallToolResult, any, error) {
	a, scope, err := t.call(req)
	if err != nil {
		return nil, nil, err
	}
	var fl *api.FileList
	note, err := t.withSession(ctx, a, scope, mcpSessionID(req), in.Session, func(id string) (err error) {
		fl, err = a.Files(ctx, id, in.Path)
		return err
	})
	if err != nil {
		return problemResult(err), nil, nil
	}
	return textResult(note + fileListing(in.Session, fl)), nil, nil
}

func (t *tools) readFile(ctx context.Context, req *sdk.CallToolRequest, in readArgs) (*sdk.CallToolResult, any, error) {
	a, scope, err := t.call(req)
	if err != nil {
		return nil, nil, err
	}
	var data []byte
	_, err = t.withSession(ctx, a, scope, mcpSessionID(req), in.Session, func(id string) error {
		rc, err := a.Download(ctx, id, in.Path)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = io.ReadAll(io.LimitReader(rc, maxReadBytes+1))
		return err
	})
	if err != nil {
		return problemResult(err), nil, nil
	}
	return fileContent(in.Session, in.Path, data), nil, nil
}

func (t *tools) writeFile(ctx context.Context, req *sdk.CallToolRequest, in writeArgs) (*sdk.CallToolResult, any, error) {
	a, scope, err := t.call(req)
	if err != nil {
		return nil, nil, err
	}
	data, err := decodeContent(in.Content, in.Encoding)
	if err != nil {
		return errorResult(err.Error()), nil, nil
	}
	var fi *api.FileInfo
	note, err := t.withSession(ctx, a, scope, mcpSessionID(req), in.Session, func(id string) (err error) {
		fi, err = a.Upload(ctx, id, in.Path, bytesReader(data))
		return err
	})
	if err != nil {
		return problemResult(err), nil, nil
	}
	return textResult(fmt.Sprintf("%sWrote %s (%d bytes) into session %q; the code reads it by that relative path.", note, fi.Path, fi.Size, in.Session)), nil, nil
}

// withSession runs fn with the id of the named session, making the
// session on first use; calls on one session run one at a time. A session the server no longer knows (it expired)
// is made again and fn retried once, with a note saying so; a session
// that ended (killed at a limit) is forgotten, so that the next call
// starts a new one.
func (t *tools) withSession(ctx context.Context, a API, scope, mcpSession, name string, fn func(id string) error) (note string, err error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	e := t.names.lock(scope, mcpSession, name)
	defer e.use.Unlock()
	id, created, err := e.resolve(ctx, a, false)
	if err != nil {
		return "", err
	}
	err = fn(id)
	var pe *client.Error
	switch {
	case errors.As(err, &pe) && pe.Status == 404 && pe.Title == "Session not found" && !created:
		e.forget(id)
		id, _, err = e.resolve(ctx, a, false)
		if err != nil {
			return "", err
		}
		note = fmt.Sprintf("[pybox: session %q had expired after %s without use, so this ran in a new, empty session: earlier variables and files are gone]\n", name, t.o.SessionTTL)
		return note, fn(id)
	case errors.As(err, &pe) && pe.Type == api.ProblemSessionEnded:
		e.forget(id)
		return "", &endedError{name: name, p: pe}
	}
	return "", err
}

type endedError struct {
	name string
	p    *client.Error
}

func (e *endedError) Error() string {
	return fmt.Sprintf("%s. Its variables and files are gone; the next call with session %q starts a new, empty session.", e.p.Detail, e.name)
}

func mcpSessionID(req *sdk.CallToolRequest) string {
	if req.Session == nil {
		return ""
	}
	return req.Session.ID()
}
