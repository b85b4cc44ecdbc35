// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

func TestEnableLinks(t *testing.T) {
	files := map[string]string{
		"/usr/lib/systemd/system/early.service": "[Unit]\nDefaultDependencies=no\n[Install]\nWantedBy=sysinit.target\n",
		"/usr/lib/systemd/system/both.service":  "[Install]\nWantedBy=multi-user.target graphical.target\nRequiredBy=x.target\n",
		// /etc overrides /usr/lib, as in systemd.
		"/usr/lib/systemd/system/over.service": "[Install]\nWantedBy=a.target\n",
		"/etc/systemd/system/over.service":     "[Install]\nWantedBy=b.target\n",
		"/etc/systemd/system/static.service":   "[Service]\nExecStart=/bin/true\n",
	}
	read := func(p string) (string, error) {
		if text, ok := files[p]; ok {
			return text, nil
		}
		return "", fs.ErrNotExist
	}
	tests := []struct {
		name    string
		units   []string
		want    map[string]string
		wantErr string
	}{
		{
			name:  "WantedBy",
			units: []string{"early.service"},
			want:  map[string]string{"/etc/systemd/system/sysinit.target.wants/early.service": "/usr/lib/systemd/system/early.service"},
		},
		{
			name:  "several targets and RequiredBy",
			units: []string{"both.service"},
			want: map[string]string{
				"/etc/systemd/system/multi-user.target.wants/both.service": "/usr/lib/systemd/system/both.service",
				"/etc/systemd/system/graphical.target.wants/both.service":  "/usr/lib/systemd/system/both.service",
				"/etc/systemd/system/x.target.requires/both.service":       "/usr/lib/systemd/system/both.service",
			},
		},
		{
			name:  "a unit in /etc wins",
			units: []string{"over.service"},
			want:  map[string]string{"/etc/systemd/system/b.target.wants/over.service": "/etc/systemd/system/over.service"},
		},
		{name: "no [Install] section", units: []string{"static.service"}, wantErr: "no WantedBy="},
		{name: "no unit file", units: []string{"missing.service"}, wantErr: "no unit file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := enableLinks(tt.units, read)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("links = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSplitRuns(t *testing.T) {
	var console strings.Builder
	for _, e := range []protocol.Event{
		{Kind: protocol.KindInit, Fields: []protocol.Field{{Key: "scenario", Value: protocol.ScenarioPath}}},
		{Step: 1, Kind: protocol.KindStep, Fields: []protocol.Field{{Key: "text", Value: "exec /sbin/init"}}},
		{Kind: protocol.KindInit, Fields: []protocol.Field{{Key: "scenario", Value: ReportPath}}},
		{Step: 1, Kind: protocol.KindProbe, Fields: []protocol.Field{{Key: "ready", Value: "false"}}},
		{Kind: protocol.KindDone},
		{Kind: protocol.KindInit, Fields: []protocol.Field{{Key: "scenario", Value: "/vmtest/shutdown"}}},
		{Step: 1, Kind: protocol.KindHash},
	} {
		console.WriteString("noise " + protocol.Format(e) + "\r\n")
	}
	runs := splitRuns(newResult(console.String(), time.Second))
	kinds := map[string][]string{}
	for name, r := range runs {
		for _, e := range r.Events {
			kinds[name] = append(kinds[name], e.Kind)
		}
		if r.Console != console.String() || r.Wall != time.Second {
			t.Errorf("run %s lacks the boot's console and wall time", name)
		}
	}
	want := map[string][]string{
		protocol.ScenarioPath: {"init", "step"},
		ReportPath:            {"init", "probe", "done"},
		"/vmtest/shutdown":    {"init", "hash"},
	}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("runs = %v, want %v", kinds, want)
	}
}

func TestParseUnits(t *testing.T) {
	tests := []struct {
		name    string
		lines   []string
		want    Units
		wantErr bool
	}{
		{
			name:  "two units",
			lines: []string{"Id=a.service", "ActiveState=active", "ActiveEnterTimestampMonotonic=1500000", "", "ActiveState=inactive", "Id=b.target", "Result="},
			want: Units{
				"a.service": {"Id": "a.service", "ActiveState": "active", "ActiveEnterTimestampMonotonic": "1500000"},
				"b.target":  {"Id": "b.target", "ActiveState": "inactive", "Result": ""},
			},
		},
		{name: "value with equals sign", lines: []string{"Id=c.service", "Environment=A=B"}, want: Units{"c.service": {"Id": "c.service", "Environment": "A=B"}}},
		{name: "no Id", lines: []string{"ActiveState=active"}, wantErr: true},
		{name: "a warning line", lines: []string{"Id=a.service", "Warning: the unit file changed on disk"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUnits(tt.lines)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("units = %v, want %v", got, tt.want)
			}
		})
	}
	units := Units{"a.service": {"Id": "a.service", "T": "1500000", "Bad": "soon"}}
	if d, err := units.Monotonic("a.service", "T"); err != nil || d != 1500*time.Millisecond {
		t.Errorf("Monotonic = %v, %v; want 1.5s", d, err)
	}
	for _, key := range []string{"Bad", "Missing"} {
		if _, err := units.Monotonic("a.service", key); err == nil {
			t.Errorf("Monotonic(%s) did not fail", key)
		}
	}
}

func TestParseJournal(t *testing.T) {
	lines := []string{
		"-- Boot 6c4d8139a41b439eafa994a8952c1829 --",
		"[   19.578720] vm kernel: random: crng init done",
		"[    0.000000] vm kernel: Command line: console=ttyS0",
		"[   19.651448] vm systemd[1]: Started entropy-gate.service - Wait for the kernel random number generator.",
		"[  123.000001] vm (modprobe)[108]: modprobe@loop.service: Executable /sbin/modprobe missing",
		"    a continuation line",
		"[   20.000000] vm init[136]: EGLAB 1 0 done ~00000000",
	}
	want := []JournalEntry{
		{Time: 19578720 * time.Microsecond, Ident: "kernel", Message: "random: crng init done"},
		{Time: 0, Ident: "kernel", Message: "Command line: console=ttyS0"},
		{Time: 19651448 * time.Microsecond, Ident: "systemd", Message: "Started entropy-gate.service - Wait for the kernel random number generator."},
		{Time: 123000001 * time.Microsecond, Ident: "(modprobe)", Message: "modprobe@loop.service: Executable /sbin/modprobe missing"},
		{Time: 20 * time.Second, Ident: "init", Message: "EGLAB 1 0 done ~00000000"},
	}
	got := ParseJournal(lines)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseJournal:\n got %+v\nwant %+v", got, want)
	}
	if e, ok := FindJournal(got, "systemd", "entropy-gate.service"); !ok || e.Time != want[2].Time {
		t.Errorf("FindJournal(systemd) = %+v, %v", e, ok)
	}
	if _, ok := FindJournal(got, "kernel", "entropy-gate"); ok {
		t.Error("FindJournal matched another identifier")
	}
	if e, ok := FindJournal(got, "", "crng"); !ok || e.Ident != "kernel" {
		t.Errorf("FindJournal(any) = %+v, %v", e, ok)
	}
}

