// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The Debian system of BootSystemd: a minimal bookworm with systemd as
// init, Tor and D-Bus.
const (
	systemSuite = "bookworm"
	// systemLayout versions the recipe below; a cached system of another
	// layout is built again.
	systemLayout  = 2
	systemArchive = "rootfs.cpio.zst"
	defaultMirror = "http://deb.debian.org/debian"
)

// systemPackages are installed on top of debootstrap's minbase variant.
// minbase has no udev: devices are there from devtmpfs, and nothing waits
// for their systemd device units.
var systemPackages = []string{"systemd-sysv", "tor", "dbus"}

// systemTrim are folders whose content no test needs: documentation,
// translations, apt's package lists and caches. They make up more than
// half of a fresh minbase.
var systemTrim = []string{
	"usr/share/doc", "usr/share/info", "usr/share/locale", "usr/share/man",
	"var/cache/apt", "var/lib/apt/lists",
}

// systemUnwanted are the links that start units at every boot which ask
// the kernel for randomness before anything else does: since 5.18 a
// blocking getrandom or a read of /dev/urandom makes the kernel gather
// jitter entropy and initializes the CRNG within a second or two, so no
// gate would ever wait. Tails disables systemd-random-seed; logind and
// dbus-daemon (which reads /dev/urandom when getrandom(GRND_NONBLOCK)
// fails) still start on demand, D-Bus through its socket.
var systemUnwanted = []string{
	"usr/lib/systemd/system/sysinit.target.wants/systemd-random-seed.service",
	"usr/lib/systemd/system/multi-user.target.wants/dbus.service",
	"usr/lib/systemd/system/multi-user.target.wants/systemd-logind.service",
}

// cachedSystem describes a packed Debian system in the cache, stored as
// system.json beside the archive.
type cachedSystem struct {
	Layout   int       `json:"layout"`
	Suite    string    `json:"suite"`
	Packages []string  `json:"packages"`
	Mirror   string    `json:"mirror"`
	Built    time.Time `json:"built"`
	// BuildTime is how long debootstrap and packing took, e.g. "1m5s".
	BuildTime string `json:"build_time"`
	Size      int64  `json:"size"` // of the archive, in bytes
	dir       string
}

// archivePath returns the zstd-compressed newc archive of the system.
func (s *cachedSystem) archivePath() string { return filepath.Join(s.dir, systemArchive) }

// current reports whether the cached system was built by today's recipe.
func (s *cachedSystem) current() bool {
	return s.Layout == systemLayout && s.Suite == systemSuite && slices.Equal(s.Packages, systemPackages)
}

// PrepareSystemd makes sure the Debian system BootSystemd boots is in the
// cache. The first call on a machine builds it with debootstrap (about a
// minute, as root, with debootstrap and zstd), later calls only read the
// cache. Without root, or without those tools, and without a cached
// system, the error wraps ErrUnavailable.
func (l *Lab) PrepareSystemd(ctx context.Context) error {
	_, err := l.system(ctx)
	return err
}

// system returns the cached Debian system, building it the first time.
func (l *Lab) system(ctx context.Context) (*cachedSystem, error) {
	l.systemMu.Lock()
	defer l.systemMu.Unlock()
	if l.debianSystem != nil {
		return l.debianSystem, nil
	}
	s, err := loadSystem(ctx, l.cacheDir, l.logf)
	if err != nil {
		return nil, err
	}
	l.debianSystem = s
	return s, nil
}

// loadSystem returns the cached system, building it if it is missing or
// of an older recipe. A lock keeps concurrent test processes from
// building it twice.
func loadSystem(ctx context.Context, cacheDir string, logf func(string, ...any)) (*cachedSystem, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, "system.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir := filepath.Join(cacheDir, "system-"+systemSuite)
	if s, err := readSystem(dir); err == nil && s.current() {
		return s, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: no current Debian system in %s: building one with debootstrap needs root", ErrUnavailable, dir)
	}
	if err := needCommands("debootstrap", "zstd"); err != nil {
		return nil, err
	}
	mirror := aptMirror(systemSuite)
	logf("vmtest: building a Debian %s system from %s into %s (about a minute, once)", systemSuite, mirror, dir)
	return buildSystem(ctx, cacheDir, dir, mirror)
}

