// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSeedFile bounds what Load reads of a seed file: a record is 84 bytes,
// anything longer is foreign and only its start is worth mixing.
const maxSeedFile = 4096

// FileBackend keeps the seed in a regular file (on the persistent volume, or
// a file system the installer prepared). The path is ours whatever it
// holds, so foreign content is mixed and replaced, never refused.
//
// A seed file counts as secret only if nobody else could have read or
// written it: owned by this process's user (root in production), mode 0600,
// a single link, in a directory of that user that group and others cannot
// write (or they could rename it away and back, or swap it). Otherwise it
// is still mixed and replaced by a proper file, but never credited (DESIGN
// rules 3 and 6): others may know it.
//
// Records are bound to the file itself (file system id and inode), so a
// file-level copy or a restored backup is mixed, never credited. Load
// keeps the file open until Store: Store replaces it only if the path
// still names that very file (device and inode, which the open descriptor
// keeps from being reused), and scrubs its old bytes in place first.
type FileBackend struct {
	Path string

	// onMedium, when set, is what records are bound to instead of the
	// file's inode, and the published image GUIDs that make it a
	// first-boot binding (the FAT backend: vfat inode numbers do not
	// survive a remount).
	onMedium func() (Binding, error)
	images   []GUID
}

// fileOrigin is what Load saw: the file it read, kept open (nil for a
// missing file), and the medium it was bound to.
type fileOrigin struct {
	path     string
	held     *os.File
	released bool
	medium   Binding
}

// release closes the file Load read. A Store after it can no longer be
// sure the path names that file, and refuses.
func (o *fileOrigin) release() {
	if o.held != nil {
		o.held.Close()
		o.held = nil
		o.released = true
	}
}

// stillHeld fails with ErrChanged once the file Load read was released
// (by an earlier Store): the path may name another file by now.
func (o *fileOrigin) stillHeld() error {
	if o != nil && o.released {
		return fmt.Errorf("%s: %w: the file Load read was released", o.path, ErrChanged)
	}
	return nil
}

// Name identifies the backend in results and logs.
func (f FileBackend) Name() string { return "file:" + f.Path }

// Load reads the seed file. A missing file is an empty location; a symlink or
// anything but a regular file is refused: replacing it would touch
// something that is not ours.
func (f FileBackend) Load() (Loaded, error) {
	dirExposed, err := directoryExposure(filepath.Dir(f.Path))
	if err != nil {
		return Loaded{}, err
	}
	file, b, st, err := readSeedFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		origin := &fileOrigin{path: f.Path}
		if f.onMedium != nil {
			// What Store checks the medium against.
			if origin.medium, err = f.onMedium(); err != nil {
				return Loaded{}, err
			}
		}
		return Loaded{Content: ContentEmpty, ReadOnly: f.readOnly(), origin: origin}, nil
	}
	if err != nil {
		return Loaded{}, fmt.Errorf("read seed file: %w", err)
	}
	here, err := f.binding(file)
	if err != nil {
		file.Close()
		return Loaded{}, err
	}
	loaded, _ := Classify(b, ForeignMix) // ForeignMix: no refusal
	loaded.ReadOnly = f.readOnly()
	loaded.origin = &fileOrigin{path: f.Path, held: file, medium: here}
	loaded.NoCredit = exposure(st)
	if loaded.NoCredit == "" {
		loaded.NoCredit = dirExposed
	}
	if loaded.NoCredit == "" && loaded.Content == ContentRecord {
		loaded.NoCredit = whyNotBound(loaded.Record, here, f.images)
	}
	return loaded, nil
}

// binding is what a record in file is bound to: the medium, or the file.
func (f FileBackend) binding(file *os.File) (Binding, error) {
	if f.onMedium != nil {
		return f.onMedium()
	}
	st, err := fstat(file)
	if err != nil {
		return Binding{}, fmt.Errorf("seed file: %w", err)
	}
	var fsst unix.Statfs_t
	if err := unix.Fstatfs(int(file.Fd()), &fsst); err != nil {
		return Binding{}, fmt.Errorf("seed file: statfs: %w", err)
	}
	fsid := uint64(uint32(fsst.Fsid.Val[0])) | uint64(uint32(fsst.Fsid.Val[1]))<<32
	return Binding{FileSystem: fsid, Inode: st.Ino}, nil
}

