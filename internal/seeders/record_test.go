// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders/internal/gptimage"
)

// testRecord makes a record whose seed is the byte pattern start, start+1, …
// so that tests can look for it in output. It is bound to the Tails-like
// test image (tailsImage), as if written there.
func testRecord(start byte, gen uint64, creditable bool) Record {
	seed := make([]byte, SeedSize)
	for i := range seed {
		seed[i] = start + byte(i)
	}
	return Record{Version: recordVersion, Generation: gen, Creditable: creditable, Binding: tailsImageBinding(), seed: newSecret(seed)}
}

// tailsImageBinding is what a record written on tailsImage is bound to.
func tailsImageBinding() Binding {
	return Binding{DiskGUID: GUID(gptimage.TailsLike(tailsSectors).DiskGUID), DiskSize: tailsSectors * 512}
}

// boundRecord is testRecord bound to a medium.
func boundRecord(start byte, gen uint64, creditable bool, b Binding) Record {
	r := testRecord(start, gen, creditable)
	r.Binding = b
	return r
}

// testBinding is a stick after its first boot: GUIDs of its own, a serial.
func testBinding() Binding {
	return Binding{
		DiskGUID:      mustParseGUID("0B5A5E3C-1D4F-4E8A-9C2B-7F6E5D4C3B2A"),
		PartitionGUID: mustParseGUID("6E1F2A3B-4C5D-4E6F-8A9B-0C1D2E3F4A5B"),
		DiskSize:      8 << 30,
		Serial:        SerialDigest("4C530001"),
	}
}

// encodeV1 writes a version 1 record, as entropy-gate did before records
// were bound to their medium.
func encodeV1(start byte, gen uint64, creditable bool) []byte {
	b := make([]byte, recordSizeV1)
	copy(b, recordMagic[:])
	binary.LittleEndian.PutUint16(b[offVersion:], recordVersion1)
	if creditable {
		b[offFlags] = flagCreditable
	}
	binary.LittleEndian.PutUint64(b[offGeneration:], gen)
	copy(b[offSeed:], testRecord(start, gen, creditable).seed())
	sum := sha256.Sum256(b[:offChecksumV1])
	copy(b[offChecksumV1:], sum[:])
	return b
}

func mustEncode(t testing.TB, r Record) []byte {
	t.Helper()
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertNoSecret fails if text contains secret in any common rendering: raw,
// hex, base64, or fmt's decimal byte list. A 6-byte window is enough to call
// it a leak and short enough to catch partial prints.
func assertNoSecret(t *testing.T, what, text string, secret []byte) {
	t.Helper()
	if len(secret) == 0 {
		t.Fatalf("%s: empty secret: the test checks nothing", what)
	}
	window := secret
	if len(window) > 6 {
		window = window[:6]
	}
	lower := strings.ToLower(text)
	renderings := []string{
		string(window),
		hex.EncodeToString(window),
		base64.StdEncoding.EncodeToString(secret)[:8],
		base64.RawURLEncoding.EncodeToString(secret)[:8],
		strings.Trim(fmt.Sprint(window), "[]"),
		strings.Trim(fmt.Sprintf("%#v", window), "[]byte{}"),
	}
	for _, r := range renderings {
		if strings.Contains(text, r) || strings.Contains(lower, strings.ToLower(r)) {
			t.Fatalf("%s leaks seed bytes (as %q): %s", what, r, text)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{name: "creditable", rec: testRecord(1, 7, true)},
		{name: "not creditable", rec: testRecord(0x80, 0, false)},
		{name: "max generation", rec: testRecord(0xff, ^uint64(0), true)},
		{name: "bound", rec: boundRecord(2, 8, true, testBinding())},
		{name: "first boot", rec: boundRecord(3, 9, true, Binding{DiskGUID: TailsImageDiskGUID, DiskSize: 1 << 30, Serial: SerialDigest("x"), FirstBoot: true})},
		{name: "file", rec: boundRecord(4, 10, true, Binding{FileSystem: 0x1234_5678_9abc_def0, Inode: 131077})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, tt.rec)
			if len(b) != RecordSize {
				t.Fatalf("encoded %d bytes, want %d", len(b), RecordSize)
			}
			// A sector carries the record and zero padding.
			sector := append(b, make([]byte, 512-RecordSize)...)
			got, err := ParseRecord(sector)
			if err != nil {
				t.Fatalf("ParseRecord: %v", err)
			}
			if got.Version != 2 || got.Generation != tt.rec.Generation || got.Creditable != tt.rec.Creditable || got.Binding != tt.rec.Binding || !bytes.Equal(got.seed(), tt.rec.seed()) {
				t.Fatalf("round trip changed the record: got %v, want %v", got, tt.rec)
			}
		})
	}
}

func TestRecordFitsSector(t *testing.T) {
	if RecordSize > 512 {
		t.Fatalf("RecordSize %d does not fit a 512-byte sector", RecordSize)
	}
}

