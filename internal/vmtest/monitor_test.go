// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bufio"
	"net"
	"path/filepath"
	"testing"
)

// fakeMonitor answers one command the way QEMU's human monitor does:
// a greeting, the echoed command with terminal escapes, the answer and
// the prompt.
func fakeMonitor(t *testing.T, answer string) (socket string, got chan string) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "monitor.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got = make(chan string, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte("QEMU 7.2.19 monitor - type 'help' for more information\r\n(qemu) "))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		got <- line
		conn.Write([]byte("\x1b[K" + line[:len(line)-1] + "\r\n" + answer + "(qemu) "))
	}()
	return socket, got
}

func TestMonitorCommand(t *testing.T) {
	tests := []struct {
		name, answer, want string
	}{
		{name: "silent success", answer: "", want: ""},
		{name: "error", answer: "Error: Device 'disk9' not found\r\n", want: "Error: Device 'disk9' not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socket, got := fakeMonitor(t, tt.answer)
			answer, err := MonitorCommand(socket, "device_del disk9")
			if err != nil {
				t.Fatal(err)
			}
			if sent := <-got; sent != "device_del disk9\n" {
				t.Errorf("sent %q", sent)
			}
			if answer != tt.want {
				t.Errorf("answer %q, want %q", answer, tt.want)
			}
		})
	}
	if _, err := MonitorCommand(filepath.Join(t.TempDir(), "none"), "info status"); err == nil {
		t.Error("no error without a monitor")
	}
}
