// SPDX-License-Identifier: GPL-3.0-or-later

package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name         string
		text         string
		want         func(c *Config)
		wantProblems []error
		wantWhere    []string
	}{
		{
			name: "every key",
			text: "# comment\n; also a comment\n[Gate]\nThreshold=128\nTimeout=1min 30s\nOnTimeout=open\nMode=passive\n",
			want: func(c *Config) {
				c.Threshold, c.Timeout, c.OnTimeout, c.Mode = 128, 90*time.Second, Open, pool.Passive
			},
		},
		{
			name: "spaces around the equals sign and a continuation line",
			text: "[Gate]\n  Threshold = 64 \nTimeout=1min \\\n 30s\n",
			want: func(c *Config) { c.Threshold, c.Timeout = 64, 90*time.Second },
		},
		{
			name:         "bad threshold keeps the default",
			text:         "[Gate]\nThreshold=abc\nMode=passive\n",
			want:         func(c *Config) { c.Mode = pool.Passive },
			wantProblems: []error{ErrInvalidValue},
			wantWhere:    []string{"test.conf:2"},
		},
		{
			name:         "negative threshold",
			text:         "[Gate]\nThreshold=-1\n",
			want:         func(*Config) {},
			wantProblems: []error{ErrInvalidValue},
		},
		{
			name:         "bad timeout, on-timeout and mode",
			text:         "[Gate]\nTimeout=soon\nOnTimeout=maybe\nMode=Active\n",
			want:         func(*Config) {},
			wantProblems: []error{ErrInvalidValue, ErrInvalidValue, ErrInvalidValue},
			wantWhere:    []string{"test.conf:2", "test.conf:3", "test.conf:4"},
		},
		{
			name:         "unknown key warns",
			text:         "[Gate]\nTreshold=128\n",
			want:         func(*Config) {},
			wantProblems: []error{ErrUnknownKey},
		},
		{
			name:         "unknown section warns once and its keys are ignored",
			text:         "[Gaet]\nThreshold=1\nMode=passive\n",
			want:         func(*Config) {},
			wantProblems: []error{ErrUnknownKey},
			wantWhere:    []string{"test.conf:1"},
		},
		{
			name:         "syntax errors",
			text:         "Threshold=1\n[Gate\nThreshold\n=3\n",
			want:         func(*Config) {},
			wantProblems: []error{ErrSyntax, ErrSyntax, ErrSyntax, ErrSyntax},
			wantWhere:    []string{"test.conf:1", "test.conf:2", "test.conf:3", "test.conf:4"},
		},
		{
			name: "infinity means no timeout",
			text: "[Gate]\nTimeout=infinity\n",
			want: func(c *Config) { c.Timeout = 0 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Default()
			problems := got.Parse("test.conf", tt.text)
			want := Default()
			tt.want(&want)
			if got.Threshold != want.Threshold || got.Timeout != want.Timeout || got.OnTimeout != want.OnTimeout || got.Mode != want.Mode {
				t.Errorf("config = %+v, want %+v", got, want)
			}
			if len(problems) != len(tt.wantProblems) {
				t.Fatalf("problems = %v, want %d", problems, len(tt.wantProblems))
			}
			for i, p := range problems {
				if !errors.Is(p, tt.wantProblems[i]) {
					t.Errorf("problem %d = %v, want %v", i, p, tt.wantProblems[i])
				}
				if i < len(tt.wantWhere) && p.Where != tt.wantWhere[i] {
					t.Errorf("problem %d at %q, want %q", i, p.Where, tt.wantWhere[i])
				}
				if strings.Contains(p.Error(), "\n") {
					t.Errorf("problem %d spans lines: %q", i, p.Error())
				}
			}
		})
	}
}

