package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

var (
	// ErrLocked: another Log (in this or another process) has the directory.
	ErrLocked = errors.New("audit log is locked")
	// ErrClosed: Append after Close.
	ErrClosed = errors.New("audit log is closed")
	// ErrBroken: an earlier fsync, truncate or rotation failed, so what is on
	// disk is not known; the Log refuses every further record until it is
	// reopened (Open then re-reads and repairs the tail).
	ErrBroken = errors.New("audit log is unusable after a failed write")
)

// DefaultMaxFileBytes is the size at which the current file is rotated.
const DefaultMaxFileBytes = 64 << 20

// Options configure Open.
type Options struct {
	// Dir holds the log; it is created (0700) if missing.
	Dir string
	// MaxFileBytes: the current file is rotated before a record would take
	// it past this size (a single larger record gets a file of its own).
	// 0 means DefaultMaxFileBytes.
	MaxFileBytes int64
	// KeepCode writes the code itself into records, not just its digest.
	KeepCode bool
	Logger   *slog.Logger

	// wrapFile lets tests inject write and fsync failures.
	wrapFile func(*os.File) logFile
}

// logFile is what the writer needs of the current file.
type logFile interface {
	io.WriterAt
	io.ReaderAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

// A Log appends records to the audit log in one directory. It owns the
// directory (an exclusive flock) from Open until Close. Append may be
// called from any goroutine; one writer goroutine owns the files and the
// chain state, and writes whatever has queued with a single write and a
// single fsync (group commit).
type Log struct {
	dir      string
	max      int64
	keepCode bool
	log      *slog.Logger
	wrap     func(*os.File) logFile
	lock     *os.File

	mu     sync.Mutex
	queue  []*request
	closed bool
	wake   chan struct{} // capacity 1: "the queue may be non-empty"
	exited chan struct{} // closed when the writer goroutine returns

	// Owned by the writer goroutine (and by Open before it starts).
	f        logFile
	size     int64  // bytes of the current file known to be durable
	firstSeq uint64 // seq of the current file's first record; 0 while empty
	seq      uint64 // seq of the last durable record
	prev     string // hash of the last durable record's line
	err      error  // sticky: wraps ErrBroken
	buf      []byte
}

type request struct {
	r    *Record
	done chan error
}

// Open opens (creating if needed) the audit log in opts.Dir, repairs a
// record torn by a crash at the end of it, and starts its writer. A repair
// is itself recorded, as an audit_recovered record.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("audit: no directory given")
	}
	if opts.MaxFileBytes < 0 {
		return nil, fmt.Errorf("audit: negative MaxFileBytes %d", opts.MaxFileBytes)
	}
	l := &Log{
		dir:      opts.Dir,
		max:      opts.MaxFileBytes,
		keepCode: opts.KeepCode,
		log:      opts.Logger,
		wrap:     opts.wrapFile,
		wake:     make(chan struct{}, 1),
		exited:   make(chan struct{}),
	}
	if l.max == 0 {
		l.max = DefaultMaxFileBytes
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.wrap == nil {
		l.wrap = func(f *os.File) logFile { return f }
	}
	if _, err := os.Stat(l.dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating audit directory: %w", err)
		}
		if err := syncDir(filepath.Dir(filepath.Clean(l.dir))); err != nil {
			return nil, err
		}
	}
	lock, err := lockDir(l.dir)
	if err != nil {
		return nil, err
	}
	l.lock = lock
	rec, err := l.openCurrent()
	if err != nil {
		lock.Close()
		return nil, err
	}
	go l.run()
	if rec != nil {
		l.log.Warn("audit log: cut a torn record off the end", "dir", l.dir, "bytes", rec.DroppedBytes, "after_seq", l.seq)
		if err := l.Append(rec); err != nil {
			l.Close()
			return nil, fmt.Errorf("recording the audit log repair: %w", err)
		}
	}
	return l, nil
}

// openCurrent opens the current file, cuts a torn tail off it, and loads
// the chain state. It returns the audit_recovered record to append, if any.
func (l *Log) openCurrent() (*Record, error) {
	path := filepath.Join(l.dir, currentName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = syncDir(l.dir)
	} else if errors.Is(err, os.ErrExist) {
		f, err = os.OpenFile(path, os.O_RDWR, 0)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	t, err := repairTail(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	l.f, l.size = l.wrap(f), t.size
	l.seq, l.prev, l.firstSeq = t.lastSeq, t.lastHash, t.firstSeq
	if t.size == 0 {
		// Empty (new, or just rotated): the chain goes on from the newest
		// rotated file.
		l.seq, l.prev = 0, GenesisHash
		rotated, err := listRotated(l.dir)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("listing audit files: %w", err)
		}
		if n := len(rotated); n > 0 {
			name := rotated[n-1].name
			l.seq, l.prev, err = lastRecordOf(filepath.Join(l.dir, name))
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("reading %s: %w (run 'pybox audit verify --dir %s')", name, err, l.dir)
			}
		}
	}
	if t.droppedBytes == 0 {
		return nil, nil
	}
	return &Record{
		Event:   EventAuditRecovered,
		Outcome: OutcomeFailed,
		Reason:  "torn_record",
		Message: fmt.Sprintf("cut %d bytes of an incomplete record after seq %d off the end of %s: the writer stopped while writing it, before it was acknowledged",
			t.droppedBytes, l.seq, currentName),
		DroppedBytes: t.droppedBytes,
		Dropped:      string(t.dropped),
	}, nil
}

