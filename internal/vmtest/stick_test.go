// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewStickLayout(t *testing.T) {
	RequireTools(t)
	ctx := t.Context()
	const size = 64 << 20
	stick, err := NewStick(ctx, filepath.Join(t.TempDir(), "stick.img"), size)
	if err != nil {
		t.Fatal(err)
	}

	verify, err := run(ctx, "", "sgdisk", "-v", stick.Path)
	if err != nil || !strings.Contains(string(verify), "No problems found") {
		t.Errorf("sgdisk -v: %v\n%s", err, verify)
	}
	info, err := run(ctx, "", "sgdisk", "-i", "1", stick.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", // EFI system partition
		"First sector: 2048 ",
		"Last sector: 129023 ", // the last 1 MiB boundary before the backup GPT
		"Partition name: 'Tails'",
	} {
		if !strings.Contains(string(info), want) {
			t.Errorf("sgdisk -i 1 lacks %q:\n%s", want, info)
		}
	}

	img, err := os.ReadFile(stick.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(img) != size {
		t.Errorf("image is %d bytes, want %d", len(img), size)
	}
	if gap := img[34*SectorSize : StickPartitionLBA*SectorSize]; !bytes.Equal(gap, make([]byte, len(gap))) {
		t.Error("LBA 34–2047 are not all zero")
	}
	boot := img[StickPartitionLBA*SectorSize:][:SectorSize]
	if string(boot[82:90]) != "FAT32   " || boot[510] != 0x55 || boot[511] != 0xaa {
		t.Errorf("no FAT32 boot sector at LBA 2048: type %q, signature %x", boot[82:90], boot[510:])
	}
}

func TestStickFiles(t *testing.T) {
	RequireTools(t)
	ctx := t.Context()
	stick, err := NewStick(ctx, filepath.Join(t.TempDir(), "stick.img"), MinStickSize)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, data string
	}{
		{name: "root", path: "/syslinux.cfg", data: "default live\n"},
		{name: "nested folders", path: "live/seeds/a.bin", data: "first"},
		{name: "overwrite, folders exist", path: "/live/seeds/a.bin", data: "second, longer than the first"},
		{name: "empty file", path: "/live/empty", data: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := stick.WriteFile(ctx, tt.path, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			got, err := stick.ReadFile(ctx, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.data {
				t.Errorf("read back %q, want %q", got, tt.data)
			}
		})
	}
	if _, err := stick.ReadFile(ctx, "/missing"); err == nil {
		t.Error("reading a missing file succeeded")
	}
}

func TestNewStickRejectsSizes(t *testing.T) {
	tests := []struct {
		name string
		size int64
	}{
		{name: "too small for FAT32", size: 32 << 20},
		{name: "not whole MiB", size: MinStickSize + 512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stick.img")
			if _, err := NewStick(t.Context(), path, tt.size); err == nil {
				t.Fatal("NewStick succeeded")
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("NewStick left %s behind: %v", path, err)
			}
		})
	}
}