func readSystem(dir string) (*cachedSystem, error) {
	var s cachedSystem
	if err := readJSON(filepath.Join(dir, "system.json"), &s); err != nil {
		return nil, err
	}
	s.dir = dir
	if _, err := os.Stat(s.archivePath()); err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	return &s, nil
}

// buildSystem runs debootstrap in a scratch folder of the cache, packs
// the trimmed tree and moves the archive to dir.
func buildSystem(ctx context.Context, cacheDir, dir, mirror string) (*cachedSystem, error) {
	start := time.Now()
	scratch, err := newScratch(cacheDir, scratchPrefix)
	if err != nil {
		return nil, fmt.Errorf("build system: %w", err)
	}
	defer removeScratch(scratch)
	root := filepath.Join(scratch, "root")
	if err := debootstrap(ctx, root, mirror, systemPackages); err != nil {
		return nil, fmt.Errorf("build system: %w", err)
	}
	stage := filepath.Join(scratch, "system")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return nil, fmt.Errorf("build system: %w", err)
	}
	s := &cachedSystem{Layout: systemLayout, Suite: systemSuite, Packages: systemPackages, Mirror: mirror, dir: stage}
	if err := packTree(ctx, root, s.archivePath()); err != nil {
		return nil, fmt.Errorf("build system: %w", err)
	}
	info, err := os.Stat(s.archivePath())
	if err != nil {
		return nil, fmt.Errorf("build system: %w", err)
	}
	s.Size, s.Built, s.BuildTime = info.Size(), time.Now().UTC(), time.Since(start).Round(time.Second).String()
	if err := writeJSON(filepath.Join(stage, "system.json"), s); err != nil {
		return nil, fmt.Errorf("build system: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("replace %s: %w", dir, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return nil, fmt.Errorf("store system: %w", err)
	}
	s.dir = dir
	return s, nil
}

// scratchPrefix names the folders a build works in, in the cache.
const scratchPrefix = ".system-"

// newScratch makes a scratch folder named prefix* in cacheDir, after
// removing those that killed builds left behind. The caller holds the
// lock of the builds that use prefix.
func newScratch(cacheDir, prefix string) (string, error) {
	stale, _ := filepath.Glob(filepath.Join(cacheDir, prefix+"*"))
	for _, leftover := range stale {
		if err := removeScratch(leftover); err != nil {
			return "", err
		}
	}
	return os.MkdirTemp(cacheDir, prefix)
}

// debootstrap installs a minimal Debian (minbase) with packages at root,
// then trims what no test needs (systemTrim) and the links of the units
// that would initialize the CRNG in every boot (systemUnwanted).
func debootstrap(ctx context.Context, root, mirror string, packages []string) error {
	if _, err := run(ctx, "", "debootstrap", "--variant=minbase", "--include="+strings.Join(packages, ","),
		systemSuite, root, mirror); err != nil {
		return err
	}
	for _, d := range systemTrim {
		if err := emptyFolder(filepath.Join(root, d)); err != nil {
			return err
		}
	}
	for _, link := range systemUnwanted {
		if err := os.Remove(filepath.Join(root, link)); err != nil {
			return err
		}
	}
	return nil
}

// removeScratch deletes a build's scratch folder. debootstrap mounts
// /proc and /sys in the tree it builds and unmounts them as it exits; if
// it was killed they are still there, and deleting files through them
// must never be tried: they are detached first.
func removeScratch(dir string) error {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	var below []string
	for _, line := range strings.Split(string(mounts), "\n") {
		// Field 5 is the mount point, with blanks and backslashes octal-escaped.
		if fields := strings.Fields(line); len(fields) > 4 {
			if mountPoint := unescapeMountPoint(fields[4]); strings.HasPrefix(mountPoint, dir+"/") {
				below = append(below, mountPoint)
			}
		}
	}
	// Deepest first.
	slices.SortFunc(below, func(a, b string) int { return len(b) - len(a) })
	for _, mountPoint := range below {
		if err := unix.Unmount(mountPoint, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("remove %s: unmount %s: %w", dir, mountPoint, err)
		}
	}
	return os.RemoveAll(dir)
}

