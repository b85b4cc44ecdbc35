// SPDX-License-Identifier: GPL-3.0-or-later

package doctor

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// Facts is what Gather found. Unknown numbers are -1, unknown strings "".
type Facts struct {
	Semantics       string `json:"semantics"`
	PoolSize        int    `json:"poolsize"`
	EntropyAvail    int    `json:"entropy_avail"`
	CRNGInitialized bool   `json:"crng_initialized"`
	// CRNGInitMS is when the kernel logged "crng init done", in ms since
	// boot, or -1 when the log does not say (not readable, rotated).
	CRNGInitMS int64 `json:"crng_init_ms"`
	// TrustCPU and TrustBootloader are the random.trust_cpu= and
	// random.trust_bootloader= command line values, "" if not given.
	TrustCPU        string `json:"trust_cpu"`
	TrustBootloader string `json:"trust_bootloader"`
	RDRAND          bool   `json:"rdrand"`
	RDSEED          bool   `json:"rdseed"`
	HWRNG           HWRNG  `json:"hwrng"`
	// Hypervisor names the virtual machine monitor, "" on bare metal,
	// "unknown" when the CPU says virtual but nothing names it.
	Hypervisor string `json:"hypervisor"`
	VMGenID    bool   `json:"vmgenid"`
	// Daemons lists the entropy daemons that run: haveged, rngd,
	// jitterentropy-rngd.
	Daemons []string `json:"daemons"`
	// Gate is the gate's state this boot, if it ran.
	Gate *gatestate.State `json:"gate,omitempty"`
}

// HWRNG is the kernel's hardware RNG framework as sysfs shows it.
type HWRNG struct {
	Device    bool     `json:"device"`
	Current   string   `json:"current"`
	Available []string `json:"available"`
	// Quality is how many bits of entropy the kernel credits per 1024
	// bits read from the current device (rng_quality, or the rng_core
	// default_quality parameter on kernels without it); -1 if unknown.
	Quality int `json:"quality"`
}

// Sources are where Gather looks.
type Sources struct {
	pool.Roots
	// Kmsg is the kernel log device, normally /dev/kmsg.
	Kmsg      string
	StatePath string
	Pool      pool.Pool
}

// SystemSources are the running system's.
func SystemSources(p pool.Pool) Sources {
	return Sources{Kmsg: "/dev/kmsg", StatePath: gatestate.DefaultPath, Pool: p}
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readInt(path string) int {
	n, err := strconv.Atoi(readTrimmed(path))
	if err != nil {
		return -1
	}
	return n
}

// Gather reads every fact it can; nothing it cannot read is an error.
func Gather(src Sources) Facts {
	f, flags := gatherSources(src)
	f.CRNGInitMS = crngInitTime(src.Kmsg)
	st, _ := src.Pool.State() // unreadable counters are -1, as wanted
	f.Semantics, f.PoolSize, f.EntropyAvail = st.Semantics.String(), st.PoolSize, st.EntropyAvail
	r, _ := src.Pool.Ready()
	f.CRNGInitialized = r == pool.Ready
	f.Hypervisor = hypervisor(src.SysPath(), flags["hypervisor"])
	f.VMGenID = hasVMGenID(src.SysPath())
	f.Daemons = entropyDaemons(src.ProcPath())
	if st, err := gatestate.Read(src.StatePath); err == nil {
		f.Gate = &st
	}
	return f
}

// GatherSources reads only which sources may credit the pool: the
// command line's trust settings, the CPU's RNG and the hardware RNG. It is
// what the gate needs at boot, without the rest of Gather's reading.
func GatherSources(src Sources) Facts {
	f, _ := gatherSources(src)
	return f
}

func gatherSources(src Sources) (Facts, map[string]bool) {
	f := Facts{CRNGInitMS: -1, PoolSize: -1, EntropyAvail: -1}
	for _, word := range strings.Fields(readTrimmed(src.ProcPath("cmdline"))) {
		if v, ok := strings.CutPrefix(word, "random.trust_cpu="); ok {
			f.TrustCPU = v
		}
		if v, ok := strings.CutPrefix(word, "random.trust_bootloader="); ok {
			f.TrustBootloader = v
		}
	}
	flags := cpuFlags(src.ProcPath("cpuinfo"))
	f.RDRAND, f.RDSEED = flags["rdrand"], flags["rdseed"]
	f.HWRNG = ReadHWRNG(src)
	return f, flags
}

// cpuFlags returns the first CPU's flags from /proc/cpuinfo.
func cpuFlags(path string) map[string]bool {
	flags := map[string]bool{}
	file, err := os.Open(path)
	if err != nil {
		return flags
	}
	defer file.Close()
	lines := bufio.NewScanner(file)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		key, value, ok := strings.Cut(lines.Text(), ":")
		if ok && strings.TrimSpace(key) == "flags" {
			for _, flag := range strings.Fields(value) {
				flags[flag] = true
			}
			break
		}
	}
	return flags
}