func TestEncodeEmptyRecord(t *testing.T) {
	if _, err := (Record{}).Encode(); err == nil {
		t.Fatal("encoding the zero Record succeeded; it would write a seed of zeros")
	}
}

func TestParseRecordErrors(t *testing.T) {
	valid := mustEncode(t, testRecord(1, 3, true))
	modified := func(f func(b []byte)) []byte {
		b := append([]byte(nil), valid...)
		f(b)
		return b
	}
	// resealed applies f and recomputes the checksum, as a newer writer would.
	resealed := func(f func(b []byte)) []byte {
		return modified(func(b []byte) {
			f(b)
			sum := sha256.Sum256(b[:offChecksum])
			copy(b[offChecksum:], sum[:])
		})
	}
	resealedV1 := func(f func(b []byte)) []byte {
		return modified2(encodeV1(1, 1, true), func(b []byte) {
			f(b)
			sum := sha256.Sum256(b[:offChecksumV1])
			copy(b[offChecksumV1:], sum[:])
		})
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{name: "empty", in: nil, want: ErrNotRecord},
		{name: "zero sector", in: make([]byte, 512), want: ErrNotRecord},
		{name: "foreign", in: bytes.Repeat([]byte{0x5a}, 512), want: ErrNotRecord},
		{name: "magic prefix only", in: recordMagic[:4], want: ErrNotRecord},
		{name: "magic off by one bit", in: modified(func(b []byte) { b[0] ^= 1 }), want: ErrNotRecord},
		{name: "truncated", in: valid[:RecordSize-1], want: ErrChecksum},
		{name: "only magic", in: recordMagic[:], want: ErrChecksum},
		{name: "seed bit flip", in: modified(func(b []byte) { b[offSeed+5] ^= 0x10 }), want: ErrChecksum},
		{name: "creditable flag flipped", in: modified(func(b []byte) { b[offFlags] ^= flagCreditable }), want: ErrChecksum},
		{name: "generation changed", in: modified(func(b []byte) { b[offGeneration]++ }), want: ErrChecksum},
		{name: "checksum bit flip", in: modified(func(b []byte) { b[RecordSize-1] ^= 0x80 }), want: ErrChecksum},
		{name: "torn half", in: append(append([]byte(nil), valid[:40]...), make([]byte, 472)...), want: ErrChecksum},
		{name: "disk GUID changed", in: modified(func(b []byte) { b[offDiskGUID+3] ^= 1 }), want: ErrChecksum},
		{name: "partition GUID changed", in: modified(func(b []byte) { b[offPartitionGUID] ^= 1 }), want: ErrChecksum},
		{name: "serial changed", in: modified(func(b []byte) { b[offSerial+31] ^= 1 }), want: ErrChecksum},
		{name: "inode changed", in: modified(func(b []byte) { b[offInode]++ }), want: ErrChecksum},
		{name: "first-boot flag set", in: modified(func(b []byte) { b[offFlags] |= flagFirstBoot }), want: ErrChecksum},
		{name: "version 1 truncated", in: encodeV1(1, 1, true)[:recordSizeV1-1], want: ErrChecksum},
		{name: "version 1 checksum bit flip", in: modified2(encodeV1(1, 1, true), func(b []byte) { b[offSeed] ^= 1 }), want: ErrChecksum},
		{name: "version 2 cut to a version 1 size", in: valid[:recordSizeV1], want: ErrChecksum},
		{name: "newer version", in: resealed(func(b []byte) { binary.LittleEndian.PutUint16(b[offVersion:], 3) }), want: ErrVersion},
		{name: "version zero", in: modified(func(b []byte) { binary.LittleEndian.PutUint16(b[offVersion:], 0) }), want: ErrVersion},
		{name: "unknown flag", in: resealed(func(b []byte) { b[offFlags] |= 0x04 }), want: ErrVersion},
		{name: "first-boot flag on version 1", in: resealedV1(func(b []byte) { b[offFlags] |= flagFirstBoot }), want: ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRecord(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseRecord = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrNotRecord, ErrChecksum, ErrVersion} {
				if !errors.Is(tt.want, other) && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v: callers cannot tell the cases apart", err, other)
				}
			}
		})
	}
}

func modified2(b []byte, f func(b []byte)) []byte {
	f(b)
	return b
}

// A version 1 record parses, so its seed is mixed and chained into the
// next one, but it is bound to nothing and so never credited anywhere.
func TestParseVersion1(t *testing.T) {
	sector := append(encodeV1(7, 99, true), make([]byte, 512-recordSizeV1)...)
	got, err := ParseRecord(sector)
	if err != nil {
		t.Fatal(err)
	}
	want := testRecord(7, 99, true)
	if got.Version != 1 || got.Generation != 99 || !got.Creditable || got.Binding != (Binding{}) || !bytes.Equal(got.seed(), want.seed()) {
		t.Fatalf("ParseRecord(v1) = %#v", got)
	}
	if why := whyNotBound(got, testBinding(), nil); !strings.Contains(why, "version 1") {
		t.Fatalf("whyNotBound(v1) = %q, want a refusal naming version 1", why)
	}
}

