package driver

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The start-up benchmarks time one interpreter at a time, each compared
// with bare python doing as little as can be compared:
//
//	Ready:     from exec to the ready frame; bare: to one byte on fd 4
//	Run:       from exec to the exit of a "pass" program; bare: python3 main.py
//	FirstCell: from exec to the result of the cell "1"
func BenchmarkReady(b *testing.B) {
	benchEach(b, func(b *testing.B, py python, driver string) {
		b.Run("driver", func(b *testing.B) {
			for range b.N {
				benchStart(b, py.path, []string{driver}, func(ctrl, replies *os.File) {
					var r Reply
					if err := ReadFrame(replies, &r); err != nil {
						b.Fatal(err)
					}
				})
			}
		})
		b.Run("bare", func(b *testing.B) {
			for range b.N {
				benchStart(b, py.path, []string{"-c", "import os; os.write(4, b'r')"}, func(ctrl, replies *os.File) {
					replies.Read(make([]byte, 1))
				})
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
		b.Run("driver", func(b *testing.B) {
			for range b.N {
				benchStart(b, py.path, []string{driver}, func(ctrl, replies *os.File) {
					WriteFrame(ctrl, Request{Op: "run", Code: "pass\n"})
				})
			}
		})
		b.Run("bare", func(b *testing.B) {
			for range b.N {
				benchStart(b, py.path, []string{main}, func(ctrl, replies *os.File) {})
			}
		})
	})
}

func BenchmarkFirstCell(b *testing.B) {
	benchEach(b, func(b *testing.B, py python, driver string) {
		for range b.N {
			benchStart(b, py.path, []string{driver}, func(ctrl, replies *os.File) {
				WriteFrame(ctrl, Request{Op: "exec", ID: 1, Code: "1", Sync: "s"})
				for range 2 { // ready, result
					var r Reply
					if err := ReadFrame(replies, &r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

func benchEach(b *testing.B, f func(b *testing.B, py python, driver string)) {
	driver := writeDriver(b)
	for _, py := range pythons(b) {
		b.Run(py.name, func(b *testing.B) { f(b, py, driver) })
	}
}

// benchStart starts python -I -B -u args with fds 3 and 4, calls talk,
// closes the control pipe and waits for the exit.
func benchStart(b *testing.B, python string, args []string, talk func(ctrl, replies *os.File)) {
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
	talk(ctrl, replies)
	ctrl.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	replies.Close()
}
