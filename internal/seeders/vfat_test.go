// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// In the QEMU lab (internal/integration's TestLabVfat) the guest has no
// mkfs.vfat or losetup: these flags hand the tests block devices formatted
// on the host.
var (
	vfatDisks = flag.String("vfat-disks", "", "comma-separated fresh FAT block devices for the TestVfat tests, instead of loop devices")
	vfatStick = flag.String("vfat-stick", "", "a Tails-like stick (GPT, FAT partition 1) for TestVfatFindBootDisk")
)

var labDisks struct {
	sync.Mutex
	next int
}

// nextLabDisk hands out the next lab disk, if the tests run in the lab.
func nextLabDisk(tb testing.TB) (string, bool) {
	tb.Helper()
	if *vfatDisks == "" {
		return "", false
	}
	labDisks.Lock()
	defer labDisks.Unlock()
	disks := strings.Split(*vfatDisks, ",")
	if labDisks.next == len(disks) {
		tb.Fatalf("all %d lab disks used: TestLabVfat must attach more", len(disks))
	}
	labDisks.next++
	return disks[labDisks.next-1], true
}

// freshFAT returns a block device holding an empty FAT file system of
// a few MiB: a lab disk, or a loop device on a new image file.
func freshFAT(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("vfat on a block device: needs root")
	}
	if dev, ok := nextLabDisk(t); ok {
		return dev
	}
	needCommands(t, "losetup", "mkfs.vfat")
	img := filepath.Join(t.TempDir(), "fat.img")
	if out, err := exec.Command("mkfs.vfat", "-C", img, "2048").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v: %s", err, out)
	}
	return loopDevice(t, img)
}

// mountFlags are the mount options that are flags to mount(2); the rest
// go to the file system.
var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV,
	"noexec": unix.MS_NOEXEC, "noatime": unix.MS_NOATIME,
}