func TestParseIgnoresPadding(t *testing.T) {
	rec := testRecord(9, 1, true)
	sector := append(mustEncode(t, rec), bytes.Repeat([]byte{0xa5}, 512-RecordSize)...)
	got, err := ParseRecord(sector)
	if err != nil || !bytes.Equal(got.seed(), rec.seed()) {
		t.Fatalf("ParseRecord with non-zero padding = %v, %v; want the record", got, err)
	}
}

func TestRecordNeverPrintsSeed(t *testing.T) {
	rec := testRecord(0x41, 5, true) // 'A', 'B', … so %s and %q would show it
	secret := rec.seed()
	type wrapper struct {
		hidden Record
		Shown  Record
		Ptr    *Record
	}
	values := map[string]any{
		"Record":                rec,
		"*Record":               &rec,
		"unexported field":      wrapper{hidden: rec, Shown: rec, Ptr: &rec},
		"pointer to wrapper":    &wrapper{hidden: rec},
		"slice":                 []Record{rec},
		"map":                   map[string]Record{"k": rec},
		"Loaded with record":    mustClassify(t, mustEncode(t, rec)),
		"pointer to Loaded":     ptr(mustClassify(t, mustEncode(t, rec))),
		"Loaded in unexported":  struct{ l Loaded }{mustClassify(t, mustEncode(t, rec))},
		"Loaded in interface":   []any{mustClassify(t, mustEncode(t, rec))},
		"torn Loaded (raw)":     mustClassify(t, append(mustEncode(t, rec)[:60], make([]byte, 452)...)),
		"foreign Loaded (raw)":  mustClassifyForeign(t, append([]byte(nil), secret...)),
		"nested struct pointer": struct{ p *Loaded }{ptr(mustClassify(t, mustEncode(t, rec)))},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"}
	for name, v := range values {
		for _, verb := range verbs {
			assertNoSecret(t, name+" "+verb, fmt.Sprintf(verb, v), secret)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: json: %v", name, err)
		}
		assertNoSecret(t, name+" json", string(j), secret)
	}
	if got := rec.String(); !strings.Contains(got, "generation 5") || !strings.Contains(got, "creditable true") {
		t.Fatalf("String() = %q, want the metadata", got)
	}
	var meta struct {
		Version    int    `json:"version"`
		Generation uint64 `json:"generation"`
		Creditable bool   `json:"creditable"`
	}
	j, _ := json.Marshal(rec)
	if err := json.Unmarshal(j, &meta); err != nil || meta.Version != 2 || meta.Generation != 5 || !meta.Creditable {
		t.Fatalf("json = %s, want the metadata", j)
	}
}

func ptr[T any](v T) *T { return &v }

func mustClassify(t *testing.T, b []byte) Loaded {
	t.Helper()
	l, err := Classify(b, ForeignRefuse)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustClassifyForeign(t *testing.T, b []byte) Loaded {
	t.Helper()
	l, err := Classify(b, ForeignMix)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestClassify(t *testing.T) {
	valid := mustEncode(t, testRecord(1, 1, true))
	torn := append(append([]byte(nil), valid[:50]...), make([]byte, 462)...)
	foreign := bytes.Repeat([]byte{0x5a}, 512)
	tests := []struct {
		name    string
		in      []byte
		policy  ForeignPolicy
		want    Content
		wantErr error
		mixLen  int
	}{
		{name: "zero sector", in: make([]byte, 512), want: ContentEmpty},
		{name: "empty file", in: nil, want: ContentEmpty},
		{name: "record", in: append(valid, make([]byte, 512-RecordSize)...), want: ContentRecord, mixLen: SeedSize},
		{name: "torn record is ours", in: torn, want: ContentTorn, mixLen: 512},
		{name: "foreign refused", in: foreign, policy: ForeignRefuse, wantErr: ErrForeign},
		{name: "foreign under mix policy", in: foreign, policy: ForeignMix, want: ContentForeign, mixLen: 512},
		{name: "single non-zero byte is foreign", in: append(make([]byte, 511), 1), wantErr: ErrForeign},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Classify(tt.in, tt.policy)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Classify error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrUnsafe) {
					t.Fatalf("refusal %v does not match ErrUnsafe", err)
				}
				return
			}
			if l.Content != tt.want {
				t.Fatalf("Content = %v, want %v", l.Content, tt.want)
			}
			if len(l.material()) != tt.mixLen {
				t.Fatalf("material is %d bytes, want %d", len(l.material()), tt.mixLen)
			}
			if tt.want == ContentTorn && !errors.Is(l.Damage, ErrChecksum) {
				t.Fatalf("Damage = %v, want ErrChecksum", l.Damage)
			}
		})
	}
}
