// SPDX-License-Identifier: GPL-3.0-or-later

package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// OnTimeout says what the gate does when its timeout expires before the
// pool is ready.
type OnTimeout int

const (
	// Fail makes the service fail, so units that Require= it never start:
	// no Tor and no new persistent storage on a weak CRNG.
	Fail OnTimeout = iota
	// Open lets dependents start and records the boot as degraded.
	Open
)

func (o OnTimeout) String() string {
	if o == Open {
		return "open"
	}
	return "fail"
}

// Config is the gate's effective configuration.
type Config struct {
	// Threshold is the entropy_avail, in bits, the gate waits for once
	// the CRNG is initialized; 0 waits for readiness only.
	Threshold int
	// Timeout bounds the wait; 0 means no limit.
	Timeout time.Duration
	// OnTimeout is what happens when Timeout expires.
	OnTimeout OnTimeout
	// Mode is how the gate waits.
	Mode pool.WaitMode
	// Seed says where seeds are kept; every backend is off unless
	// enabled.
	Seed Seed
	// Notify tunes the desktop notifier, which shares this file.
	Notify Notify

	// origin records where each key's value came from, by Section.Key.
	origin map[string]string
}

// Notify is [Notify], the desktop notifier's section.
type Notify struct {
	// EntropyLow and EntropyHigh are the hysteresis marks for kernels
	// before 5.18, in bits: warn below EntropyLow, clear at EntropyHigh;
	// EntropyLow 0 disables the warning.
	EntropyLow, EntropyHigh int
	// Renotify is how soon a dismissed warning about the running kernel
	// may show again while it lasts; 0 means never.
	Renotify time.Duration
	// FallbackInterval is how often to re-check where the kernel gives
	// no event.
	FallbackInterval time.Duration
}

// Seed configures the seed backends ([Seed] and [Seed.*] sections).
type Seed struct {
	// Medium is where the boot medium's system partition is mounted.
	Medium  string
	Sector  SectorSeed
	FAT     FATSeed
	File    FileSeed
	Cmdline CmdlineSeed
}

// SectorSeed is [Seed.Sector]: a raw sector of the boot disk.
type SectorSeed struct {
	Enable bool
	// Device is the whole disk, or "auto": the disk the boot medium is on.
	Device string
	LBA    int64
	// LegacySector "mix" adopts Tails 6.4's raw random sector; "refuse"
	// leaves any foreign sector alone.
	LegacySector string
	// WearRewrites > 1 rewrites a new seed 1…N times on first use.
	WearRewrites int
	// ImageDiskGUIDs are the disk GUIDs of published images, whose seed
	// is never credited.
	ImageDiskGUIDs []string
}

// FATSeed is [Seed.FAT]: a file on the FAT system partition.
type FATSeed struct {
	Enable bool
	// Path is relative to Seed.Medium.
	Path string
}

// FileSeed is [Seed.File]: a file anywhere, e.g. on persistent storage.
type FileSeed struct {
	Enable bool
	Path   string
}

// CmdlineSeed is [Seed.Cmdline]: a token on the kernel command line, in
// token files the bootloader's configuration files include; it is only
// ever mixed.
type CmdlineSeed struct {
	Enable bool
	// Files are the token files, relative to Seed.Medium.
	Files []string
}

// Default is the configuration without any file: wait actively (the
// kernel generates jitter entropy, about a second on current kernels) for
// a full 256-bit pool, for up to two minutes, then fail closed.
func Default() Config {
	return Config{
		Threshold: pool.ModernPoolSize, Timeout: 2 * time.Minute, OnTimeout: Fail, Mode: pool.Active,
		Seed: Seed{
			Medium:  "/run/live/medium",
			Sector:  SectorSeed{Device: "auto", LBA: 34, LegacySector: "refuse"},
			FAT:     FATSeed{Path: "live/entropy-gate.seed"},
			File:    FileSeed{Path: "/live/persistence/TailsData_unlocked/entropy-gate.seed"},
			Cmdline: CmdlineSeed{Files: []string{"syslinux/entropy-gate.cfg", "EFI/debian/entropy-gate.env"}},
		},
		Notify: Notify{EntropyLow: 128, EntropyHigh: 256, Renotify: 10 * time.Minute, FallbackInterval: 10 * time.Second},
	}
}

