//go:build linux

package docker

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
	"golang.org/x/sys/unix"
)

// TestDaemonRestart stops the daemon under a warm sandbox, runs while it
// is down, starts it again and runs. It restarts dockerd (as CI starts
// it), so it runs only with PYBOX_TEST_DOCKER_RESTART=1.
func TestDaemonRestart(t *testing.T) {
	if os.Getenv("PYBOX_TEST_DOCKER_RESTART") != "1" {
		t.Skip("restarts dockerd; set PYBOX_TEST_DOCKER_RESTART=1")
	}
	b := newBackend(t, unix.EPERM)
	lim := sandbox.DefaultLimits()
	c, err := session.Dial(context.Background(), session.Adapt(b.Start), lim, "")
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := os.ReadFile("/var/run/docker.pid")
	exec.Command("kill", strings.TrimSpace(string(pid))).Run()
	t0 := time.Now()
	<-c.Box().Done()
	res, err := c.Box().Wait()
	t.Logf("warm box after the daemon stopped (%v): res %+v err %v", time.Since(t0), res, err)
	if err == nil && (res == nil || res.Status == sandbox.StatusOK) {
		t.Errorf("a sandbox whose daemon stopped ended %+v", res)
	}
	for i := 0; i < 50; i++ {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	t0 = time.Now()
	_, err = b.Run(context.Background(), &sandbox.Spec{Code: []byte("print(1)"), Limits: lim})
	t.Logf("run while down (%v): %v", time.Since(t0), err)
	if !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("run while the daemon is down: %v, want ErrUnavailable", err)
	}
	cmd := exec.Command("dockerd", "--bridge=none", "--iptables=false", "--ip-forward=false")
	f, _ := os.OpenFile("/tmp/dockerd.log", os.O_APPEND|os.O_WRONLY, 0o644)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Start()
	go cmd.Wait()
	for i := 0; i < 100; i++ {
		if _, err := b.cli.Ping(context.Background(), clientPing()); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	res, err = b.Run(context.Background(), &sandbox.Spec{Code: []byte("print(1)"), Limits: lim})
	if err != nil || res.Stdout != "1\n" {
		t.Errorf("run after the restart: %+v %v", res, err)
	}
	time.Sleep(3 * time.Second)
	out, _ := exec.Command("docker", "ps", "-a", "--filter", "label=pybox.instance="+b.instance, "--format", "{{.ID}} {{.Status}}").CombinedOutput()
	if len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("containers left after the restart: %s", out)
	}
}

func clientPing() client.PingOptions { return client.PingOptions{} }
