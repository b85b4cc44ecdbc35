// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

func TestKernelDependency(t *testing.T) {
	tests := []struct {
		name        string
		depends     string
		wantPkg     string
		wantVersion string
		wantOK      bool
	}{
		{name: "pinned", depends: "linux-image-6.1.0-56-amd64 (= 6.1.192-2)",
			wantPkg: "linux-image-6.1.0-56-amd64", wantVersion: "6.1.192-2", wantOK: true},
		{name: "unpinned among others", depends: "initramfs-tools, linux-image-6.12.9-amd64",
			wantPkg: "linux-image-6.12.9-amd64", wantOK: true},
		{name: "no kernel", depends: "kmod, linux-base (>= 4.3~)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg, version, ok := kernelDependency(tt.depends)
			if pkg != tt.wantPkg || version != tt.wantVersion || ok != tt.wantOK {
				t.Errorf("kernelDependency(%q) = %q, %q, %v", tt.depends, pkg, version, ok)
			}
		})
	}
}

func TestFieldValue(t *testing.T) {
	stanza := "Package: linux-image-amd64\nVersion: 6.1.192-2\nDepends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)\n"
	if got := fieldValue(stanza, "Depends"); got != "linux-image-6.1.0-56-amd64 (= 6.1.192-2)" {
		t.Errorf("Depends = %q", got)
	}
	if got := fieldValue(stanza, "Recommends"); got != "" {
		t.Errorf("Recommends = %q, want empty", got)
	}
}

