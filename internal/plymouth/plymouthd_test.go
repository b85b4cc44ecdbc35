// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// netns runs functions on one OS thread that has a network namespace of
// its own. plymouthd's socket is abstract, so it exists per network
// namespace: a daemon started from this thread and clients dialling from
// it meet each other and nothing else. The rest of the test process stays
// in the host namespace, where a real plymouthd may be running.
//
// unshare(CLONE_NEWNET) changes only the calling thread. The goroutine
// locks its thread and never unlocks it, so when it returns the runtime
// ends the thread instead of reusing it elsewhere, and threads the
// runtime starts meanwhile come from its template thread, not this one.
// Children forked here (plymouthd) inherit the namespace. This needs no
// helper binary, unlike re-running the test under unshare(1).
type netns struct {
	calls chan func()
}

func newNetns(tb testing.TB) *netns {
	tb.Helper()
	ns := &netns{calls: make(chan func())}
	ready := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		ready <- nil
		for call := range ns.calls {
			call()
		}
	}()
	if err := <-ready; err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { close(ns.calls) })
	return ns
}

// run calls f in the namespace and returns its error. f must not call
// t.Fatal: it runs on another goroutine.
func (ns *netns) run(f func() error) error {
	done := make(chan error)
	ns.calls <- func() { done <- f() }
	return <-done
}

// asNobody runs f with this thread's effective uid set to nobody, as an
// unprivileged client of plymouthd would be. Only this thread changes:
// the raw system call bypasses Go's process-wide setuid. The saved uid
// stays 0, so root comes back afterwards. Call it inside ns.run.
func asNobody(f func() error) error {
	const nobody = 65534
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), nobody, ^uintptr(0)); errno != 0 {
		return fmt.Errorf("set effective uid: %w", errno)
	}
	err := f()
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0)); errno != 0 {
		return errors.Join(err, fmt.Errorf("restore effective uid: %w", errno))
	}
	return err
}

// needPlymouthd returns the plymouthd binary or skips the test. `make
// test` installs Debian's plymouth package first (.ci/test-deps); a test
// never installs it itself, as that would rebuild the host's initramfs.
func needPlymouthd(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("real plymouthd: needs root (network namespace; plymouthd serves only root)")
	}
	testenv.NeedCommands(tb, "plymouthd")
	path, err := testenv.LookCommand("plymouthd")
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// plymouthd is a real plymouthd on a pseudo-terminal, in its own network
// namespace, with the details splash shown. Its screen is the terminal's
// output; with debug, its debug stream goes to a file.
type plymouthd struct {
	ns     *netns
	screen *screen
	debug  string // debug stream file, if asked for
	output string // its stdout and stderr
}

func startPlymouthd(tb testing.TB, debug bool) *plymouthd {
	tb.Helper()
	binary := needPlymouthd(tb)
	dir := tb.TempDir()
	master, tty := openPTY(tb)
	d := &plymouthd{ns: newNetns(tb), screen: record(master), output: filepath.Join(dir, "output")}
	// plymouth.ignore-udev: use the --tty terminal now instead of waiting
	// 8 s for udev. The serial-console flags keep it off the machine's
	// real consoles. --no-boot-log: leave /var/log/boot.log alone.
	cmdline := "splash plymouth.splash=details plymouth.ignore-udev plymouth.ignore-serial-consoles"
	if debug {
		d.debug = filepath.Join(dir, "debug")
		cmdline += " plymouth.debug=stream:" + d.debug
	}
	out, err := os.Create(d.output)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(binary, "--no-daemon", "--tty="+tty, "--ignore-serial-consoles", "--no-boot-log",
		"--pid-file="+filepath.Join(dir, "pid"), "--kernel-command-line="+cmdline)
	cmd.Stdout, cmd.Stderr = out, out
	if err := d.ns.run(cmd.Start); err != nil {
		tb.Fatalf("start plymouthd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			tb.Errorf("plymouthd ignored SIGTERM; killing it")
			cmd.Process.Kill()
			<-exited
		}
	})

	err = d.ns.run(func() error {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			err := Client{}.Ping(context.Background())
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("plymouthd not answering: %w", err)
			}
		}
		// Messages are drawn only on a shown splash; at boot the
		// initramfs asks for it.
		return Client{}.do(context.Background(), "show splash", []byte{'$', noArg})
	})
	if err != nil {
		b, _ := os.ReadFile(d.output)
		tb.Fatalf("%v; plymouthd said: %s", err, b)
	}
	return d
}

