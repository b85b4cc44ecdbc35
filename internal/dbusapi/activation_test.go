// SPDX-License-Identifier: GPL-3.0-or-later

package dbusapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const repoActivation = "../../units/dbus/org.boum.tails.EntropyGate1.service"

// buildEntropyGate builds the command into dir, as `make build` does.
func buildEntropyGate(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build entropy-gate")
	}
	bin := filepath.Join(dir, "entropy-gate")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "gitlab.tails.boum.org/tails/entropy-gate/cmd/entropy-gate")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build entropy-gate: %v\n%s", err, out)
	}
	return bin
}

// activationFile is the repository's activation file with Exec= running
// bin instead of the installed program.
func activationFile(t *testing.T, exec string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoActivation)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Exec=") {
			line, found = "Exec="+exec, true
		}
		out.WriteString(line + "\n")
	}
	if !found || !bytes.Contains(b, []byte("\nName="+BusName+"\n")) {
		t.Fatalf("%s lacks Name=%s or Exec=", repoActivation, BusName)
	}
	return out.Bytes()
}

func TestBusActivationAndIdleExit(t *testing.T) {
	needBus(t)
	dir, err := os.MkdirTemp(sharedDir, "activation-")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildEntropyGate(t, dir)
	services := filepath.Join(dir, "system-services")
	os.Mkdir(services, 0o755)
	file := activationFile(t, bin+" dbus --idle-timeout 1s")
	if err := os.WriteFile(filepath.Join(services, BusName+".service"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	bus := startBus(t, services)
	observer := bus.connect(t)
	if hasOwner(t, observer) {
		t.Fatal("the name has an owner before activation")
	}

	// An unprivileged call starts the service, which reads this machine's
	// kernel and gate state as `entropy-gate status` does.
	r := bus.runClient(t, "get-all")
	if r.Error != "" {
		t.Fatalf("GetAll through activation: %s\nbus log:\n%s", r.Error, bus.log)
	}
	all, _ := r.Value.(map[string]any)
	statusOut, _ := exec.Command(bin, "status", "--json").Output()
	var status struct {
		Ready           bool `json:"ready"`
		CRNGInitialized bool `json:"crng_initialized"`
		Threshold       int  `json:"threshold"`
		Gate            struct {
			State string `json:"state"`
		} `json:"gate"`
	}
	if err := json.Unmarshal(statusOut, &status); err != nil {
		t.Fatalf("entropy-gate status --json: %v: %q", err, statusOut)
	}
	if all[propReady] != status.Ready || all[propCRNGInitialized] != status.CRNGInitialized || all[propThreshold] != float64(status.Threshold) {
		t.Errorf("activated service says %v; entropy-gate status says %s", all, statusOut)
	}
	if g := all[propGateState]; g != status.Gate.State && g != GateDegraded {
		t.Errorf("GateState %v; entropy-gate status says %q", g, status.Gate.State)
	}

	var pid uint32
	if err := observer.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, BusName).Store(&pid); err != nil {
		// Gone already: it went idle.
		t.Logf("GetConnectionUnixProcessID: %v", err)
	}
	t.Logf("activated service: pid %d", pid)
	waitFor(t, "idle exit (name released)", func() bool { return !hasOwner(t, observer) })
	if pid != 0 {
		waitFor(t, "idle exit (process ended)", func() bool {
			_, err := os.Stat(filepath.Join("/proc", strconv.FormatUint(uint64(pid), 10)))
			return errors.Is(err, os.ErrNotExist)
		})
	}

	// The next call starts it again.
	if r := bus.runClient(t, "wait-ready", "0"); r.Error != "" || r.Value != status.Ready {
		t.Errorf("WaitReady after the idle exit: %+v, want %v", r, status.Ready)
	}
}
