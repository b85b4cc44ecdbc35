package notifier

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
)

// TestFileWatcher follows the state file through the gate's life: its
// directories appear, it is replaced by rename, its directory is removed
// and made again. Each step must be reported; unrelated files must not.
func TestFileWatcher(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "run", "entropy-gate", "state.json")
	w, err := WatchFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		for range w.Changes() {
			// Drains a pending report; ends once Changes is closed.
		}
		if err := w.Err(); err != nil {
			t.Errorf("Err after Close = %v, want nil", err)
		}
	}()
	write := func() {
		if err := gatestate.Write(path, gatestate.State{Phase: gatestate.Waiting}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		do   func()
		// quiet: the step must not be reported.
		quiet bool
	}{
		{name: "unrelated file in an ancestor", quiet: true, do: func() { writeFile(t, filepath.Join(root, "other"), "x") }},
		{name: "directories and file appear", do: write},
		{name: "replaced by rename", do: write},
		{name: "sibling file", quiet: true, do: func() { writeFile(t, filepath.Join(filepath.Dir(path), "other.json"), "x") }},
		{name: "removed", do: func() { os.Remove(path) }},
		{name: "directory removed", do: func() { os.RemoveAll(filepath.Dir(path)) }},
		{name: "written again", do: write},
		{name: "written in place", do: func() { writeFile(t, path, "{}") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			drain(w)
			tt.do()
			// A report comes at once; silence is judged after a while.
			wait := 5 * time.Second
			if tt.quiet {
				wait = 200 * time.Millisecond
			}
			select {
			case <-w.Changes():
				if tt.quiet {
					t.Errorf("change reported")
				}
			case <-time.After(wait):
				if !tt.quiet {
					t.Errorf("no change reported")
				}
			}
		})
	}
}

// drain takes pending reports, waiting a little for late ones.
func drain(w *FileWatcher) {
	for {
		select {
		case <-w.Changes():
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

func TestWatchFileRelative(t *testing.T) {
	if _, err := WatchFile("state.json"); err == nil {
		t.Error("WatchFile accepted a relative path")
	}
}
