package dbusapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Inotify masks: in the directory, everything that replaces, writes or
// removes the file, and the directory itself going away; in the parent,
// the directory appearing.
const (
	dirEvents = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE |
		unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
	parentEvents = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ONLYDIR
)

// fileWatch tells when a file may have changed. The file is replaced by
// atomic rename, so the watch is on its directory, not on the file; the
// directory itself may not exist yet (the gate service creates
// /run/entropy-gate), and then the watch is on the parent until it
// appears.
type fileWatch struct {
	fd   int
	file *os.File
	// dir and name are the watched file's directory and base name;
	// parent and dirName are dir's parent and base name.
	dir, name       string
	parent, dirName string
	// dirWD and parentWD are watch descriptors, -1 when not watching.
	// Only the goroutine in run touches them after watchFile.
	dirWD, parentWD int
}

// watchFile starts watching path's directory, or its parent.
func watchFile(path string) (*fileWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("watch %s: inotify: %w", path, err)
	}
	dir := filepath.Dir(path)
	w := &fileWatch{
		fd:   fd,
		file: os.NewFile(uintptr(fd), "inotify"), // non-blocking: Close wakes Read
		dir:  dir, name: filepath.Base(path),
		parent: filepath.Dir(dir), dirName: filepath.Base(dir),
		dirWD: -1, parentWD: -1,
	}
	if err := w.arm(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Close stops the watch; run returns.
func (w *fileWatch) Close() error { return w.file.Close() }

// arm watches the directory if it exists, else the parent for it to
// appear.
func (w *fileWatch) arm() error {
	if err := w.watchDir(); err != nil {
		return err
	}
	if w.dirWD < 0 && w.parentWD < 0 {
		wd, err := unix.InotifyAddWatch(w.fd, w.parent, parentEvents)
		if err != nil {
			return fmt.Errorf("watch %s: %w", w.parent, err)
		}
		w.parentWD = wd
		// The directory may have appeared before the parent's watch.
		if err := w.watchDir(); err != nil {
			return err
		}
	}
	if w.dirWD >= 0 && w.parentWD >= 0 {
		unix.InotifyRmWatch(w.fd, uint32(w.parentWD))
		w.parentWD = -1
	}
	return nil
}

// watchDir adds the directory's watch if it is missing and the directory
// exists.
func (w *fileWatch) watchDir() error {
	if w.dirWD >= 0 {
		return nil
	}
	wd, err := unix.InotifyAddWatch(w.fd, w.dir, dirEvents)
	switch {
	case err == nil:
		w.dirWD = wd
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		// Not there yet.
	default:
		return fmt.Errorf("watch %s: %w", w.dir, err)
	}
	return nil
}

// run reads events until Close and calls changed, at most once per batch
// of events, whenever the file may have changed.
func (w *fileWatch) run(changed func()) error {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.file.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read inotify events: %w", err)
		}
		relevant := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int(int32(binary.NativeEndian.Uint32(buf[off:])))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			off += unix.SizeofInotifyEvent
			name := strings.TrimRight(string(buf[off:off+nameLen]), "\x00")
			off += nameLen
			hit, err := w.handle(wd, mask, name)
			if err != nil {
				return err
			}
			relevant = relevant || hit
		}
		if relevant {
			changed()
		}
	}
}

// handle follows one event and says whether the file may have changed.
func (w *fileWatch) handle(wd int, mask uint32, name string) (bool, error) {
	switch {
	case mask&unix.IN_Q_OVERFLOW != 0:
		// Events were lost: the directory may have come or gone.
		return true, w.arm()
	case wd == w.dirWD && mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0:
		// The directory went away, and the file with it: wait for a
		// new one.
		unix.InotifyRmWatch(w.fd, uint32(w.dirWD)) // already gone after IN_IGNORED
		w.dirWD = -1
		return true, w.arm()
	case wd == w.dirWD:
		return name == w.name, nil
	case wd == w.parentWD && name == w.dirName:
		// The directory appeared, perhaps with the file already in it.
		return true, w.arm()
	}
	return false, nil
}
