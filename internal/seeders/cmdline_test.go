package seeders

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// Shortened from a Tails stick: syslinux for BIOS boots, GRUB for UEFI.
const (
	testSyslinux = `label live-amd64
	menu label Tails
	menu default
	linux /live/vmlinuz
	initrd /live/initrd.img
	append boot=live config live-media=removable nopersistence noprompt splash entropy_gate.seed=0 quiet

label live-amd64-failsafe
	menu label Tails (Troubleshooting Mode)
	linux /live/vmlinuz
	initrd /live/initrd.img
	append boot=live config live-media=removable entropy_gate.seed=0 noapic noapm nodma nomce
`
	testGrub = "set default=0\r\n" +
		"menuentry 'Tails' {\r\n" +
		"\tlinux /live/vmlinuz boot=live config splash entropy_gate.seed=0 quiet\r\n" +
		"\tinitrd /live/initrd.img\r\n" +
		"}\r\n"
)

var tokenRE = regexp.MustCompile(`entropy_gate\.seed=([^\s]*)`)

// tokens returns the token values in a file.
func tokens(b []byte) []string {
	var out []string
	for _, m := range tokenRE.FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// withoutTokens sets every token value back to 0, to compare the rest.
func withoutTokens(b []byte) []byte {
	return tokenRE.ReplaceAll(b, []byte("entropy_gate.seed=0"))
}

// cmdlineOnDir is a command-line backend on a plain directory holding the
// two configurations, behind a fake mount that starts read-only.
func cmdlineOnDir(t *testing.T, syslinux, grub string) (CmdlineBackend, *fakeMounts, []string) {
	t.Helper()
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "syslinux", "live64.cfg"), filepath.Join(dir, "EFI", "debian", "grub.cfg")}
	for i, text := range []string{syslinux, grub} {
		if err := os.MkdirAll(filepath.Dir(paths[i]), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, paths[i], []byte(text), 0o644)
	}
	m := readOnlyMount()
	return CmdlineBackend{Medium: dir, Mounts: m}, m, paths
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func TestCmdlineStore(t *testing.T) {
	b, m, paths := cmdlineOnDir(t, testSyslinux, testGrub)
	if err := os.Chmod(paths[1], 0o600); err != nil {
		t.Fatal(err)
	}
	rec := testRecord(0x50, 9, true)
	if err := b.Store(rec); err != nil {
		t.Fatal(err)
	}
	want, err := cmdlineToken(rec)
	if err != nil {
		t.Fatal(err)
	}
	for i, orig := range []string{testSyslinux, testGrub} {
		got := readFile(t, paths[i])
		toks := tokens(got)
		if len(toks) != strings.Count(orig, "entropy_gate.seed=") {
			t.Fatalf("%s: tokens %v", paths[i], toks)
		}
		for _, tok := range toks {
			if tok != want {
				t.Fatalf("%s: token %q, want the record's %q", paths[i], tok, want)
			}
		}
		if !bytes.Equal(withoutTokens(got), []byte(orig)) {
			t.Fatalf("%s: more than the token changed:\n%s", paths[i], got)
		}
	}
	for path, mode := range map[string]fs.FileMode{paths[0]: 0o644, paths[1]: 0o600} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: mode %v, %v; want %v kept", path, st.Mode(), err, mode)
		}
		if got := entries(t, filepath.Dir(path)); len(got) != 1 {
			t.Fatalf("%s: directory holds %v, want no temporary file left", path, got)
		}
	}
	if m.calls() != "rw,ro" || !m.medium.MountedReadOnly {
		t.Fatalf("remounts %q, want one read-write window and read-only at the end", m.calls())
	}
}

// The token is public: it must not be, or contain, the seed. Every new
// record gives a new token.
func TestCmdlineToken(t *testing.T) {
	seen := map[string]bool{}
	for i := range 4 {
		rec := testRecord(byte(0x10*i), uint64(i), true)
		tok, err := cmdlineToken(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tok) {
			t.Fatalf("token %q, want 128 bits in hex", tok)
		}
		assertNoSecret(t, "token", tok, rec.seed())
		if seen[tok] {
			t.Fatal("two records gave the same token")
		}
		seen[tok] = true
	}
	if _, err := cmdlineToken(Record{}); err == nil {
		t.Fatal("token of an empty record")
	}
}

// Nothing from the command line ever reaches the kernel: the token is
// public and already mixed at boot. The next boot still gets a new one.
func TestCmdlineNeverCreditsNorMixes(t *testing.T) {
	b, _, paths := cmdlineOnDir(t, testSyslinux, testGrub)
	l, err := b.Load()
	if err != nil || l.Content != ContentEmpty || l.NoCredit == "" || l.material() != nil {
		t.Fatalf("Load = %+v, %v; want no seed material and a reason never to credit", l, err)
	}
	for _, ready := range []bool{false, true} {
		before := tokens(readFile(t, paths[0]))[0]
		k := &FakeKernel{Initialized: ready}
		res := Seeder{Backend: b, Kernel: k}.Seed()
		noCall(t, k, OpCredit)
		noCall(t, k, OpMix)
		if !res.Refreshed || res.Err != nil {
			t.Fatalf("Seed = %+v, want the token refreshed", res)
		}
		if after := tokens(readFile(t, paths[0]))[0]; after == before {
			t.Fatal("the token did not change")
		}
	}
}

