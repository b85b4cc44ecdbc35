// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders/internal/gptimage"
)

// stick is a Tails-like image file with a record at LBA 34.
func stick(t *testing.T, rec Record) (string, SectorBackend) {
	t.Helper()
	img := tailsImage()
	if rec.seed != nil {
		withSector(img, 512, DefaultLBA, mustEncode(t, rec))
	}
	path := writeImage(t, t.TempDir(), img)
	return path, SectorBackend{Path: path}
}

// spy wraps a backend to count stores and fail them on demand.
type spy struct {
	Backend
	stores   int
	rewrites int
	storeErr error
	readOnly bool
}

func (s *spy) Load() (Loaded, error) {
	l, err := s.Backend.Load()
	l.ReadOnly = l.ReadOnly || s.readOnly
	return l, err
}

func (s *spy) Store(r Record) error {
	s.stores++
	if s.storeErr != nil {
		return s.storeErr
	}
	return s.Backend.Store(r)
}

// Rewrite counts the rewrites a sector backend does.
func (s *spy) Rewrite(r Record, times int) (int, error) {
	n, err := s.Backend.(Rewriter).Rewrite(r, times)
	s.rewrites += n
	return n, err
}

func onlyCall(t *testing.T, k *FakeKernel, op Op) Call {
	t.Helper()
	calls := k.CallsOf(op)
	if len(calls) != 1 {
		t.Fatalf("%s calls = %v, want exactly one", op, calls)
	}
	return calls[0]
}

func noCall(t *testing.T, k *FakeKernel, op Op) {
	t.Helper()
	if calls := k.CallsOf(op); len(calls) != 0 {
		t.Fatalf("%s calls = %v, want none", op, calls)
	}
}

// Rule 2: the credit happens only once the replacement is on the medium. The
// fake kernel looks at the image at the moment of the credit: if the
// protocol credited first, it would still find the old record there.
func TestCreditAfterReplacementIsOnMedium(t *testing.T) {
	old := testRecord(0x30, 100, true)
	path, b := stick(t, old)
	k := &FakeKernel{}
	k.OnCredit = func() error {
		onDisk, err := ParseRecord(readSector(t, path, DefaultLBA, 512))
		if err != nil {
			return fmt.Errorf("at credit time the sector holds no valid record: %w", err)
		}
		if bytes.Equal(onDisk.seed(), old.seed()) || onDisk.Generation != old.Generation+1 {
			return errors.New("at credit time the old seed is still on the medium")
		}
		return nil
	}
	res := Seeder{Backend: b, Kernel: k}.Seed()
	if res.Err != nil || res.CreditedBits != 256 || res.Mixed || !res.Refreshed {
		t.Fatalf("Seed = %+v, want 256 bits credited after a refresh", res)
	}
	if c := onlyCall(t, k, OpCredit); !c.Carries(old.seed()) || c.Bits != 256 {
		t.Fatalf("credit = %v, want the old seed with 256 bits", c)
	}
	if res.StoredCreditable {
		t.Fatal("replacement marked creditable although the CRNG was not initialized when it was made")
	}
}

// Rule 2: no replacement, no credit — for every way the store can fail.
func TestNoCreditWithoutReplacement(t *testing.T) {
	rec := testRecord(0x30, 1, true)
	tests := []struct {
		name   string
		kernel *FakeKernel
		spy    spy
	}{
		{name: "store fails (I/O error)", kernel: &FakeKernel{}, spy: spy{storeErr: errIO}},
		{name: "read-only medium", kernel: &FakeKernel{}, spy: spy{readOnly: true}},
		{name: "no fresh random bytes", kernel: &FakeKernel{RandomErr: errors.New("getrandom failed")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := stick(t, rec)
			tt.spy.Backend = b
			res := Seeder{Backend: &tt.spy, Kernel: tt.kernel}.Seed()
			noCall(t, tt.kernel, OpCredit)
			if c := onlyCall(t, tt.kernel, OpMix); !c.Carries(rec.seed()) {
				t.Fatal("mixed something other than the old seed")
			}
			if res.CreditedBits != 0 || !res.Mixed || res.Refreshed {
				t.Fatalf("Seed = %+v, want mixed only", res)
			}
			if tt.spy.readOnly && tt.spy.stores != 0 {
				t.Fatalf("%d stores on a read-only medium", tt.spy.stores)
			}
		})
	}
}

