package driver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, v := range []any{
		&Request{Op: "exec", ID: 7, Code: "print('<&>é\\x00')\n", Sync: "abc"},
		&Request{Op: "run", Code: "pass", Filename: "x.py", Args: []string{"a", ""}},
		&Request{Op: "interrupt"},
		&Reply{Type: "ready", Python: "3.11.7", PID: 42},
		&Reply{Type: "result", ID: 3, Status: "error",
			Value:   map[string]string{"text/plain": "1", "text/html": "<b>1</b>"},
			Display: []Display{{MIME: "image/png", Data: "iVBO"}},
			Error:   &Error{Type: "ZeroDivisionError", Message: "division by zero", Traceback: "Traceback ..."}},
	} {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, v); err != nil {
			t.Fatal(err)
		}
		if n := binary.BigEndian.Uint32(buf.Bytes()); int(n) != buf.Len()-4 {
			t.Errorf("header says %d bytes, body has %d", n, buf.Len()-4)
		}
		got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := ReadFrame(&buf, got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("round trip: got %+v, want %+v", got, v)
		}
		if err := ReadFrame(&buf, got); err != io.EOF {
			t.Errorf("after the last frame: %v, want io.EOF", err)
		}
	}
}

// writes counts the Write calls it gets.
type writes struct {
	n   int
	buf bytes.Buffer
}

func (w *writes) Write(p []byte) (int, error) {
	w.n++
	return w.buf.Write(p)
}

func TestWriteFrameOneWrite(t *testing.T) {
	w := &writes{}
	if err := WriteFrame(w, Request{Op: "exec", Code: strings.Repeat("x", 1<<20)}); err != nil {
		t.Fatal(err)
	}
	if w.n != 1 {
		t.Errorf("WriteFrame made %d Write calls, want 1", w.n)
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	w := &writes{}
	err := WriteFrame(w, Request{Op: "exec", Code: strings.Repeat("x", MaxFrame)})
	if !errors.Is(err, ErrFrameTooLarge) || w.n != 0 {
		t.Errorf("oversize frame: %v after %d writes, want ErrFrameTooLarge and no write", err, w.n)
	}
}

func TestReadFrameErrors(t *testing.T) {
	header := func(n uint32) string {
		return string(binary.BigEndian.AppendUint32(nil, n))
	}
	for _, tc := range []struct {
		name, in string
		want     error // nil: any error but these
	}{
		{"empty", "", io.EOF},
		{"short header", "\x00\x00", io.ErrUnexpectedEOF},
		{"oversize", header(MaxFrame + 1), ErrFrameTooLarge},
		{"largest", header(1<<32 - 1), ErrFrameTooLarge},
		{"short body", header(10) + `{"type"`, io.ErrUnexpectedEOF},
		{"no body", header(10), io.ErrUnexpectedEOF},
		{"bad json", header(5) + `{bad}`, nil},
		{"not an object", header(2) + `[]`, nil},
		{"empty body", header(0), nil},
	} {
		var r Reply
		err := ReadFrame(strings.NewReader(tc.in), &r)
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case tc.want == io.EOF && err != io.EOF:
			t.Errorf("%s: %v, want io.EOF itself", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		case tc.want == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrFrameTooLarge)):
			t.Errorf("%s: %v, want a decoding error", tc.name, err)
		}
	}
}

func TestSyncMarker(t *testing.T) {
	if got := string(SyncMarker("n0nce")); got != "\x00pybox-sync:n0nce\x00" {
		t.Errorf("SyncMarker = %q", got)
	}
}

func TestEndTrailer(t *testing.T) {
	for _, c := range []struct {
		in       string
		status   int
		done, ok bool
	}{
		{"0\x00", 0, true, true},
		{"255\x00rest", 255, true, true},
		{"1", 1, false, true},
		{"12", 12, false, true},
		{"", 0, false, true},
		{"256\x00", 256, true, false},
		{"\x00", 0, false, false},
		{"1234", 0, false, false},
		{"x\x00", 0, false, false},
	} {
		s, done, ok := EndTrailer([]byte(c.in))
		if done != c.done || ok != c.ok || (ok && done && s != c.status) {
			t.Errorf("EndTrailer(%q) = %d %v %v, want %d %v %v", c.in, s, done, ok, c.status, c.done, c.ok)
		}
	}
}
