// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

func writeImage(t testing.TB, dir string, img []byte) string {
	t.Helper()
	path := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func readSector(t testing.TB, path string, lba int64, ss int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, ss)
	if _, err := f.ReadAt(b, lba*int64(ss)); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefusalChangesNothing runs a full seed attempt and a direct Store on
// every unsafe disk: the image must stay byte-for-byte the same and the
// kernel must get nothing.
func TestRefusalChangesNothing(t *testing.T) {
	for _, tt := range diskCases() {
		if tt.want == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			path := writeImage(t, t.TempDir(), tt.image(t))
			before := fileHash(t, path)
			b := SectorBackend{Path: path, FileSectorSize: tt.ss(), Foreign: tt.foreign}
			k := &FakeKernel{Initialized: true}

			res := Seeder{Backend: b, Kernel: k, WearRewrites: 10}.Seed()
			if !errors.Is(res.Err, tt.want) || res.Loaded || res.Refreshed {
				t.Fatalf("Seed = %+v, want a refusal matching %v", res, tt.want)
			}
			if got := k.CallsOf(OpCredit); len(got) != 0 {
				t.Fatalf("credited from a refused disk: %v", got)
			}
			if got := k.CallsOf(OpMix); len(got) != 0 {
				t.Fatalf("mixed from a refused disk: %v", got)
			}
			if err := b.Store(testRecord(1, 1, true)); !errors.Is(err, tt.want) {
				t.Fatalf("Store = %v, want a refusal matching %v", err, tt.want)
			}
			if res := (Seeder{Backend: b, Kernel: k}).Refresh(); !errors.Is(res.Err, tt.want) {
				t.Fatalf("Refresh = %+v, want a refusal", res)
			}
			if fileHash(t, path) != before {
				t.Fatal("a refused disk image was modified")
			}
		})
	}
}

// TestStoreChangesOnlyTheSector stores on every safe disk and checks that the
// sector now holds the record, zero-padded, and nothing else changed.
func TestStoreChangesOnlyTheSector(t *testing.T) {
	for _, tt := range diskCases() {
		if tt.want != nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			img := tt.image(t)
			path := writeImage(t, t.TempDir(), img)
			b := SectorBackend{Path: path, FileSectorSize: tt.ss(), Foreign: tt.foreign}
			rec := testRecord(0x70, 9, true)
			if err := b.Store(rec); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ss := int64(tt.ss())
			layout, err := CheckLayout(bytes.NewReader(img), int64(len(img)), tt.ss(), DefaultLBA)
			if err != nil {
				t.Fatal(err)
			}
			// Store binds the record to the disk it writes.
			rec.Binding = Binding{DiskGUID: layout.DiskGUID, DiskSize: uint64(len(img))}
			want := append([]byte(nil), img...)
			sector := want[DefaultLBA*ss : (DefaultLBA+1)*ss]
			clear(sector)
			copy(sector, mustEncode(t, rec))
			if !bytes.Equal(got, want) {
				t.Fatal("image differs from the original with only the seed sector replaced")
			}
			loaded, err := b.Load()
			if err != nil || loaded.Content != ContentRecord || !bytes.Equal(loaded.material(), rec.seed()) || loaded.NoCredit != "" {
				t.Fatalf("Load after Store = %v, %v (no credit: %q); want the stored record, creditable here", loaded, err, loaded.NoCredit)
			}
		})
	}
}

func TestDeviceReadAtMatchesFile(t *testing.T) {
	img := tailsImage()
	for i := range img {
		img[i] = byte(i * 7)
	}
	img = img[:len(img)-100] // a size that is not a multiple of the sector size
	path := writeImage(t, t.TempDir(), img)
	for _, ss := range []int{512, 4096} {
		d, err := openDevice(path, ss, false)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, uint64(ss)))
		for range 200 {
			off := rng.Int64N(int64(len(img)) + 10)
			n := rng.IntN(9000)
			got := make([]byte, n)
			gotN, gotErr := d.ReadAt(got, off)
			want := make([]byte, n)
			wantN, wantErr := bytes.NewReader(img).ReadAt(want, off)
			if gotN != wantN || (gotErr == nil) != (wantErr == nil) || !bytes.Equal(got[:gotN], want[:wantN]) {
				t.Fatalf("sector size %d: ReadAt(%d bytes at %d) = %d, %v; bytes.Reader says %d, %v", ss, n, off, gotN, gotErr, wantN, wantErr)
			}
		}
		d.f.Close()
	}
}

