// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// File type bits of a cpio mode (as in stat.h).
const (
	modeDir      = 0o040000
	modeRegular  = 0o100000
	modeSymlink  = 0o120000
	modeCharDev  = 0o020000
	newcMagic    = "070701"
	newcTrailer  = "TRAILER!!!"
	newcAlignTo  = 4
	consoleMajor = 5
	consoleMinor = 1
)

// initramfs collects the entries of a newc cpio archive, the format the
// kernel unpacks into its rootfs. Parent folders are added on demand.
type initramfs struct {
	entries []cpioEntry
	dirs    map[string]bool
}

type cpioEntry struct {
	name         string // without a leading slash
	mode         uint32 // type and permission bits
	data         []byte
	major, minor uint32 // of a device node
}

func newInitramfs() *initramfs {
	r := &initramfs{dirs: map[string]bool{}}
	// The kernel opens /dev/console for init's standard streams before
	// init can mount devtmpfs.
	r.add(cpioEntry{name: "dev/console", mode: modeCharDev | 0o600, major: consoleMajor, minor: consoleMinor})
	return r
}

// addFile adds a regular file at the absolute guest path name.
func (r *initramfs) addFile(name string, perm os.FileMode, data []byte) {
	r.add(cpioEntry{name: name, mode: modeRegular | uint32(perm.Perm()), data: data})
}

// addHostFile adds the host file src at the guest path name, keeping its
// permission bits.
func (r *initramfs) addHostFile(name, src string) error {
	info, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	r.addFile(name, info.Mode(), data)
	return nil
}

// addSymlink adds a symbolic link at the absolute guest path name.
func (r *initramfs) addSymlink(name, target string) {
	r.add(cpioEntry{name: name, mode: modeSymlink | 0o777, data: []byte(target)})
}

// addTree adds the files and symbolic links under the host folder dir at
// the same paths under the guest's root, like a "make install DESTDIR="
// tree. Files keep their permission bits; folders are 0755 and
// everything is owned by root, whoever owns the host files.
func (r *initramfs) addTree(dir string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			r.addDir(name)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			r.addSymlink(name, target)
		case d.Type().IsRegular():
			return r.addHostFile(name, path)
		default:
			return fmt.Errorf("%s: not a file, folder or symbolic link", path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("initramfs: add %s: %w", dir, err)
	}
	return nil
}

// under returns a copy of the archive with every entry moved below the
// guest folder dir, e.g. for an init script to lay it over another root.
// The console node is left out: it is only for the kernel's own rootfs.
func (r *initramfs) under(dir string) *initramfs {
	out := &initramfs{dirs: map[string]bool{}}
	for _, e := range r.entries {
		if e.name == "dev/console" {
			continue
		}
		e.name = path.Join(dir, e.name)
		if e.mode&modeDir != 0 {
			out.addDir(e.name)
		} else {
			out.add(e)
		}
	}
	return out
}

func (r *initramfs) add(e cpioEntry) {
	e.name = strings.TrimPrefix(path.Clean("/"+e.name), "/")
	r.addDir(path.Dir(e.name))
	r.entries = append(r.entries, e)
}

func (r *initramfs) addDir(name string) {
	if name == "." || r.dirs[name] {
		return
	}
	r.addDir(path.Dir(name))
	r.dirs[name] = true
	r.entries = append(r.entries, cpioEntry{name: name, mode: modeDir | 0o755})
}

// writeGzip writes the archive, gzip-compressed, to w.
func (r *initramfs) writeGzip(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := writeNewc(zw, r.entries); err != nil {
		return err
	}
	return zw.Close()
}

// writeNewc writes entries as a newc ("070701") cpio archive: a header of
// thirteen 8-digit hex fields, the NUL-terminated name and the data, each
// padded to four bytes, ended by a TRAILER!!! entry.
func writeNewc(w io.Writer, entries []cpioEntry) error {
	for i, e := range append(entries, cpioEntry{name: newcTrailer}) {
		nlink := 1
		if e.mode&modeDir != 0 {
			nlink = 2
		}
		header := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			newcMagic,
			i+1,    // inode
			e.mode, // mode
			0, 0,   // uid, gid
			nlink,       // nlink
			0,           // mtime: fixed, so archives are reproducible
			len(e.data), // file size
			0, 0,        // device of the file system
			e.major, e.minor, // device of a device node
			len(e.name)+1, // name size with the NUL
			0)             // checksum, unused by newc
		record := header + e.name + "\x00"
		record += strings.Repeat("\x00", padding(len(record)))
		if _, err := io.WriteString(w, record); err != nil {
			return fmt.Errorf("write cpio: %w", err)
		}
		if _, err := w.Write(e.data); err != nil {
			return fmt.Errorf("write cpio: %w", err)
		}
		if _, err := w.Write(make([]byte, padding(len(e.data)))); err != nil {
			return fmt.Errorf("write cpio: %w", err)
		}
	}
	return nil
}

func padding(n int) int {
	return (newcAlignTo - n%newcAlignTo) % newcAlignTo
}
