// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders/internal/gptimage"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

func TestInspectSector(t *testing.T) {
	for _, tt := range diskCases() {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.image(t)
			layout, loaded, err := inspectSector(bytes.NewReader(img), int64(len(img)), tt.ss(), DefaultLBA, tt.foreign)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("error = %v, want %v", err, tt.want)
				}
				if !errors.Is(err, ErrUnsafe) {
					t.Fatalf("refusal %v does not match ErrUnsafe", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("reason is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused a safe sector: %v", err)
			}
			if loaded.Content != tt.content {
				t.Fatalf("content = %v, want %v", loaded.Content, tt.content)
			}
			if layout.LBA != DefaultLBA || layout.SectorSize != tt.ss() || layout.DiskGUID == (GUID{}) {
				t.Fatalf("layout = %+v, want LBA 34, sector size %d and the disk GUID", layout, tt.ss())
			}
		})
	}
}

func TestCheckLayoutArguments(t *testing.T) {
	img := tailsImage()
	tests := []struct {
		name       string
		sectorSize int
		lba        int64
		want       error
	}{
		{name: "sector size 1024", sectorSize: 1024, lba: DefaultLBA, want: ErrSectorSize},
		{name: "LBA 0 (MBR)", sectorSize: 512, lba: 0, want: ErrNotUsable},
		{name: "LBA 1 (GPT header)", sectorSize: 512, lba: 1, want: ErrNotUsable},
		{name: "LBA in the primary array", sectorSize: 512, lba: 33, want: ErrNotUsable},
		{name: "LBA past the end", sectorSize: 512, lba: tailsSectors, want: ErrNotUsable},
		{name: "last LBA (backup header)", sectorSize: 512, lba: tailsSectors - 1, want: ErrNotUsable},
		{name: "LBA in the partition", sectorSize: 512, lba: 2048, want: ErrPartition},
		{name: "last gap sector", sectorSize: 512, lba: 2047},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckLayout(bytes.NewReader(img), int64(len(img)), tt.sectorSize, tt.lba)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckLayout = %v, want %v", err, tt.want)
			}
		})
	}
}

// failingReader returns an I/O error from byte off on.
type failingReader struct {
	r   *bytes.Reader
	off int64
}

var errIO = errors.New("input/output error")

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.off {
		return 0, errIO
	}
	return f.r.ReadAt(p, off)
}

func TestCheckLayoutIOError(t *testing.T) {
	img := tailsImage()
	for _, at := range []int64{0, 512, 2 * 512, 32768, backupHdr} {
		_, err := CheckLayout(failingReader{bytes.NewReader(img), at}, int64(len(img)), 512, DefaultLBA)
		if !errors.Is(err, errIO) {
			t.Fatalf("read error at byte %d: CheckLayout = %v, want the I/O error", at, err)
		}
		if errors.Is(err, ErrUnsafe) {
			t.Fatalf("read error at byte %d reported as a layout verdict: %v", at, err)
		}
	}
}

// TestCheckLayoutOnSgdiskImage cross-checks the parser against gdisk: an image
// partitioned by sgdisk the way LAB.md makes a Tails-like stick is safe at 34,
// and one with a partition at 34 is not.
func TestCheckLayoutOnSgdiskImage(t *testing.T) {
	testenv.NeedCommands(t, "sgdisk")
	tests := []struct {
		name string
		args []string
		want error
	}{
		{name: "Tails-like", args: []string{"-o", "-n", "1:2048:+3M", "-t", "1:ef00"}},
		{name: "partition at 34", args: []string{"-o", "-a", "1", "-n", "1:34:+1M"}, want: ErrPartition},
		{name: "hybrid MBR over the partition", args: []string{"-o", "-n", "1:2048:+1M", "-h", "1"}},
		{name: "256 entries", args: []string{"-o", "-n", "1:2048:+1M", "-S", "256"}, want: ErrNotUsable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // sgdisk sleeps a second after writing
			path := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(path, make([]byte, 8<<20), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("sgdisk", append(tt.args, path)...).CombinedOutput(); err != nil {
				t.Fatalf("sgdisk %v: %v\n%s", tt.args, err, out)
			}
			img, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = CheckLayout(bytes.NewReader(img), int64(len(img)), 512, DefaultLBA)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckLayout = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestGUID(t *testing.T) {
	const text = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	if got := GUID(gptimage.TypeEFISystem).String(); got != text {
		t.Fatalf("String() = %s, want %s", got, text)
	}
	tests := []struct {
		name    string
		in      string
		want    GUID
		wantErr bool
	}{
		{name: "upper case", in: text, want: gptimage.TypeEFISystem},
		{name: "lower case", in: strings.ToLower(text), want: gptimage.TypeEFISystem},
		{name: "no dashes", in: strings.ReplaceAll(text, "-", ""), wantErr: true},
		{name: "dashes misplaced", in: "C12A7328F-81F-11D2-BA4B-00A0C93EC93B", wantErr: true},
		{name: "too short", in: text[:35], wantErr: true},
		{name: "not hex", in: "G12A7328-F81F-11D2-BA4B-00A0C93EC93B", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGUID(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Fatalf("ParseGUID(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}