// mountTemp mounts a fresh file system of type fstype on a temporary
// directory and unmounts it at cleanup.
func mountTemp(t *testing.T, fstype string, options ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("mount %s: needs root", fstype)
	}
	dir := t.TempDir()
	args := []string{"-t", fstype}
	if len(options) > 0 {
		args = append(args, "-o", strings.Join(options, ","))
	}
	if out, err := exec.Command("mount", append(args, fstype, dir)...).CombinedOutput(); err != nil {
		t.Skipf("mount -t %s: %v: %s", fstype, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestDirectIO checks that image files on a disk file system are written with
// O_DIRECT, and that on ramfs, which refuses O_DIRECT with EINVAL, the
// fallback to O_SYNC writes just as well.
func TestDirectIO(t *testing.T) {
	tests := []struct {
		name       string
		dir        func(t *testing.T) string
		wantDirect bool
	}{
		{name: "disk file system", dir: func(t *testing.T) string { return t.TempDir() }, wantDirect: true},
		{name: "ramfs", dir: func(t *testing.T) string { return mountTemp(t, "ramfs") }, wantDirect: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeImage(t, tt.dir(t), tailsImage())
			d, err := openDevice(path, 512, true)
			if err != nil {
				t.Fatal(err)
			}
			direct := openFlags(t, d.f)&unix.O_DIRECT != 0
			sync := openFlags(t, d.f)&unix.O_SYNC == unix.O_SYNC
			d.f.Close()
			if direct != tt.wantDirect || direct == sync {
				t.Fatalf("O_DIRECT %t, O_SYNC %t; want O_DIRECT %t, else O_SYNC", direct, sync, tt.wantDirect)
			}
			rec := testRecord(3, 3, false)
			if err := (SectorBackend{Path: path}).Store(rec); err != nil {
				t.Fatalf("Store: %v", err)
			}
			if got, err := ParseRecord(readSector(t, path, DefaultLBA, 512)); err != nil || !bytes.Equal(got.seed(), rec.seed()) {
				t.Fatalf("sector after Store = %v, %v", got, err)
			}
		})
	}
}

// openFlags reads the kernel's view of an open file's flags.
func openFlags(t *testing.T, f *os.File) int {
	t.Helper()
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", f.Fd()))
	if err != nil {
		t.Skipf("no fdinfo: needs Linux procfs: %v", err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(flags)
		}
	}
	t.Fatalf("no flags in fdinfo: %s", info)
	return 0
}

func TestOpenDeviceRefusesOtherFiles(t *testing.T) {
	for _, path := range []string{"/dev/null", t.TempDir()} {
		if _, err := openDevice(path, 512, false); err == nil {
			t.Fatalf("openDevice(%s) succeeded; want a refusal of anything but block devices and image files", path)
		}
	}
}

// loopDevice attaches path to a loop device and detaches it at cleanup.
func loopDevice(t *testing.T, path string, args ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices: needs root")
	}
	testenv.NeedCommands(t, "losetup")
	out, err := exec.Command("losetup", append([]string{"--find", "--show"}, append(args, path)...)...).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// TestBlockDevice runs the sector backend on real loop block devices: the
// logical sector size comes from BLKSSZGET, a read-only device is detected
// and never written.
func TestBlockDevice(t *testing.T) {
	tests := []struct {
		name     string
		image    []byte
		losetup  []string
		wantSS   int
		readOnly bool
	}{
		{name: "512-byte sectors", image: tailsImage(), wantSS: 512},
		{name: "4Kn", image: tails4Kn().Build(), losetup: []string{"--sector-size", "4096"}, wantSS: 4096},
		{name: "read-only", image: withSector(tailsImage(), 512, DefaultLBA, mustEncode(t, testRecord(0x60, 1, true))), losetup: []string{"--read-only"}, wantSS: 512, readOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeImage(t, t.TempDir(), tt.image)
			dev := loopDevice(t, path, tt.losetup...)
			d, err := openDevice(dev, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			ss, ro := d.sectorSize, d.readOnly
			d.f.Close()
			if ss != tt.wantSS || ro != tt.readOnly {
				t.Fatalf("sector size %d, read-only %t; want %d, %t", ss, ro, tt.wantSS, tt.readOnly)
			}

			before := fileHash(t, path)
			b := SectorBackend{Path: dev}
			rec := testRecord(0x20, 1, true)
			err = b.Store(rec)
			if tt.readOnly {
				if !errors.Is(err, ErrReadOnly) {
					t.Fatalf("Store on a read-only device = %v, want ErrReadOnly", err)
				}
				k := &FakeKernel{}
				res := Seeder{Backend: b, Kernel: k}.Seed()
				noCall(t, k, OpCredit)
				if !res.Mixed || res.Refreshed || res.Content != ContentRecord {
					t.Fatalf("Seed on a read-only device = %+v, want the record mixed only", res)
				}
				if fileHash(t, path) != before {
					t.Fatal("read-only device was modified")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ParseRecord(readSector(t, path, DefaultLBA, tt.wantSS)); err != nil || !bytes.Equal(got.seed(), rec.seed()) {
				t.Fatalf("backing file after Store = %v, %v; want the record at LBA 34 of %d-byte sectors", got, err, tt.wantSS)
			}
		})
	}
}

// BenchmarkSectorStore measures one checked, direct, flushed and verified
// sector write on an image file: what each of the WearRewrites costs.
func BenchmarkSectorStore(b *testing.B) {
	path := writeImage(b, b.TempDir(), tailsImage())
	backend := SectorBackend{Path: path}
	rec := testRecord(1, 1, true)
	b.ResetTimer()
	for range b.N {
		if err := backend.Store(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stores/s")
}

// closeWrites counts how often path is closed after being opened for
// writing while run runs: what udev watches block devices for (inotify
// IN_CLOSE_WRITE), and re-probes the disk after, every time.
func closeWrites(t *testing.T, path string, run func()) int {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// Opens too: identical events in a row are merged into one, and an
	// open between two closes keeps them apart.
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	run()
	n := 0
	buf := make([]byte, 1024*unix.SizeofInotifyEvent)
	for {
		got, err := unix.Read(fd, buf)
		if err != nil || got <= 0 {
			return n
		}
		// No names follow the events: the watch is on the file itself.
		for off := 0; off+unix.SizeofInotifyEvent <= got; off += unix.SizeofInotifyEvent {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_CLOSE_WRITE != 0 {
				n++
			}
		}
	}
}

// WearRewrites write the new seed up to hundreds of times: in one open of
// the disk, so udev re-probes it once, not after every write.
func TestWearRewritesInOneOpen(t *testing.T) {
	path, b := stick(t, Record{})
	for attempt := 0; ; attempt++ {
		var res Result
		closes := closeWrites(t, path, func() {
			res = Seeder{Backend: b, Kernel: &FakeKernel{}, WearRewrites: 50, WearRewritesDue: true}.Refresh()
		})
		if res.Err != nil || !res.Refreshed {
			t.Fatalf("Refresh = %+v", res)
		}
		if res.Rewrites < 2 && attempt < 20 {
			// Few rewrites drawn: nothing to tell one open from many.
			path, b = stick(t, Record{})
			continue
		}
		// The replacement's own store, then the rewrites.
		if closes != 2 {
			t.Fatalf("%d rewrites closed the disk after writing %d times, want 2", res.Rewrites, closes)
		}
		if _, err := ParseRecord(readSector(t, path, DefaultLBA, 512)); err != nil {
			t.Fatalf("the sector holds no valid record after the rewrites: %v", err)
		}
		return
	}
}

// BenchmarkWearRewrites compares 50 rewrites in one open with 50 stores,
// each opening and checking the disk again, as they were done before.
func BenchmarkWearRewrites(b *testing.B) {
	const times = 50
	path := writeImage(b, b.TempDir(), tailsImage())
	backend := SectorBackend{Path: path}
	rec := testRecord(1, 1, true)
	if err := backend.Store(rec); err != nil {
		b.Fatal(err)
	}
	var stores, rewrites time.Duration
	for range b.N {
		start := time.Now()
		for range times {
			if err := backend.Store(rec); err != nil {
				b.Fatal(err)
			}
		}
		stores += time.Since(start)
		start = time.Now()
		if _, err := backend.Rewrite(rec, times); err != nil {
			b.Fatal(err)
		}
		rewrites += time.Since(start)
	}
	b.ReportMetric(float64(rewrites.Microseconds())/float64(b.N), "µs/50-rewrites")
	b.ReportMetric(float64(stores.Microseconds())/float64(b.N), "µs/50-stores")
	b.ReportMetric(float64(stores)/float64(rewrites), "stores/rewrites")
}
