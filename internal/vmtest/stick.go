// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
)

const (
	// SectorSize is the logical sector size of the images the lab makes.
	SectorSize = 512
	// StickPartitionLBA is where the FAT system partition of a Tails USB
	// stick starts; LBA 34–2047 before it are unused.
	StickPartitionLBA = 2048
	// MinStickSize is the smallest stick: FAT32 needs 65525 clusters.
	MinStickSize = 40 << 20

	// gptTrailerSectors is the backup partition array (32 sectors) and
	// backup header (1) at the end of a GPT disk.
	gptTrailerSectors = 33
	partitionAlign    = 2048
)

// Stick is a raw disk image laid out like a Tails USB stick: a GPT, one
// FAT32 EFI system partition named Tails from LBA 2048 to the last
// 1 MiB boundary, LBA 34–2047 zero. Files in the FAT are read and written
// with mtools, so nothing is mounted on the host.
type Stick struct {
	Path string
}

// NewStick creates the image at path with size bytes (a multiple of 1 MiB,
// at least MinStickSize) using sgdisk and mkfs.vfat.
func NewStick(ctx context.Context, path string, size int64) (*Stick, error) {
	if size < MinStickSize || size%(1<<20) != 0 {
		return nil, fmt.Errorf("new stick: size %d: want a multiple of 1 MiB of at least %d", size, MinStickSize)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("new stick: %w", err)
	}
	err = f.Truncate(size)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, fmt.Errorf("new stick: %w", err)
	}
	lastUsable := size/SectorSize - gptTrailerSectors - 1
	last := (lastUsable+1)/partitionAlign*partitionAlign - 1
	partition := fmt.Sprintf("1:%d:%d", StickPartitionLBA, last)
	// sgdisk has no quiet flag (-q would make it do nothing at all).
	if _, err := run(ctx, "", "sgdisk", "-o", "-n", partition, "-t", "1:ef00", "-c", "1:Tails", path); err != nil {
		return nil, fmt.Errorf("new stick: %w", err)
	}
	kib := (last - StickPartitionLBA + 1) * SectorSize / 1024
	if _, err := run(ctx, "", "mkfs.vfat", "-F", "32", "-n", "TAILS", "--offset", strconv.Itoa(StickPartitionLBA),
		path, strconv.FormatInt(kib, 10)); err != nil {
		return nil, fmt.Errorf("new stick: %w", err)
	}
	return &Stick{Path: path}, nil
}

// mtoolsImage is the image argument of mtools: the FAT at the partition's
// byte offset.
func (s *Stick) mtoolsImage() string {
	return s.Path + "@@" + strconv.Itoa(StickPartitionLBA*SectorSize)
}

// WriteFile writes data to the FAT file name (e.g. "/live/seed"),
// creating its folders and replacing an existing file.
func (s *Stick) WriteFile(ctx context.Context, name string, data []byte) error {
	tmp, err := os.CreateTemp("", "stick-file-")
	if err != nil {
		return fmt.Errorf("stick: write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("stick: write %s: %w", name, err)
	}
	return s.CopyIn(ctx, name, tmp.Name())
}

// CopyIn copies the host file src to the FAT file name, creating its
// folders and replacing an existing file.
func (s *Stick) CopyIn(ctx context.Context, name, src string) error {
	name = path.Clean("/" + name)
	if err := s.mkdirAll(ctx, path.Dir(name)); err != nil {
		return fmt.Errorf("stick: write %s: %w", name, err)
	}
	if _, err := run(ctx, "", "mcopy", "-o", "-i", s.mtoolsImage(), src, "::"+name); err != nil {
		return fmt.Errorf("stick: write %s: %w", name, err)
	}
	return nil
}

// ReadFile returns the content of the FAT file name.
func (s *Stick) ReadFile(ctx context.Context, name string) ([]byte, error) {
	name = path.Clean("/" + name)
	data, err := run(ctx, "", "mcopy", "-n", "-i", s.mtoolsImage(), "::"+name, "-")
	if err != nil {
		return nil, fmt.Errorf("stick: read %s: %w", name, err)
	}
	return data, nil
}

// mkdirAll creates the FAT folder dir and its parents where missing.
func (s *Stick) mkdirAll(ctx context.Context, dir string) error {
	if dir == "/" {
		return nil
	}
	if err := s.mkdirAll(ctx, path.Dir(dir)); err != nil {
		return err
	}
	if _, err := run(ctx, "", "mdir", "-b", "-i", s.mtoolsImage(), "::"+dir); err == nil {
		return nil
	}
	_, err := run(ctx, "", "mmd", "-i", s.mtoolsImage(), "::"+strings.TrimSuffix(dir, "/"))
	return err
}