func TestPickMirror(t *testing.T) {
	tests := []struct {
		name   string
		list   string // sources.list lines
		deb822 string // a .sources file
		want   string
	}{
		{
			name: "one-line format with options",
			list: "# comment\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n",
			want: "http://mirror.example/debian",
		},
		{
			name:   "deb822, skipping disabled stanzas and other suites",
			deb822: "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\nTypes: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb deb-src\nURIs: cdrom:/media/ https://on.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n",
			want:   "https://on.example/debian",
		},
		{name: "no main component", list: "deb http://contrib.example/debian bookworm contrib\n", want: defaultMirror},
		{name: "nothing configured", want: defaultMirror},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := append(parseSourcesList(tt.list), parseDeb822Sources(tt.deb822)...)
			if got := pickMirror(sources, "bookworm"); got != tt.want {
				t.Errorf("mirror = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAddTree(t *testing.T) {
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "usr/sbin"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "usr/sbin/tool"), []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../tool.service", filepath.Join(tree, "usr/tool.link")); err != nil {
		t.Fatal(err)
	}
	r := newInitramfs()
	if err := r.addTree(tree); err != nil {
		t.Fatal(err)
	}
	for _, e := range r.entries {
		if e.mode&modeDir != 0 && e.mode&0o777 != 0o755 {
			t.Errorf("folder %s has mode %o, want 0755 whatever the host's", e.name, e.mode&0o777)
		}
	}
	if e := entry(r, "usr/sbin/tool"); e.mode != modeRegular|0o755 || string(e.data) != "binary" {
		t.Errorf("tool entry = %o %q", e.mode, e.data)
	}
	if e := entry(r, "usr/tool.link"); e.mode != modeSymlink|0o777 || string(e.data) != "../tool.service" {
		t.Errorf("link entry = %o %q", e.mode, e.data)
	}
	for _, dir := range []string{"usr", "usr/sbin"} {
		if e := entry(r, dir); e.mode != modeDir|0o755 {
			t.Errorf("%s entry = %o", dir, e.mode)
		}
	}
}

func entry(r *initramfs, name string) cpioEntry {
	for _, e := range r.entries {
		if e.name == name {
			return e
		}
	}
	return cpioEntry{}
}

func TestWriteSystemInitrd(t *testing.T) {
	dir := t.TempDir()
	system := filepath.Join(dir, "system.cpio.zst")
	if err := os.WriteFile(system, []byte("compressed"), 0o644); err != nil { // 10 bytes
		t.Fatal(err)
	}
	r := newInitramfs()
	r.addFile("/etc/x", 0o644, []byte("y"))
	initrd := filepath.Join(dir, "initrd")
	if err := writeSystemInitrd(initrd, system, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(initrd)
	if err != nil {
		t.Fatal(err)
	}
	// The uncompressed archive starts at the next 4-byte boundary.
	if !bytes.HasPrefix(data, []byte("compressed\x00\x00070701")) {
		t.Errorf("initrd starts %q", data[:min(len(data), 20)])
	}
	if err := writeSystemInitrd(initrd, filepath.Join(dir, "missing"), r); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing system archive: %v", err)
	}
}
