// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"
)

// monitorPrompt ends every answer of QEMU's human monitor.
const monitorPrompt = "(qemu) "

// MonitorCommand sends one command to the human monitor of a running
// boot (Config.Monitor), such as "device_del disk0" (the ID of the first
// disk) to pull a USB stick out, and returns the monitor's answer.
func MonitorCommand(socket, command string) (string, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("monitor: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", fmt.Errorf("monitor: %w", err)
	}
	r := bufio.NewReader(conn)
	if _, err := readUntilPrompt(r); err != nil {
		return "", fmt.Errorf("monitor: greeting: %w", err)
	}
	if _, err := fmt.Fprintf(conn, "%s\n", command); err != nil {
		return "", fmt.Errorf("monitor: %s: %w", command, err)
	}
	answer, err := readUntilPrompt(r)
	if err != nil {
		return "", fmt.Errorf("monitor: %s: %w", command, err)
	}
	// The monitor echoes the command first, with terminal escapes: the
	// answer is what follows the echo's line.
	_, answer, _ = strings.Cut(strings.ReplaceAll(answer, "\r", ""), "\n")
	return strings.TrimSpace(answer), nil
}

// readUntilPrompt reads up to and without the next prompt.
func readUntilPrompt(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for !strings.HasSuffix(b.String(), monitorPrompt) {
		c, err := r.ReadByte()
		if err != nil {
			return b.String(), err
		}
		b.WriteByte(c)
	}
	return strings.TrimSuffix(b.String(), monitorPrompt), nil
}
