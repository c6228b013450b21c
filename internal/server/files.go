package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/session"
	"github.com/pybox-dev/pybox/internal/workspace"
)

// workspaceDir is the session's workspace inside its root: the scratch
// tmpfs, which is also the program's working directory.
const workspaceDir = "tmp"

// openWorkspace reaches the session's workspace through its sandbox's
// root, or answers the problem.
func (s *Server) openWorkspace(w http.ResponseWriter, sess *session.Session) (*workspace.Dir, bool) {
	if sess.Ended() != "" {
		ended(w, sess)
		return nil, false
	}
	uid, gid := sess.Box().FileOwner()
	d, err := workspace.Open(sess.Box().RootPath(), workspaceDir, uid, gid)
	if err != nil {
		if sess.Ended() != "" {
			ended(w, sess)
			return nil, false
		}
		writeProblem(w, s.fileProblem(err))
		return nil, false
	}
	return d, true
}

func (s *Server) fileProblem(err error) *problem {
	switch {
	case errors.Is(err, workspace.ErrInvalidPath):
		return newProblem(http.StatusBadRequest, api.ProblemInvalidPath, "Invalid path", err.Error())
	case errors.Is(err, workspace.ErrLink):
		return newProblem(http.StatusBadRequest, api.ProblemInvalidPath, "Path crosses a link",
			err.Error()+"; pybox never follows links made inside the sandbox: use the link's target path")
	case errors.Is(err, workspace.ErrNotFound), errors.Is(err, workspace.ErrNotDir):
		return newProblem(http.StatusNotFound, api.ProblemNotFound, "File not found", err.Error())
	case errors.Is(err, workspace.ErrNotEmpty):
		return newProblem(http.StatusConflict, api.ProblemInvalidPath, "Directory not empty", err.Error()+"; delete what it holds first")
	case errors.Is(err, workspace.ErrNotRegular), errors.Is(err, workspace.ErrIsDir):
		return newProblem(http.StatusConflict, api.ProblemInvalidPath, "Not a regular file", err.Error())
	case errors.Is(err, workspace.ErrTooLarge):
		return newProblem(http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "File too large", err.Error())
	case errors.Is(err, workspace.ErrNoSpace):
		return newProblem(http.StatusInsufficientStorage, api.ProblemNoSpace, "Workspace full",
			err.Error()+"; the session's scratch space (tmpfs_size) is full: delete files or create the session with a larger tmpfs_size")
	}
	s.log.Error("workspace failure", "err", err)
	return newProblem(http.StatusInternalServerError, api.ProblemInternal, "Workspace error", err.Error())
}

// fileTarget resolves a file route: the session, the checked path and its
// open workspace (which the caller closes), or answers the problem.
func (s *Server) fileTarget(w http.ResponseWriter, r *http.Request) (*workspace.Dir, string, bool) {
	sess, _, ok := s.lookup(w, r)
	if !ok {
		return nil, "", false
	}
	path := r.PathValue("path")
	attemptOf(r).rec.Path = path
	if err := workspace.CheckPath(path); err != nil {
		writeProblem(w, s.fileProblem(err))
		return nil, "", false
	}
	d, ok := s.openWorkspace(w, sess)
	return d, path, ok
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	sub := r.URL.Query().Get("path")
	if sub != "" {
		if err := workspace.CheckPath(sub); err != nil {
			writeProblem(w, s.fileProblem(err))
			return
		}
	}
	d, ok := s.openWorkspace(w, sess)
	if !ok {
		return
	}
	defer d.Close()
	entries, truncated, err := d.List(sub, s.cfg.MaxFiles)
	if err != nil {
		writeProblem(w, s.fileProblem(err))
		return
	}
	out := api.FileList{Files: []api.FileInfo{}, Truncated: truncated}
	for _, e := range entries {
		out.Files = append(out.Files, api.FileInfo{Path: e.Path, Type: e.Type, Size: e.Size,
			Mode: fmt.Sprintf("%04o", e.Mode.Perm()), ModTime: stamp(e.ModTime)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) putFile(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > s.cfg.MaxFileBytes {
		writeProblem(w, s.fileProblem(fmt.Errorf("%w: the upload is %d bytes; the server accepts files of at most %d bytes",
			workspace.ErrTooLarge, r.ContentLength, s.cfg.MaxFileBytes)))
		return
	}
	d, path, ok := s.fileTarget(w, r)
	if !ok {
		return
	}
	defer d.Close()
	// The count quota: what the sandbox made counts too.
	if entries, truncated, err := d.List("", s.cfg.MaxFiles); err == nil && (truncated || len(entries) >= s.cfg.MaxFiles) {
		p := newProblem(http.StatusInsufficientStorage, api.ProblemNoSpace, "Too many files",
			fmt.Sprintf("the workspace holds %d or more entries, the server's maximum; delete some first", s.cfg.MaxFiles))
		writeProblem(w, p)
		return
	}
	n, err := d.Write(path, r.Body, s.cfg.MaxFileBytes)
	if err != nil {
		writeProblem(w, s.fileProblem(err))
		return
	}
	writeJSON(w, http.StatusCreated, api.FileInfo{Path: path, Type: "file", Size: n, Mode: "0644", ModTime: stamp(time.Now())})
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request) {
	d, path, ok := s.fileTarget(w, r)
	if !ok {
		return
	}
	defer d.Close()
	f, info, err := d.OpenFile(path, s.cfg.MaxFileBytes)
	if err != nil {
		writeProblem(w, s.fileProblem(err))
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(info.Size(), 10))
	h.Set("Content-Disposition", "attachment; filename=\""+strings.ReplaceAll(lastElem(path), "\"", "_")+"\"")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// The sandbox may grow the file meanwhile: send what was announced.
	io.CopyN(w, f, info.Size()) //nolint:errcheck // the client went away
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) {
	d, path, ok := s.fileTarget(w, r)
	if !ok {
		return
	}
	defer d.Close()
	if err := d.Remove(path); err != nil {
		writeProblem(w, s.fileProblem(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func lastElem(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