// Rules 2 and 4 over several boots of one stick: every seed is credited at
// most once, a seed made before the CRNG was ready is only mixed, and the
// refresh after the gate opened makes the next boot's seed creditable.
func TestSeedChainAcrossBoots(t *testing.T) {
	path, b := stick(t, testRecord(0x30, 7, true))
	credited := map[string]bool{}
	boot := func(name string, wantCredit bool) {
		t.Helper()
		before, err := ParseRecord(readSector(t, path, DefaultLBA, 512))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		k := &FakeKernel{} // every boot starts with an uninitialized CRNG
		res := Seeder{Backend: b, Kernel: k}.Seed()
		if (res.CreditedBits > 0) != wantCredit {
			t.Fatalf("%s: %+v, want credited %t", name, res, wantCredit)
		}
		if wantCredit {
			if credited[string(before.seed())] {
				t.Fatalf("%s: a seed was credited a second time", name)
			}
			credited[string(before.seed())] = true
			if !k.Initialized {
				t.Fatalf("%s: credit did not initialize the fake CRNG", name)
			}
			// The gate opens: refresh, now from an initialized CRNG.
			if res := (Seeder{Backend: b, Kernel: k}).Refresh(); !res.Refreshed || !res.StoredCreditable {
				t.Fatalf("%s: refresh after the gate opened = %+v, want a creditable seed stored", name, res)
			}
		} else if res.Mixed != true {
			t.Fatalf("%s: %+v, want the seed mixed", name, res)
		}
	}
	boot("boot 1", true)
	boot("boot 2", true)
	// A boot whose gate never opened (no refresh): the next boot finds the
	// non-creditable seed written at load.
	k := &FakeKernel{}
	if res := (Seeder{Backend: b, Kernel: k}).Seed(); res.CreditedBits == 0 {
		t.Fatalf("boot 3: %+v, want a credit", res)
	}
	boot("boot 4 after a boot without refresh", false)
}

// Rules 3 and 4: what the loaded content allows.
func TestSeedByContent(t *testing.T) {
	creditable := testRecord(0x30, 1, true)
	tests := []struct {
		name        string
		sector      []byte
		foreign     ForeignPolicy
		imageGUIDs  []GUID
		wantCredit  bool
		wantMix     []byte // bytes the single mix must carry, nil: no mix
		wantContent Content
	}{
		{name: "creditable record", sector: mustEncode(t, creditable), wantCredit: true, wantContent: ContentRecord},
		{name: "record made before CRNG init: mixed only", sector: mustEncode(t, testRecord(0x30, 1, false)), wantMix: testRecord(0x30, 1, false).seed(), wantContent: ContentRecord},
		{name: "torn record: mixed, not credited", sector: append(mustEncode(t, creditable)[:60], make([]byte, 452)...), wantMix: append(mustEncode(t, creditable)[:60], make([]byte, 452)...), wantContent: ContentTorn},
		{name: "published image GUID: mixed only", sector: mustEncode(t, creditable), imageGUIDs: []GUID{GUID(gptimage.TailsLike(tailsSectors).DiskGUID)}, wantMix: creditable.seed(), wantContent: ContentRecord},
		{name: "empty sector: nothing to the kernel", sector: nil, wantContent: ContentEmpty},
		{name: "legacy random sector: mixed once", sector: bytes.Repeat([]byte{0xa5}, 512), foreign: ForeignMix, wantMix: bytes.Repeat([]byte{0xa5}, 512), wantContent: ContentForeign},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeImage(t, t.TempDir(), withSector(tailsImage(), 512, DefaultLBA, tt.sector))
			b := SectorBackend{Path: path, Foreign: tt.foreign, ImageDiskGUIDs: tt.imageGUIDs}
			k := &FakeKernel{}
			res := Seeder{Backend: b, Kernel: k}.Seed()
			if res.Err != nil || !res.Refreshed || res.Content != tt.wantContent {
				t.Fatalf("Seed = %+v, want %v loaded and replaced", res, tt.wantContent)
			}
			if tt.wantCredit {
				onlyCall(t, k, OpCredit)
			} else {
				noCall(t, k, OpCredit)
			}
			if tt.wantMix == nil {
				noCall(t, k, OpMix)
			} else if c := onlyCall(t, k, OpMix); !c.Carries(tt.wantMix) {
				t.Fatal("mixed other bytes than the loaded content")
			}
			// Whatever was there, the sector now holds a valid record of ours.
			if _, err := ParseRecord(readSector(t, path, DefaultLBA, 512)); err != nil {
				t.Fatalf("sector after Seed: %v", err)
			}
			// The next boot finds our record: a legacy sector is mixed once.
			k2 := &FakeKernel{}
			if res := (Seeder{Backend: b, Kernel: k2}).Seed(); res.Content != ContentRecord {
				t.Fatalf("second Seed found %v, want our record", res.Content)
			}
		})
	}
}

