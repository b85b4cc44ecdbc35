// SPDX-License-Identifier: GPL-3.0-or-later

package units

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
)

// The D-Bus status service: its unit, activation file and bus policy
// (internal/dbusapi tests them on a real bus).
const (
	busName        = "org.boum.tails.EntropyGate1"
	dbusUnit       = "entropy-gate-dbus.service"
	activationFile = "dbus/" + busName + ".service"
	policyFile     = "dbus/" + busName + ".conf"
)

// options reads a systemd-style INI file into section → key → values.
func options(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	m := map[string]map[string][]string{}
	for _, o := range opts {
		if m[o.Section] == nil {
			m[o.Section] = map[string][]string{}
		}
		m[o.Section][o.Name] = append(m[o.Section][o.Name], o.Value)
	}
	return m
}

func TestDBusFilesAgree(t *testing.T) {
	act := options(t, activationFile)["D-BUS Service"]
	svc := options(t, "system/"+dbusUnit)["Service"]
	tests := []struct {
		name      string
		got, want []string
	}{
		{"activation Name", act["Name"], []string{busName}},
		{"activation User (required on the system bus)", act["User"], []string{"root"}},
		{"activation SystemdService", act["SystemdService"], []string{dbusUnit}},
		{"unit Type", svc["Type"], []string{"dbus"}},
		{"unit BusName", svc["BusName"], []string{busName}},
		{"unit ExecStart is the activation Exec", svc["ExecStart"], act["Exec"]},
		{"no capabilities", svc["CapabilityBoundingSet"], []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Join(tt.got, "\n") != strings.Join(tt.want, "\n") || len(tt.got) == 0 {
				t.Errorf("%q, want %q", tt.got, tt.want)
			}
		})
	}
}

// busPolicy is the part of a bus configuration file the test reads.
type busPolicy struct {
	Policies []struct {
		User    string `xml:"user,attr"`
		Context string `xml:"context,attr"`
		Allow   []struct {
			Own       string `xml:"own,attr"`
			OwnPrefix string `xml:"own_prefix,attr"`
			Dest      string `xml:"send_destination,attr"`
			Interface string `xml:"send_interface,attr"`
			Member    string `xml:"send_member,attr"`
		} `xml:"allow"`
	} `xml:"policy"`
}

func TestDBusPolicyGrantsOnlyReading(t *testing.T) {
	b, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	var p busPolicy
	if err := xml.Unmarshal(b, &p); err != nil {
		t.Fatalf("parse %s: %v", policyFile, err)
	}
	readOnly := map[string]bool{
		"org.freedesktop.DBus.Properties.Get":            true,
		"org.freedesktop.DBus.Properties.GetAll":         true,
		"org.freedesktop.DBus.Introspectable.Introspect": true,
		"org.boum.tails.EntropyGate1.WaitReady":          true,
	}
	owners := 0
	for _, pol := range p.Policies {
		for _, a := range pol.Allow {
			switch {
			case a.Own != "" || a.OwnPrefix != "":
				if pol.User != "root" || a.Own != busName {
					t.Errorf("policy user=%q context=%q allows owning %q%q: only root may own %s", pol.User, pol.Context, a.Own, a.OwnPrefix, busName)
				}
				owners++
			case a.Dest != busName || !readOnly[a.Interface+"."+a.Member]:
				t.Errorf("policy user=%q context=%q allows %s.%s to %q: only reading and WaitReady are allowed", pol.User, pol.Context, a.Interface, a.Member, a.Dest)
			}
		}
	}
	if owners != 1 {
		t.Errorf("%d rules let root own %s, want 1", owners, busName)
	}
}

func TestDBusUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	targets, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	if len(targets) == 0 {
		t.Skip("systemd's targets not installed")
	}
	root := installTree(t)
	unitDir := filepath.Join(root, "usr/lib/systemd/system")
	// Type=dbus pulls in the bus's own units: stand-ins with their names.
	files := map[string]string{
		"usr/lib/systemd/system/dbus.socket":  "[Socket]\nListenStream=/run/dbus/system_bus_socket\n",
		"usr/lib/systemd/system/dbus.service": "[Service]\nExecStart=/bin/true\n",
		"bin/true":                            "#!/bin/sh\n",
	}
	for _, target := range targets {
		b, err := os.ReadFile(target)
		if err != nil {
			t.Fatal(err)
		}
		files["usr/lib/systemd/system/"+filepath.Base(target)] = string(b)
	}
	for name, text := range files {
		path := filepath.Join(root, name)
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") {
			mode = 0o755
		}
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(unitDir, dbusUnit)); err != nil {
		t.Fatalf("make install did not install %s: %v", dbusUnit, err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, dbusUnit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
