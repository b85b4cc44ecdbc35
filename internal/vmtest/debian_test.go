// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostLoader is the dynamic loader of Debian's amd64 programs.
const hostLoader = "/lib64/ld-linux-x86-64.so.2"

// copyInto copies the host file src to guestPath under root.
func copyInto(t *testing.T, root, guestPath, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, guestPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestProgramFiles(t *testing.T) {
	// ls needs libselinux, which needs libpcre2: a chain of two.
	for _, p := range []string{"/bin/ls", hostLoader, "/lib/x86_64-linux-gnu/libselinux.so.1"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs Debian's amd64 ls with libselinux: %v", err)
		}
	}
	static, err := Build(t.Context(), guestInitPackage, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pkgRoot := t.TempDir()
	pkgLib := copyInto(t, pkgRoot, "/usr/lib/x86_64-linux-gnu/libselinux.so.1", "/lib/x86_64-linux-gnu/libselinux.so.1")
	noLoader := t.TempDir()
	copyInto(t, noLoader, "/usr/bin/ls", "/bin/ls")
	noLibs := t.TempDir()
	copyInto(t, noLibs, "/usr/bin/ls", "/bin/ls")
	copyInto(t, noLibs, hostLoader, hostLoader)
	staticRoot := t.TempDir()
	copyInto(t, staticRoot, "/sbin/init", static)

	tests := []struct {
		name    string
		program string
		roots   []string
		want    map[string]string // guest path → host path
		exact   bool              // want is all of it
		absent  []string
		wantErr string
	}{
		{
			name: "host program with its libraries, transitively", program: "/bin/ls", roots: []string{"/"},
			want: map[string]string{
				"/bin/ls":                               "/bin/ls",
				hostLoader:                              hostLoader,
				"/lib/x86_64-linux-gnu/libc.so.6":       "/lib/x86_64-linux-gnu/libc.so.6",
				"/lib/x86_64-linux-gnu/libselinux.so.1": "/lib/x86_64-linux-gnu/libselinux.so.1",
				"/lib/x86_64-linux-gnu/libpcre2-8.so.0": "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
			},
		},
		{
			name: "an unpacked package wins over the host", program: "/bin/ls", roots: []string{pkgRoot, "/"},
			want: map[string]string{
				"/usr/lib/x86_64-linux-gnu/libselinux.so.1": pkgLib,
				"/lib/x86_64-linux-gnu/libpcre2-8.so.0":     "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
			},
			absent: []string{"/lib/x86_64-linux-gnu/libselinux.so.1"},
		},
		{
			name: "static program alone", program: "/sbin/init", roots: []string{staticRoot},
			want:  map[string]string{"/sbin/init": filepath.Join(staticRoot, "sbin/init")},
			exact: true,
		},
		{name: "missing loader", program: "/usr/bin/ls", roots: []string{noLoader}, wantErr: "dynamic loader " + hostLoader + " not found"},
		{name: "missing library", program: "/usr/bin/ls", roots: []string{noLibs}, wantErr: "libselinux.so.1 (needed by ls) not found"},
		{name: "missing program", program: "/usr/sbin/nothing", roots: []string{"/"}, wantErr: "program /usr/sbin/nothing: not in /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := programFiles(tt.program, tt.roots)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("programFiles = %v, %v; want an error with %q", files, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for guest, host := range tt.want {
				if got, ok := files[guest]; !ok || got != host {
					t.Errorf("files[%s] = %q, want %q", guest, got, host)
				}
			}
			if tt.exact && len(files) != len(tt.want) {
				t.Errorf("files = %v, want exactly %v", files, tt.want)
			}
			for _, guest := range tt.absent {
				if _, ok := files[guest]; ok {
					t.Errorf("files has %s: %v", guest, files)
				}
			}
		})
	}
}

// TestDebianProgramsInGuest fetches the entropy daemons the survey runs
// and starts each in the guest, which has nothing but our init.
func TestDebianProgramsInGuest(t *testing.T) {
	lab := New(t)
	ctx := t.Context()
	files := map[string]string{}
	for _, p := range []struct {
		program string
		pkgs    []string
	}{
		{"/usr/sbin/haveged", []string{"haveged", "libhavege2"}},
		{"/usr/sbin/jitterentropy-rngd", []string{"jitterentropy-rngd"}},
	} {
		got, err := lab.DebianProgram(ctx, p.program, p.pkgs...)
		if errors.Is(err, ErrUnavailable) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got[hostLoader]; !ok {
			t.Errorf("%s: no dynamic loader in %v", p.program, slices.Sorted(maps.Keys(got)))
		}
		for guest, host := range got {
			files[guest] = host
		}
	}
	res, err := lab.Boot(ctx, Config{Files: files, Script: `
		run /usr/sbin/haveged --version
		run /usr/sbin/jitterentropy-rngd --version
	`})
	if err != nil {
		t.Fatal(err)
	}
	for step, want := range map[int]string{1: "haveged 1.", 2: "jitterentropy-rngd 1."} {
		code, err := res.ExitCode(step)
		out := strings.Join(res.Output(step), "\n")
		if err != nil || code != 0 || !strings.Contains(out, want) {
			t.Errorf("step %d: exit %d (%v), output %q, want %q", step, code, err, out, want)
		}
	}
}
