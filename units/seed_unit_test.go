// SPDX-License-Identifier: GPL-3.0-or-later

package units

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
)

const seedUnit = "system/entropy-gate-seed.service"

// words splits every value of a space-separated list setting.
func words(values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// `seed save` runs when the seed unit stops at shutdown. Ordered after the
// mounts holding the seeds, as systemd-random-seed.service orders itself
// after its seed's mount (RequiresMountsFor=), it stops before they are
// unmounted; without that, the save races the unmount.
func TestSeedUnitStopsBeforeItsSeedsAreUnmounted(t *testing.T) {
	unitSection := options(t, seedUnit)["Unit"]
	mountsFor := words(unitSection["RequiresMountsFor"])
	defaults := config.Default().Seed
	for _, tt := range []struct {
		name, path string
	}{
		{name: "boot medium (sector, FAT and command-line seeds)", path: defaults.Medium},
		{name: "persistent volume (file seed)", path: filepath.Dir(defaults.File.Path)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Contains(mountsFor, tt.path) {
				t.Errorf("RequiresMountsFor=%q lacks %s", mountsFor, tt.path)
			}
		})
	}
}

// The seed unit writes raw sectors of the boot disk (/dev stays writable
// under ProtectSystem=strict), remounts the boot medium and writes
// /run/entropy-gate (its RuntimeDirectory=): nothing else, so the rest of
// the file system is read-only for it, and so is the kernel's tunables.
func TestSeedUnitIsHardened(t *testing.T) {
	svc := options(t, seedUnit)["Service"]
	defaults := config.Default().Seed
	for _, tt := range []struct {
		name string
		got  []string
		want []string
	}{
		{name: "ProtectSystem", got: svc["ProtectSystem"], want: []string{"strict"}},
		{name: "PrivateTmp", got: svc["PrivateTmp"], want: []string{"yes"}},
		{name: "ProtectKernelTunables", got: svc["ProtectKernelTunables"], want: []string{"yes"}},
		{name: "RuntimeDirectory", got: svc["RuntimeDirectory"], want: []string{"entropy-gate"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Errorf("%s=%q, want %q", tt.name, tt.got, tt.want)
			}
		})
	}
	writable := words(svc["ReadWritePaths"])
	for _, path := range []string{defaults.Medium, filepath.Dir(filepath.Dir(defaults.File.Path))} {
		if !slices.Contains(writable, "-"+path) {
			t.Errorf("ReadWritePaths=%q lacks -%s (optional: it may not exist)", writable, path)
		}
	}
}
