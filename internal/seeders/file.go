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
// a single link. Otherwise it is still mixed and replaced by a proper file,
// but never credited (DESIGN rules 3 and 6): others may know it.
type FileBackend struct {
	Path string
}

// Name identifies the backend in results and logs.
func (f FileBackend) Name() string { return "file:" + f.Path }

// Load reads the seed file. A missing file is an empty location; a symlink or
// anything but a regular file is refused: replacing it would touch
// something that is not ours.
func (f FileBackend) Load() (Loaded, error) {
	b, st, err := readSeedFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Dir(f.Path)); err != nil {
			return Loaded{}, fmt.Errorf("seed file directory: %w", err)
		}
		return Loaded{Content: ContentEmpty, ReadOnly: f.readOnly()}, nil
	}
	if err != nil {
		return Loaded{}, fmt.Errorf("read seed file: %w", err)
	}
	loaded, _ := Classify(b, ForeignMix) // ForeignMix: no refusal
	loaded.ReadOnly = f.readOnly()
	loaded.NoCredit = exposure(st)
	return loaded, nil
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

// readOnly reports whether the seed file cannot be replaced: its directory
// is on a read-only file system or not writable for us.
func (f FileBackend) readOnly() bool {
	return writeDenied(unix.Access(filepath.Dir(f.Path), unix.W_OK))
}

// Store replaces the seed file atomically and durably, mode 0600, the old
// seed's bytes scrubbed first (see replaceFile).
func (f FileBackend) Store(r Record) error {
	enc, err := r.Encode()
	if err != nil {
		return err
	}
	return replaceFile(f.Path, enc, 0o600, true)
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

// readSeedFile reads the start of a regular file, without following a
// symlink or blocking on a FIFO at path.
func readSeedFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSeedFile))
	return b, st, err
}
