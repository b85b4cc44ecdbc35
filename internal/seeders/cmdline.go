// SPDX-License-Identifier: GPL-3.0-or-later

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

// DefaultTokenFiles are the token files of a Tails stick, relative to the
// boot medium's mount point, which the bootloader configurations include
// (docs/seed-format.md): syslinux/live64.cfg INCLUDEs the syslinux one, for
// legacy BIOS boots; EFI/debian/grub.cfg load_env's the GRUB one, for UEFI.
var DefaultTokenFiles = []string{"syslinux/entropy-gate.cfg", "EFI/debian/entropy-gate.env"}

// GRUBTokenVar is the variable of the GRUB token file: grub.cfg loads only
// this one (load_env --file … entropy_gate_seed) and puts it on its linux
// line as entropy_gate.seed=${entropy_gate_seed}. GRUB variable names have
// no dots.
const GRUBTokenVar = "entropy_gate_seed"

// grubEnvHeader starts every GRUB environment block (grub-editenv's format:
// name=value lines, then '#' up to the block's size).
const grubEnvHeader = "# GRUB Environment Block\n"

// cmdlineTokenBytes is the token's size: 128 bits, beyond guessing. The
// token is never credited, so more would add nothing.
const cmdlineTokenBytes = 16

// cmdlineDomain separates the token hash from every other use of SHA-256.
const cmdlineDomain = "entropy-gate cmdline token v1\x00"

// maxTokenFile bounds what is read of a token file: a GRUB environment
// block is 1024 bytes, the syslinux file one line and its padding.
const maxTokenFile = 4096

// ErrNoKernelLine: no kernel line of the configured files carries the token
// where it can be edited, and none may get one (Insert is off), so there is
// nothing to refresh.
var ErrNoKernelLine = errors.New("no kernel line to put the seed token on")

// ErrCRNGNotInitialized: the token would come from a record made before the
// CRNG was initialized (GRND_INSECURE output), and the command line is
// world-readable; it waits for a record made from an initialized CRNG.
var ErrCRNGNotInitialized = errors.New("new seed made before the CRNG was initialized: token not changed")

