// SPDX-License-Identifier: GPL-3.0-or-later

// Package vmtest boots Debian's real Linux kernel under QEMU with our
// static binaries in an initramfs, runs a scenario in the guest and
// returns its timestamped events to Go tests.
//
// The guest is deliberately poor in entropy: QEMU's qemu64 CPU without
// RDRAND/RDSEED, random.trust_cpu=off and random.trust_bootloader=off, no
// network, no virtio-rng unless asked. An idle guest stays "not ready"
// for a minute and more, so waiting, timeout and "a seed makes it ready"
// scenarios are deterministic.
//
// QEMU runs as software emulation (TCG), never KVM, so every machine
// behaves alike. The kernel is Debian's own, booted from the ELF inside
// its bzImage through the PVH entry point: the bzImage would spend
// seconds unpacking itself under emulation. A boot costs about 5 s of
// wall time and one core; init starts at about 3 s of guest uptime.
// Boots are serialised with a lock in the cache folder, across test
// processes too.
//
// # Use
//
//	lab := vmtest.New(t) // skips without root/packages or with -short
//	gate, err := lab.Build(ctx, "./cmd/entropy-gate")
//	res, err := lab.Boot(ctx, vmtest.Config{
//		Files:  map[string]string{"/bin/entropy-gate": gate},
//		Disks:  []vmtest.Disk{{Path: stick.Path}},
//		Append: []string{"entropy_gate.timeout=5s"},
//		Script: `
//			probe
//			start gate /bin/entropy-gate wait
//			sleep 1s
//			credit 256
//			wait gate
//		`,
//	})
//	code, err := res.ExitCode(2)
//
// Programs use Prepare instead of New (see the example). The lab needs
// the Debian packages qemu-system-x86 cpio gdisk dosfstools mtools
// xz-utils, which `sudo make deps` installs: without them New skips the
// test and Prepare fails, saying so. The first preparation downloads the
// current linux-image-*-amd64 named by linux-image-amd64 into the
// cache: $ENTROPY_GATE_CACHE/vmtest, or .cache/vmtest in the module root.
// Later runs reuse it without downloading; a newer kernel replaces it.
//
// # Scenario
//
// One step per line. Words are separated by blanks; '…' quotes literally,
// "…" quotes with backslash escapes (\n and \t are newline and tab), a
// backslash outside quotes escapes the next character, and # at the start
// of a word comments out the rest of the line. A step written with a
// leading '-' (as in -pwrite) may fail: its error is reported and the
// scenario goes on; any other failing step ends the scenario and Boot
// returns an error. Steps are numbered from 1 in order; every event
// carries the number of the step that caused it (0 for init itself).
//
//	run CMD [ARG...]             run a command; each output line is an event, then its exit
//	start NAME CMD [ARG...]      run a command in the background as job NAME
//	wait NAME                    wait until job NAME has exited
//	sleep DURATION               sleep, e.g. 500ms (Go duration syntax)
//	credit BITS                  RNDADDENTROPY on /dev/urandom: BITS credited, BITS/8 bytes
//	probe                        readiness (zero-length getrandom GRND_NONBLOCK) and entropy_avail
//	waitready [INTERVAL]         poll the probe (every 10ms by default) until ready
//	pollready                    block in poll(2) on /dev/random until ready, then READY=1 to $NOTIFY_SOCKET if set: the minimal waiter
//	waitpath PATH TIMEOUT        wait until PATH exists, e.g. a USB disk's device node
//	waitgone PATH TIMEOUT        wait until PATH is gone, e.g. a USB disk pulled out
//	poweroff                     power off at once, stopping nothing (poweroff -f)
//	cat PATH                     each line of a small text file (never a seed: hash it)
//	hash PATH OFFSET LENGTH      SHA-256 of a byte range, e.g. of a disk sector
//	write PATH TEXT              create or truncate a file with TEXT, then fsync
//	pwrite PATH OFFSET TEXT      write TEXT at byte OFFSET of an existing file or device, then fsync
//	mount SOURCE TARGET FSTYPE [OPTIONS]   mount; ro, nosuid, nodev, noexec are flags
//	env KEY=VALUE                set a variable for the commands of later steps
//	exec PATH [ARG...]           replace init with a program, e.g. /sbin/init; the last step
//
// The guest's /init also runs a single step outside PID 1, so a job can
// be any step: "start poller /init waitready"; and "/init --scenario
// FILE" runs a whole scenario file that way, between an init and a done
// event.
//
// # Events
//
// The guest prints each event as one console line:
//
//	EGLAB <CLOCK_MONOTONIC ns> <step> <kind> key=value key="quoted value" … ~<crc32>
//
// Values that are not plain words are Go-quoted (ASCII only); the CRC-32
// of everything before " ~" lets the parser reject a line a kernel message
// broke into. Lines are found anywhere in the console, after terminal
// escape codes are stripped. Kinds and their fields:
//
//	init     boottime (kernel uptime in ns), kernel, cmdline, scenario (its file)
//	module   name                          (a module was loaded)
//	step     text                          (a step begins)
//	stdout   line [name]                   stderr: the same
//	exit     code [signal] maxrss_kb [name]  (a run or start command ended; peak RSS)
//	credit   bits bytes took               (right after RNDADDENTROPY returned)
//	probe    ready entropy_avail
//	ready    polls entropy_avail           (waitready or pollready saw the CRNG ready)
//	cat      path text
//	hash     path offset length sha256
//	error    msg                           panic: msg
//	done                                   (every step ran; power-off follows)
//
// # Disks
//
// NewStick builds a disk image laid out like a Tails USB stick: GPT, a
// FAT32 EFI system partition from LBA 2048, LBA 34–2047 left zero. Files
// go in and out of its FAT with mtools, without mounting anything.
//
// # Systemd
//
// BootSystemd boots a real Debian bookworm with systemd as PID 1 instead
// of a scenario: debootstrap's minbase with systemd-sysv, tor and dbus,
// without documentation and translations, built once per machine (about
// a minute, as root, with debootstrap and zstd; PrepareSystemd) and cached as a zstd-compressed
// archive of about 35 MB under the cache folder. Each boot lays over it
// SystemdConfig.Trees (a "make install DESTDIR=" tree), Files and Texts
// (units, drop-ins, configuration), enables units as "systemctl enable"
// would, and packs all that as a second, uncompressed archive after the
// first. Init loads the modules, runs Config.Script and hands over to
// systemd with "exec /sbin/init". Guest RAM defaults to 1536 MB: the
// system lives in it.
//
// Once the boot has finished (systemctl is-system-running --wait), a
// unit runs SystemdConfig.Report, a scenario whose events come back in
// SystemdResult.Report, and powers the machine off. Units of a test can
// run scenarios too (ScenarioCommand), e.g. a credit late in the boot or
// a report at shutdown; what they print to the console comes back in
// SystemdResult.Runs. ParseUnits reads "systemctl show" and ParseJournal
// "journalctl -o short-monotonic", both on the guest's CLOCK_MONOTONIC,
// as the events are.
//
// The system stays entropy-starved: since 5.18 a blocking getrandom or a
// read of /dev/urandom makes the kernel gather jitter entropy, which
// initializes the CRNG a second or two later. So systemd-random-seed
// (disabled in Tails too), systemd-logind and dbus-daemon, which would do
// that early in every boot, do not start by themselves; D-Bus starts on
// demand through its socket. Without udev, the serial getty is masked. A
// boot to multi-user.target takes 25–35 s of wall time.
//
// # The live system
//
// PrepareLive builds a Tails-shaped live system and caches it by the
// hash of its recipe (LiveRecipe: our "make install" tree; the package
// list, the kernel and the lab's scripts are part of the key): a
// debootstrap'd bookworm with live-boot, initramfs-tools, udev, systemd,
// Tor, D-Bus, Plymouth and the tools of Tails' first-boot repartitioning,
// the lab's kernel with only the modules a live boot needs, our tree with
// its units enabled, "update-initramfs -c" run inside it (our hook and
// init-bottom script, the lab's hook and Tails' first-boot
// repartitioning in init-premount), an lz4 live/filesystem.squashfs, and
// a USB image laid out like Tails' published one (the published disk
// GUID, partition attributes, bootloader configurations). The Debian
// part is cached separately and rebuilt only when the packages or the
// kernel change (about a minute); the rest takes about 15 s.
//
// LiveSystem.NewStick writes the image to a larger stick, NewISO makes
// the ISO. BootLive boots with QEMU's -kernel and the live initramfs, the
// stick as USB storage (Disk.USBSerial) or the ISO as a CD-ROM
// (Disk.CDROM), and lays the boot's files (LiveConfig) over the root
// from an init-bottom script; the report works as under BootSystemd.
// InstallerSeedInit runs "entropy-gate seed init" on a stick the way
// Tails Installer would. A live boot takes 45–90 s of wall time.
//
// # Debian programs
//
// DebianProgram makes a dynamically linked program from Debian packages
// (such as haveged) runnable in the guest: it downloads and unpacks the
// packages into the cache once and returns Config.Files entries for the
// program, the shared libraries it needs and the dynamic loader, each at
// its real path. Libraries the packages do not ship come from the host.
package vmtest
