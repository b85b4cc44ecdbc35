package seeders

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DefaultCmdlineKey names the kernel command-line token. The dot makes the
// kernel take it for a parameter of a module that does not exist: it is
// ignored, and not passed on to init's arguments or environment.
const DefaultCmdlineKey = "entropy_gate.seed"

// DefaultBootConfigs are the bootloader configurations of a Tails stick,
// relative to the boot medium's mount point: syslinux for legacy BIOS
// boots, GRUB for UEFI.
var DefaultBootConfigs = []string{"syslinux/live64.cfg", "EFI/debian/grub.cfg"}

// cmdlineTokenBytes is the token's size: 128 bits, beyond guessing. The
// token is never credited, so more would add nothing.
const cmdlineTokenBytes = 16

// cmdlineDomain separates the token hash from every other use of SHA-256.
const cmdlineDomain = "entropy-gate cmdline token v1\x00"

// maxBootConfig bounds what is read of a bootloader configuration; real
// ones are a few kilobytes.
const maxBootConfig = 1 << 20

// ErrNoKernelLine: no kernel line of the configured files carries the token
// where it can be edited, and none may get one (Insert is off), so there is
// nothing to refresh.
var ErrNoKernelLine = errors.New("no kernel line to put the seed token on")

// CmdlineBackend keeps a token on the kernel command lines of the
// bootloader configurations on the boot medium, and changes it at every
// refresh, so that every boot starts with a different command line: the
// kernel mixes its command line into the pool at its earliest stage, before
// any other seed can be read.
//
// The command line is world-readable (/proc/cmdline) and logged by the
// kernel, so the token is never a secret, is never credited (DESIGN rule 3),
// and is not a seed: it is a hash of the new record's seed, which itself
// never appears anywhere (rule 6). Load therefore finds no seed, whatever
// token is there (ContentEmpty): the kernel has already mixed this boot's
// token, anyone can read it, so neither mixing it again nor hashing it into
// the next one would add anything. Every new token comes from fresh kernel
// randomness, clocks and the boot id alone.
//
// Store only edits kernel lines that already carry the token, or, with
// Insert, every kernel line (EditBootConfig); each file changed is
// replaced atomically, and one with nothing to change is not rewritten.
type CmdlineBackend struct {
	// Medium is the mount point of the partition holding the files,
	// DefaultBootMedium if empty.
	Medium string
	// Files are relative to Medium; DefaultBootConfigs if nil.
	Files []string
	// Key is the token's name, DefaultCmdlineKey if empty.
	Key string
	// Insert adds the token to kernel lines that lack it.
	Insert bool
	// Mounts reads and switches the mount; nil means SystemMounts{}.
	Mounts Mounts
}

func (c CmdlineBackend) medium() string { return orDefault(c.Medium, DefaultBootMedium) }

func (c CmdlineBackend) mounts() Mounts { return mountsOrSystem(c.Mounts) }

