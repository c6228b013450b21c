package driver

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The protocol. Each frame is a 4-byte big-endian length, then that many
// bytes of UTF-8 JSON holding one object. The driver sends a "ready" Reply
// when it starts, then reads Requests:
//
//   - "run" runs Code as the program /pybox/<Filename> with Args, exactly as
//     `python3 -I -B -u` would. The driver closes both pipes first and sends
//     nothing more: the outcome is the process's exit status.
//   - "exec" runs Code as cell ID in the session's __main__. When the cell
//     is done the driver writes SyncMarker(Sync) to fd 1 and then fd 2, and
//     only then sends a "result" Reply, so everything before the markers is
//     the cell's output (see Splitter). A cell that closed fd 1 or 2 gets no
//     marker there; the reply still comes. Errors are in the reply, not on
//     stderr, and a reply stays under 32 MiB (images beyond become notes).
//   - "interrupt" raises KeyboardInterrupt in the running cell, if any; it
//     has no reply of its own. It is a SIGINT to the driver's main thread,
//     followed while the cell runs on (for 1.4 s at most) by no-op signals
//     (SIGRTMAX), so that a SIGINT that landed just before a blocking call
//     still stops it. A cell that ignores SIGINT is not stopped: the host
//     must be ready to kill the sandbox.
//
// Closing the control pipe ends an idle session with status 0. On a
// protocol error the driver exits with status 70 and one line on stderr.

// MaxFrame is the largest frame body either side accepts.
const MaxFrame = 64 << 20

// ErrFrameTooLarge is returned for a frame whose body exceeds MaxFrame.
var ErrFrameTooLarge = errors.New("driver frame too large")

// Request is a frame from the host to the driver.
type Request struct {
	Op       string   `json:"op"` // "run", "exec", "interrupt"
	ID       int64    `json:"id,omitempty"`
	Code     string   `json:"code,omitempty"`
	Filename string   `json:"filename,omitempty"` // run: default "main.py"
	Args     []string `json:"args,omitempty"`     // run: sys.argv[1:]
	// Sync is the nonce of the markers: exec writes SyncMarker to fds 1
	// and 2 after the cell; run writes it to fd 2 and then, followed by
	// the exit status in decimal and a NUL, to fd 1 just before the
	// program exits (see EndTrailer).
	Sync string `json:"sync,omitempty"`
}

// Reply is a frame from the driver to the host.
type Reply struct {
	Type    string            `json:"type"` // "ready", "result"
	ID      int64             `json:"id,omitempty"`
	Python  string            `json:"python,omitempty"` // ready: e.g. "3.11.7"
	PID     int               `json:"pid,omitempty"`    // ready: the driver's pid
	Status  string            `json:"status,omitempty"` // "ok", "error", "interrupted"
	Value   map[string]string `json:"value,omitempty"`  // MIME type → text
	Display []Display         `json:"display,omitempty"`
	Error   *Error            `json:"error,omitempty"`
	// Synced lists the fds (1, 2) the end-of-cell marker was written to;
	// a closed fd 1 gets none, and the host must not wait for it.
	Synced []int `json:"synced,omitempty"`
}

// Display is an output of a cell other than its value: a matplotlib figure
// (image/png, base64) or a note about one that could not be rendered.
type Display struct {
	MIME string `json:"mime"`
	Data string `json:"data"`
}

// Error is the exception that ended a cell. Type is the class's qualified
// name, with its module unless that is builtins; Traceback is Python's
// formatting of it, starting at the cell's frame.
type Error struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

// WriteFrame writes v as one frame, in a single Write call so that the
// frames of writers serialised by the caller do not interleave.
func WriteFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding frame: %w", err)
	}
	if len(body) > MaxFrame {
		return fmt.Errorf("writing a frame of %d bytes: %w", len(body), ErrFrameTooLarge)
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	if _, err := w.Write(append(buf, body...)); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame into v. It returns io.EOF if r ends before a
// frame starts, and an error wrapping io.ErrUnexpectedEOF if it ends inside
// one.
func ReadFrame(r io.Reader, v any) error {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if err == io.EOF {
			return io.EOF
		}
		return fmt.Errorf("reading frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(head[:])
	if n > MaxFrame {
		return fmt.Errorf("reading a frame of %d bytes: %w", n, ErrFrameTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading frame body: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decoding frame: %w", err)
	}
	return nil
}

// SyncMarker is what the driver writes to fds 1 and 2 after a cell whose
// Request.Sync is nonce. A fresh random nonce per cell keeps the user from
// forging the marker by accident.
func SyncMarker(nonce string) []byte {
	return []byte("\x00pybox-sync:" + nonce + "\x00")
}

// EndTrailer reads the exit status that follows a run's SyncMarker on fd 1
// ("0\x00" to "255\x00"). done is false while more bytes are needed; ok is
// false when p cannot be a trailer.
func EndTrailer(p []byte) (status int, done, ok bool) {
	for i, c := range p {
		switch {
		case c == 0 && i > 0:
			return status, true, status <= 255
		case c >= '0' && c <= '9' && i < 3:
			status = status*10 + int(c-'0')
		default:
			return 0, false, false
		}
	}
	return status, false, len(p) <= 3
}
