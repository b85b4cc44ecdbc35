// SPDX-License-Identifier: GPL-3.0-or-later

package dbusapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/godbus/dbus/v5"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// These tests run a real dbus-daemon as a private system bus with our
// policy file, and clients as an unprivileged user: the test binary
// itself, re-executed in client mode (see clientMain).

// clientEnv puts the test binary in client mode.
const clientEnv = "ENTROPY_GATE_DBUSAPI_CLIENT"

// nobody is the unprivileged client's uid and gid.
const nobody = 65534

const repoPolicy = "../../units/dbus/org.boum.tails.EntropyGate1.conf"

// sharedDir is a world-readable directory for what unprivileged clients
// run or connect to; t.TempDir is private to root.
var sharedDir string

func TestMain(m *testing.M) {
	if os.Getenv(clientEnv) != "" {
		os.Exit(clientMain(os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "entropy-gate-dbusapi-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sharedDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needBus skips tests that need root (to run clients as another user)
// and dbus-daemon.
func needBus(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs clients as another user")
	}
	testenv.NeedCommands(t, "dbus-daemon")
}

// busConfig is a system bus like Debian's, listening in a test directory,
// with our policy included as the system bus includes system.d.
var busConfig = template.Must(template.New("bus").Parse(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={{.Socket}}</listen>
  <auth>EXTERNAL</auth>
  {{if .ServiceDir}}<servicedir>{{.ServiceDir}}</servicedir>{{end}}
  <!-- The default policy of Debian 12's system.conf (dbus 1.14). -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <include>{{.Policy}}</include>
</busconfig>
`))

type privateBus struct {
	addr string
	// log is the daemon's and activated services' output.
	log *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startBus runs a private system bus until the test ends. serviceDir,
// if not empty, holds activation files.
func startBus(t *testing.T, serviceDir string) *privateBus {
	t.Helper()
	dir, err := os.MkdirTemp(sharedDir, "bus-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	policy, err := filepath.Abs(repoPolicy)
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "system_bus_socket")
	var cfg bytes.Buffer
	if err := busConfig.Execute(&cfg, map[string]string{"Socket": socket, "ServiceDir": serviceDir, "Policy": policy}); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "system.conf")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bus := &privateBus{addr: "unix:path=" + socket, log: &lockedBuffer{}}
	cmd := exec.Command("dbus-daemon", "--config-file="+cfgPath, "--nofork", "--print-address=1")
	// Activated services inherit the daemon's environment: this is how
	// they find the bus.
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus.addr)
	cmd.Stderr = bus.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("bus log:\n%s", bus.log)
		}
	})
	// The address line says the daemon listens.
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("dbus-daemon did not start: %v\n%s", err, bus.log)
	}
	return bus
}

// connect opens a root connection to the bus, closed when the test ends.
func (b *privateBus) connect(t *testing.T) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(b.addr)
	if err != nil {
		t.Fatalf("connect to the private bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// hasOwner says whether the service's name has an owner.
func hasOwner(t *testing.T, conn *dbus.Conn) bool {
	t.Helper()
	var owned bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, BusName).Store(&owned); err != nil {
		t.Fatalf("NameHasOwner: %v", err)
	}
	return owned
}

// serve runs a service with a fake pool on the bus until the test ends.
func (b *privateBus) serve(t *testing.T, cfg Config) *Service {
	t.Helper()
	cfg.Logf = t.Logf
	s := New(cfg)
	conn := b.connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	observer := b.connect(t)
	waitFor(t, "owner of "+BusName, func() bool { return hasOwner(t, observer) })
	return s
}

// clientResult is what a client printed: a value, or a D-Bus error name.
type clientResult struct {
	Value any    `json:"value"`
	Error string `json:"error"`
}

// clientBinary is the test binary, copied where nobody may run it.
var clientBinary = sync.OnceValues(func() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return "", err
	}
	path := filepath.Join(sharedDir, "client")
	return path, os.WriteFile(path, b, 0o755)
})

// asNobody runs a command as the unprivileged user, with the bus as its
// system bus.
func (b *privateBus) asNobody(ctx context.Context, name string, args ...string) *exec.Cmd {
	return b.asUser(ctx, nobody, name, args...)
}

// asUser runs a command as uid (and gid nobody), with the bus as its
// system bus.
func (b *privateBus) asUser(ctx context.Context, uid uint32, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + b.addr, clientEnv + "=1", "HOME=/nonexistent", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: nobody}}
	cmd.Dir = "/"
	return cmd
}

// client starts the test binary in client mode as nobody. Its output
// lines come through the returned reader.
func (b *privateBus) client(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	return b.clientAs(t, nobody, args...)
}

// clientAs starts the test binary in client mode as uid.
func (b *privateBus) clientAs(t *testing.T, uid uint32, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	bin, err := clientBinary()
	if err != nil {
		t.Fatalf("copy the test binary: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	cmd := b.asUser(ctx, uid, bin, args...)
	cmd.Stderr = b.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start client: %v", err)
	}
	return cmd, bufio.NewReader(stdout)
}

// result reads a client's final result line and waits for it to exit.
func result(t *testing.T, cmd *exec.Cmd, out *bufio.Reader) clientResult {
	t.Helper()
	line, err := out.ReadString('\n')
	if err != nil {
		cmd.Wait()
		t.Fatalf("client %v: no result: %v", cmd.Args[1:], err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client %v: %v", cmd.Args[1:], err)
	}
	var r clientResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("client %v printed %q: %v", cmd.Args[1:], line, err)
	}
	return r
}

// runClient runs one client action as nobody and returns its result.
func (b *privateBus) runClient(t *testing.T, args ...string) clientResult {
	t.Helper()
	cmd, out := b.client(t, args...)
	return result(t, cmd, out)
}

// runClientAs runs one client action as uid and returns its result.
func (b *privateBus) runClientAs(t *testing.T, uid uint32, args ...string) clientResult {
	t.Helper()
	cmd, out := b.clientAs(t, uid, args...)
	return result(t, cmd, out)
}

// expectLine reads the client's next line and checks it.
func expectLine(t *testing.T, out *bufio.Reader, want string) {
	t.Helper()
	line, err := out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != want {
		t.Fatalf("client said %q, %v; want %q", line, err, want)
	}
}

const errAccessDenied = "org.freedesktop.DBus.Error.AccessDenied"

func TestBusPolicy(t *testing.T) {
	needBus(t)
	bus := startBus(t, "")
	bus.serve(t, Config{Pool: pool.NewFake(modernNotReady), StatePath: statePath(t), Threshold: 256})
	tests := []struct {
		name      string
		args      []string
		wantError string
		check     func(t *testing.T, value any)
	}{
		{name: "read all properties", args: []string{"get-all"}, check: func(t *testing.T, v any) {
			all, _ := v.(map[string]any)
			want := map[string]any{propReady: false, propCRNGInitialized: false, propEntropyAvail: 12.0, propThreshold: 256.0, propGateState: gatestate.NotRun}
			for name, w := range want {
				if all[name] != w {
					t.Errorf("%s = %v, want %v", name, all[name], w)
				}
			}
			if seeds, ok := all[propSeeds].(map[string]any); !ok || len(seeds) != 0 {
				t.Errorf("Seeds = %v, want an empty dictionary", all[propSeeds])
			}
		}},
		{name: "read a property", args: []string{"get", propThreshold}, check: func(t *testing.T, v any) {
			if v != 256.0 {
				t.Errorf("Threshold = %v, want 256", v)
			}
		}},
		{name: "introspect", args: []string{"introspect"}, check: func(t *testing.T, v any) {
			s, _ := v.(string)
			checkIntrospection(t, s)
		}},
		{name: "ask WaitReady without waiting", args: []string{"wait-ready", "0"}, check: func(t *testing.T, v any) {
			if v != false {
				t.Errorf("WaitReady(0) = %v, want false", v)
			}
		}},
		{name: "set a property", args: []string{"set", propReady}, wantError: errAccessDenied},
		{name: "own the name", args: []string{"own"}, wantError: errAccessDenied},
		{name: "call Peer.Ping", args: []string{"call", "org.freedesktop.DBus.Peer.Ping"}, wantError: errAccessDenied},
		{name: "call an unknown method", args: []string{"call", Interface + ".Reset"}, wantError: errAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bus.runClient(t, tt.args...)
			if r.Error != tt.wantError {
				t.Fatalf("error %q, want %q", r.Error, tt.wantError)
			}
			if tt.check != nil {
				tt.check(t, r.Value)
			}
		})
	}
	t.Run("root cannot set either", func(t *testing.T) {
		conn := bus.connect(t)
		err := conn.Object(BusName, ObjectPath).Call("org.freedesktop.DBus.Properties.Set", 0, Interface, propReady, dbus.MakeVariant(true)).Err
		var dbusErr dbus.Error
		if !errors.As(err, &dbusErr) || dbusErr.Name != errAccessDenied {
			t.Errorf("Set as root: %v, want %s", err, errAccessDenied)
		}
	})
}

func TestBusPropertiesChanged(t *testing.T) {
	needBus(t)
	bus := startBus(t, "")
	fake := pool.NewFake(modernNotReady)
	bus.serve(t, Config{Pool: fake, StatePath: statePath(t), Threshold: 256})
	cmd, out := bus.client(t, "watch")
	expectLine(t, out, "subscribed")
	fake.SetEntropyAvail(256)
	fake.SetReady()
	r := result(t, cmd, out)
	changed, _ := r.Value.(map[string]any)
	if r.Error != "" || changed[propReady] != true || changed[propCRNGInitialized] != true || changed[propEntropyAvail] != 256.0 {
		t.Errorf("PropertiesChanged = %v (error %q), want Ready, CrngInitialized and EntropyAvail 256", r.Value, r.Error)
	}
}

func TestBusWaitReady(t *testing.T) {
	needBus(t)
	bus := startBus(t, "")
	usec := func(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }
	tests := []struct {
		name       string
		cfg        Config
		timeout    time.Duration
		busyFirst  bool
		turnsReady bool
		want       clientResult
	}{
		{name: "pool turns ready while waiting", timeout: time.Minute, turnsReady: true, want: clientResult{Value: true}},
		{name: "times out", timeout: 100 * time.Millisecond, want: clientResult{Value: false}},
		{name: "timeout capped", cfg: Config{MaxWait: 200 * time.Millisecond}, timeout: 100 * time.Hour, want: clientResult{Value: false}},
		{name: "callers bounded", cfg: Config{MaxWaiters: 1}, timeout: time.Minute, busyFirst: true, want: clientResult{Error: errLimitsExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := pool.NewFake(modernNotReady)
			tt.cfg.Pool, tt.cfg.StatePath, tt.cfg.Threshold = fake, statePath(t), 256
			s := bus.serve(t, tt.cfg)
			if tt.busyFirst {
				first, out := bus.client(t, "wait-ready", usec(time.Minute))
				waitFor(t, "the first waiter", s.waiting)
				defer func() {
					fake.SetEntropyAvail(256)
					fake.SetReady()
					if r := result(t, first, out); r.Value != true {
						t.Errorf("the first waiter got %+v, want true", r)
					}
				}()
			}
			cmd, out := bus.client(t, "wait-ready", usec(tt.timeout))
			if tt.turnsReady {
				waitFor(t, "a waiter", s.waiting)
				fake.SetEntropyAvail(256)
				fake.SetReady()
			}
			if r := result(t, cmd, out); r != tt.want {
				t.Errorf("WaitReady = %+v, want %+v", r, tt.want)
			}
		})
	}
}

// One local user cannot hold every WaitReady slot: the bus tells the
// service each caller's uid, and root and the assistant's user always
// get through.
func TestBusWaitReadySlotsPerUser(t *testing.T) {
	needBus(t)
	bus := startBus(t, "")
	// Users every Debian system has: the bus refuses uids without a
	// passwd entry.
	const userB, userC, assistant = 1, 2, 3 // daemon, bin, sys
	fake := pool.NewFake(modernNotReady)
	s := bus.serve(t, Config{Pool: fake, StatePath: statePath(t), Threshold: 256,
		MaxWaiters: 2, MaxWaitersPerUser: 1, ReservedWaiters: 2, PrivilegedUIDs: []uint32{assistant}})
	hour := strconv.FormatInt(time.Hour.Microseconds(), 10)
	type waiter struct {
		cmd *exec.Cmd
		out *bufio.Reader
	}
	var waiters []waiter
	wait := func(name string, uid uint32) {
		cmd, out := bus.clientAs(t, uid, "wait-ready", hour)
		waiters = append(waiters, waiter{cmd, out})
		n := len(waiters)
		waitFor(t, name+" waiting", func() bool { return s.waiterCount() == n })
	}
	refused := func(name string, uid uint32) {
		if r := bus.runClientAs(t, uid, "wait-ready", hour); r.Error != errLimitsExceeded {
			t.Errorf("%s: WaitReady = %+v, want %s", name, r, errLimitsExceeded)
		}
	}
	wait("nobody", nobody)
	refused("nobody's second call", nobody)
	wait("user b", userB)
	refused("user c, the ordinary slots taken", userC)
	wait("the assistant's user", assistant)

	root := bus.connect(t)
	rootAnswer := make(chan *dbus.Call, 1)
	root.Object(BusName, ObjectPath).Go(Interface+".WaitReady", 0, rootAnswer, uint64(time.Hour.Microseconds()))
	waitFor(t, "root waiting", func() bool { return s.waiterCount() == len(waiters)+1 })

	fake.SetEntropyAvail(256)
	fake.SetReady()
	for i, w := range waiters {
		if r := result(t, w.cmd, w.out); r.Value != true {
			t.Errorf("waiter %d got %+v, want true", i, r)
		}
	}
	var ready bool
	if err := (<-rootAnswer).Store(&ready); err != nil || !ready {
		t.Errorf("root's WaitReady = %v, %v; want true", ready, err)
	}
}

// python finds a Python 3 with GLib's introspection bindings, as the
// example's #! line expects at /usr/bin/python3.
func python(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		check := exec.Command(p, "-c", `import gi; gi.require_version("Gio", "2.0"); from gi.repository import Gio`)
		if check.Run() == nil {
			return p
		}
	}
	t.Skipf("no python3 with Gio (Debian packages python3-gi gir1.2-glib-2.0): run `%s`", testenv.InstallCommand)
	return ""
}

const pythonExample = "../../docs/examples/check_entropy.py"

func TestBusPythonExample(t *testing.T) {
	needBus(t)
	py := python(t)
	src, err := os.ReadFile(pythonExample)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(sharedDir, "check_entropy.py")
	if err := os.WriteFile(script, src, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		noService  bool
		args       []string
		turnsReady bool
		wantCode   int
		wantOut    string
	}{
		{name: "not ready", wantCode: 1, wantOut: "not ready: gate not-run, entropy 12 of 256 bits\n"},
		{name: "waits until ready", args: []string{"--wait", "60"}, turnsReady: true, wantCode: 0, wantOut: "ready\n"},
		{name: "not ready in time", args: []string{"--wait", "0.2"}, wantCode: 1, wantOut: "not ready: gate not-run, entropy 12 of 256 bits\n"},
		{name: "no service: refuse", noService: true, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := startBus(t, "")
			fake := pool.NewFake(modernNotReady)
			var s *Service
			if !tt.noService {
				s = bus.serve(t, Config{Pool: fake, StatePath: statePath(t), Threshold: 256})
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			cmd := bus.asNobody(ctx, py, append([]string{script}, tt.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if tt.turnsReady {
				waitFor(t, "a waiter", s.waiting)
				fake.SetEntropyAvail(256)
				fake.SetReady()
			}
			err := cmd.Wait()
			var exit *exec.ExitError
			code := 0
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || (tt.wantOut != "" && stdout.String() != tt.wantOut) {
				t.Errorf("exit %d, output %q; want %d, %q\nstderr: %s", code, stdout.String(), tt.wantCode, tt.wantOut, stderr.String())
			}
			if tt.wantCode == 2 && !strings.Contains(stderr.String(), "cannot ask entropy-gate") {
				t.Errorf("no reason on stderr: %q", stderr.String())
			}
		})
	}
}

// clientMain is the test binary as an unprivileged client: it runs one
// action, prints a JSON clientResult line (after progress lines some
// actions print) and exits 0; it exits 2 if it cannot run the action.
func clientMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "client: no action")
		return 2
	}
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	defer conn.Close()
	obj := conn.Object(BusName, ObjectPath)
	var value any
	switch args[0] {
	case "get-all":
		var all map[string]dbus.Variant
		err = obj.Call("org.freedesktop.DBus.Properties.GetAll", 0, Interface).Store(&all)
		value = plain(all)
	case "get":
		var v dbus.Variant
		err = obj.Call("org.freedesktop.DBus.Properties.Get", 0, Interface, args[1]).Store(&v)
		value = plain(v)
	case "set":
		err = obj.Call("org.freedesktop.DBus.Properties.Set", 0, Interface, args[1], dbus.MakeVariant(true)).Err
	case "wait-ready":
		usec, perr := strconv.ParseUint(args[1], 10, 64)
		if perr != nil {
			fmt.Fprintln(os.Stderr, "client:", perr)
			return 2
		}
		var ready bool
		err = obj.Call(Interface+".WaitReady", 0, usec).Store(&ready)
		value = ready
	case "introspect":
		var xml string
		err = obj.Call("org.freedesktop.DBus.Introspectable.Introspect", 0).Store(&xml)
		value = xml
	case "own":
		var reply dbus.RequestNameReply
		reply, err = conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
		value = reply
	case "call":
		err = obj.Call(args[1], 0).Err
	case "watch":
		value, err = watchPropertiesChanged(conn, os.Stdout)
	default:
		fmt.Fprintln(os.Stderr, "client: unknown action", args[0])
		return 2
	}
	r := clientResult{Value: value}
	var dbusErr dbus.Error
	switch {
	case errors.As(err, &dbusErr):
		r = clientResult{Error: dbusErr.Name}
	case err != nil:
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 2
	}
	return 0
}

// watchPropertiesChanged subscribes, says "subscribed", and returns the
// first change of the service's properties.
func watchPropertiesChanged(conn *dbus.Conn, w io.Writer) (any, error) {
	if err := conn.AddMatchSignal(
		dbus.WithMatchObjectPath(ObjectPath),
		dbus.WithMatchInterface("org.freedesktop.DBus.Properties"),
		dbus.WithMatchMember("PropertiesChanged"),
	); err != nil {
		return nil, err
	}
	signals := make(chan *dbus.Signal, 10)
	conn.Signal(signals)
	fmt.Fprintln(w, "subscribed")
	timeout := time.After(testTimeout)
	for {
		select {
		case sig := <-signals:
			if sig.Path != ObjectPath || len(sig.Body) != 3 || sig.Body[0] != Interface {
				continue
			}
			changed, _ := sig.Body[1].(map[string]dbus.Variant)
			return plain(changed), nil
		case <-timeout:
			return nil, errors.New("no PropertiesChanged signal")
		}
	}
}

// plain turns D-Bus values into what encoding/json prints.
func plain(v any) any {
	switch x := v.(type) {
	case dbus.Variant:
		return plain(x.Value())
	case map[string]dbus.Variant:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = plain(e)
		}
		return m
	case map[string]map[string]dbus.Variant:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = plain(e)
		}
		return m
	default:
		return x
	}
}