func TestDependencyOrder(t *testing.T) {
	graph := map[string][]string{
		"virtio_ring":           nil,
		"virtio":                {"virtio_ring"},
		"virtio_pci_modern_dev": nil,
		"virtio_pci":            {"virtio_ring", "virtio_pci_modern_dev", "virtio"},
		"virtio_blk":            {"virtio", "virtio_ring"},
		"loop_a":                {"loop_b"},
		"loop_b":                {"loop_a"},
	}
	depends := func(name string) ([]string, bool) {
		deps, ok := graph[name]
		return deps, ok
	}
	tests := []struct {
		name    string
		roots   []string
		want    []string
		wantErr string
	}{
		{name: "dependencies first, each once", roots: []string{"virtio_pci", "virtio_blk"},
			want: []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk"}},
		{name: "unknown module", roots: []string{"ext4"}, wantErr: "not in the kernel package"},
		{name: "cycle", roots: []string{"loop_a"}, wantErr: "cycle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dependencyOrder(tt.roots, depends)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("dependencyOrder = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestModuleName(t *testing.T) {
	tests := []struct {
		name, file, want string
		wantOK           bool
	}{
		{name: "plain", file: "virtio_blk.ko", want: "virtio_blk", wantOK: true},
		{name: "dash", file: "virtio-rng.ko", want: "virtio_rng", wantOK: true},
		{name: "xz", file: "nls_cp437.ko.xz", want: "nls_cp437", wantOK: true},
		{name: "zstd", file: "fat.ko.zst", want: "fat", wantOK: true},
		{name: "not a module", file: "modules.order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := moduleName(tt.file)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("moduleName(%q) = %q, %v", tt.file, got, ok)
			}
		})
	}
}

func TestFatNLSModules(t *testing.T) {
	config := []byte("CONFIG_FAT_FS=m\nCONFIG_FAT_DEFAULT_CODEPAGE=437\nCONFIG_FAT_DEFAULT_IOCHARSET=\"iso8859-1\"\n")
	want := []string{"nls_cp437", "nls_iso8859_1", "nls_utf8"}
	if got := fatNLSModules(config); !reflect.DeepEqual(got, want) {
		t.Errorf("fatNLSModules = %q, want %q", got, want)
	}
}

func TestHasNote(t *testing.T) {
	note := func(owner string, typ uint32, desc []byte) []byte {
		var b bytes.Buffer
		name := append([]byte(owner), 0)
		for _, v := range []uint32{uint32(len(name)), uint32(len(desc)), typ} {
			_ = binary.Write(&b, binary.LittleEndian, v)
		}
		b.Write(name)
		b.Write(make([]byte, (4-len(name)%4)%4))
		b.Write(desc)
		b.Write(make([]byte, (4-len(desc)%4)%4))
		return b.Bytes()
	}
	segment := slices.Concat(note("GNU", 3, []byte{1, 2, 3, 4, 5}), note("Xen", 6, []byte("linux\x00")),
		note("Xen", xenNotePhys32Entry, []byte{0, 0, 0, 1}))
	tests := []struct {
		name  string
		notes []byte
		owner string
		typ   uint32
		want  bool
	}{
		{name: "found after others", notes: segment, owner: "Xen", typ: xenNotePhys32Entry, want: true},
		{name: "other owner", notes: segment, owner: "GNU", typ: xenNotePhys32Entry},
		{name: "truncated", notes: segment[:len(segment)-6], owner: "Xen", typ: xenNotePhys32Entry},
		{name: "huge sizes", notes: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 18, 0, 0, 0}, owner: "Xen", typ: 18},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasNote(tt.notes, binary.LittleEndian, tt.owner, tt.typ); got != tt.want {
				t.Errorf("hasNote = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewestCachedKernel(t *testing.T) {
	cache := t.TempDir()
	write := func(dir, manifest string) {
		if err := os.MkdirAll(filepath.Join(cache, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cache, dir, "kernel.json"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("old-layout", `{"layout": 1, "package": "linux-image-old"}`)
	write("current", `{"layout": 2, "package": "linux-image-current", "image": "vmlinux"}`)
	write("broken", `{`)
	k := newestCachedKernel(cache)
	if k == nil || k.Package != "linux-image-current" || k.ImagePath() != filepath.Join(cache, "current", "vmlinux") {
		t.Errorf("newestCachedKernel = %+v", k)
	}
	if k := newestCachedKernel(t.TempDir()); k != nil {
		t.Errorf("empty cache gave %+v", k)
	}
}

// TestKernelCache checks the kernel New prepared: loading it again
// downloads nothing, the image boots through PVH, and the modules'
// dependencies come from their modinfo.
func TestKernelCache(t *testing.T) {
	lab := New(t)
	k, err := loadKernel(t.Context(), lab.cacheDir, func(format string, args ...any) {
		t.Errorf("second load logged: "+format, args...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if k.ImagePath() != lab.kernel.ImagePath() {
		t.Errorf("second load gave %s, first %s", k.ImagePath(), lab.kernel.ImagePath())
	}
	if k.Image != "vmlinux" {
		t.Errorf("image = %s, want the PVH vmlinux", k.Image)
	}
	files, err := k.moduleFiles(groupDisk, groupRNG)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".ko"))
	}
	for _, want := range []string{"virtio_ring", "virtio", "virtio_pci", "virtio_blk", "virtio_rng", "fat", "vfat", "nls_cp437"} {
		if !slices.Contains(names, want) {
			t.Errorf("modules %q lack %s", names, want)
		}
	}
	if i, j := slices.Index(names, "virtio_ring"), slices.Index(names, "virtio_pci"); i > j {
		t.Errorf("virtio_ring loads after virtio_pci: %q", names)
	}
}

// TestReadCompressedModule feeds a real module through every compression
// a kernel package may use.
func TestReadCompressedModule(t *testing.T) {
	lab := New(t)
	ko := filepath.Join(lab.kernel.dir, lab.kernel.Modules["virtio_blk"].File)
	plain, err := os.ReadFile(ko)
	if err != nil {
		t.Fatal(err)
	}
	compressWith := func(tool string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			testenv.NeedCommands(t, tool)
			out, err := exec.Command(tool, "-q", "-c", ko).Output()
			if err != nil {
				t.Fatalf("compress with %s: %v", tool, err)
			}
			return out
		}
	}
	tests := []struct {
		name     string
		compress func(t *testing.T) []byte
	}{
		{name: ".gz", compress: func(t *testing.T) []byte {
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			if _, err := zw.Write(plain); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			return gz.Bytes()
		}},
		{name: ".xz", compress: compressWith("xz")},
		{name: ".zst", compress: compressWith("zstd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "virtio_blk.ko"+tt.name)
			if err := os.WriteFile(path, tt.compress(t), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readModule(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("uncompressed %d bytes differ from the %d-byte module", len(got), len(plain))
			}
			deps, err := modinfoDepends(got)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"virtio", "virtio_ring"}; !reflect.DeepEqual(deps, want) {
				t.Errorf("depends = %q, want %q", deps, want)
			}
		})
	}
}