func (c CmdlineBackend) files() ([]string, error) {
	rel := c.Files
	if rel == nil {
		rel = DefaultBootConfigs
	}
	if len(rel) == 0 {
		return nil, errors.New("no bootloader configuration files configured")
	}
	paths := make([]string, len(rel))
	for i, r := range rel {
		p, err := onMedium(c.medium(), r)
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	return paths, nil
}

// Name identifies the backend in results and logs.
func (c CmdlineBackend) Name() string {
	return "cmdline:" + c.medium()
}

// edit is the change Store makes for value.
func (c CmdlineBackend) edit(value string) BootConfigEdit {
	return BootConfigEdit{Key: orDefault(c.Key, DefaultCmdlineKey), Value: value, Insert: c.Insert}
}

// Load checks that the files can be read and that some kernel line in them
// takes the token, without writing anything. It returns no seed (see
// CmdlineBackend).
func (c CmdlineBackend) Load() (Loaded, error) {
	paths, err := c.files()
	if err != nil {
		return Loaded{}, err
	}
	med, err := c.mounts().Medium(c.medium())
	if err != nil {
		return Loaded{}, err
	}
	lines := 0
	for _, p := range paths {
		text, _, err := readBootConfig(p)
		if err != nil {
			return Loaded{}, err
		}
		_, res, err := EditBootConfig(text, c.edit(""))
		if err != nil {
			return Loaded{}, err
		}
		lines += res.Replaced + res.Inserted
	}
	if lines == 0 {
		return Loaded{}, c.noKernelLine(paths)
	}
	return Loaded{
		Content:  ContentEmpty,
		ReadOnly: med.Unwritable != "",
		NoCredit: "the kernel command line is world-readable",
	}, nil
}

// Store puts a token derived from r on the kernel lines, while the medium
// is remounted read-write. A file that cannot be edited is left as it is
// and the others are still refreshed; the error names every failure.
func (c CmdlineBackend) Store(r Record) error {
	paths, err := c.files()
	if err != nil {
		return err
	}
	value, err := cmdlineToken(r)
	if err != nil {
		return err
	}
	edit := c.edit(value)
	if _, _, err := EditBootConfig(nil, edit); err != nil {
		return err // an unusable key: no reason to make the medium writable
	}
	return withWritable(c.mounts(), c.medium(), func() error {
		var errs []error
		changed := 0
		for _, p := range paths {
			n, err := rewriteBootConfig(p, edit)
			if err != nil {
				errs = append(errs, err)
			}
			changed += n
		}
		if changed == 0 && len(errs) == 0 {
			return c.noKernelLine(paths)
		}
		return errors.Join(errs...)
	})
}

func (c CmdlineBackend) noKernelLine(paths []string) error {
	return fmt.Errorf("%w (%s) in %s", ErrNoKernelLine, orDefault(c.Key, DefaultCmdlineKey), strings.Join(paths, ", "))
}

// cmdlineToken is the token value for r: a truncated, domain-separated
// hash of its seed, in hex.
func cmdlineToken(r Record) (string, error) {
	if r.seed == nil {
		return "", errors.New("command-line token: record holds no seed")
	}
	h := sha256.New()
	h.Write([]byte(cmdlineDomain))
	h.Write(r.seed())
	return hex.EncodeToString(h.Sum(nil)[:cmdlineTokenBytes]), nil
}

// rewriteBootConfig applies e to the file at path and replaces it if any
// line changed; it returns how many lines did.
func rewriteBootConfig(path string, e BootConfigEdit) (int, error) {
	text, mode, err := readBootConfig(path)
	if err != nil {
		return 0, err
	}
	out, res, err := EditBootConfig(text, e)
	if err != nil {
		return 0, fmt.Errorf("edit %s: %w", path, err)
	}
	changed := res.Replaced + res.Inserted
	if changed == 0 || bytes.Equal(out, text) {
		return 0, nil
	}
	if err := replaceFile(path, out, mode, false); err != nil {
		return 0, err
	}
	return changed, nil
}

// readBootConfig reads a bootloader configuration and its mode.
func readBootConfig(path string) ([]byte, fs.FileMode, error) {
	return readRegular(path, maxBootConfig)
}

// readRegular reads a regular file (not through a symlink: replacing one
// would cut the link) of at most limit bytes, and its mode.
func readRegular(path string, limit int) ([]byte, fs.FileMode, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())
	}
	text, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if len(text) > limit {
		return nil, 0, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return text, st.Mode().Perm(), nil
}

// replaceFile replaces path with data atomically and durably: a temporary
// file in the same directory, given path's mode, written and fsync'd;
// with scrub, the old file's bytes zeroed in place and fsync'd, so a seed
// already used does not linger in freed blocks of the medium; the rename;
// then an fsync of the renamed file itself, which on vfat is what writes
// the directory entry pointing at the new data (fsync of the directory
// does not); the directory fsync'd; the file read back.
func replaceFile(path string, data []byte, mode fs.FileMode, scrub bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if err := setMode(tmp, mode); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if scrub {
		if err := zeroInPlace(path); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(err)
	}
	err = tmp.Sync()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("replace %s: flush: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	back, _, err := readRegular(path, len(data))
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if !bytes.Equal(back, data) {
		return fmt.Errorf("%s: %w", path, ErrVerify)
	}
	return nil
}

// zeroInPlace overwrites a regular file's bytes with zeros and flushes
// them; a missing file has nothing to scrub.
func zeroInPlace(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("scrub old seed: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("scrub old seed: not a regular file (%v)", err)
	}
	if _, err := f.WriteAt(make([]byte, st.Size()), 0); err != nil {
		return fmt.Errorf("scrub old seed: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("scrub old seed: %w", err)
	}
	return nil
}

// setMode gives f the mode, unless it has it already. On vfat every file
// has the mount's mode, and a chmod to anything else fails (EPERM), so one
// that is not needed must not be tried.
func setMode(f *os.File, mode fs.FileMode) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode().Perm() == mode {
		return nil
	}
	return f.Chmod(mode)
}