// Origin says where a key's value (named Section.Key, e.g.
// Gate.Threshold) came from: "default", "FILE:LINE" or "kernel command
// line".
func (c *Config) Origin(key string) string {
	if o, ok := c.origin[key]; ok {
		return o
	}
	return "default"
}

func (c *Config) setOrigin(key, where string) {
	if c.origin == nil {
		c.origin = make(map[string]string)
	}
	c.origin[key] = where
}

// ErrInvalidValue, ErrUnknownKey and ErrSyntax classify Problems.
var (
	ErrInvalidValue = errors.New("invalid value")
	ErrUnknownKey   = errors.New("unknown key")
	ErrSyntax       = errors.New("syntax error")
)

// Problem is one thing wrong in a configuration source. The value it
// concerns keeps its previous setting.
type Problem struct {
	// Where is "FILE:LINE", "FILE" or "kernel command line".
	Where string
	// Key is the key as written, if the problem concerns one.
	Key string
	Err error
	// Warning problems (unknown keys and sections) do not make a
	// configuration check fail.
	Warning bool
}

func (p Problem) Error() string {
	if p.Key == "" {
		return fmt.Sprintf("%s: %v", p.Where, p.Err)
	}
	return fmt.Sprintf("%s: %s: %v", p.Where, p.Key, p.Err)
}

func (p Problem) Unwrap() error { return p.Err }

// HasErrors reports whether any problem is more than a warning.
func HasErrors(problems []Problem) bool {
	return slices.ContainsFunc(problems, func(p Problem) bool { return !p.Warning })
}

// setting is one configuration key: its section and name, its kernel
// command line name if it has one, and how to parse and print it.
type setting struct {
	section, name string
	cmdline       string
	set           func(c *Config, value string) error
	get           func(c *Config) string
}

// key is the setting's Section.Key name, as origins are recorded.
func (s setting) key() string { return s.section + "." + s.name }

// The sections a configuration file may have.
const (
	gateSection    = "Gate"
	seedSection    = "Seed"
	sectorSection  = "Seed.Sector"
	fatSection     = "Seed.FAT"
	fileSection    = "Seed.File"
	cmdlineSection = "Seed.Cmdline"
	notifySection  = "Notify"
)

var sections = []string{gateSection, seedSection, sectorSection, fatSection, fileSection, cmdlineSection, notifySection}

func invalid(v, want string) error { return fmt.Errorf("%w %q: want %s", ErrInvalidValue, v, want) }

// boolSetting is a yes/no key, written as systemd writes booleans.
func boolSetting(section, name string, field func(*Config) *bool) setting {
	return setting{section: section, name: name,
		set: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "yes", "true", "on", "1":
				*field(c) = true
			case "no", "false", "off", "0":
				*field(c) = false
			default:
				return invalid(v, `"yes" or "no"`)
			}
			return nil
		},
		get: func(c *Config) string {
			if *field(c) {
				return "yes"
			}
			return "no"
		},
	}
}