func TestCreditFailureFallsBackToMix(t *testing.T) {
	rec := testRecord(0x30, 1, true)
	_, b := stick(t, rec)
	k := &FakeKernel{CreditErr: errors.New("operation not permitted")}
	res := Seeder{Backend: b, Kernel: k}.Seed()
	if res.CreditedBits != 0 || !res.Mixed || res.Err == nil {
		t.Fatalf("Seed = %+v, want the failed credit reported and the seed mixed", res)
	}
	if c := onlyCall(t, k, OpMix); !c.Carries(rec.seed()) {
		t.Fatal("mixed other bytes than the seed")
	}
}

// WearRewrites happen once the gate is open, not within the boot's load
// budget: the load only says they are due, and the refresh after it does
// them.
func TestWearRewrites(t *testing.T) {
	const n = 20
	for _, content := range []Content{ContentEmpty, ContentRecord} {
		t.Run(content.String(), func(t *testing.T) {
			var rec Record
			if content == ContentRecord {
				rec = testRecord(1, 1, true)
			}
			counts := map[int]bool{}
			for range 8 {
				_, b := stick(t, rec)
				s := &spy{Backend: b}
				seeder := Seeder{Backend: s, Kernel: &FakeKernel{}, WearRewrites: n}
				load := seeder.Seed()
				if load.Err != nil || s.stores != 1 || s.rewrites != 0 || load.Rewrites != 0 {
					t.Fatalf("Seed = %+v after %d stores and %d rewrites; want one store, no rewrite", load, s.stores, s.rewrites)
				}
				if load.WearRewritesDue != (content != ContentRecord) {
					t.Fatalf("Seed says rewrites due %t for a location holding %s", load.WearRewritesDue, content)
				}
				seeder.WearRewritesDue = load.WearRewritesDue
				res := seeder.Refresh()
				if res.Err != nil || s.stores != 2 || s.rewrites != res.Rewrites {
					t.Fatalf("Refresh = %+v after %d stores and %d rewrites", res, s.stores, s.rewrites)
				}
				if content == ContentRecord && res.Rewrites != 0 {
					t.Fatalf("%d rewrites of a location that already had our record", res.Rewrites)
				}
				if res.Rewrites < 0 || res.Rewrites >= n {
					t.Fatalf("%d rewrites, want 0…%d", res.Rewrites, n-1)
				}
				counts[res.Rewrites] = true
			}
			if content == ContentEmpty && len(counts) < 2 {
				t.Fatalf("8 first boots all rewrote %v times: the count is not random", counts)
			}
		})
	}
}