// mountFS mounts dev at a new temporary directory with mount(2), so that
// it needs no mount(8), and unmounts it at cleanup unless unmount did.
// A kernel without the file system skips the test.
func mountFS(t testing.TB, dev, fstype, options string) string {
	t.Helper()
	var flags uintptr
	var data []string
	for _, o := range strings.Split(options, ",") {
		if f, ok := mountFlags[o]; ok {
			flags |= f
		} else if o != "" {
			data = append(data, o)
		}
	}
	dir := t.TempDir()
	err := unix.Mount(dev, dir, fstype, flags, strings.Join(data, ","))
	if errors.Is(err, unix.ENODEV) {
		t.Skipf("this kernel has no %s file system: TestLabVfat runs the vfat tests under QEMU", fstype)
	}
	if err != nil {
		t.Fatalf("mount %s on %s: %v", dev, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func unmount(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatalf("unmount %s: %v", dir, err)
	}
}

// prepareFAT puts files on the FAT of dev (a name ending in / is a
// folder), through a read-write mount it then takes down.
func prepareFAT(t *testing.T, dev string, files map[string][]byte) {
	t.Helper()
	dir := mountFS(t, dev, "vfat", "")
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(path, files[name], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	unmount(t, dir)
}

// tailsMount are Tails-like options for the boot medium, root-only.
const tailsMount = "ro,nosuid,nodev,noexec,noatime,fmask=0077,dmask=0077"

var tailsMountFlags = []string{"nosuid", "nodev", "noexec", "noatime"}

// The seed protocol on a real vfat: each store remounts read-write and
// back, keeping the mount's flags; the file is durable; and whether it may
// be credited follows the mount's file mask.
func TestVfatFATBackend(t *testing.T) {
	dev := freshFAT(t)
	prepareFAT(t, dev, map[string][]byte{"live/": nil})
	dir := mountFS(t, dev, "vfat", tailsMount)
	b := FATBackend{Medium: dir}
	path := filepath.Join(dir, DefaultFATSeedFile)

	res := Seeder{Backend: b, Kernel: &FakeKernel{}}.Seed()
	if res.Err != nil || res.Content != ContentEmpty || !res.Refreshed {
		t.Fatalf("first Seed = %+v, want a new seed file", res)
	}
	assertMountedReadOnly(t, dir, tailsMountFlags...)
	if res := (Seeder{Backend: b, Kernel: &FakeKernel{Initialized: true}}).Refresh(); !res.Refreshed || !res.StoredCreditable {
		t.Fatalf("Refresh = %+v, want a creditable seed stored", res)
	}
	assertMountedReadOnly(t, dir, tailsMountFlags...)
	stored, err := ParseRecord(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("seed file on the root-only mount: %v, %v", st, err)
	}

	k := &FakeKernel{}
	res = Seeder{Backend: b, Kernel: k}.Seed()
	if res.CreditedBits != 256 || !onlyCall(t, k, OpCredit).Carries(stored.seed()) {
		t.Fatalf("Seed = %+v, want the stored seed credited", res)
	}
	assertMountedReadOnly(t, dir, tailsMountFlags...)
	if got := entries(t, filepath.Dir(path)); len(got) != 1 {
		t.Fatalf("seed folder holds %v, want the seed file only", got)
	}
	replacement := readFile(t, path)

	// On the medium, not only in the page cache: a new mount reads it.
	unmount(t, dir)
	dir = mountFS(t, dev, "vfat", "ro,fmask=0022,dmask=0022")
	path = filepath.Join(dir, DefaultFATSeedFile)
	if !bytes.Equal(readFile(t, path), replacement) {
		t.Fatal("a new mount does not find the replacement seed")
	}
	// Mounted the default way, every user can read the file: even a
	// creditable seed is mixed and refreshed, never credited.
	b = FATBackend{Medium: dir}
	if res := (Seeder{Backend: b, Kernel: &FakeKernel{Initialized: true}}).Refresh(); !res.StoredCreditable {
		t.Fatalf("Refresh = %+v, want a creditable seed stored", res)
	}
	rec, err := ParseRecord(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	k = &FakeKernel{}
	res = Seeder{Backend: b, Kernel: k}.Seed()
	noCall(t, k, OpCredit)
	if !onlyCall(t, k, OpMix).Carries(rec.seed()) || !res.Refreshed || !strings.Contains(res.Reason, "mode") {
		t.Fatalf("Seed on a world-readable mount = %+v, want mixed because of the mode, and refreshed", res)
	}
	assertMountedReadOnly(t, dir)
}

// fillFAT writes a file until the file system is full.
func fillFAT(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// Fill the last partial cluster too.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// A store that fails on the real file system leaves the mount read-only,
// the old seed file in place and no temporary file behind.
func TestVfatStoreFailureLeavesReadOnly(t *testing.T) {
	old := mustEncode(t, testRecord(0x70, 5, true))
	tests := []struct {
		name    string
		files   map[string][]byte
		fill    bool
		wantErr error
	}{
		{name: "file system full", files: map[string][]byte{DefaultFATSeedFile: old}, fill: true, wantErr: unix.ENOSPC},
		{name: "seed path is a folder", files: map[string][]byte{DefaultFATSeedFile + "/": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := freshFAT(t)
			prepareFAT(t, dev, tt.files)
			if tt.fill {
				dir := mountFS(t, dev, "vfat", "")
				fillFAT(t, filepath.Join(dir, "filler"))
				unmount(t, dir)
			}
			dir := mountFS(t, dev, "vfat", tailsMount)
			liveBefore := entries(t, filepath.Join(dir, "live"))

			err := FATBackend{Medium: dir}.Store(testRecord(0x71, 6, true))
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Store = %v, want a failure matching %v", err, tt.wantErr)
			}
			assertMountedReadOnly(t, dir, tailsMountFlags...)
			if got := entries(t, filepath.Join(dir, "live")); !slices.Equal(got, liveBefore) {
				t.Fatalf("seed folder went from %v to %v", liveBefore, got)
			}
			if tt.files[DefaultFATSeedFile] != nil && !bytes.Equal(readFile(t, filepath.Join(dir, DefaultFATSeedFile)), old) {
				t.Fatal("the old seed file changed")
			}
		})
	}
}

// countingMounts counts remounts; hideUnwritable also keeps Load from
// knowing the medium is read-only, so that the kernel has to refuse the
// remount itself.
type countingMounts struct {
	Mounts
	hideUnwritable bool
	rw, ro         int
}

func (c *countingMounts) Medium(dir string) (Medium, error) {
	m, err := c.Mounts.Medium(dir)
	if c.hideUnwritable {
		m.Unwritable = ""
	}
	return m, err
}

func (c *countingMounts) Remount(dir string, readOnly bool) error {
	if readOnly {
		c.ro++
	} else {
		c.rw++
	}
	return c.Mounts.Remount(dir, readOnly)
}

// setReadOnly flags a block device read-only (BLKROSET, as blockdev
// --setro) until cleanup.
func setReadOnly(t *testing.T, dev string) {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, 1); err != nil {
		t.Fatalf("BLKROSET %s: %v", dev, err)
	}
	t.Cleanup(func() {
		f, err := os.Open(dev)
		if err == nil {
			err = unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, 0)
			f.Close()
		}
		if err != nil {
			t.Errorf("clear BLKROSET on %s: %v", dev, err)
		}
	})
}

// A read-only device: Load sees it, the seed is mixed only and nothing is
// remounted; and where Load could not see it, the kernel refuses the
// remount once, which still costs only the credit.
func TestVfatReadOnlyDevice(t *testing.T) {
	dev := freshFAT(t)
	rec := testRecord(0x80, 7, true)
	prepareFAT(t, dev, map[string][]byte{DefaultFATSeedFile: mustEncode(t, rec)})
	setReadOnly(t, dev)
	dir := mountFS(t, dev, "vfat", tailsMount)

	m := &countingMounts{Mounts: SystemMounts{}}
	l, err := FATBackend{Medium: dir, Mounts: m}.Load()
	l.Release()
	if err != nil || !l.ReadOnly {
		t.Fatalf("Load = %+v, %v; want a read-only medium", l, err)
	}
	k := &FakeKernel{}
	res := Seeder{Backend: FATBackend{Medium: dir, Mounts: m}, Kernel: k}.Seed()
	noCall(t, k, OpCredit)
	if !onlyCall(t, k, OpMix).Carries(rec.seed()) || res.Refreshed || m.rw != 0 {
		t.Fatalf("Seed = %+v after %d remounts, want mixed only and no remount", res, m.rw)
	}

	hidden := &countingMounts{Mounts: SystemMounts{}, hideUnwritable: true}
	k = &FakeKernel{}
	res = Seeder{Backend: FATBackend{Medium: dir, Mounts: hidden}, Kernel: k, WearRewrites: 500}.Seed()
	noCall(t, k, OpCredit)
	if !onlyCall(t, k, OpMix).Carries(rec.seed()) || res.Refreshed || !errors.Is(res.Err, ErrReadOnly) {
		t.Fatalf("Seed = %+v, want mixed only, the kernel refusing the remount", res)
	}
	if hidden.rw != 1 {
		t.Fatalf("%d read-write remount attempts, want one", hidden.rw)
	}
	assertMountedReadOnly(t, dir, tailsMountFlags...)
	if !bytes.Equal(readFile(t, filepath.Join(dir, DefaultFATSeedFile)), mustEncode(t, rec)) {
		t.Fatal("seed file on a read-only device changed")
	}
}

// The command-line backend on a real vfat: every store puts a new token on
// the kernel lines, changes nothing else, and leaves the mount read-only.
// The token files are written in place on a real vfat: the token reaches
// the disk, the rest stays byte for byte, and the sectors written are
// counted.
func TestVfatCmdline(t *testing.T) {
	dev := freshFAT(t)
	files := []struct{ rel, orig string }{{"syslinux/entropy-gate.cfg", testSyslinux}, {"EFI/debian/entropy-gate.env", testGrub}}
	prepareFAT(t, dev, map[string][]byte{files[0].rel: []byte(files[0].orig), files[1].rel: []byte(files[1].orig)})
	dir := mountFS(t, dev, "vfat", tailsMount)
	b := CmdlineBackend{Medium: dir}
	seen := map[string]bool{}
	for range 2 {
		before, statErr := sectorsWritten(dev)
		res := Seeder{Backend: b, Kernel: &FakeKernel{Initialized: true}}.Seed()
		if !res.Refreshed || res.Err != nil {
			t.Fatalf("Seed = %+v", res)
		}
		assertMountedReadOnly(t, dir, tailsMountFlags...)
		if after, err := sectorsWritten(dev); err == nil && statErr == nil {
			t.Logf("one token refresh wrote %d sectors", after-before)
		}
		// What is read next comes from the disk, not the page cache.
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
			t.Fatalf("drop the page cache: %v", err)
		}
		for _, f := range files {
			path := filepath.Join(dir, f.rel)
			got := readFile(t, path)
			if !bytes.Equal(withoutTokens(got), []byte(f.orig)) {
				t.Fatalf("%s: more than the token changed:\n%s", f.rel, got)
			}
			tok := tokens(got)[0]
			if tok == noToken {
				t.Fatalf("%s: token not replaced", f.rel)
			}
			seen[tok] = true
		}
	}
	if len(seen) != 2 {
		t.Fatalf("tokens %v, want one per store, the same in both files", seen)
	}
}

// sectorsWritten reads a block device's count of sectors written
// (/sys/block/X/stat, field 7), whole disk or partition.
func sectorsWritten(dev string) (int64, error) {
	name := filepath.Base(dev)
	b, err := os.ReadFile(filepath.Join("/sys/class/block", name, "stat"))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) < 7 {
		return 0, fmt.Errorf("%s: short stat %q", name, b)
	}
	return strconv.ParseInt(fields[6], 10, 64)
}