// ReadHWRNG reads the hardware RNG framework's state from sysfs and dev.
func ReadHWRNG(src Sources) HWRNG {
	dir := src.SysPath("class/misc/hw_random")
	h := HWRNG{
		Current:   readTrimmed(filepath.Join(dir, "rng_current")),
		Available: strings.Fields(readTrimmed(filepath.Join(dir, "rng_available"))),
		Quality:   readInt(filepath.Join(dir, "rng_quality")),
	}
	if h.Quality < 0 {
		h.Quality = readInt(src.SysPath("module/rng_core/parameters/default_quality"))
	}
	_, err := os.Stat(src.DevPath("hwrng"))
	h.Device = err == nil
	return h
}

// hypervisors maps what DMI says to the hypervisor's common name.
var hypervisors = []struct{ match, name string }{
	{"VirtualBox", "VirtualBox"},
	{"innotek", "VirtualBox"},
	{"QEMU", "QEMU"},
	{"KVM", "KVM"},
	{"VMware", "VMware"},
	{"Microsoft Corporation Virtual Machine", "Hyper-V"},
	{"Xen", "Xen"},
	{"Parallels", "Parallels"},
	{"Bochs", "QEMU"},
	{"Amazon EC2", "KVM"},
	{"Google Compute Engine", "KVM"},
}

// hypervisor names the hypervisor from DMI and /sys/hypervisor, or says
// "unknown" when only the CPU's hypervisor flag tells it is virtual.
func hypervisor(sys string, cpuFlag bool) string {
	dmi := filepath.Join(sys, "class/dmi/id")
	ids := strings.Join([]string{
		readTrimmed(filepath.Join(dmi, "sys_vendor")),
		readTrimmed(filepath.Join(dmi, "product_name")),
		readTrimmed(filepath.Join(dmi, "bios_vendor")),
		readTrimmed(filepath.Join(dmi, "board_vendor")),
	}, " ")
	for _, h := range hypervisors {
		if strings.Contains(ids, h.match) {
			return h.name
		}
	}
	if t := readTrimmed(filepath.Join(sys, "hypervisor/type")); t == "xen" {
		return "Xen"
	}
	if cpuFlag {
		return "unknown"
	}
	return ""
}

// hasVMGenID reports whether the kernel has a VM generation ID device,
// which makes it reseed when a snapshot is restored or cloned.
func hasVMGenID(sys string) bool {
	for _, bus := range []string{"acpi", "platform"} {
		entries, _ := os.ReadDir(filepath.Join(sys, "bus", bus, "drivers", "vmgenid"))
		for _, e := range entries {
			if e.Type()&os.ModeSymlink != 0 && e.Name() != "module" {
				return true
			}
		}
	}
	devices, _ := os.ReadDir(filepath.Join(sys, "bus/acpi/devices"))
	return slices.ContainsFunc(devices, func(e os.DirEntry) bool {
		return strings.HasPrefix(e.Name(), "VMGENCTR") || strings.HasPrefix(e.Name(), "QEMUVGID")
	})
}

// entropyDaemonNames are the user-space entropy daemons worth knowing.
var entropyDaemonNames = []string{"haveged", "rngd", "jitterentropy-r"}

// entropyDaemons lists the entropy daemons running, by process name
// (comm is cut at 15 bytes: jitterentropy-rngd shows as jitterentropy-r).
func entropyDaemons(proc string) []string {
	entries, _ := os.ReadDir(proc)
	found := map[string]bool{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm := readTrimmed(filepath.Join(proc, e.Name(), "comm"))
		if slices.Contains(entropyDaemonNames, comm) {
			found[comm] = true
		}
	}
	out := []string{}
	for _, name := range entropyDaemonNames {
		if found[name] {
			if name == "jitterentropy-r" {
				name = "jitterentropy-rngd"
			}
			out = append(out, name)
		}
	}
	return out
}

// crngInitTime finds "random: crng init done" in the kernel log and
// returns its time in ms since boot, or -1. Reading /dev/kmsg needs root
// or kernel.dmesg_restrict=0; each read returns one record.
func crngInitTime(kmsg string) int64 {
	if kmsg == "" {
		return -1
	}
	fd, err := unix.Open(kmsg, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EPIPE) { // records overwritten while reading
			continue
		}
		if err != nil || n <= 0 {
			return -1
		}
		if ms, ok := parseCRNGInit(string(buf[:n])); ok {
			return ms
		}
	}
}

// parseCRNGInit reads a /dev/kmsg record ("6,345,137850,-;random: crng
// init done") and returns its timestamp in ms if it is the CRNG's
// initialization message.
func parseCRNGInit(record string) (int64, bool) {
	prefix, message, ok := strings.Cut(record, ";")
	if !ok || !strings.HasPrefix(message, "random: crng init done") {
		return 0, false
	}
	fields := strings.Split(prefix, ",")
	if len(fields) < 3 {
		return 0, false
	}
	us, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil || us < 0 {
		return 0, false
	}
	return us / 1000, true
}
