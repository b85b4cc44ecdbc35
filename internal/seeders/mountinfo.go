// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// mountInfo is one line of /proc/self/mountinfo (proc_pid_mountinfo(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Paths and the source are unescaped: the kernel writes a space, tab,
// newline or backslash in them as a three-digit octal escape (\040).
type mountInfo struct {
	Major, Minor uint32
	Root         string
	MountPoint   string
	// Options are the mount's own options (ro, nosuid …); SuperOptions
	// those of the file system, shared by all its mounts.
	Options      []string
	FSType       string
	Source       string
	SuperOptions []string
}

// readOnly reports whether the mount or its file system is read-only.
func (m mountInfo) readOnly() bool {
	return slices.Contains(m.Options, "ro") || slices.Contains(m.SuperOptions, "ro")
}

// errMountInfo: a mountinfo line does not have the kernel's format.
var errMountInfo = errors.New("malformed mountinfo line")

// maxMountInfoLine bounds one line. The kernel limits paths to PATH_MAX
// (4096 bytes, four times that escaped), so two of them and the options fit.
const maxMountInfoLine = 64 << 10

// parseMountInfo reads every line of a mountinfo file, in order. A line
// that does not parse is an error: the file comes from the kernel, and a
// guess about a damaged line could pick the wrong device.
func parseMountInfo(r io.Reader) ([]mountInfo, error) {
	var mounts []mountInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxMountInfoLine)
	for n := 1; sc.Scan(); n++ {
		m, err := parseMountInfoLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// parseMountInfoLine parses one line. Fields are separated by single
// spaces; optional fields (shared:N, master:N …) after the sixth run up to
// a lone "-" (which the root or mount point may also be).
func parseMountInfoLine(line string) (mountInfo, error) {
	f := strings.Split(line, " ")
	sep := -1
	if len(f) > 6 {
		if i := slices.Index(f[6:], "-"); i >= 0 {
			sep = 6 + i
		}
	}
	if sep < 0 || len(f) != sep+4 {
		return mountInfo{}, fmt.Errorf("%w: %d fields", errMountInfo, len(f))
	}
	if slices.Contains(f, "") {
		return mountInfo{}, fmt.Errorf("%w: empty field", errMountInfo)
	}
	for _, id := range f[:2] {
		if _, err := strconv.ParseUint(id, 10, 32); err != nil {
			return mountInfo{}, fmt.Errorf("%w: mount id %q", errMountInfo, id)
		}
	}
	var m mountInfo
	major, minor, ok := strings.Cut(f[2], ":")
	if !ok {
		return mountInfo{}, fmt.Errorf("%w: device %q", errMountInfo, f[2])
	}
	var err error
	if m.Major, err = parseDevNumber(major); err == nil {
		m.Minor, err = parseDevNumber(minor)
	}
	if err != nil {
		return mountInfo{}, fmt.Errorf("%w: device %q", errMountInfo, f[2])
	}
	fields := []*string{&m.Root, &m.MountPoint, &m.FSType, &m.Source}
	for i, raw := range []string{f[3], f[4], f[sep+1], f[sep+2]} {
		if *fields[i], err = unescapeMountField(raw); err != nil {
			return mountInfo{}, err
		}
	}
	m.Options = strings.Split(f[5], ",")
	m.SuperOptions = strings.Split(f[sep+3], ",")
	return m, nil
}

func parseDevNumber(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// unescapeMountField undoes the kernel's octal escapes (\ooo, at most \377).
// A backslash not followed by one is an error: the kernel escapes every
// backslash it prints.
func unescapeMountField(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 >= len(s) {
			return "", fmt.Errorf("%w: truncated escape in %q", errMountInfo, s)
		}
		c, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("%w: bad escape in %q", errMountInfo, s)
		}
		b.WriteByte(byte(c))
		i += 3
	}
	return b.String(), nil
}
