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
)

// testRecord makes a record whose seed is the byte pattern start, start+1, …
// so that tests can look for it in output.
func testRecord(start byte, gen uint64, creditable bool) Record {
	seed := make([]byte, SeedSize)
	for i := range seed {
		seed[i] = start + byte(i)
	}
	return Record{Generation: gen, Creditable: creditable, seed: newSecret(seed)}
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
			if got.Generation != tt.rec.Generation || got.Creditable != tt.rec.Creditable || !bytes.Equal(got.seed(), tt.rec.seed()) {
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
		{name: "newer version", in: resealed(func(b []byte) { binary.LittleEndian.PutUint16(b[offVersion:], 2) }), want: ErrVersion},
		{name: "version zero", in: modified(func(b []byte) { binary.LittleEndian.PutUint16(b[offVersion:], 0) }), want: ErrVersion},
		{name: "unknown flag", in: resealed(func(b []byte) { b[offFlags] |= 0x02 }), want: ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRecord(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseRecord = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrNotRecord, ErrChecksum, ErrVersion} {
				if other != tt.want && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v: callers cannot tell the cases apart", err, other)
				}
			}
		})
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
	if err := json.Unmarshal(j, &meta); err != nil || meta.Version != 1 || meta.Generation != 5 || !meta.Creditable {
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