func TestProblemNamesFileLineAndKey(t *testing.T) {
	c := Default()
	problems := c.Parse("/etc/entropy-gate/entropy-gate.conf", "[Gate]\n\nThreshold=abc\n")
	if len(problems) != 1 {
		t.Fatalf("problems = %v", problems)
	}
	msg := problems[0].Error()
	for _, want := range []string{"/etc/entropy-gate/entropy-gate.conf:3", "Threshold", `"abc"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not name %s", msg, want)
		}
	}
	if problems[0].Warning || !HasErrors(problems) {
		t.Errorf("a bad value must be an error, not a warning")
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		name         string
		cmdline      string
		want         func(c *Config)
		wantProblems []error
	}{
		{
			name:    "overrides",
			cmdline: "BOOT_IMAGE=/live/vmlinuz quiet entropy_gate.threshold=0 entropy_gate.timeout=5s entropy_gate.on_timeout=open entropy_gate.mode=passive splash\n",
			want: func(c *Config) {
				c.Threshold, c.Timeout, c.OnTimeout, c.Mode = 0, 5*time.Second, Open, pool.Passive
			},
		},
		{
			name:    "last one wins",
			cmdline: "entropy_gate.threshold=1 entropy_gate.threshold=2",
			want:    func(c *Config) { c.Threshold = 2 },
		},
		{
			name:    "quoted value",
			cmdline: `entropy_gate.timeout="1min 30s" quiet`,
			want:    func(c *Config) { c.Timeout = 90 * time.Second },
		},
		{
			name:    "dashes",
			cmdline: "entropy-gate.on-timeout=open entropy-gate.threshold=0 entropy-gate.mode=passive",
			want:    func(c *Config) { c.OnTimeout, c.Threshold, c.Mode = Open, 0, pool.Passive },
		},
		{
			name:    "dashes and underscores mixed",
			cmdline: "entropy_gate.on-timeout=open entropy-gate.on_timeout=fail entropy-gate.threshold=1 entropy_gate.threshold=2",
			want:    func(c *Config) { c.OnTimeout, c.Threshold = Fail, 2 },
		},
		{
			name:         "unknown with dashes",
			cmdline:      "entropy-gate.colour=blue",
			want:         func(*Config) {},
			wantProblems: []error{ErrUnknownKey},
		},
		{
			name:         "bad and unknown parameters",
			cmdline:      "entropy_gate.threshold=lots entropy_gate.colour=blue",
			want:         func(*Config) {},
			wantProblems: []error{ErrInvalidValue, ErrUnknownKey},
		},
		{
			name:    "the command-line seed token is ours, and no setting",
			cmdline: "quiet entropy_gate.seed=00112233445566778899aabbccddeeff splash",
			want:    func(*Config) {},
		},
		{
			name:    "other parameters are not ours",
			cmdline: "threshold=3 xentropy_gate.threshold=3 xentropy-gate.threshold=3 entropy.gate.threshold=3 random.trust_cpu=off",
			want:    func(*Config) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Default()
			problems := got.ParseCmdline(tt.cmdline)
			want := Default()
			tt.want(&want)
			if got.Threshold != want.Threshold || got.Timeout != want.Timeout || got.OnTimeout != want.OnTimeout || got.Mode != want.Mode {
				t.Errorf("config = %+v, want %+v", got, want)
			}
			if len(problems) != len(tt.wantProblems) {
				t.Fatalf("problems = %v, want %v", problems, tt.wantProblems)
			}
			for i, p := range problems {
				if !errors.Is(p, tt.wantProblems[i]) {
					t.Errorf("problem %d = %v, want %v", i, p, tt.wantProblems[i])
				}
			}
		})
	}
}

// The seeders put their token on the command line under the name the
// configuration passes over in silence.
func TestCmdlineSeedParamIsTheSeedersKey(t *testing.T) {
	if CmdlineSeedParam != seeders.DefaultCmdlineKey {
		t.Errorf("CmdlineSeedParam = %q, seeders.DefaultCmdlineKey = %q", CmdlineSeedParam, seeders.DefaultCmdlineKey)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	src := Sources{
		File:      filepath.Join(dir, "entropy-gate.conf"),
		DropInDir: filepath.Join(dir, "entropy-gate.conf.d"),
		Cmdline:   filepath.Join(dir, "cmdline"),
	}
	writeFile(t, src.File, "[Gate]\nThreshold=100\nTimeout=10s\nOnTimeout=open\n")
	writeFile(t, filepath.Join(src.DropInDir, "20-late.conf"), "[Gate]\nTimeout=30s\n")
	writeFile(t, filepath.Join(src.DropInDir, "10-early.conf"), "[Gate]\nTimeout=20s\nThreshold=200\n")
	writeFile(t, filepath.Join(src.DropInDir, "30-ignored.txt"), "[Gate]\nTimeout=99s\n")
	writeFile(t, src.Cmdline, "quiet entropy_gate.threshold=300\n")

	c, problems := Load(src)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if c.Threshold != 300 || c.Timeout != 30*time.Second || c.OnTimeout != Open || c.Mode != pool.Active {
		t.Errorf("config = %+v, want threshold from the command line, timeout from the last drop-in", c)
	}
	for key, want := range map[string]string{
		"Gate.Threshold": "kernel command line",
		"Gate.Timeout":   filepath.Join(src.DropInDir, "20-late.conf") + ":2",
		"Gate.OnTimeout": src.File + ":4",
		"Gate.Mode":      "default",
	} {
		if got := c.Origin(key); got != want {
			t.Errorf("Origin(%s) = %q, want %q", key, got, want)
		}
	}
}

func TestLoadMissingFilesAreDefaults(t *testing.T) {
	dir := t.TempDir()
	c, problems := Load(Sources{File: filepath.Join(dir, "none.conf"), DropInDir: filepath.Join(dir, "none.d"), Cmdline: filepath.Join(dir, "none")})
	if len(problems) != 0 {
		t.Errorf("problems for missing files: %v", problems)
	}
	if d := Default(); c.Threshold != d.Threshold || c.Timeout != d.Timeout || c.OnTimeout != d.OnTimeout || c.Mode != d.Mode {
		t.Errorf("config = %+v, want the defaults", c)
	}
}

func TestLoadUnreadableFileIsAProblem(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be cannot be read as one.
	if err := os.Mkdir(filepath.Join(dir, "entropy-gate.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, problems := Load(Sources{File: filepath.Join(dir, "entropy-gate.conf")})
	if !HasErrors(problems) {
		t.Errorf("problems = %v, want an error naming the file", problems)
	}
}

func TestWriteEffective(t *testing.T) {
	c := Default()
	c.Parse("a.conf", "[Gate]\nMode=passive\n")
	var b strings.Builder
	if err := c.WriteEffective(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"[Gate]\n", "Threshold=256", "# from default\n", "# from a.conf:2\nMode=passive\n", "Timeout=2min"} {
		if !strings.Contains(out, want) {
			t.Errorf("effective config lacks %q:\n%s", want, out)
		}
	}
	// What it prints must parse back to the same configuration.
	again := Default()
	if problems := again.Parse("printed", out); len(problems) != 0 {
		t.Errorf("printed config does not parse: %v", problems)
	}
	if again.Threshold != c.Threshold || again.Timeout != c.Timeout || again.Mode != c.Mode || again.OnTimeout != c.OnTimeout {
		t.Errorf("round trip = %+v, want %+v", again, c)
	}
}

func TestTimespan(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "120", want: 2 * time.Minute},
		{in: "120s", want: 2 * time.Minute},
		{in: "2min", want: 2 * time.Minute},
		{in: "1min 30s", want: 90 * time.Second},
		{in: "1min30s", want: 90 * time.Second},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1h", want: time.Hour},
		{in: "0", want: 0},
		{in: "infinity", want: 0},
		{in: "", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "5 parsecs", wantErr: true},
		{in: "-5s", wantErr: true},
		{in: "1e9w", wantErr: true},
		// Below the clock's resolution: 0 would mean "no limit".
		{in: "0.0000000001s", wantErr: true},
		{in: "0.0001us", wantErr: true},
		{in: "0.0001us 0.0001us", wantErr: true},
		{in: "1s 0.0001us", want: time.Second},
		{in: "0s", want: 0},
		{in: "0.0", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTimespan(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseTimespan(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil && tt.want > 0 {
				if back, err := ParseTimespan(FormatTimespan(got)); err != nil || back != got {
					t.Errorf("FormatTimespan(%v) = %q does not parse back", got, FormatTimespan(got))
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("[Gate]\nThreshold=256\nTimeout=2min\nOnTimeout=open\nMode=active\n")
	f.Add("[Gate]\nThreshold=abc\\\n")
	f.Add("[Gate\n=\n[]\nx=y")
	f.Fuzz(func(t *testing.T, text string) {
		c := Default()
		for _, p := range c.Parse("fuzz.conf", text) {
			if !strings.HasPrefix(p.Error(), "fuzz.conf:") {
				t.Errorf("problem without a position: %q", p.Error())
			}
		}
		if c.Threshold < 0 || c.Timeout < 0 {
			t.Errorf("invalid config accepted: %+v", c)
		}
	})
}

func FuzzParseCmdline(f *testing.F) {
	f.Add("quiet entropy_gate.threshold=0 entropy_gate.timeout=\"1min 30s\"")
	f.Add(`entropy_gate.mode="`)
	f.Fuzz(func(t *testing.T, cmdline string) {
		c := Default()
		c.ParseCmdline(cmdline)
		if c.Threshold < 0 || c.Timeout < 0 {
			t.Errorf("invalid config accepted: %+v", c)
		}
	})
}

func TestShippedFileStatesTheDefaults(t *testing.T) {
	b, err := os.ReadFile("entropy-gate.conf")
	if err != nil {
		t.Fatal(err)
	}
	// Uncommenting every key must change nothing: the file documents
	// the defaults as they are.
	text := strings.ReplaceAll(string(b), "\n#", "\n")
	got := Default()
	var problems []Problem
	for _, p := range got.Parse("entropy-gate.conf", text) {
		if !errors.Is(p, ErrSyntax) { // the prose lines
			problems = append(problems, p)
		}
	}
	if len(problems) != 0 {
		t.Errorf("problems: %v", problems)
	}
	d := Default()
	if got.Threshold != d.Threshold || got.Timeout != d.Timeout || got.OnTimeout != d.OnTimeout || got.Mode != d.Mode {
		t.Errorf("shipped file says %+v, defaults are %+v", got, d)
	}
	for _, s := range settings {
		if got.Origin(s.key()) == "default" {
			t.Errorf("shipped file does not document %s", s.key())
		}
	}
}

func TestParseSeedSections(t *testing.T) {
	c := Default()
	problems := c.Parse("seed.conf", `[Seed]
Medium=/media/boot
[Seed.Sector]
Enable=yes
Device=/dev/sdb
LBA=40
LegacySector=mix
WearRewrites=500
ImageDiskGUID=01234567-89ab-cdef-0123-456789ABCDEF
ImageDiskGUID=11111111-2222-3333-4444-555555555555
[Seed.FAT]
Enable=true
Path=EFI/entropy.seed
[Seed.File]
Enable=on
Path=/var/lib/entropy-gate/seed
[Seed.Cmdline]
Enable=1
Files=isolinux/live.cfg boot/grub/grub.cfg
`)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	want := Seed{
		Medium: "/media/boot",
		Sector: SectorSeed{Enable: true, Device: "/dev/sdb", LBA: 40, LegacySector: "mix", WearRewrites: 500,
			ImageDiskGUIDs: []string{"01234567-89ab-cdef-0123-456789ABCDEF", "11111111-2222-3333-4444-555555555555"}},
		FAT:     FATSeed{Enable: true, Path: "EFI/entropy.seed"},
		File:    FileSeed{Enable: true, Path: "/var/lib/entropy-gate/seed"},
		Cmdline: CmdlineSeed{Enable: true, Files: []string{"isolinux/live.cfg", "boot/grub/grub.cfg"}},
	}
	if fmt.Sprint(c.Seed) != fmt.Sprint(want) {
		t.Errorf("Seed = %+v\nwant   %+v", c.Seed, want)
	}
}

func TestParseSeedSectionsRejects(t *testing.T) {
	for _, line := range []string{
		"[Seed.Sector]\nEnable=maybe",
		"[Seed.Sector]\nDevice=sdb",
		"[Seed.Sector]\nLBA=0",
		"[Seed.Sector]\nLegacySector=overwrite",
		"[Seed.Sector]\nWearRewrites=100000",
		"[Seed.Sector]\nImageDiskGUID=not-a-guid",
		"[Seed.FAT]\nPath=/abs/path",
		"[Seed.FAT]\nPath=../outside",
		"[Seed.File]\nPath=relative/seed",
		"[Seed.Cmdline]\nFiles=../../etc/passwd",
		"[Seed]\nMedium=relative",
	} {
		c := Default()
		problems := c.Parse("bad.conf", line)
		if len(problems) != 1 || !errors.Is(problems[0], ErrInvalidValue) {
			t.Errorf("%q: problems = %v, want one invalid value", line, problems)
		}
		if fmt.Sprint(c.Seed) != fmt.Sprint(Default().Seed) {
			t.Errorf("%q changed the seed configuration: %+v", line, c.Seed)
		}
	}
}

func TestNotifySection(t *testing.T) {
	tests := []struct {
		name         string
		text         string
		want         Notify
		wantProblems []error
	}{
		{name: "every key", text: "[Notify]\nEntropyLow=64\nEntropyHigh=512\nRenotifyInterval=30min\nFallbackInterval=2s\n",
			want: Notify{EntropyLow: 64, EntropyHigh: 512, Renotify: 30 * time.Minute, FallbackInterval: 2 * time.Second}},
		{name: "renotify never", text: "[Notify]\nRenotifyInterval=infinity\n",
			want: Notify{EntropyLow: 128, EntropyHigh: 256, Renotify: 0, FallbackInterval: 10 * time.Second}},
		{name: "bad values keep the defaults", text: "[Notify]\nEntropyLow=lots\nFallbackInterval=infinity\nRenotifyInterval=soon\n",
			want: Default().Notify, wantProblems: []error{ErrInvalidValue, ErrInvalidValue, ErrInvalidValue}},
		{name: "low above high falls back to both defaults", text: "[Notify]\nEntropyLow=300\nEntropyHigh=200\n",
			want: Default().Notify, wantProblems: []error{ErrInvalidValue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "entropy-gate.conf")
			writeFile(t, file, tt.text)
			c, problems := Load(Sources{File: file})
			if c.Notify != tt.want {
				t.Errorf("Notify = %+v, want %+v", c.Notify, tt.want)
			}
			if len(problems) != len(tt.wantProblems) {
				t.Fatalf("problems = %v", problems)
			}
			for i, p := range problems {
				if !errors.Is(p, tt.wantProblems[i]) {
					t.Errorf("problem %d = %v", i, p)
				}
			}
		})
	}
}

// The defaults name the token files the seeders write.
func TestCmdlineFilesAreTheSeedersTokenFiles(t *testing.T) {
	if got := Default().Seed.Cmdline.Files; !slices.Equal(got, seeders.DefaultTokenFiles) {
		t.Errorf("[Seed.Cmdline] Files= default %q, seeders.DefaultTokenFiles %q", got, seeders.DefaultTokenFiles)
	}
}
