//go:build linux

package driver

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The benchmarks time the driver under each interpreter against bare
// python doing the nearest thing:
//
//	Ready/driver:  from exec to the ready frame
//	Ready/bare:    from exec to a byte on fd 4 (python3 -c)
//	Run/warm:      from the run request to a driver idle since its ready
//	               frame, to the exit of a "pass" program
//	Run/bare:      from exec to the exit of python3 main.py
//	Cell/first:    the first cell "1" of a driver idle since its ready frame
//	Cell/next:     a cell "1" after the first
//
// Idle means idle for 100 ms, which the timer does not count: a warm pool
// starts drivers before it has requests for them.
func BenchmarkReady(b *testing.B) {
	benchEach(b, func(b *testing.B, py python, driver string) {
		b.Run("driver", func(b *testing.B) {
			for range b.N {
				d := benchStart(b, py.path, driver)
				d.reply(b)
				b.StopTimer()
				d.close(b)
				b.StartTimer()
			}
		})
		b.Run("bare", func(b *testing.B) {
			for range b.N {
				d := benchStart(b, py.path, "-c", "import os; os.write(4, b'r')")
				d.replies.Read(make([]byte, 1))
				b.StopTimer()
				d.close(b)
				b.StartTimer()
			}
		})
	})
}

func BenchmarkRun(b *testing.B) {
	benchEach(b, func(b *testing.B, py python, driver string) {
		main := filepath.Join(filepath.Dir(driver), "main.py")
		if err := os.WriteFile(main, []byte("pass\n"), 0o444); err != nil {
			b.Fatal(err)
		}
		b.Run("warm", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				d := benchIdle(b, py, driver)
				b.StartTimer()
				WriteFrame(d.ctrl, Request{Op: "run", Code: "pass\n"})
				d.close(b)
			}
		})
		b.Run("bare", func(b *testing.B) {
			for range b.N {
				benchStart(b, py.path, main).close(b)
			}
		})
	})
}

func BenchmarkCell(b *testing.B) {
	benchEach(b, func(b *testing.B, py python, driver string) {
		b.Run("first", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				d := benchIdle(b, py, driver)
				b.StartTimer()
				d.cell(b, 1)
				b.StopTimer()
				d.close(b)
				b.StartTimer()
			}
		})
		b.Run("next", func(b *testing.B) {
			d := benchIdle(b, py, driver)
			d.cell(b, 1)
			b.ResetTimer()
			for i := range b.N {
				d.cell(b, int64(i+2))
			}
			b.StopTimer()
			d.close(b)
		})
	})
}

func benchEach(b *testing.B, f func(b *testing.B, py python, driver string)) {
	driver := writeDriver(b)
	for _, py := range pythons(b) {
		b.Run(py.name, func(b *testing.B) { f(b, py, driver) })
	}
}

// benchProc is a python3 -I -B -u with fds 3 and 4 and no output.
type benchProc struct {
	cmd           *exec.Cmd
	ctrl, replies *os.File
}

func benchStart(b *testing.B, python string, args ...string) *benchProc {
	ctrlR, ctrl, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	replies, repW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{"-I", "-B", "-u"}, args...)...)
	cmd.ExtraFiles = []*os.File{ctrlR, repW}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ctrlR.Close()
	repW.Close()
	return &benchProc{cmd, ctrl, replies}
}

// benchIdle starts the driver and lets it idle after its ready frame.
func benchIdle(b *testing.B, py python, driver string) *benchProc {
	d := benchStart(b, py.path, driver)
	d.reply(b)
	time.Sleep(100 * time.Millisecond)
	return d
}

func (d *benchProc) reply(b *testing.B) Reply {
	var r Reply
	if err := ReadFrame(d.replies, &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// cell runs the cell "1"; its output goes nowhere, so the markers too.
func (d *benchProc) cell(b *testing.B, id int64) {
	WriteFrame(d.ctrl, Request{Op: "exec", ID: id, Code: "1", Sync: "s"})
	if r := d.reply(b); r.Value["text/plain"] != "1" {
		b.Fatalf("cell 1: %+v", r)
	}
}

// close closes the control pipe and waits for the exit.
func (d *benchProc) close(b *testing.B) {
	d.ctrl.Close()
	if err := d.cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	d.replies.Close()
}
