// SPDX-License-Identifier: GPL-3.0-or-later

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// maxCatSize bounds what a cat step reads: it is meant for /proc, /sys
// and small files.
const maxCatSize = 1 << 20

// guest runs scenario steps and prints their events.
type guest struct {
	mu   sync.Mutex // serialises event lines
	out  io.Writer
	env  []string
	jobs map[string]chan struct{} // closed when the job has exited
}

func newGuest(out io.Writer) *guest {
	return &guest{
		out:  out,
		env:  []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/"},
		jobs: map[string]chan struct{}{},
	}
}

// emit prints one event, stamped with CLOCK_MONOTONIC, as a single write.
// keyValues alternate between field names and values.
func (g *guest) emit(step int, kind string, keyValues ...string) {
	e := protocol.Event{Step: step, Kind: kind}
	for i := 0; i+1 < len(keyValues); i += 2 {
		e.Fields = append(e.Fields, protocol.Field{Key: keyValues[i], Value: keyValues[i+1]})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// Stamped under the lock, so the console lists events in time order.
	e.Time = monotonic()
	_, _ = io.WriteString(g.out, protocol.Format(e)+"\n")
}

func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// do runs one step. The arguments were checked by protocol.NewStep.
func (g *guest) do(s protocol.Step) error {
	switch s.Op {
	case "run":
		wait, err := g.spawn(s.Index, "", s.Args)
		if err != nil {
			return err
		}
		wait()
	case "start":
		wait, err := g.spawn(s.Index, s.Args[0], s.Args[1:])
		if err != nil {
			return err
		}
		done := make(chan struct{})
		g.jobs[s.Args[0]] = done
		go func() {
			defer close(done)
			wait()
		}()
	case "wait":
		done, ok := g.jobs[s.Args[0]]
		if !ok {
			return fmt.Errorf("job %s was not started", s.Args[0])
		}
		<-done
	case "sleep":
		d, err := time.ParseDuration(s.Args[0])
		if err != nil {
			return err
		}
		time.Sleep(d)
	case "credit":
		bits, err := strconv.Atoi(s.Args[0])
		if err != nil {
			return err
		}
		return g.credit(s.Index, bits)
	case "probe":
		ready, avail, err := probe()
		if err != nil {
			return err
		}
		g.emit(s.Index, protocol.KindProbe, "ready", strconv.FormatBool(ready), "entropy_avail", avail)
	case "waitready":
		return g.waitReady(s)
	case "pollready":
		return g.pollReady(s.Index)
	case "waitpath":
		return waitPath(s.Args[0], s.Args[1], true)
	case "waitgone":
		return waitPath(s.Args[0], s.Args[1], false)
	case "poweroff":
		// As poweroff -f: no unit is stopped, nothing is unmounted.
		return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case "cat":
		return g.cat(s.Index, s.Args[0])
	case "hash":
		return g.hash(s)
	case "write":
		return writeFile(s.Args[0], os.O_CREATE|os.O_TRUNC, 0, s.Args[1])
	case "pwrite":
		offset, err := strconv.ParseInt(s.Args[1], 10, 64)
		if err != nil {
			return err
		}
		return writeFile(s.Args[0], 0, offset, s.Args[2])
	case "mount":
		return mount(s.Args)
	case "env":
		g.setEnv(s.Args[0])
	case "exec":
		// Replaces this program, as PID 1 too: it hands the machine on,
		// e.g. to systemd, once the modules are loaded.
		if err := unix.Exec(s.Args[0], s.Args, g.env); err != nil {
			return fmt.Errorf("exec %s: %w", s.Args[0], err)
		}
	default:
		return fmt.Errorf("operation %q is not implemented", s.Op)
	}
	return nil
}

// spawn starts argv, streams its output lines as events and returns a
// function that waits for the command and emits its exit event. name is
// the job name of a background command, "" for a foreground one.
func (g *guest) spawn(step int, name string, argv []string) (wait func(), err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = g.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var streams sync.WaitGroup
	streams.Add(2)
	go g.stream(&streams, stdout, step, protocol.KindStdout, name)
	go g.stream(&streams, stderr, step, protocol.KindStderr, name)
	return func() {
		streams.Wait()
		err := cmd.Wait()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			g.emit(step, protocol.KindError, "name", name, "msg", fmt.Sprintf("wait for %s: %v", argv[0], err))
		}
		fields := []string{"code", strconv.Itoa(cmd.ProcessState.ExitCode())}
		if status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			fields = append(fields, "signal", status.Signal().String())
		}
		if usage, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			// Peak resident set size, for benchmarks (Linux counts KiB).
			fields = append(fields, "maxrss_kb", strconv.FormatInt(usage.Maxrss, 10))
		}
		if name != "" {
			fields = append(fields, "name", name)
		}
		g.emit(step, protocol.KindExit, fields...)
	}, nil
}

