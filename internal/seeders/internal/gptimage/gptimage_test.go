// SPDX-License-Identifier: GPL-3.0-or-later

package gptimage

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// TestSgdiskAcceptsImages cross-checks the builder against gdisk: sgdisk must
// find nothing wrong and see the partitions where we put them.
func TestSgdiskAcceptsImages(t *testing.T) {
	testenv.NeedCommands(t, "sgdisk")
	tests := []struct {
		name      string
		disk      Disk
		wantStart string
	}{
		{name: "Tails-like stick", disk: TailsLike(4096), wantStart: "2048"},
		{name: "256 entries", disk: Disk{Sectors: 2048, Entries: 256, Partitions: []Partition{
			{Type: TypeLinuxData, GUID: MustGUID("11111111-2222-3333-4444-555555555555"), First: 100, Last: 1900, Name: "data"},
		}}, wantStart: "100"},
		{name: "hybrid MBR", disk: func() Disk {
			d := TailsLike(4096)
			p := d.Partitions[0]
			d.Hybrid = []MBREntry{{Type: 0x0c, Start: uint32(p.First), Count: uint32(p.Last - p.First + 1)}}
			return d
		}(), wantStart: "2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, tt.disk.Build(), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("sgdisk", "-v", img).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "No problems found") {
				t.Fatalf("sgdisk -v: %v\n%s", err, out)
			}
			out, err = exec.Command("sgdisk", "-i", "1", img).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "First sector: "+tt.wantStart+" ") {
				t.Fatalf("sgdisk -i 1 does not see the partition at %s: %v\n%s", tt.wantStart, err, out)
			}
		})
	}
}

func TestReseal(t *testing.T) {
	d := TailsLike(4096)
	img := d.Build()
	want := append([]byte(nil), img...)
	img[2*512+60] ^= 0xff // damage an entry name, then repair the CRCs
	img[2*512+60] ^= 0xff
	img[512+16] ^= 0xff // damage the header CRC itself
	Reseal(img, 512, 1)
	if string(img) != string(want) {
		t.Fatal("Reseal did not restore the header CRC")
	}
}