// Rule 6: no seed byte in results, errors or their JSON, whatever happened.
func TestResultsNeverHoldSeeds(t *testing.T) {
	rec := testRecord(0x41, 1, true)
	torn := append(mustEncode(t, rec)[:60], make([]byte, 452)...)
	scenarios := []struct {
		name   string
		sector []byte
		spy    spy
		kernel *FakeKernel
	}{
		{name: "credited", sector: mustEncode(t, rec), kernel: &FakeKernel{}},
		{name: "torn", sector: torn, kernel: &FakeKernel{}},
		{name: "store failed", sector: mustEncode(t, rec), spy: spy{storeErr: errIO}, kernel: &FakeKernel{}},
		{name: "credit and mix failed", sector: mustEncode(t, rec), kernel: &FakeKernel{CreditErr: errIO, MixErr: errIO}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			path := writeImage(t, t.TempDir(), withSector(tailsImage(), 512, DefaultLBA, sc.sector))
			sc.spy.Backend = SectorBackend{Path: path}
			s := Seeder{Backend: &sc.spy, Kernel: sc.kernel}
			results := []Result{s.Seed(), s.Refresh()}
			secrets := [][]byte{rec.seed(), sc.sector[offSeed:offChecksum]}
			if now, err := ParseRecord(readSector(t, path, DefaultLBA, 512)); err == nil {
				secrets = append(secrets, now.seed())
			}
			for _, res := range results {
				j, err := json.Marshal(res)
				if err != nil {
					t.Fatal(err)
				}
				for _, secret := range secrets {
					for _, text := range []string{string(j), fmt.Sprintf("%+v", res), fmt.Sprintf("%#v", res), res.Reason, res.Error} {
						assertNoSecret(t, "result", text, secret)
					}
				}
			}
			for _, c := range sc.kernel.Calls() {
				for _, secret := range secrets {
					assertNoSecret(t, "fake kernel call", fmt.Sprintf("%v %+v %s", c, c, c), secret)
				}
			}
		})
	}
}

func TestResultJSON(t *testing.T) {
	_, b := stick(t, testRecord(1, 1, true))
	res := Seeder{Backend: b, Kernel: &FakeKernel{}}.Seed()
	j, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if back["content"] != "record" || back["credited_bits"] != float64(256) || back["refreshed"] != true {
		t.Fatalf("JSON = %s, want content, credited bits and refreshed", j)
	}

	refused := Seeder{Backend: SectorBackend{Path: filepath.Join(t.TempDir(), "missing")}, Kernel: &FakeKernel{}}.Seed()
	j, _ = json.Marshal(refused)
	back = nil
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back["content"]; ok || back["loaded"] != false || back["error"] == nil {
		t.Fatalf("JSON of an unusable backend = %s, want an error and no content", j)
	}
}

// The file backend runs the same protocol.
func TestFileBackendProtocol(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed")
	b := FileBackend{Path: path}

	k := &FakeKernel{}
	res := Seeder{Backend: b, Kernel: k}.Seed()
	if res.Err != nil || res.Content != ContentEmpty || !res.Refreshed {
		t.Fatalf("first Seed = %+v, want a new seed file", res)
	}
	noCall(t, k, OpCredit)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v, %v; want mode 0600", st, err)
	}

	k.Initialized = true
	if res := (Seeder{Backend: b, Kernel: k}).Refresh(); !res.StoredCreditable {
		t.Fatalf("Refresh = %+v, want a creditable seed", res)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ParseRecord(saved)
	if err != nil {
		t.Fatal(err)
	}
	k = &FakeKernel{}
	res = Seeder{Backend: b, Kernel: k}.Seed()
	if res.CreditedBits != 256 || !onlyCall(t, k, OpCredit).Carries(rec.seed()) {
		t.Fatalf("Seed = %+v, want the stored seed credited", res)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the seed file (no temporary left)", len(entries))
	}
}