// CmdlineBackend keeps a token on the kernel command line, and changes it
// once per boot, so that every boot starts with a different command line:
// the kernel mixes its command line into the pool at its earliest stage,
// before any other seed can be read.
//
// The bootloader configurations are never rewritten: they include a small
// token file each, which Store overwrites in place without changing its
// size (the token has a fixed length; a file may end in '#' padding that
// makes room). On the read-only mount Tails makes, only the file's own
// changed sectors are written, through the block device, and the FAT is
// never remounted (rewriteThroughDevice); mounted read-write, the file is
// written in place through the file system, and its directory entry's
// modification time changes too. Whatever a power cut leaves of a token
// file, the bootloader still boots (tokenRewrite). A syslinux token file
// holds a LINUX line that carries the token, which overrides the label's
// own LINUX line (the label keeps one, so a missing or unreadable token file
// still boots); a GRUB token file is an environment block whose one
// variable, GRUBTokenVar, grub.cfg puts on its linux line.
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
// Insert, every kernel line (EditBootConfig) of a syslinux token file; a
// file with nothing to change is not written.
type CmdlineBackend struct {
	// Medium is the mount point of the partition holding the files,
	// DefaultBootMedium if empty.
	Medium string
	// Files are the token files, relative to Medium; DefaultTokenFiles
	// if nil.
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
		rel = DefaultTokenFiles
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
		text, err := readTokenFile(p)
		if err != nil {
			return Loaded{}, err
		}
		_, n, err := setToken(text, c.edit(strings.Repeat("0", 2*cmdlineTokenBytes)))
		if err != nil {
			return Loaded{}, fmt.Errorf("%s: %w", p, err)
		}
		lines += n
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

// Store puts a token derived from r in the token files: on a medium
// mounted read-only, straight through its block device (see
// rewriteThroughDevice), and otherwise through the file system, while the
// medium is remounted read-write. A file that cannot be edited is left as
// it is and the others are still refreshed; the error names every
// failure.
func (c CmdlineBackend) Store(r Record) error {
	paths, err := c.files()
	if err != nil {
		return err
	}
	if !r.Creditable {
		return ErrCRNGNotInitialized
	}
	value, err := cmdlineToken(r)
	if err != nil {
		return err
	}
	edit := c.edit(value)
	if _, _, err := EditBootConfig(nil, edit); err != nil {
		return err // an unusable key: no reason to make the medium writable
	}
	var errs []error
	var rewrites []fileRewrite
	lines := 0
	for _, p := range paths {
		rw, n, err := tokenRewrite(p, edit)
		if err != nil {
			errs = append(errs, err)
		}
		lines += n
		if err == nil && !bytes.Equal(rw.old, rw.new) {
			rewrites = append(rewrites, rw)
		}
	}
	if lines == 0 && len(errs) == 0 {
		return c.noKernelLine(paths)
	}
	if len(rewrites) > 0 {
		errs = append(errs, c.rewrite(rewrites))
	}
	return errors.Join(errs...)
}

// rewrite writes the token files through the block device, or else
// through the file system.
func (c CmdlineBackend) rewrite(rewrites []fileRewrite) error {
	err := rewriteThroughDevice(c.mounts(), c.medium(), rewrites)
	if !errors.Is(err, errNotThroughDevice) {
		return err
	}
	return withWritable(c.mounts(), c.medium(), func() error {
		var errs []error
		for _, rw := range rewrites {
			errs = append(errs, writeInPlace(rw.path, rw.old, rw.new))
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

// tokenRewrite is the change that sets the token in the token file at
// path, and how many tokens that sets. Should a power cut tear the file
// while it is written, a bootloader boots without a token (syslinux
// ignores lines it does not know and keeps the label's own LINUX line;
// GRUB's load_env fails and leaves the variable empty), never not at all.
func tokenRewrite(path string, e BootConfigEdit) (fileRewrite, int, error) {
	text, err := readTokenFile(path)
	if err != nil {
		return fileRewrite{}, 0, err
	}
	out, n, err := setToken(text, e)
	if err != nil {
		return fileRewrite{}, 0, fmt.Errorf("%s: %w", path, err)
	}
	return fileRewrite{path: path, old: text, new: out}, n, nil
}

// readTokenFile reads a token file.
func readTokenFile(path string) ([]byte, error) {
	text, _, err := readRegular(path, maxTokenFile)
	return text, err
}

// ErrTokenFile: a token file where the token cannot be set: no kernel line
// or variable for it, or no room for it without changing the file's size.
var ErrTokenFile = errors.New("unusable token file")

// setToken returns text with the token set, the same size, and how many
// tokens it set: the GRUB variable of an environment block, or the token
// on a syslinux file's kernel lines.
func setToken(text []byte, e BootConfigEdit) ([]byte, int, error) {
	var out []byte
	n := 0
	if bytes.HasPrefix(text, []byte(grubEnvHeader)) {
		out, n = setGRUBVar(text, GRUBTokenVar, e.Value)
	} else {
		edited, res, err := EditBootConfig(text, e)
		if err != nil {
			return nil, 0, err
		}
		out, n = edited, res.Replaced+res.Inserted
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("%w: no place for the token", ErrTokenFile)
	}
	out, err := fitPadding(out, len(text))
	return out, n, err
}

// setGRUBVar sets name's value on its line of an environment block.
func setGRUBVar(block []byte, name, value string) ([]byte, int) {
	prefix := []byte(name + "=")
	var out []byte
	n := 0
	for _, line := range bytes.SplitAfter(block, []byte("\n")) {
		if bytes.HasPrefix(line, prefix) && bytes.HasSuffix(line, []byte("\n")) {
			line = append(append(append([]byte(nil), prefix...), value...), '\n')
			n++
		}
		out = append(out, line...)
	}
	return out, n
}

// fitPadding makes text size bytes long by growing or shrinking the run of
// '#' it ends with, the padding of a GRUB environment block (in a
// syslinux file, a comment line).
func fitPadding(text []byte, size int) ([]byte, error) {
	if len(text) <= size {
		return append(text, bytes.Repeat([]byte("#"), size-len(text))...), nil
	}
	padding := len(text) - len(bytes.TrimRight(text, "#"))
	if over := len(text) - size; padding < over {
		return nil, fmt.Errorf("%w: %d bytes longer, and only %d bytes of padding to take them from", ErrTokenFile, over, padding)
	}
	return text[:size], nil
}

// tokenSector is the unit a token file is written in: its size is a
// multiple of it, so that it can be written straight to the medium.
const tokenSector = 512

// writeInPlace overwrites the sectors of path in which old, what it holds,
// and new, of the same size, differ, straight to the medium (O_DIRECT, or
// O_SYNC where the file system has none), and checks what the medium then
// holds. No rename, no truncation and no new block: on vfat only the
// file's own data and its directory entry's time are written.
func writeInPlace(path string, old, new []byte) error {
	if len(new)%tokenSector != 0 {
		return fmt.Errorf("%s: %w: %d bytes, not whole %d-byte sectors", path, ErrTokenFile, len(new), tokenSector)
	}
	lo, hi := 0, len(new)
	for lo < hi && old[lo] == new[lo] {
		lo++
	}
	for hi > lo && old[hi-1] == new[hi-1] {
		hi--
	}
	lo = lo / tokenSector * tokenSector
	hi = (hi + tokenSector - 1) / tokenSector * tokenSector
	f, err := openDirect(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() != int64(len(old)) {
		return fmt.Errorf("write %s: changed since it was read (%v)", path, err)
	}
	buf := alignedBuf(hi - lo)
	copy(buf, new[lo:hi])
	if _, err := f.WriteAt(buf, int64(lo)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: flush: %w", path, err)
	}
	return readBackDirect(path, new)
}

// readBackDirect checks that the medium, not the page cache, holds want.
func readBackDirect(path string, want []byte) error {
	f, err := openDirect(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK)
	if err != nil {
		return fmt.Errorf("read back %s: %w", path, err)
	}
	defer f.Close()
	back := alignedBuf(len(want))
	if _, err := f.ReadAt(back, 0); err != nil {
		return fmt.Errorf("read back %s: %w", path, err)
	}
	if !bytes.Equal(back, want) {
		return fmt.Errorf("%s: %w", path, ErrVerify)
	}
	return nil
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
// beforeRename, if set (a seed file's scrub of the old seed), run; the
// rename; then an fsync of the renamed file itself, which on vfat is what
// writes the directory entry pointing at the new data (fsync of the
// directory does not); the directory fsync'd; the file read back. content
// makes the data from the temporary file, which is the new file: a seed
// record is bound to its inode.
func replaceFile(path string, mode fs.FileMode, content func(tmp *os.File) ([]byte, error), beforeRename func() error) error {
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
	data, err := content(tmp)
	if err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if beforeRename != nil {
		if err := beforeRename(); err != nil {
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
