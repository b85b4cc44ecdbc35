// SPDX-License-Identifier: GPL-3.0-or-later

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

// noToken is the placeholder token the image build writes: as long as a
// real one, so that the first one fits in place.
var noToken = strings.Repeat("0", 2*cmdlineTokenBytes)

// Token files as a Tails stick has them: syslinux's, INCLUDEd in a label
// of syslinux/live64.cfg (two LINUX lines here, to edit both), and GRUB's
// environment block, loaded by EFI/debian/grub.cfg.
var (
	testSyslinux = syslinuxTokenFile("# entropy-gate: the kernel line of the Tails labels, with the seed token\n" +
		"linux /live/vmlinuz entropy_gate.seed=" + noToken + "\n" +
		"LINUX /live/vmlinuz entropy_gate.seed=" + noToken + "\n")
	testGrub = grubEnvBlock(GRUBTokenVar + "=" + noToken + "\n")
)

// syslinuxTokenFile pads lines to one sector with a comment, as the image
// build writes the file.
func syslinuxTokenFile(lines string) string {
	return lines + strings.Repeat("#", 512-len(lines))
}

// grubEnvBlock is a GRUB environment block of 1024 bytes holding vars, as
// grub-editenv writes it.
func grubEnvBlock(vars string) string {
	text := grubEnvHeader + vars
	return text + strings.Repeat("#", 1024-len(text))
}

var tokenRE = regexp.MustCompile(`entropy_gate[._]seed=([0-9a-f]*)`)

// tokens returns the token values in a file.
func tokens(b []byte) []string {
	var out []string
	for _, m := range tokenRE.FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// withoutTokens sets every token value back to the placeholder, to
// compare the rest.
func withoutTokens(b []byte) []byte {
	return tokenRE.ReplaceAllFunc(b, func(m []byte) []byte {
		key, _, _ := bytes.Cut(m, []byte("="))
		return append(append([]byte(nil), key...), "="+noToken...)
	})
}

// cmdlineOnDir is a command-line backend on a plain directory holding the
// two configurations, behind a fake mount that starts read-only.
func cmdlineOnDir(t *testing.T, syslinux, grub string) (CmdlineBackend, *fakeMounts, []string) {
	t.Helper()
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "syslinux", "entropy-gate.cfg"), filepath.Join(dir, "EFI", "debian", "entropy-gate.env")}
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

// storeToken stores a token made from rec, and returns it.
func storeToken(t *testing.T, b CmdlineBackend, rec Record) string {
	t.Helper()
	if err := b.Store(rec); err != nil {
		t.Fatal(err)
	}
	token, err := cmdlineToken(rec)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestCmdlineStore(t *testing.T) {
	b, m, paths := cmdlineOnDir(t, testSyslinux, testGrub)
	if err := os.Chmod(paths[1], 0o600); err != nil {
		t.Fatal(err)
	}
	inodes := []uint64{inode(t, paths[0]), inode(t, paths[1])}
	want := storeToken(t, b, testRecord(0x50, 9, true))
	for i, orig := range []string{testSyslinux, testGrub} {
		got := readFile(t, paths[i])
		toks := tokens(got)
		if len(toks) != len(tokens([]byte(orig))) {
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
		if inode(t, paths[i]) != inodes[i] {
			t.Fatalf("%s: replaced by another file, want the same one written in place", paths[i])
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

// The token goes on the world-readable command line: it is only ever
// made from an initialized CRNG (a creditable record), never from what
// getrandom gives before (GRND_INSECURE), and the files stay as they are.
func TestCmdlineTokenOnlyFromAnInitializedCRNG(t *testing.T) {
	b, m, paths := cmdlineOnDir(t, testSyslinux, testGrub)
	err := b.Store(testRecord(0x50, 9, false))
	checkErr(t, "Store of a record made before the CRNG was initialized", err, ErrCRNGNotInitialized)
	for i, orig := range []string{testSyslinux, testGrub} {
		if got := readFile(t, paths[i]); !bytes.Equal(got, []byte(orig)) {
			t.Errorf("%s changed:\n%s", paths[i], got)
		}
	}
	if m.calls() != "" {
		t.Errorf("remounts %q for a token that is not written, want none", m.calls())
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
		// A token is only made from an initialized CRNG.
		if res.Refreshed != ready || (res.Err != nil) == ready {
			t.Fatalf("Seed = %+v, want the token refreshed %t", res, ready)
		}
		if after := tokens(readFile(t, paths[0]))[0]; (after != before) != ready {
			t.Fatalf("the token changed %t, want %t", after != before, ready)
		}
	}
}

// A file is either edited as EditBootConfig says, or left byte-identical
// and never rewritten; whatever fails, the medium ends read-only.
func TestCmdlineNeverCorrupts(t *testing.T) {
	quoted := syslinuxTokenFile("LINUX /live/vmlinuz \"acpi_osi=!Windows 2012\" entropy_gate.seed=" + noToken + "\n")
	tests := []struct {
		name           string
		syslinux, grub string
		insert         bool
		setup          func(t *testing.T, paths []string)
		wantLoadErr    error // nil: Load must succeed
		wantStoreErr   error // nil: Store must succeed
		changed        []bool
	}{
		{name: "no token and no insert", syslinux: syslinuxTokenFile("LINUX /live/vmlinuz quiet\n"), grub: grubEnvBlock(""),
			wantLoadErr: ErrTokenFile, wantStoreErr: ErrTokenFile, changed: []bool{false, false}},
		{name: "token only on a line that cannot be edited safely", syslinux: quoted, grub: grubEnvBlock("other=1\n"),
			wantLoadErr: ErrTokenFile, wantStoreErr: ErrTokenFile, changed: []bool{false, false}},
		{name: "one file without token", syslinux: testSyslinux, grub: grubEnvBlock(""), wantLoadErr: ErrTokenFile, wantStoreErr: ErrTokenFile, changed: []bool{true, false}},
		{name: "insert, with padding to make room", syslinux: syslinuxTokenFile("LINUX /live/vmlinuz quiet\n"), grub: testGrub, insert: true, changed: []bool{true, true}},
		{name: "no room for the token", syslinux: "LINUX /live/vmlinuz entropy_gate.seed=0\n", grub: testGrub,
			wantLoadErr: ErrTokenFile, wantStoreErr: ErrTokenFile, changed: []bool{false, true}},
		{name: "not whole sectors", syslinux: "LINUX /live/vmlinuz entropy_gate.seed=" + noToken + "\n", grub: testGrub,
			wantStoreErr: ErrTokenFile, changed: []bool{false, true}},
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
		{name: "one file too large", syslinux: testSyslinux, grub: testGrub + strings.Repeat("#", maxTokenFile),
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
				same := bytes.Equal(got, before[i].content)
				if same == tt.changed[i] || ino != before[i].ino {
					t.Fatalf("%s changed: %t, want %t (inode %d, was %d: written in place, never replaced)", p, !same, tt.changed[i], ino, before[i].ino)
				}
				if len(got) != len(before[i].content) {
					t.Fatalf("%s: %d bytes, was %d: a token file keeps its size", p, len(got), len(before[i].content))
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
	case errors.Is(want, errAny) && err == nil, want != nil && !errors.Is(want, errAny) && !errors.Is(err, want):
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
