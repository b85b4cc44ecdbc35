// SPDX-License-Identifier: GPL-3.0-or-later

package gatestate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watcher reports changes of the state file with inotify, for the D-Bus
// service and the notifier. The file may not exist yet, nor its directory
// (/run/entropy-gate appears when the gate first runs), and it is replaced
// by rename, so the watch is on the deepest existing directory on its path
// and moves down as directories appear, and back up if they go.
type Watcher struct {
	path string
	// inotify owns fd; fd is kept apart because File.Fd would put the
	// descriptor back into blocking mode.
	inotify *os.File
	fd      int
	changes chan struct{}
	done    chan struct{}
	// err says why watching stopped, once done is closed.
	err error

	// The watch, which only the reading goroutine changes once started:
	// wd watches dir; target is the name in dir that matters: the file,
	// or the next directory on the way to it.
	wd     int
	dir    string
	target string
}

// Masks: the file's directory reports the file written, renamed in,
// renamed away or deleted; an ancestor reports the next directory on the
// way appearing. Both report their own removal.
const (
	watchSelf     = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
	watchFileDir  = watchSelf | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE
	watchAncestor = watchSelf | unix.IN_CREATE | unix.IN_MOVED_TO
)

// Watch starts watching path, which must be absolute.
func Watch(path string) (*Watcher, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("watch %s: not an absolute path", path)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("watch %s: inotify: %w", path, err)
	}
	w := &Watcher{
		path: filepath.Clean(path),
		// A non-blocking descriptor goes into the netpoller, so Read
		// parks the goroutine and Close wakes it.
		inotify: os.NewFile(uintptr(fd), "inotify"),
		fd:      fd,
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}),
		wd:      -1,
	}
	if err := w.arm(); err != nil {
		w.inotify.Close()
		return nil, err
	}
	go w.read()
	return w, nil
}

// Changes receives after the file may have changed; changes that come
// faster than they are received are coalesced into one. It is closed when
// watching stops: after Close, or on an error that Err then reports.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

// Err says why watching stopped by itself, once Changes is closed.
func (w *Watcher) Err() error {
	<-w.done
	return w.err
}

// Close stops watching.
func (w *Watcher) Close() error {
	err := w.inotify.Close()
	<-w.done
	return err
}

// arm watches the deepest existing directory on the path. A directory
// that appears between the failed watch below it and the watch on it
// sends its event to no one, so once an ancestor is watched, arm looks
// again whether the next directory exists and then goes down to it.
func (w *Watcher) arm() error {
	for {
		if err := w.armOnce(); err != nil {
			return err
		}
		if w.dir == filepath.Dir(w.path) {
			return nil
		}
		if fi, err := os.Stat(filepath.Join(w.dir, w.target)); err != nil || !fi.IsDir() {
			// Not there yet: its creation will be reported.
			return nil
		}
	}
}

// armOnce moves the watch to the deepest directory on the path that
// exists now.
func (w *Watcher) armOnce() error {
	if w.wd >= 0 {
		// Fails harmlessly when the kernel already dropped the watch.
		unix.InotifyRmWatch(w.fd, uint32(w.wd))
		w.wd = -1
	}
	fileDir := filepath.Dir(w.path)
	for dir := fileDir; ; dir = filepath.Dir(dir) {
		mask := uint32(watchAncestor)
		if dir == fileDir {
			mask = watchFileDir
		}
		wd, err := unix.InotifyAddWatch(w.fd, dir, mask)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			if dir == "/" {
				return fmt.Errorf("watch %s: no directory on the path exists", w.path)
			}
			if testHookMissing != nil {
				testHookMissing(dir)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
		w.wd, w.dir = wd, dir
		w.target = filepath.Base(w.path)
		if dir != fileDir {
			rest := strings.TrimPrefix(fileDir, strings.TrimSuffix(dir, "/")+"/")
			w.target, _, _ = strings.Cut(rest, "/")
		}
		return nil
	}
}

// testHookMissing, when set by a test, runs when arm finds dir missing,
// before it watches an ancestor.
var testHookMissing func(dir string)

func (w *Watcher) read() {
	defer close(w.changes)
	defer close(w.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.inotify.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			w.err = fmt.Errorf("watch %s: %w", w.path, err)
			return
		}
		changed, rearm := w.scan(buf[:n])
		if rearm {
			// The watched directory went away or the next one on the
			// path appeared. Whatever happened in between is unknown,
			// so report a change too.
			if err := w.arm(); err != nil {
				w.err = err
				return
			}
			changed = true
		}
		if changed {
			select {
			case w.changes <- struct{}{}:
			default:
			}
		}
	}
}

// scan decodes a buffer of inotify events.
func (w *Watcher) scan(buf []byte) (changed, rearm bool) {
	for len(buf) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			break
		}
		name := strings.TrimRight(string(buf[unix.SizeofInotifyEvent:end]), "\x00")
		buf = buf[end:]
		switch {
		case ev.Mask&unix.IN_Q_OVERFLOW != 0:
			changed = true
		case int(ev.Wd) != w.wd:
			// An old watch's last events.
		case ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0:
			rearm = true
		case name != w.target:
		case w.dir == filepath.Dir(w.path):
			changed = true
		default:
			rearm = true
		}
	}
	return changed, rearm
}
