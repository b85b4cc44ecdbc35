// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bootloader configurations a Tails stick would ship
// (testdata/bootloader, docs/seed-format.md), with the token files of
// DefaultTokenFiles, on a medium laid out as the stick's FAT.
func tokenMedium(t *testing.T, withTokenFiles bool) (medium string, b CmdlineBackend) {
	t.Helper()
	medium = t.TempDir()
	files := map[string]string{
		"syslinux/live64.cfg": string(readFile(t, filepath.Join("testdata", "bootloader", "live64.cfg"))),
		"EFI/debian/grub.cfg": string(readFile(t, filepath.Join("testdata", "bootloader", "grub.cfg"))),
	}
	if withTokenFiles {
		files[DefaultTokenFiles[0]] = testSyslinux
		files[DefaultTokenFiles[1]] = testGrub
	}
	for rel, text := range files {
		path := filepath.Join(medium, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, []byte(text), 0o644)
	}
	return medium, CmdlineBackend{Medium: medium, Mounts: readOnlyMount()}
}

// syslinuxCmdlines evaluates a syslinux configuration as syslinux 6's
// readconfig.c does, for what matters here: LABEL starts an entry, a
// LINUX or KERNEL line sets its kernel and any arguments after it (the
// last one wins), APPEND sets the arguments that follow, INCLUDE reads a
// file at that point (relative to the medium's root; one that cannot be
// opened is skipped). It returns each label's kernel command line: the
// kernel line's arguments, then APPEND's.
func syslinuxCmdlines(t *testing.T, medium, config string) map[string]string {
	t.Helper()
	type label struct{ kernel, appendArgs string }
	labels := map[string]*label{}
	var current *label
	var parse func(path string)
	parse = func(path string) {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			keyword, rest, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
			rest = strings.TrimSpace(strings.ReplaceAll(rest, "\t", " "))
			switch strings.ToLower(keyword) {
			case "label":
				current = &label{}
				labels[rest] = current
			case "linux", "kernel":
				if current != nil {
					current.kernel = rest
				}
			case "append":
				if current != nil {
					current.appendArgs = rest
				}
			case "include":
				parse(filepath.Join(medium, rest))
			}
		}
	}
	parse(filepath.Join(medium, config))
	out := map[string]string{}
	for name, l := range labels {
		_, args, _ := strings.Cut(l.kernel, " ")
		out[name] = strings.TrimSpace(args + " " + l.appendArgs)
	}
	return out
}

func TestSyslinuxBootsWithTheToken(t *testing.T) {
	medium, b := tokenMedium(t, true)
	token := storeToken(t, b, testRecord(0x70, 1, true))
	config := filepath.Join(medium, "syslinux/live64.cfg")
	before := readFile(t, config)
	cmdlines := syslinuxCmdlines(t, medium, "syslinux/live64.cfg")
	if len(cmdlines) != 2 {
		t.Fatalf("labels %v, want two", cmdlines)
	}
	for name, cmdline := range cmdlines {
		if !strings.Contains(" "+cmdline+" ", " entropy_gate.seed="+token+" ") || !strings.Contains(cmdline, "boot=live") {
			t.Errorf("label %s boots with %q, want the token and the label's own arguments", name, cmdline)
		}
	}
	if !bytes.Equal(readFile(t, config), before) {
		t.Error("the syslinux configuration changed")
	}
}

// Without its token file (never made, or lost to a power cut), every label
// still boots its kernel with its own arguments.
func TestSyslinuxBootsWithoutTheTokenFile(t *testing.T) {
	medium, _ := tokenMedium(t, false)
	for name, cmdline := range syslinuxCmdlines(t, medium, "syslinux/live64.cfg") {
		if strings.Contains(cmdline, "entropy_gate.seed") || !strings.Contains(cmdline, "boot=live") {
			t.Errorf("label %s boots with %q, want its own arguments only", name, cmdline)
		}
	}
}

// GRUB's own tools read what the backend wrote: the configuration is a
// valid GRUB script, and the environment block holds the token.
func TestGRUBBootsWithTheToken(t *testing.T) {
	for _, tool := range []string{"grub-script-check", "grub-editenv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install grub-common)", tool)
		}
	}
	medium, b := tokenMedium(t, true)
	token := storeToken(t, b, testRecord(0x71, 1, true))
	if out, err := exec.Command("grub-script-check", filepath.Join(medium, "EFI/debian/grub.cfg")).CombinedOutput(); err != nil {
		t.Errorf("grub-script-check: %v: %s", err, out)
	}
	env := filepath.Join(medium, DefaultTokenFiles[1])
	out, err := exec.Command("grub-editenv", env, "list").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != GRUBTokenVar+"="+token {
		t.Errorf("grub-editenv list = %q, %v; want %s=%s", out, err, GRUBTokenVar, token)
	}
	if st, err := os.Stat(env); err != nil || st.Size() != 1024 {
		t.Errorf("environment block: %v, %v; want 1024 bytes, as grub-editenv makes it", st, err)
	}
	if cfg := readFile(t, filepath.Join(medium, "EFI/debian/grub.cfg")); !bytes.Contains(cfg, []byte("load_env --file /EFI/debian/entropy-gate.env "+GRUBTokenVar+"\n")) ||
		!bytes.Contains(cfg, []byte("entropy_gate.seed=${"+GRUBTokenVar+"}")) {
		t.Errorf("grub.cfg does not load the token's variable and put it on its linux lines")
	}
}