// stream emits each line read from r as its own event.
func (g *guest) stream(done *sync.WaitGroup, r io.Reader, step int, kind, name string) {
	defer done.Done()
	lines := bufio.NewReader(r)
	for {
		line, err := lines.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			if name != "" {
				g.emit(step, kind, "name", name, "line", line)
			} else {
				g.emit(step, kind, "line", line)
			}
		}
		if err != nil {
			return
		}
	}
}

// waitReady polls the readiness probe until the CRNG is initialized.
func (g *guest) waitReady(s protocol.Step) error {
	interval := 10 * time.Millisecond
	if len(s.Args) > 0 {
		d, err := time.ParseDuration(s.Args[0])
		if err != nil {
			return err
		}
		interval = d
	}
	for polls := 1; ; polls++ {
		ready, avail, err := probe()
		if err != nil {
			return err
		}
		if ready {
			g.emit(s.Index, protocol.KindReady, "polls", strconv.Itoa(polls), "entropy_avail", avail)
			return nil
		}
		time.Sleep(interval)
	}
}

// waitPath polls until path exists (present), or is gone: devices of
// buses the kernel scans in the background, such as USB, appear a while
// after their driver loads, and go when unplugged.
func waitPath(path, timeout string, present bool) error {
	limit, err := time.ParseDuration(timeout)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		_, err := os.Stat(path)
		if (err == nil) == present {
			return nil
		}
		if time.Now().After(deadline) {
			if present {
				return fmt.Errorf("waited %v for %s: %w", limit, path, err)
			}
			return fmt.Errorf("waited %v for %s to go", limit, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *guest) cat(step int, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCatSize))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if line != "" {
			g.emit(step, protocol.KindCat, "path", path, "text", strings.TrimSuffix(line, "\n"))
		}
	}
	return nil
}

// hash emits the SHA-256 of a byte range: tests compare content without
// printing it.
func (g *guest) hash(s protocol.Step) error {
	offset, err := strconv.ParseInt(s.Args[1], 10, 64)
	if err != nil {
		return err
	}
	length, err := strconv.ParseInt(s.Args[2], 10, 64)
	if err != nil {
		return err
	}
	f, err := os.Open(s.Args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(f, offset, length)); err != nil {
		return fmt.Errorf("read %s: %w", s.Args[0], err)
	}
	// A short file is an error, not the hash of fewer bytes.
	if n, err := f.Seek(0, io.SeekEnd); err == nil && n < offset+length {
		return fmt.Errorf("read %s: %d bytes at %d: only %d bytes", s.Args[0], length, offset, n)
	}
	g.emit(s.Index, protocol.KindHash, "path", s.Args[0], "offset", s.Args[1], "length", s.Args[2],
		"sha256", hex.EncodeToString(sum.Sum(nil)))
	return nil
}

// writeFile writes text at offset and flushes it to the device, so the
// host sees it in the disk image after the VM exits.
func writeFile(path string, flags int, offset int64, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|flags, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(text), offset); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// mount mounts SOURCE on TARGET (created if missing); OPTIONS is a comma
// list where ro, nosuid, nodev and noexec become flags and the rest is
// passed to the file system.
func mount(args []string) error {
	source, target, fstype := args[0], args[1], args[2]
	var flags uintptr
	var data []string
	if len(args) > 3 {
		for _, opt := range strings.Split(args[3], ",") {
			switch opt {
			case "ro":
				flags |= unix.MS_RDONLY
			case "nosuid":
				flags |= unix.MS_NOSUID
			case "nodev":
				flags |= unix.MS_NODEV
			case "noexec":
				flags |= unix.MS_NOEXEC
			default:
				data = append(data, opt)
			}
		}
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(source, target, fstype, flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount %s on %s: %w", source, target, err)
	}
	return nil
}

// setEnv sets KEY=VALUE for the commands that later steps run.
func (g *guest) setEnv(assignment string) {
	key, _, _ := strings.Cut(assignment, "=")
	env := g.env[:0:0]
	for _, kv := range g.env {
		if !strings.HasPrefix(kv, key+"=") {
			env = append(env, kv)
		}
	}
	g.env = append(env, assignment)
}