// debugLines returns the text after marker on each line of the debug
// stream that has it, in order.
func (d *plymouthd) debugLines(tb testing.TB, marker string) []string {
	tb.Helper()
	f, err := os.Open(d.debug)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var found []string
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if _, text, ok := strings.Cut(lines.Text(), marker); ok {
			found = append(found, text)
		}
	}
	if err := lines.Err(); err != nil {
		tb.Fatal(err)
	}
	return found
}

func TestRealPlymouthd(t *testing.T) {
	d := startPlymouthd(t, true)
	const progress = "Initializing the random number generator… "
	long := strings.Repeat("0123456789", 25) + "ab… and more" // "…" is bytes 252-254, one too many
	sent := []string{progress + "10%", progress + "40%", progress + "40%", long, progress + "100%"}

	err := d.ns.run(func() error {
		var log logRecorder
		splash := &Splash{Logf: log.logf}
		for _, text := range sent {
			if !splash.show(text) {
				return fmt.Errorf("splash did not take %q: %q", text, log.lines)
			}
		}
		splash.Clear()
		ctx, c := context.Background(), Client{}
		return errors.Join(
			c.UpdateStatus(ctx, "entropy-gate"),
			c.PauseProgress(ctx),
			c.UnpauseProgress(ctx),
			c.HideMessage(ctx, "no such message"),
		)
	})
	if err != nil {
		t.Fatal(err)
	}

	truncated := truncate(long, maxArgLen)
	if len(truncated) != 252 || !strings.HasSuffix(truncated, "ab") {
		t.Fatalf("test text truncates to %d bytes %q, not before an ellipsis at byte 252", len(truncated), truncated)
	}
	// Each text once, the repeated 40% not resent, then the clear.
	want := []string{progress + "10%", progress + "40%", truncated, progress + "100%", ""}
	var got []string
	waitFor(t, "the messages in plymouthd's debug stream", func() bool {
		got = d.debugLines(t, ": displaying message ")
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Errorf("plymouthd displayed\n%q\nwant\n%q", got, want)
	}
	waitFor(t, "status and hide requests in the debug stream", func() bool {
		return slices.Contains(d.debugLines(t, ": updating status to "), "'entropy-gate'") &&
			slices.Contains(d.debugLines(t, ": hiding message "), "no such message")
	})
	for _, text := range []string{progress + "40%", truncated} {
		waitFor(t, fmt.Sprintf("%q on the splash", text), func() bool { return d.screen.contains(text) })
	}

	t.Run("non-root refused", func(t *testing.T) {
		err := d.ns.run(func() error {
			return asNobody(func() error { return Client{}.Ping(context.Background()) })
		})
		if !errors.Is(err, ErrNAK) {
			t.Errorf("ping as nobody: %v, want ErrNAK", err)
		}
		waitFor(t, "plymouthd's reason in its debug stream", func() bool {
			return len(d.debugLines(t, "request came from non-root user")) == 1
		})
	})
}

// BenchmarkSplashShow measures what one progress update costs the gate:
// with a real plymouthd drawing the details splash on a terminal, and
// without Plymouth, where the Splash stops trying (absent) or, before it
// gives up, is refused a connection (absent-retrying).
func BenchmarkSplashShow(b *testing.B) {
	texts := [2]string{"Initializing the random number generator… 40%", "Initializing the random number generator… 41%"}
	measure := func(b *testing.B, s *Splash) {
		latencies := make([]time.Duration, b.N)
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			s.Show(texts[i%2])
			latencies[i] = time.Since(start)
		}
		b.StopTimer()
		slices.Sort(latencies)
		µs := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		b.ReportMetric(µs(latencies[len(latencies)/2]), "p50-µs")
		b.ReportMetric(µs(latencies[len(latencies)*99/100]), "p99-µs")
		b.ReportMetric(µs(latencies[len(latencies)-1]), "max-µs")
	}
	b.Run("plymouthd", func(b *testing.B) {
		d := startPlymouthd(b, false)
		var log logRecorder
		s := &Splash{Logf: log.logf}
		d.ns.run(func() error { measure(b, s); return nil })
		if log.count() > 0 {
			b.Fatalf("plymouthd failed a request: %q", log.lines)
		}
	})
	b.Run("absent", func(b *testing.B) {
		measure(b, &Splash{Client: Client{Addr: noServer()}})
	})
	b.Run("absent-retrying", func(b *testing.B) {
		measure(b, &Splash{Client: Client{Addr: noServer()}, RetryAfter: time.Nanosecond})
	})
}