// pathSetting is an absolute path, or a path relative to the medium.
func pathSetting(section, name string, absolute bool, field func(*Config) *string) setting {
	return setting{section: section, name: name,
		set: func(c *Config, v string) error {
			switch {
			case v == "" || strings.ContainsRune(v, 0):
				return invalid(v, "a path")
			case absolute && !filepath.IsAbs(v):
				return invalid(v, "an absolute path")
			case !absolute && (filepath.IsAbs(v) || strings.HasPrefix(filepath.Clean(v), "..")):
				return invalid(v, "a path inside the boot medium")
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return *field(c) },
	}
}

var settings = []setting{
	{
		section: gateSection, name: "Threshold", cmdline: "entropy_gate.threshold",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return invalid(v, "a whole number of bits, 0 or more")
			}
			c.Threshold = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(c.Threshold) },
	},
	{
		section: gateSection, name: "Timeout", cmdline: "entropy_gate.timeout",
		set: func(c *Config, v string) error {
			d, err := ParseTimespan(v)
			if err != nil {
				return fmt.Errorf("%w %q: %w", ErrInvalidValue, v, err)
			}
			c.Timeout = d
			return nil
		},
		get: func(c *Config) string { return FormatTimespan(c.Timeout) },
	},
	{
		section: gateSection, name: "OnTimeout", cmdline: "entropy_gate.on_timeout",
		set: func(c *Config, v string) error {
			switch v {
			case "open":
				c.OnTimeout = Open
			case "fail":
				c.OnTimeout = Fail
			default:
				return invalid(v, `"open" or "fail"`)
			}
			return nil
		},
		get: func(c *Config) string { return c.OnTimeout.String() },
	},
	{
		section: gateSection, name: "Mode", cmdline: "entropy_gate.mode",
		set: func(c *Config, v string) error {
			m, err := pool.ParseWaitMode(v)
			if err != nil {
				return fmt.Errorf("%w %w", ErrInvalidValue, err)
			}
			c.Mode = m
			return nil
		},
		get: func(c *Config) string { return c.Mode.String() },
	},
	pathSetting(seedSection, "Medium", true, func(c *Config) *string { return &c.Seed.Medium }),
	boolSetting(sectorSection, "Enable", func(c *Config) *bool { return &c.Seed.Sector.Enable }),
	{
		section: sectorSection, name: "Device",
		set: func(c *Config, v string) error {
			if v != "auto" && !strings.HasPrefix(v, "/") {
				return invalid(v, `"auto" or a device path`)
			}
			c.Seed.Sector.Device = v
			return nil
		},
		get: func(c *Config) string { return c.Seed.Sector.Device },
	},
	{
		section: sectorSection, name: "LBA",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return invalid(v, "a sector number, 1 or more")
			}
			c.Seed.Sector.LBA = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(c.Seed.Sector.LBA, 10) },
	},
	{
		section: sectorSection, name: "LegacySector",
		set: func(c *Config, v string) error {
			if v != "mix" && v != "refuse" {
				return invalid(v, `"mix" or "refuse"`)
			}
			c.Seed.Sector.LegacySector = v
			return nil
		},
		get: func(c *Config) string { return c.Seed.Sector.LegacySector },
	},
	{
		section: sectorSection, name: "WearRewrites",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1000 {
				return invalid(v, "a count from 0 to 1000")
			}
			c.Seed.Sector.WearRewrites = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(c.Seed.Sector.WearRewrites) },
	},
	{
		section: sectorSection, name: "ImageDiskGUID",
		set: func(c *Config, v string) error {
			for _, g := range strings.Fields(v) {
				if !guidPattern.MatchString(g) {
					return invalid(g, "a GUID like 01234567-89ab-cdef-0123-456789abcdef")
				}
			}
			// Like systemd's list settings: each line adds, an empty one resets.
			if v == "" {
				c.Seed.Sector.ImageDiskGUIDs = nil
			}
			c.Seed.Sector.ImageDiskGUIDs = append(c.Seed.Sector.ImageDiskGUIDs, strings.Fields(v)...)
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.Seed.Sector.ImageDiskGUIDs, " ") },
	},
	boolSetting(fatSection, "Enable", func(c *Config) *bool { return &c.Seed.FAT.Enable }),
	pathSetting(fatSection, "Path", false, func(c *Config) *string { return &c.Seed.FAT.Path }),
	boolSetting(fileSection, "Enable", func(c *Config) *bool { return &c.Seed.File.Enable }),
	pathSetting(fileSection, "Path", true, func(c *Config) *string { return &c.Seed.File.Path }),
	boolSetting(cmdlineSection, "Enable", func(c *Config) *bool { return &c.Seed.Cmdline.Enable }),
	{
		section: cmdlineSection, name: "Files",
		set: func(c *Config, v string) error {
			files := strings.Fields(v)
			for _, f := range files {
				if filepath.IsAbs(f) || strings.HasPrefix(filepath.Clean(f), "..") {
					return invalid(f, "paths inside the boot medium")
				}
			}
			c.Seed.Cmdline.Files = files
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.Seed.Cmdline.Files, " ") },
	},
	bitsSetting(notifySection, "EntropyLow", func(c *Config) *int { return &c.Notify.EntropyLow }),
	bitsSetting(notifySection, "EntropyHigh", func(c *Config) *int { return &c.Notify.EntropyHigh }),
	spanSetting(notifySection, "RenotifyInterval", true, func(c *Config) *time.Duration { return &c.Notify.Renotify }),
	spanSetting(notifySection, "FallbackInterval", false, func(c *Config) *time.Duration { return &c.Notify.FallbackInterval }),
}

