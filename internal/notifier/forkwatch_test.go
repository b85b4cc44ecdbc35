// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// forkWatchdog kills a process's fork that is stuck before exec.
//
// GNOME Shell 43 starts ibus-daemon with g_spawn_async and a JavaScript
// child-setup function, which runs in the forked child. That is not
// async-signal-safe: when another of the shell's threads held a lock of
// the JavaScript engine at the fork, the child deadlocks before exec, and
// the shell waits for it forever, its main loop stopped (later GNOME
// Shells do the child setup in C for this reason). On a loaded machine it
// happened one start in a few. Once the stuck child is killed, the shell
// takes the pipe's end for a successful exec and goes on, as it does when
// ibus-daemon is missing and exits.
type forkWatchdog struct {
	done chan struct{}
	wg   sync.WaitGroup
	// killed is written by the watch only; stop reads it once the watch
	// has ended.
	killed int
}

// forkStuckAfter is how long a fork may go without exec before the
// watchdog takes it for stuck: a fork execs within milliseconds.
const forkStuckAfter = 2 * time.Second

// newForkWatchdog watches process group pgid for processes named comm
// whose parent is also named comm, that is forks that did not exec.
func newForkWatchdog(pgid int, comm string) *forkWatchdog {
	w := &forkWatchdog{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		firstSeen := map[int]time.Time{}
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case now := <-tick.C:
				// Only forks still there are remembered, so a reused
				// pid starts afresh.
				stillThere := map[int]time.Time{}
				for _, pid := range unexecedForks(pgid, comm) {
					seen, ok := firstSeen[pid]
					if !ok {
						seen = now
					}
					stillThere[pid] = seen
					if now.Sub(seen) >= forkStuckAfter && unix.Kill(pid, unix.SIGKILL) == nil {
						w.killed++
					}
				}
				firstSeen = stillThere
			}
		}
	}()
	return w
}

// stop ends the watch and returns how many forks it killed.
func (w *forkWatchdog) stop() int {
	close(w.done)
	w.wg.Wait()
	return w.killed
}

// unexecedForks lists the live processes of group pgid named comm whose
// parent has the same name. A zombie, one killed already, is not listed.
func unexecedForks(pgid int, comm string) []int {
	type proc struct {
		comm, state string
		ppid, pgid  int
	}
	procs := map[int]proc{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		pid, c, state, ppid, group, ok := parseStat(string(b))
		if ok {
			procs[pid] = proc{c, state, ppid, group}
		}
	}
	var forks []int
	for pid, p := range procs {
		if p.pgid == pgid && p.comm == comm && p.state != "Z" && procs[p.ppid].comm == comm {
			forks = append(forks, pid)
		}
	}
	return forks
}

// parseStat reads the pid, name, state, parent and process group from the text
// of /proc/PID/stat. The name is in parentheses and may hold spaces and
// parentheses itself, so it ends at the last ')'.
func parseStat(stat string) (pid int, comm, state string, ppid, pgid int, ok bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return 0, "", "", 0, 0, false
	}
	fields := strings.Fields(stat[end+1:]) // state ppid pgrp ...
	if len(fields) < 3 {
		return 0, "", "", 0, 0, false
	}
	var err1, err2, err3 error
	pid, err1 = strconv.Atoi(strings.TrimSpace(stat[:open]))
	ppid, err2 = strconv.Atoi(fields[1])
	pgid, err3 = strconv.Atoi(fields[2])
	return pid, stat[open+1 : end], fields[0], ppid, pgid, err1 == nil && err2 == nil && err3 == nil
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name            string
		stat            string
		pid, ppid, pgid int
		comm, state     string
		ok              bool
	}{
		{name: "plain", stat: "4242 (gnome-shell) S 4200 4100 4100 0 -1 4194560", pid: 4242, comm: "gnome-shell", state: "S", ppid: 4200, pgid: 4100, ok: true},
		{name: "name with spaces and parentheses", stat: "7 (a (b) c) R 1 7 7 0", pid: 7, comm: "a (b) c", state: "R", ppid: 1, pgid: 7, ok: true},
		{name: "cut short", stat: "7 (sh) S 1", ok: false},
		{name: "no name", stat: "7 sh S 1 7 7", ok: false},
		{name: "pid not a number", stat: "x (sh) S 1 7 7", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, comm, state, ppid, pgid, ok := parseStat(tt.stat)
			if ok != tt.ok || (ok && (pid != tt.pid || comm != tt.comm || state != tt.state || ppid != tt.ppid || pgid != tt.pgid)) {
				t.Errorf("parseStat(%q) = %d %q %q %d %d %t", tt.stat, pid, comm, state, ppid, pgid, ok)
			}
		})
	}
}

// TestForkWatchdogKillsAStuckFork runs a shell whose subshell, a fork
// that never execs, loops forever: the watchdog kills that subshell and
// nothing else, and the shell then ends.
func TestForkWatchdogKillsAStuckFork(t *testing.T) {
	testenv.NeedCommands(t, "sh", "sleep")
	cmd := exec.Command("sh", "-c", "(while :; do sleep 0.1; done); echo the subshell ended")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(cmd) })
	w := newForkWatchdog(cmd.Process.Pid, "sh")
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	select {
	case err := <-ended:
		if err != nil || out.String() != "the subshell ended\n" {
			t.Errorf("shell: %v, output %q", err, out.String())
		}
	case <-time.After(forkStuckAfter + 10*time.Second):
		t.Fatal("the stuck subshell was not killed")
	}
	if n := w.stop(); n != 1 {
		t.Errorf("killed %d forks, want 1", n)
	}
}