// unescapeMountPoint undoes mountinfo's \ooo escapes.
func unescapeMountPoint(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// emptyFolder removes what dir holds and keeps dir; a missing dir is fine.
func emptyFolder(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// packTree writes the tree under root, with its owners, modes, links and
// device nodes, as a zstd-compressed newc archive: GNU cpio writes it,
// zstd compresses it (the kernel unpacks zstd faster than gzip under
// emulation). The root folder itself is left out: the kernel's rootfs has
// one.
func packTree(ctx context.Context, root, dst string) error {
	var names bytes.Buffer
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		names.WriteString(rel + "\x00")
		return err
	})
	if err != nil {
		return fmt.Errorf("pack %s: %w", root, err)
	}
	cpioPath, err := toolPath("cpio")
	if err != nil {
		return err
	}
	zstdPath, err := toolPath("zstd")
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("pack %s: %w", root, err)
	}
	defer out.Close()
	pipeOut, pipeIn, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pack %s: %w", root, err)
	}
	var cpioErr, zstdErr bytes.Buffer
	archiver := exec.CommandContext(ctx, cpioPath, "--create", "--format=newc", "--null", "--quiet")
	archiver.Dir, archiver.Stdin, archiver.Stdout, archiver.Stderr = root, &names, pipeIn, &cpioErr
	compressor := exec.CommandContext(ctx, zstdPath, "-q", "-T0", "-c")
	compressor.Stdin, compressor.Stdout, compressor.Stderr = pipeOut, out, &zstdErr
	startErr := archiver.Start()
	if startErr == nil {
		startErr = compressor.Start()
	}
	// The children hold their ends of the pipe now.
	pipeIn.Close()
	pipeOut.Close()
	if startErr != nil {
		if archiver.Process != nil {
			archiver.Wait()
		}
		return fmt.Errorf("pack %s: %w", root, startErr)
	}
	archiveErr := archiver.Wait()
	compressErr := compressor.Wait()
	if archiveErr != nil {
		return fmt.Errorf("pack %s: cpio: %w: %s", root, archiveErr, lastBytes(cpioErr.String(), 2000))
	}
	if compressErr != nil {
		return fmt.Errorf("pack %s: zstd: %w: %s", root, compressErr, lastBytes(zstdErr.String(), 2000))
	}
	return out.Close()
}

// aptSource is one "deb" entry of apt's sources.
type aptSource struct {
	uris, suites, components []string
}

// aptMirror returns the first Debian mirror in apt's sources that serves
// suite's main component over HTTP(S), or deb.debian.org.
func aptMirror(suite string) string {
	var sources []aptSource
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		sources = append(sources, parseSourcesList(string(data))...)
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	slices.Sort(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		switch filepath.Ext(f) {
		case ".list":
			sources = append(sources, parseSourcesList(string(data))...)
		case ".sources":
			sources = append(sources, parseDeb822Sources(string(data))...)
		}
	}
	return pickMirror(sources, suite)
}

func pickMirror(sources []aptSource, suite string) string {
	for _, s := range sources {
		if !slices.Contains(s.suites, suite) || !slices.Contains(s.components, "main") {
			continue
		}
		for _, uri := range s.uris {
			if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
				return uri
			}
		}
	}
	return defaultMirror
}

// parseSourcesList reads the one-line format:
// deb [options] URI SUITE COMPONENT...
func parseSourcesList(text string) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			// Options: up to the word that ends with "]".
			end := slices.IndexFunc(fields, func(f string) bool { return strings.HasSuffix(f, "]") })
			if end < 0 {
				continue
			}
			fields = fields[end+1:]
		}
		if len(fields) < 2 {
			continue
		}
		out = append(out, aptSource{uris: fields[:1], suites: fields[1:2], components: fields[2:]})
	}
	return out
}

// parseDeb822Sources reads the deb822 format of *.sources files: stanzas
// of Types, URIs, Suites, Components and Enabled fields.
func parseDeb822Sources(text string) []aptSource {
	var out []aptSource
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r", ""), "\n\n") {
		fields := map[string][]string{}
		var last string
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				fields[last] = append(fields[last], strings.Fields(line)...)
				continue
			}
			key, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(key))
			fields[last] = strings.Fields(value)
		}
		if !slices.Contains(fields["types"], "deb") || slices.Contains(fields["enabled"], "no") {
			continue
		}
		out = append(out, aptSource{uris: fields["uris"], suites: fields["suites"], components: fields["components"]})
	}
	return out
}