// bitsSetting is a count of bits, 0 or more.
func bitsSetting(section, name string, field func(*Config) *int) setting {
	return setting{section: section, name: name,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return invalid(v, "a whole number of bits, 0 or more")
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*field(c)) },
	}
}

// spanSetting is a systemd time span; "infinity" is 0 and allowed only
// where 0 means something.
func spanSetting(section, name string, zeroOK bool, field func(*Config) *time.Duration) setting {
	return setting{section: section, name: name,
		set: func(c *Config, v string) error {
			d, err := ParseTimespan(v)
			if err == nil && d == 0 && !zeroOK {
				err = errors.New("want a finite time span above zero")
			}
			if err != nil {
				return fmt.Errorf("%w %q: %w", ErrInvalidValue, v, err)
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) string { return FormatTimespan(*field(c)) },
	}
}

var guidPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

func lookup(match func(setting) bool) (setting, bool) {
	i := slices.IndexFunc(settings, match)
	if i < 0 {
		return setting{}, false
	}
	return settings[i], true
}

// Parse applies the configuration text of the file called name to c.
func (c *Config) Parse(name, text string) []Problem {
	var problems []Problem
	section := ""
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		// A trailing backslash continues the line, as in unit files.
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		where := fmt.Sprintf("%s:%d", name, lineNo)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				problems = append(problems, Problem{Where: where, Err: fmt.Errorf("%w: unterminated section header %q", ErrSyntax, line)})
				section = ""
				continue
			}
			section = line[1 : len(line)-1]
			if !slices.Contains(sections, section) {
				problems = append(problems, Problem{Where: where, Err: fmt.Errorf("%w: section [%s] ignored", ErrUnknownKey, section), Warning: true})
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok || key == "":
			problems = append(problems, Problem{Where: where, Err: fmt.Errorf("%w: want Key=Value, got %q", ErrSyntax, line)})
			continue
		case section == "":
			problems = append(problems, Problem{Where: where, Key: key, Err: fmt.Errorf("%w: key outside a section", ErrSyntax)})
			continue
		case !slices.Contains(sections, section):
			continue // its section was already reported
		}
		s, known := lookup(func(s setting) bool { return s.section == section && s.name == key })
		if !known {
			problems = append(problems, Problem{Where: where, Key: key, Err: fmt.Errorf("%w in [%s], ignored", ErrUnknownKey, section), Warning: true})
			continue
		}
		if err := s.set(c, value); err != nil {
			problems = append(problems, Problem{Where: where, Key: key, Err: fmt.Errorf("%w; keeping %s", err, s.get(c))})
			continue
		}
		c.setOrigin(s.key(), where)
	}
	return problems
}

// cmdlineOrigin is the Where of kernel command line settings.
const cmdlineOrigin = "kernel command line"

// CmdlineSeedParam is the command-line seed token (seeders.CmdlineBackend):
// ours, but no setting. The kernel mixed it into the pool before anything
// ran; nothing reads it, and it is no reason to warn.
const CmdlineSeedParam = "entropy_gate.seed"

