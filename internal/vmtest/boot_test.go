// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

func TestQemuArgs(t *testing.T) {
	base := []string{"-nographic", "-no-reboot", "-nic", "none"}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "defaults", cfg: Config{}, want: append(slices.Clone(base),
			"-m", "512", "-smp", "1", "-cpu", "qemu64,-rdrand,-rdseed", "-kernel", "K", "-initrd", "I",
			"-append", "console=ttyS0 random.trust_cpu=off random.trust_bootloader=off quiet panic=-1")},
		{name: "everything", cfg: Config{
			CPU: "max", MemoryMB: 1024, CPUs: 2, VirtioRNG: true,
			Append: []string{"random.trust_cpu=on", "entropy_gate.timeout=5s"},
			Disks:  []Disk{{Path: "/tmp/ro.img", ReadOnly: true}, {Path: "/tmp/a,b.img", Serial: "STICK-1"}},
		}, want: append(slices.Clone(base),
			"-m", "1024", "-smp", "2", "-cpu", "max", "-kernel", "K", "-initrd", "I",
			"-append", "console=ttyS0 random.trust_cpu=off random.trust_bootloader=off quiet panic=-1 random.trust_cpu=on entropy_gate.timeout=5s",
			"-drive", "file=/tmp/ro.img,format=raw,if=none,id=disk0,readonly=on", "-device", "virtio-blk-pci,drive=disk0",
			"-drive", "file=/tmp/a,,b.img,format=raw,if=none,id=disk1", "-device", "virtio-blk-pci,drive=disk1,serial=STICK-1",
			"-device", "virtio-rng-pci")},
		{name: "stick and CD-ROM", cfg: Config{
			Disks:   []Disk{{Path: "/tmp/stick.img", USBSerial: "4C53,0001"}, {Path: "/tmp/tails.iso", CDROM: true}, {Path: "/tmp/ro.img", USBSerial: "X", ReadOnly: true}},
			Monitor: "/tmp/mon.sock",
		}, want: append(slices.Clone(base),
			"-m", "512", "-smp", "1", "-cpu", "qemu64,-rdrand,-rdseed", "-kernel", "K", "-initrd", "I",
			"-append", "console=ttyS0 random.trust_cpu=off random.trust_bootloader=off quiet panic=-1",
			"-device", "qemu-xhci,id=xhci",
			"-drive", "file=/tmp/stick.img,format=raw,if=none,id=disk0",
			"-device", "usb-storage,bus=xhci.0,drive=disk0,id=disk0,removable=on,serial=4C53,,0001",
			"-drive", "file=/tmp/tails.iso,format=raw,if=none,id=disk1,media=cdrom,readonly=on",
			"-device", "ide-cd,drive=disk1",
			"-drive", "file=/tmp/ro.img,format=raw,if=none,id=disk2,readonly=on",
			"-device", "usb-storage,bus=xhci.0,drive=disk2,id=disk2,removable=on,serial=X",
			"-monitor", "unix:/tmp/mon.sock,server=on,wait=off")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := qemuArgs("K", "I", tt.cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("qemuArgs:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestResult(t *testing.T) {
	ev := func(ms, step int, kind string, kv ...string) string {
		e := protocol.Event{Time: time.Duration(ms) * time.Millisecond, Step: step, Kind: kind}
		for i := 0; i < len(kv); i += 2 {
			e.Fields = append(e.Fields, protocol.Field{Key: kv[i], Value: kv[i+1]})
		}
		return protocol.Format(e)
	}
	console := strings.Join([]string{
		"\x1bc\x1b[2JSeaBIOS",
		ev(1900, 0, protocol.KindInit, "boottime", "1850000000") + "\r",
		ev(1910, 1, protocol.KindProbe, "ready", "false", "entropy_avail", "4"),
		ev(1920, 2, protocol.KindStdout, "line", "one"),
		ev(1930, 2, protocol.KindStderr, "line", "two"),
		ev(1940, 2, protocol.KindExit, "code", "3"),
		ev(1950, 3, protocol.KindExit, "code", "-1", "signal", "killed", "name", "gate"),
		ev(1960, 4, protocol.KindProbe, "ready", "true", "entropy_avail", "256"),
		ev(1970, 0, protocol.KindDone),
		"[    2.000000] reboot: Power down",
	}, "\n")
	res := newResult(console, time.Second)

	if len(res.Events) != 8 || len(res.Malformed) != 0 {
		t.Fatalf("parsed %d events, %q malformed", len(res.Events), res.Malformed)
	}
	if start, err := res.InitStart(); err != nil || start != 1850*time.Millisecond {
		t.Errorf("InitStart = %v, %v", start, err)
	}
	if e, ok := res.First(protocol.KindProbe); !ok || e.Step != 1 {
		t.Errorf("First(probe) = %v, %v", e, ok)
	}
	if e, ok := res.Find(4, protocol.KindProbe); !ok || e.Get("ready") != "true" {
		t.Errorf("Find(4, probe) = %v, %v", e, ok)
	}
	if n := len(res.All(protocol.KindExit)); n != 2 {
		t.Errorf("All(exit) has %d events", n)
	}
	if code, err := res.ExitCode(2); err != nil || code != 3 {
		t.Errorf("ExitCode(2) = %d, %v", code, err)
	}
	if code, err := res.ExitCode(3); err != nil || code != -1 {
		t.Errorf("ExitCode(3) = %d, %v", code, err)
	}
	if _, err := res.ExitCode(1); err == nil {
		t.Error("ExitCode(1) of a probe step did not fail")
	}
	if out := res.Output(2); !reflect.DeepEqual(out, []string{"one", "two"}) {
		t.Errorf("Output(2) = %q", out)
	}
	if lines := strings.Count(res.Timeline(), "\n"); lines != 8 {
		t.Errorf("Timeline has %d lines, want 8", lines)
	}
}