// TestVfatFindBootDisk finds a stick's disk from its mounted FAT partition,
// and sees the disk flagged read-only: a virtio disk in the QEMU lab, a
// partitioned loop device elsewhere.
func TestVfatFindBootDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount: needs root")
	}
	disk, part := *vfatStick, *vfatStick+"1"
	if disk == "" {
		needCommands(t, "losetup", "mkfs.vfat")
		disk = loopDevice(t, tailsStickImage(t, "mkfs.vfat", "--offset", "2048"), "--partscan")
		part = firstPartition(t, disk)
	}
	for _, readOnly := range []bool{false, true} {
		if readOnly {
			setReadOnly(t, disk)
		}
		dir := mountFS(t, part, "vfat", tailsMount)
		got, err := SystemMounts{}.FindBootDisk(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.Partition != part || got.Disk != disk || got.FSType != "vfat" || !got.MountedReadOnly || (got.Unwritable != "") != readOnly {
			t.Fatalf("FindBootDisk = %+v; want %s on %s, read-only device %t", got, part, disk, readOnly)
		}
		unmount(t, dir)
	}
}

// BenchmarkVfatFATStore measures one FAT seed store on a real vfat, the
// two ways: "remount" replaces the file through the file system (remount
// read-write, atomic replace with fsyncs, read-back, remount read-only),
// as where the block device cannot be written; "device" is a whole
// refresh (load, then the rewrite through the block device) on the
// read-only mount. It needs a lab disk (-vfat-disks), as TestLabVfat
// passes in the guest.
func BenchmarkVfatFATStore(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("vfat on a block device: needs root")
	}
	dev, ok := nextLabDisk(b)
	if !ok {
		b.Skip("needs -vfat-disks: runs in the QEMU lab (TestLabVfat)")
	}
	dir := mountFS(b, dev, "vfat", "ro,fmask=0077,dmask=0077")
	backend := FATBackend{Medium: dir, Path: "seed"}
	rec := testRecord(1, 1, true)
	b.Run("remount", func(b *testing.B) {
		for range b.N {
			if err := backend.Store(rec); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/store")
	})
	b.Run("device", func(b *testing.B) {
		k := &FakeKernel{Initialized: true}
		for range b.N {
			if res := (Seeder{Backend: backend, Kernel: k}).Refresh(); !res.Refreshed {
				b.Fatalf("Refresh = %+v", res)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/store")
	})
}

// readDevice reads a whole block device straight from the medium.
func readDevice(t *testing.T, dev string) []byte {
	t.Helper()
	f, err := openDirect(dev, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	b := alignedBuf(int(size))
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatalf("read %s: %v", dev, err)
	}
	return b
}

// changedSectors lists the 512-byte sectors in which a and b differ.
func changedSectors(a, b []byte) []int {
	var out []int
	for i := 0; i+512 <= len(a) && i+512 <= len(b); i += 512 {
		if !bytes.Equal(a[i:i+512], b[i:i+512]) {
			out = append(out, i/512)
		}
	}
	return out
}

// On the read-only mount Tails makes, the FAT seed and the token files are
// rewritten without any remount: only the sectors of the files' changed
// blocks differ on the device afterwards (no boot sector, dirty bit, FAT,
// FSINFO or directory entry), the file system at once reads the new
// content, and so does a new mount. Only creating the missing seed file
// remounts, once.
func TestVfatWritesThroughTheDevice(t *testing.T) {
	dev := freshFAT(t)
	prepareFAT(t, dev, map[string][]byte{
		"live/":                       nil,
		"syslinux/entropy-gate.cfg":   []byte(testSyslinux),
		"EFI/debian/entropy-gate.env": []byte(testGrub),
	})
	dir := mountFS(t, dev, "vfat", tailsMount)
	m := &countingMounts{Mounts: SystemMounts{}}
	fat := FATBackend{Medium: dir, Mounts: m}
	cmdline := CmdlineBackend{Medium: dir, Mounts: m}
	path := filepath.Join(dir, DefaultFATSeedFile)

	res := Seeder{Backend: fat, Kernel: &FakeKernel{Initialized: true}}.Seed()
	if !res.Refreshed || res.Err != nil || m.rw != 1 {
		t.Fatalf("first Seed = %+v after %d remounts, want the seed file created in one remount cycle", res, m.rw)
	}
	stored := readFile(t, path)

	before := readDevice(t, dev)
	k := &FakeKernel{Initialized: true}
	res = Seeder{Backend: fat, Kernel: k}.Seed()
	if res.CreditedBits != 256 || !res.Refreshed || res.Err != nil {
		t.Fatalf("Seed = %+v, want the stored seed credited and replaced", res)
	}
	after := readDevice(t, dev)
	replacement := readFile(t, path) // through the file system's cache
	if bytes.Equal(replacement, stored) || len(replacement) != len(stored) {
		t.Fatal("the file system still reads the old seed file")
	}
	if _, err := ParseRecord(replacement); err != nil {
		t.Fatalf("replacement: %v", err)
	}
	if got := changedSectors(before, after); len(got) != 1 || !bytes.Contains(after[got[0]*512:got[0]*512+512], replacement) {
		t.Fatalf("sectors %v changed on the device, want only the seed file's", got)
	}

	before = after
	if res := (Seeder{Backend: cmdline, Kernel: &FakeKernel{Initialized: true}}).Seed(); !res.Refreshed || res.Err != nil {
		t.Fatalf("token Seed = %+v", res)
	}
	after = readDevice(t, dev)
	if got := changedSectors(before, after); len(got) != 2 {
		t.Fatalf("sectors %v changed on the device, want one per token file (the token is in the first 512 bytes of each)", got)
	}
	for _, rel := range []string{"syslinux/entropy-gate.cfg", "EFI/debian/entropy-gate.env"} {
		if tok := tokens(readFile(t, filepath.Join(dir, rel)))[0]; tok == noToken {
			t.Fatalf("%s: the file system does not read the new token", rel)
		}
	}
	if m.rw != 1 || m.ro != 1 {
		t.Fatalf("%d read-write and %d read-only remounts, want only the creation's one cycle", m.rw, m.ro)
	}
	assertMountedReadOnly(t, dir, tailsMountFlags...)

	// On the medium: a new mount reads the same.
	token := readFile(t, filepath.Join(dir, "syslinux/entropy-gate.cfg"))
	unmount(t, dir)
	dir = mountFS(t, dev, "vfat", "ro")
	if !bytes.Equal(readFile(t, filepath.Join(dir, DefaultFATSeedFile)), replacement) || !bytes.Equal(readFile(t, filepath.Join(dir, "syslinux/entropy-gate.cfg")), token) {
		t.Fatal("a new mount does not read what was written")
	}
}
