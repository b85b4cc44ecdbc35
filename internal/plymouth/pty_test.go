// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal the way posix_openpt, unlockpt and
// ptsname do, and returns its master and the path of its slave.
func openPTY(t testing.TB) (*os.File, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty master: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	raw, err := master.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	var ioctlErr error
	err = raw.Control(func(fd uintptr) {
		if ioctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioctlErr != nil {
			ioctlErr = fmt.Errorf("unlock pty: %w", ioctlErr)
			return
		}
		if n, ioctlErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN); ioctlErr != nil {
			ioctlErr = fmt.Errorf("get pty number: %w", ioctlErr)
			return
		}
		if ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 100}); ioctlErr != nil {
			ioctlErr = fmt.Errorf("set pty size: %w", ioctlErr)
		}
	})
	if err := errors.Join(err, ioctlErr); err != nil {
		t.Fatal(err)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n)
}

// screen collects everything written to a terminal, read from its master.
type screen struct {
	mu   sync.Mutex
	seen bytes.Buffer
}

func record(master *os.File) *screen {
	s := &screen{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.seen.Write(buf[:n])
			s.mu.Unlock()
			if err != nil { // EIO once the last slave closes, or the master closed
				return
			}
		}
	}()
	return s
}

func (s *screen) contains(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Contains(s.seen.Bytes(), []byte(text))
}

func TestConsoleStoppedTerminal(t *testing.T) {
	_, slavePath := openPTY(t)
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	raw, err := slave.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// Output stopped, as after Ctrl-S or with flow control on a serial
	// console: a blocking write would wait forever.
	var ioctlErr error
	if err := raw.Control(func(fd uintptr) { ioctlErr = unix.IoctlSetInt(int(fd), unix.TCXONC, unix.TCOOFF) }); err != nil || ioctlErr != nil {
		t.Fatalf("stop terminal output: %v %v", err, ioctlErr)
	}

	c := &Console{Path: slavePath, Timeout: 20 * time.Millisecond}
	start := time.Now()
	err = c.write("Initializing the random number generator… 40%\n")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write to stopped console: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("write to stopped console took %v with a 20ms timeout", d)
	}
}

func TestConsoleTerminal(t *testing.T) {
	master, slavePath := openPTY(t)
	screen := record(master)
	c := &Console{Path: slavePath}
	c.Show("Initializing the random number generator… 40%")
	waitFor(t, "the line on the terminal", func() bool {
		return screen.contains("Initializing the random number generator… 40%\r\n")
	})
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