// exposure says why a seed file may be known to others, or "" if it is not.
func exposure(st fs.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return "seed file ownership unknown"
	case int(sys.Uid) != os.Geteuid():
		return fmt.Sprintf("seed file owned by uid %d", sys.Uid)
	case st.Mode().Perm()&0o077 != 0:
		return fmt.Sprintf("seed file mode %#o lets others read or write it", st.Mode().Perm())
	case sys.Nlink != 1:
		return fmt.Sprintf("seed file has %d links", sys.Nlink)
	}
	return ""
}

// directoryExposure says why others could rename, replace or link the
// seed file in dir, or "": dir must belong to this process's user and be
// writable by no one else. A missing directory is an error: there is no
// location to use.
func directoryExposure(dir string) (string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("seed file directory: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return "seed file directory ownership unknown", nil
	case int(sys.Uid) != os.Geteuid():
		return fmt.Sprintf("seed file directory %s owned by uid %d", dir, sys.Uid), nil
	case st.Mode().Perm()&0o022 != 0:
		return fmt.Sprintf("seed file directory %s mode %#o lets others rename or replace the seed", dir, st.Mode().Perm()), nil
	}
	return "", nil
}

// readOnly reports whether the seed file cannot be replaced: its directory
// is on a read-only file system or not writable for us.
func (f FileBackend) readOnly() bool {
	return writeDenied(unix.Access(filepath.Dir(f.Path), unix.W_OK))
}

// Store replaces the seed file atomically and durably, mode 0600, bound to
// the new file (or the medium), the old seed's bytes scrubbed in place
// first. If r derives from a Load, the path must still name the file that
// Load read (ErrChanged otherwise: it was moved, replaced or created
// since), and that file is what gets scrubbed.
func (f FileBackend) Store(r Record) error {
	origin, err := originOf[*fileOrigin](r, f.Path)
	if err != nil {
		return err
	}
	if err := origin.stillHeld(); err != nil {
		return err
	}
	if origin != nil {
		defer origin.release()
	}
	content := func(tmp *os.File) ([]byte, error) {
		here, err := f.binding(tmp)
		if err != nil {
			return nil, err
		}
		return f.encodeBound(r, origin, here)
	}
	return replaceFile(f.Path, 0o600, content, func() error { return scrubOldSeed(f.Path, origin) })
}

// encodeBound encodes r bound to here, which must be the medium Load saw.
func (f FileBackend) encodeBound(r Record, origin *fileOrigin, here Binding) ([]byte, error) {
	if origin != nil && f.onMedium != nil && here != origin.medium {
		return nil, fmt.Errorf("%s: %w: the medium's disk, partition or serial changed", f.Path, ErrChanged)
	}
	r.Binding = bind(here, f.images)
	return r.Encode()
}

func (o *fileOrigin) location() string { return o.path }

// scrubOldSeed zeroes the old seed file's bytes in place and flushes them,
// so that a seed about to be credited does not linger in the file's
// blocks or in a copy of its name. With a Load's origin, the file at path
// must be the one Load read and still holds open; a missing file has
// nothing to scrub only if Load found none either.
func scrubOldSeed(path string, origin *fileOrigin) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if origin != nil && origin.held != nil {
			return fmt.Errorf("%w: the seed file was moved away", ErrChanged)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("scrub old seed: %w", err)
	}
	defer f.Close()
	st, err := fstat(f)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("scrub old seed: not a regular file (%v)", err)
	}
	if origin != nil {
		if origin.held == nil {
			return fmt.Errorf("%w: a seed file appeared", ErrChanged)
		}
		if err := sameFile(f, origin.held); err != nil {
			return fmt.Errorf("scrub old seed: %w", err)
		}
	}
	if _, err := f.WriteAt(make([]byte, st.Size), 0); err != nil {
		return fmt.Errorf("scrub old seed: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("scrub old seed: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open seed file directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flush seed file directory: %w", err)
	}
	return nil
}

// readSeedFile opens a regular file, without following a symlink or
// blocking on a FIFO at path, and reads its start. The file stays open
// for Store; it is closed on error.
func readSeedFile(path string) (*os.File, []byte, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSeedFile))
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return f, b, st, nil
}