// A file is either edited as EditBootConfig says, or left byte-identical
// and never rewritten; whatever fails, the medium ends read-only.
func TestCmdlineNeverCorrupts(t *testing.T) {
	const quoted = "APPEND boot=live \"acpi_osi=!Windows 2012\" entropy_gate.seed=0\n"
	tests := []struct {
		name           string
		syslinux, grub string
		insert         bool
		setup          func(t *testing.T, paths []string)
		wantLoadErr    error // nil: Load must succeed
		wantStoreErr   error // nil: Store must succeed
		changed        []bool
	}{
		{name: "no token and no insert", syslinux: "APPEND boot=live quiet\n", grub: "linux /vmlinuz quiet\n",
			wantLoadErr: ErrNoKernelLine, wantStoreErr: ErrNoKernelLine, changed: []bool{false, false}},
		{name: "token only on a line that cannot be edited safely", syslinux: quoted, grub: "linux /vmlinuz quiet\n",
			wantLoadErr: ErrNoKernelLine, wantStoreErr: ErrNoKernelLine, changed: []bool{false, false}},
		{name: "one file without token", syslinux: testSyslinux, grub: "linux /vmlinuz quiet\n", changed: []bool{true, false}},
		{name: "insert", syslinux: "APPEND boot=live quiet\n", grub: "linux /vmlinuz quiet\n", insert: true, changed: []bool{true, true}},
		{name: "one file missing", syslinux: testSyslinux, grub: testGrub, setup: func(t *testing.T, paths []string) {
			if err := os.Remove(paths[1]); err != nil {
				t.Fatal(err)
			}
		}, wantLoadErr: fs.ErrNotExist, wantStoreErr: fs.ErrNotExist, changed: []bool{true, false}},
		{name: "one file a symlink", syslinux: testSyslinux, grub: testGrub, setup: func(t *testing.T, paths []string) {
			target := paths[1] + ".real"
			if err := os.Rename(paths[1], target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Base(target), paths[1]); err != nil {
				t.Fatal(err)
			}
		}, wantLoadErr: errAny, wantStoreErr: errAny, changed: []bool{true, false}},
		{name: "one file too large", syslinux: testSyslinux, grub: testGrub + strings.Repeat("#\n", maxBootConfig/2),
			wantLoadErr: errAny, wantStoreErr: errAny, changed: []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, m, paths := cmdlineOnDir(t, tt.syslinux, tt.grub)
			b.Insert = tt.insert
			if tt.setup != nil {
				tt.setup(t, paths)
			}
			type state struct {
				content []byte
				ino     uint64
			}
			before := make([]state, len(paths))
			for i, p := range paths {
				if c, err := os.ReadFile(p); err == nil {
					before[i] = state{c, inode(t, p)}
				}
			}

			_, err := b.Load()
			checkErr(t, "Load", err, tt.wantLoadErr)
			err = b.Store(testRecord(0x60, 1, true))
			checkErr(t, "Store", err, tt.wantStoreErr)

			for i, p := range paths {
				got, _ := os.ReadFile(p)
				ino := uint64(0)
				if before[i].content != nil {
					ino = inode(t, p)
				}
				same := bytes.Equal(got, before[i].content) && ino == before[i].ino
				if same == tt.changed[i] {
					t.Fatalf("%s changed: %t, want %t", p, !same, tt.changed[i])
				}
				if tt.changed[i] && !tt.insert && !bytes.Equal(withoutTokens(got), withoutTokens(before[i].content)) {
					t.Fatalf("%s: more than the token changed", p)
				}
			}
			if !m.medium.MountedReadOnly {
				t.Fatal("medium left writable")
			}
		})
	}
}

func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s = %v, want success", what, err)
	case want == errAny && err == nil, want != nil && want != errAny && !errors.Is(err, want):
		t.Fatalf("%s = %v, want %v", what, err, want)
	}
}

// On a medium that can never be written nothing is attempted, and the
// result says the token could not be refreshed.
func TestCmdlineUnwritableMedium(t *testing.T) {
	b, m, paths := cmdlineOnDir(t, testSyslinux, testGrub)
	m.medium.Unwritable = "iso9660 file system"
	if l, err := b.Load(); err != nil || !l.ReadOnly {
		t.Fatalf("Load = %+v, %v; want a read-only medium", l, err)
	}
	res := Seeder{Backend: b, Kernel: &FakeKernel{}}.Seed()
	if res.Refreshed || m.calls() != "" {
		t.Fatalf("Seed = %+v, remounts %q; want no refresh, no remount", res, m.calls())
	}
	if err := b.Store(testRecord(1, 1, true)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Store = %v, want ErrReadOnly", err)
	}
	if string(readFile(t, paths[0])) != testSyslinux {
		t.Fatal("configuration on an unwritable medium changed")
	}
}

func TestCmdlineConfiguration(t *testing.T) {
	tests := []struct {
		name string
		b    CmdlineBackend
	}{
		{name: "path off the medium", b: CmdlineBackend{Files: []string{"../boot/grub/grub.cfg"}}},
		{name: "no files", b: CmdlineBackend{Files: []string{}}},
		{name: "unsafe key", b: CmdlineBackend{Files: []string{"syslinux/live64.cfg"}, Key: "a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, paths := cmdlineOnDir(t, testSyslinux, testGrub)
			m := readOnlyMount()
			tt.b.Medium, tt.b.Mounts = filepath.Dir(filepath.Dir(paths[0])), m
			if _, err := tt.b.Load(); err == nil {
				t.Fatal("Load accepted the configuration")
			}
			if err := tt.b.Store(testRecord(1, 1, true)); err == nil || m.calls() != "" {
				t.Fatalf("Store = %v, remounts %q; want a refusal before any remount", err, m.calls())
			}
			if string(readFile(t, paths[0])) != testSyslinux {
				t.Fatal("configuration changed")
			}
		})
	}
	if got := (CmdlineBackend{}).Name(); got != "cmdline:/run/live/medium" {
		t.Fatalf("Name = %q", got)
	}
}