// Append writes r to the log and returns once it is on disk (fsynced). It
// fills in r.Seq, r.Prev and, if zero, r.Time; it clears r.Code unless the
// log keeps code. r must not be touched until Append returns. On error the
// record is not in the log (and r's Seq and Prev mean nothing): callers
// must then refuse what they were about to do.
func (l *Log) Append(r *Record) error {
	req := &request{r: r, done: make(chan error, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.queue = append(l.queue, req)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default: // the writer has a wake-up pending and will see req
	}
	return <-req.done
}

// KeepCode reports whether records keep the code itself.
func (l *Log) KeepCode() bool { return l.keepCode }

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Close writes what is queued, closes the files and releases the directory.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.exited
	var err error
	if l.f != nil {
		err = l.f.Close()
	}
	if cerr := l.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// run is the writer goroutine.
func (l *Log) run() {
	defer close(l.exited)
	var batch []*request
	for range l.wake {
		l.mu.Lock()
		batch, l.queue = l.queue, batch[:0]
		closed := l.closed
		l.mu.Unlock()
		if len(batch) > 0 {
			l.commit(batch)
			clear(batch)
		}
		if closed {
			return
		}
	}
}

// commit writes batch: the records, in order, with one write and one fsync
// per file they land in, and answers each request.
func (l *Log) commit(batch []*request) {
	if l.err != nil {
		for _, req := range batch {
			req.done <- l.err
		}
		return
	}
	var seg []*request // requests whose lines are in l.buf
	l.buf = l.buf[:0]
	undo := l.mark()
	for i, req := range batch {
		r := req.r
		if !l.keepCode {
			r.Code = ""
		}
		r.Seq, r.Prev = l.seq+1, l.prev
		if r.Time.IsZero() {
			r.Time = time.Now()
		}
		r.Time = r.Time.UTC()
		line, err := json.Marshal(r)
		if err != nil {
			req.done <- fmt.Errorf("encoding audit record: %w", err)
			continue
		}
		if pending := l.size + int64(len(l.buf)); pending > 0 && pending+int64(len(line))+1 > l.max {
			err := l.flush(seg, undo)
			if err == nil {
				err = l.rotate()
			}
			if err != nil {
				failAll(batch[i:], err)
				return
			}
			seg, undo = seg[:0], l.mark()
			r.Seq, r.Prev = l.seq+1, l.prev // unchanged, but say so
		}
		l.buf = append(append(l.buf, line...), '\n')
		l.seq, l.prev = r.Seq, lineHash(line)
		if l.firstSeq == 0 {
			l.firstSeq = r.Seq
		}
		seg = append(seg, req)
	}
	l.flush(seg, undo) //nolint:errcheck // flush answers the requests
}

// chainState is what a failed write rolls back to.
type chainState struct {
	seq, firstSeq uint64
	prev          string
}

func (l *Log) mark() chainState { return chainState{l.seq, l.firstSeq, l.prev} }

// flush writes l.buf (the lines of seg) at the end of the current file and
// fsyncs it, then answers seg. On failure it cuts the file back to its
// last durable size, so no unacknowledged record stays behind to be
// mistaken for one that was acknowledged, and rolls the chain back to undo.
func (l *Log) flush(seg []*request, undo chainState) error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.f.WriteAt(l.buf, l.size)
	if err != nil {
		err = fmt.Errorf("writing audit log: %w", err)
		if terr := l.truncate(); terr != nil {
			l.err = fmt.Errorf("%w: %v; then cutting back the partial write: %v", ErrBroken, err, terr)
		}
	} else if err = l.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages
		// and will not report it again ("fsyncgate"), so nothing written
		// since the last good fsync can be trusted; stop for good.
		err = fmt.Errorf("syncing audit log: %w", err)
		terr := l.truncate()
		l.err = fmt.Errorf("%w: %v (cut back: %v)", ErrBroken, err, terr)
	}
	if err != nil {
		l.seq, l.firstSeq, l.prev = undo.seq, undo.firstSeq, undo.prev
		l.buf = l.buf[:0]
		l.log.Error("audit log write failed", "dir", l.dir, "err", err)
		failAll(seg, err)
		return err
	}
	l.size += int64(len(l.buf))
	l.buf = l.buf[:0]
	for _, req := range seg {
		req.done <- nil
	}
	return nil
}

func (l *Log) truncate() error {
	if err := l.f.Truncate(l.size); err != nil {
		return err
	}
	return l.f.Sync()
}

// rotate renames the full (and fsynced) current file to its rotated name
// and starts an empty one. The chain state carries over unchanged. Any
// failure leaves the log broken; Open sorts out whatever was done.
func (l *Log) rotate() error {
	err := l.f.Close()
	l.f = nil
	name := rotatedName(l.firstSeq)
	cur, rot := filepath.Join(l.dir, currentName), filepath.Join(l.dir, name)
	if err == nil {
		// A rename would silently replace an existing file.
		if _, serr := os.Lstat(rot); serr == nil {
			err = fmt.Errorf("%s exists already", rot)
		} else if !errors.Is(serr, os.ErrNotExist) {
			err = serr
		}
	}
	if err == nil {
		err = os.Rename(cur, rot)
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(cur, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err == nil {
		if err = syncDir(l.dir); err != nil {
			f.Close()
		}
	}
	if err != nil {
		l.err = fmt.Errorf("%w: rotating to %s: %v", ErrBroken, name, err)
		l.log.Error("audit log rotation failed", "dir", l.dir, "err", err)
		return l.err
	}
	l.log.Info("audit log rotated", "dir", l.dir, "file", name, "last_seq", l.seq)
	l.f, l.size, l.firstSeq = l.wrap(f), 0, 0
	return nil
}

func failAll(reqs []*request, err error) {
	for _, req := range reqs {
		req.done <- err
	}
}