// ParseCmdline applies entropy_gate.* parameters from a kernel command
// line. The last occurrence wins, as for the kernel's own parameters, and
// as the kernel and systemd do, a dash in a parameter's name is the same
// as an underscore: entropy-gate.on-timeout is entropy_gate.on_timeout.
func (c *Config) ParseCmdline(cmdline string) []Problem {
	var problems []Problem
	for _, word := range splitCmdline(cmdline) {
		param, value, _ := strings.Cut(word, "=")
		name := strings.ReplaceAll(param, "-", "_")
		if !strings.HasPrefix(name, "entropy_gate.") || name == CmdlineSeedParam {
			continue
		}
		s, known := lookup(func(s setting) bool { return s.cmdline != "" && s.cmdline == name })
		if !known {
			problems = append(problems, Problem{Where: cmdlineOrigin, Key: param, Err: fmt.Errorf("%w, ignored", ErrUnknownKey), Warning: true})
			continue
		}
		if err := s.set(c, value); err != nil {
			problems = append(problems, Problem{Where: cmdlineOrigin, Key: param, Err: fmt.Errorf("%w; keeping %s", err, s.get(c))})
			continue
		}
		c.setOrigin(s.key(), cmdlineOrigin)
	}
	return problems
}

// splitCmdline splits a kernel command line into words, keeping spaces
// inside double quotes and dropping the quotes, as the kernel does.
func splitCmdline(s string) []string {
	var words []string
	var word strings.Builder
	inQuotes, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuotes, inWord = !inQuotes, true
		case !inQuotes && (r == ' ' || r == '\t' || r == '\n'):
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// Sources names where Load reads configuration. An empty field is skipped.
type Sources struct {
	// File is the main configuration file.
	File string
	// DropInDir holds *.conf drop-ins applied after File in lexical order.
	DropInDir string
	// Cmdline is the file holding the kernel command line.
	Cmdline string
}

// DefaultSources are the installed system's configuration sources.
func DefaultSources() Sources {
	return Sources{
		File:      "/etc/entropy-gate/entropy-gate.conf",
		DropInDir: "/etc/entropy-gate/entropy-gate.conf.d",
		Cmdline:   "/proc/cmdline",
	}
}

// Load reads the defaults, then File, the drop-ins and the kernel command
// line, each overriding the ones before. Missing files are not problems.
func Load(src Sources) (Config, []Problem) {
	c := Default()
	var problems []Problem
	readText := func(path string) (string, bool) {
		b, err := os.ReadFile(path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				problems = append(problems, Problem{Where: path, Err: err})
			}
			return "", false
		}
		return string(b), true
	}
	if src.File != "" {
		if text, ok := readText(src.File); ok {
			problems = append(problems, c.Parse(src.File, text)...)
		}
	}
	if src.DropInDir != "" {
		// Glob only fails on a malformed pattern, which this one is not.
		dropIns, _ := filepath.Glob(filepath.Join(src.DropInDir, "*.conf"))
		slices.Sort(dropIns)
		for _, path := range dropIns {
			if text, ok := readText(path); ok {
				problems = append(problems, c.Parse(path, text)...)
			}
		}
	}
	if src.Cmdline != "" {
		if text, ok := readText(src.Cmdline); ok {
			problems = append(problems, c.ParseCmdline(text)...)
		}
	}
	if n, d := c.Notify, Default().Notify; n.EntropyLow > n.EntropyHigh {
		problems = append(problems, Problem{Where: "[" + notifySection + "]", Err: fmt.Errorf(
			"%w: EntropyLow=%d is above EntropyHigh=%d; using %d and %d", ErrInvalidValue, n.EntropyLow, n.EntropyHigh, d.EntropyLow, d.EntropyHigh)})
		c.Notify.EntropyLow, c.Notify.EntropyHigh = d.EntropyLow, d.EntropyHigh
	}
	return c, problems
}

// WriteEffective prints the configuration as a file would hold it, each
// key after a comment saying where its value came from (systemd's syntax
// has no trailing comments).
func (c *Config) WriteEffective(w io.Writer) error {
	var b strings.Builder
	for i, s := range settings {
		if i == 0 || settings[i-1].section != s.section {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "[%s]\n", s.section)
		}
		fmt.Fprintf(&b, "# from %s\n%s=%s\n", c.Origin(s.key()), s.name, s.get(c))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
