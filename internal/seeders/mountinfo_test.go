// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseMountInfoLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    mountInfo
		wantErr bool
	}{
		{
			name: "Tails boot medium",
			line: `30 25 8:17 / /run/live/medium ro,noatime shared:13 - vfat /dev/sdb1 ro,fmask=0077,dmask=0077`,
			want: mountInfo{Major: 8, Minor: 17, Root: "/", MountPoint: "/run/live/medium", Options: []string{"ro", "noatime"},
				FSType: "vfat", Source: "/dev/sdb1", SuperOptions: []string{"ro", "fmask=0077", "dmask=0077"}},
		},
		{
			name: "no optional fields",
			line: `36 35 98:0 /mnt1 /mnt2 rw,noatime - ext3 /dev/root rw,errors=continue`,
			want: mountInfo{Major: 98, Root: "/mnt1", MountPoint: "/mnt2", Options: []string{"rw", "noatime"},
				FSType: "ext3", Source: "/dev/root", SuperOptions: []string{"rw", "errors=continue"}},
		},
		{
			name: "several optional fields",
			line: `36 35 259:65537 / /m rw shared:1 master:2 propagate_from:3 unbindable - ext4 /dev/x rw`,
			want: mountInfo{Major: 259, Minor: 65537, Root: "/", MountPoint: "/m", Options: []string{"rw"},
				FSType: "ext4", Source: "/dev/x", SuperOptions: []string{"rw"}},
		},
		{
			name: "octal escapes in paths and source",
			line: `1 1 8:1 /a\134b /media/amnesia/SD\040card\011x\012y rw - fuse.my\040fs my\040src rw`,
			want: mountInfo{Major: 8, Minor: 1, Root: `/a\b`, MountPoint: "/media/amnesia/SD card\tx\ny", Options: []string{"rw"},
				FSType: "fuse.my fs", Source: "my src", SuperOptions: []string{"rw"}},
		},
		{
			name: "a root named - is not the separator",
			line: `1 1 0:5 - /m rw - tmpfs tmpfs rw`,
			want: mountInfo{Minor: 5, Root: "-", MountPoint: "/m", Options: []string{"rw"}, FSType: "tmpfs", Source: "tmpfs", SuperOptions: []string{"rw"}},
		},
		{name: "no separator", line: `1 1 8:1 / /m rw ext4 /dev/x rw`, wantErr: true},
		{name: "separator too early", line: `1 1 8:1 / - ext4 /dev/x rw`, wantErr: true},
		{name: "field missing after the separator", line: `1 1 8:1 / /m rw - ext4 /dev/x`, wantErr: true},
		{name: "extra field after the separator", line: `1 1 8:1 / /m rw - ext4 /dev/x rw extra`, wantErr: true},
		{name: "double space", line: `1 1 8:1 /  /m rw - ext4 /dev/x rw`, wantErr: true},
		{name: "device without colon", line: `1 1 8 / /m rw - ext4 /dev/x rw`, wantErr: true},
		{name: "device number too big", line: `1 1 8:4294967296 / /m rw - ext4 /dev/x rw`, wantErr: true},
		{name: "negative device number", line: `1 1 -8:1 / /m rw - ext4 /dev/x rw`, wantErr: true},
		{name: "mount id not a number", line: `x 1 8:1 / /m rw - ext4 /dev/x rw`, wantErr: true},
		{name: "truncated escape", line: `1 1 8:1 / /m\04 rw - ext4 /dev/x rw`, wantErr: true},
		{name: "non-octal escape", line: `1 1 8:1 / /m\090 rw - ext4 /dev/x rw`, wantErr: true},
		{name: "escape above a byte", line: `1 1 8:1 / /m\400 rw - ext4 /dev/x rw`, wantErr: true},
		{name: "lone backslash", line: `1 1 8:1 / /m\ rw - ext4 /dev/x rw`, wantErr: true},
		{name: "empty", line: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountInfoLine(tt.line)
			if tt.wantErr {
				if !errors.Is(err, errMountInfo) {
					t.Fatalf("parse = %+v, %v; want errMountInfo", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parse =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseMountInfoNamesTheBadLine(t *testing.T) {
	_, err := parseMountInfo(strings.NewReader("1 1 0:5 / / rw - tmpfs tmpfs rw\nbroken\n"))
	if !errors.Is(err, errMountInfo) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("parse = %v, want errMountInfo at line 2", err)
	}
}

func TestMountInfoReadOnly(t *testing.T) {
	tests := []struct {
		name         string
		options, sup []string
		want         bool
	}{
		{name: "read-write", options: []string{"rw", "noatime"}, sup: []string{"rw"}},
		{name: "mount read-only", options: []string{"ro", "noatime"}, sup: []string{"rw"}, want: true},
		{name: "file system read-only", options: []string{"rw"}, sup: []string{"ro", "fmask=0077"}, want: true},
		{name: "ro only inside another option", options: []string{"rw", "errors=ro"}, sup: []string{"rw", "ro=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (mountInfo{Options: tt.options, SuperOptions: tt.sup}).readOnly(); got != tt.want {
				t.Fatalf("readOnly = %t, want %t", got, tt.want)
			}
		})
	}
}

// escapeMountField is what the kernel does to paths and names in mountinfo
// (mangle() in fs/proc_namespace.c).
func escapeMountField(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func formatMountInfo(m mountInfo) string {
	return fmt.Sprintf("1 2 %d:%d %s %s %s shared:1 - %s %s %s", m.Major, m.Minor,
		escapeMountField(m.Root), escapeMountField(m.MountPoint), strings.Join(m.Options, ","),
		escapeMountField(m.FSType), escapeMountField(m.Source), strings.Join(m.SuperOptions, ","))
}

// FuzzParseMountInfo checks that the parser never panics, and that what it
// accepts survives the kernel's escaping: a mount written back the way the
// kernel writes it parses to the same mount. A mistake there would make
// FindMedium match the wrong mount point.
func FuzzParseMountInfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		mounts, err := parseMountInfo(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, m := range mounts {
			if m.MountPoint == "" || m.FSType == "" || len(m.Options) == 0 {
				t.Fatalf("accepted a mount with an empty field: %+v", m)
			}
			line := formatMountInfo(m)
			again, err := parseMountInfoLine(line)
			if err != nil {
				t.Fatalf("%+v written as %q does not parse: %v", m, line, err)
			}
			if !reflect.DeepEqual(again, m) {
				t.Fatalf("round trip changed the mount:\n%+v\n%+v", m, again)
			}
		}
	})
}
