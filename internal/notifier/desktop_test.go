// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// desktop is a headless desktop session for tests (LAB.md): a private
// session bus and a notification server, dunst on an X server here, or a
// real GNOME Shell (gnome_test.go).
type desktop struct {
	t       testing.TB
	dir     string
	bus     string // the bus address
	display string
	// conn is the test's own connection, for watching names.
	conn          *dbus.Conn
	daemon, dunst *exec.Cmd
}

// busConfig is a session bus that lets the test monitor every message,
// and lets the test's own user connect where the session runs as another.
// Its first argument is the socket's directory, its second the service
// activation: none for dunst, so that nothing but the test starts a
// notification server.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <auth>EXTERNAL</auth>
  %s
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// dunstrc keeps every bubble until closed, and gives critical and normal
// notifications colours a screenshot can tell apart.
const dunstrc = `[global]
    font = DejaVu Sans 10
    width = 460
    height = 400
    origin = top-right
    offset = 10x10
    frame_width = 2
    markup = full
    format = "<b>%s</b>\n%b"
    idle_threshold = 0
    history_length = 50
    show_indicators = no
[urgency_low]
    timeout = 0
[urgency_normal]
    background = "#285577"
    foreground = "#ffffff"
    frame_color = "#4c7899"
    timeout = 0
[urgency_critical]
    background = "#900000"
    foreground = "#ffffff"
    frame_color = "#ff0000"
    timeout = 0
`

// Bubble colours in screenshots, as ImageMagick prints pixels.
const (
	criticalPixel = "srgb(144,0,0)"
	normalPixel   = "srgb(40,85,119)"
)

// newDesktop starts a bus, an X server and dunst.
func newDesktop(t testing.TB) *desktop {
	t.Helper()
	testenv.NeedCommands(t, "dbus-daemon", "Xvfb", "dunst", "dunstctl", "import", "convert")
	// Short: socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "en-desktop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &desktop{t: t, dir: dir}
	d.startBus()
	writeFile(t, filepath.Join(dir, "dunstrc"), dunstrc)

	// -displayfd makes Xvfb pick a free display and print its number.
	x := exec.Command("Xvfb", "-displayfd", "1", "-screen", "0", "800x600x24", "-nolisten", "tcp")
	d.display = ":" + d.startReadingLine(x)

	d.conn, err = dbus.Connect(d.bus)
	if err != nil {
		t.Fatalf("connect to the test bus: %v", err)
	}
	t.Cleanup(func() { d.conn.Close() })
	d.startDunst()
	return d
}

// startBus starts the session bus.
func (d *desktop) startBus() {
	d.t.Helper()
	conf := filepath.Join(d.dir, "bus.conf")
	writeFile(d.t, conf, fmt.Sprintf(busConfig, d.dir, ""))
	d.daemon = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	d.bus = d.startReadingLine(d.daemon)
}

// startReadingLine starts cmd, stops it at cleanup, and returns the first
// line of its output.
func (d *desktop) startReadingLine(cmd *exec.Cmd) string {
	d.t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", cmd.Path, err)
	}
	d.t.Cleanup(func() { stopProcess(cmd) })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		// Keep draining so the process never blocks on a full pipe.
		bufio.NewReader(out).WriteTo(discard{})
	}()
	select {
	case s := <-line:
		if s == "" {
			d.t.Fatalf("%s printed nothing", cmd.Path)
		}
		return s
	case <-time.After(10 * time.Second):
		d.t.Fatalf("%s did not start", cmd.Path)
	}
	return ""
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// stopProcess ends cmd, and its whole process group if it has its own:
// SIGTERM, then SIGKILL if it has not ended within stopGrace, as a process
// whose main loop wedged never handles the first.
func stopProcess(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	signal := func(sig unix.Signal) {
		if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid {
			unix.Kill(-cmd.Process.Pid, sig)
		} else {
			cmd.Process.Signal(sig)
		}
	}
	signal(unix.SIGTERM)
	ended := make(chan struct{})
	go func() {
		cmd.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(stopGrace):
		signal(unix.SIGKILL)
		<-ended
	}
}

// stopGrace is how long stopProcess waits after SIGTERM.
const stopGrace = 10 * time.Second

// env is the environment of the session's programs.
func (d *desktop) env() []string {
	return append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+d.bus, "DISPLAY="+d.display)
}

func (d *desktop) startDunst() {
	d.t.Helper()
	d.dunst = exec.Command("dunst", "-config", filepath.Join(d.dir, "dunstrc"))
	d.dunst.Env = d.env()
	if err := d.dunst.Start(); err != nil {
		d.t.Fatalf("start dunst: %v", err)
	}
	cmd := d.dunst
	d.t.Cleanup(func() { stopProcess(cmd) })
	d.waitOwner(true)
}

func (d *desktop) stopDunst() {
	d.t.Helper()
	stopProcess(d.dunst)
	d.waitOwner(false)
}

// waitOwner waits until the notification server's name has an owner, or
// none.
func (d *desktop) waitOwner(want bool) {
	d.t.Helper()
	waitFor(d.t, fmt.Sprintf("notification server present: %t", want), func() bool {
		has, err := d.hasNotificationServer()
		return err == nil && has == want
	})
}

// hasNotificationServer asks the bus whether the notification server's
// name has an owner.
func (d *desktop) hasNotificationServer() (bool, error) {
	var has bool
	err := d.conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, notificationsName).Store(&has)
	return has, err
}

// dunstctl runs dunstctl and returns its output.
func (d *desktop) dunstctl(args ...string) string {
	d.t.Helper()
	cmd := exec.Command("dunstctl", args...)
	cmd.Env = d.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		d.t.Fatalf("dunstctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitDisplayed waits until dunst shows n bubbles: it draws them from its
// main loop, after answering the Notify call.
func (d *desktop) waitDisplayed(n int) {
	d.t.Helper()
	waitFor(d.t, fmt.Sprintf("%d bubbles displayed", n), func() bool { return d.displayed() == n })
}

// displayed is how many bubbles dunst shows.
func (d *desktop) displayed() int {
	d.t.Helper()
	var n int
	if _, err := fmt.Sscan(strings.TrimSpace(d.dunstctl("count", "displayed")), &n); err != nil {
		d.t.Fatalf("dunstctl count: %v", err)
	}
	return n
}

// screenshot saves the X screen as name.png under $ENTROPY_GATE_ARTIFACTS
// (or a temporary directory) and returns the colour of the pixel where the
// bubble's background is.
func (d *desktop) screenshot(name string) string {
	d.t.Helper()
	path := artifactPath(d.t, name+".png")
	// dunst draws asynchronously after the D-Bus call returns.
	time.Sleep(300 * time.Millisecond)
	if out, err := exec.Command("import", "-display", d.display, "-window", "root", path).CombinedOutput(); err != nil {
		d.t.Fatalf("import: %v: %s", err, out)
	}
	d.t.Logf("screenshot: %s", path)
	// Inside the bubble (top-right, 460 wide, 10 from the edges), left
	// of and above any text.
	out, err := exec.Command("convert", path, "-format", "%[pixel:p{340,14}]", "info:").Output()
	if err != nil {
		d.t.Fatalf("convert: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// artifactPath is where a test keeps a file for people to look at: under
// $ENTROPY_GATE_ARTIFACTS, or a temporary directory.
func artifactPath(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("ENTROPY_GATE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// waitFor polls cond for up to ten seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	err := pollUntil(10*time.Second, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pollUntil retries try every 10 ms until it succeeds or timeout has
// passed, and then returns its last error.
func pollUntil(timeout time.Duration, what string, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s: %w", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notifyCall is one Notify call seen on the bus, with the id the server
// returned.
type notifyCall struct {
	AppName    string
	ReplacesID uint32
	Icon       string
	Summary    string
	Body       string
	Actions    []string
	Hints      map[string]dbus.Variant
	Expire     int32
	ID         uint32
	// Destination is the bus name the call was sent to.
	Destination string
	// At is when the monitor saw the call.
	At time.Time
}

func (c notifyCall) urgency() byte {
	u, _ := c.Hints["urgency"].Value().(byte)
	return u
}

// monitor records the notification protocol's traffic on the bus, as
// dbus-monitor would, from a connection that became a bus monitor.
type monitor struct {
	mu     sync.Mutex
	calls  []notifyCall
	closes []closeCall
	closed [][2]uint32 // NotificationClosed signals: id, reason
	// pending maps a Notify call's sender and serial to its index.
	pending map[string]int
}

func (d *desktop) monitor() *monitor {
	d.t.Helper()
	conn, err := dbus.Connect(d.bus)
	if err != nil {
		d.t.Fatal(err)
	}
	rules := []string{
		"type='method_call',interface='org.freedesktop.Notifications'",
		"type='signal',interface='org.freedesktop.Notifications'",
		"type='method_return'",
	}
	if err := conn.BusObject().Call("org.freedesktop.DBus.Monitoring.BecomeMonitor", 0, rules, uint32(0)).Err; err != nil {
		conn.Close()
		d.t.Fatalf("become monitor: %v", err)
	}
	msgs := make(chan *dbus.Message, 1000)
	conn.Eavesdrop(msgs)
	stop := make(chan struct{})
	d.t.Cleanup(func() {
		// Conn.Close would close msgs without taking it away from the
		// reading goroutine, which could then send on it: take it away
		// first. (A connection the bus closed has closed msgs.)
		conn.Eavesdrop(nil)
		conn.Close()
		close(stop)
	})
	m := &monitor{pending: make(map[string]int)}
	go func() {
		for {
			select {
			case msg, ok := <-msgs:
				if !ok {
					return
				}
				m.record(msg)
			case <-stop:
				return
			}
		}
	}()
	return m
}

func (m *monitor) record(msg *dbus.Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	header := func(f dbus.HeaderField) any {
		if v, ok := msg.Headers[f]; ok {
			return v.Value()
		}
		return nil
	}
	member, _ := header(dbus.FieldMember).(string)
	sender, _ := header(dbus.FieldSender).(string)
	switch msg.Type {
	case dbus.TypeMethodCall:
		switch member {
		case "Notify":
			var c notifyCall
			if err := dbus.Store(msg.Body, &c.AppName, &c.ReplacesID, &c.Icon, &c.Summary, &c.Body, &c.Actions, &c.Hints, &c.Expire); err != nil {
				return
			}
			c.At = time.Now()
			c.Destination, _ = header(dbus.FieldDestination).(string)
			m.calls = append(m.calls, c)
			m.pending[fmt.Sprint(sender, "/", msg.Serial())] = len(m.calls) - 1
		case "CloseNotification":
			if id, ok := msg.Body[0].(uint32); ok {
				m.closes = append(m.closes, closeCall{ID: id, At: time.Now()})
			}
		}
	case dbus.TypeMethodReply:
		dest, _ := header(dbus.FieldDestination).(string)
		serial, _ := header(dbus.FieldReplySerial).(uint32)
		key := fmt.Sprint(dest, "/", serial)
		if i, ok := m.pending[key]; ok && len(msg.Body) == 1 {
			m.calls[i].ID, _ = msg.Body[0].(uint32)
			delete(m.pending, key)
		}
	case dbus.TypeSignal:
		if member == "NotificationClosed" && len(msg.Body) == 2 {
			id, _ := msg.Body[0].(uint32)
			reason, _ := msg.Body[1].(uint32)
			m.closed = append(m.closed, [2]uint32{id, reason})
		}
	}
}

// waitAnswered waits until n Notify calls were answered with an id, and
// returns the answered calls; calls the server never got are left out.
func (m *monitor) waitAnswered(t testing.TB, n int) []notifyCall {
	t.Helper()
	var answered []notifyCall
	waitFor(t, fmt.Sprintf("%d answered Notify calls", n), func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		answered = answered[:0]
		for _, c := range m.calls {
			if c.ID != 0 {
				answered = append(answered, c)
			}
		}
		return len(answered) >= n
	})
	return answered
}

func (m *monitor) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// waitClosed waits for the server's NotificationClosed signal for id and
// returns its reason.
func (m *monitor) waitClosed(t testing.TB, id uint32) uint32 {
	t.Helper()
	var reason uint32
	waitFor(t, fmt.Sprintf("notification %d closed", id), func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, c := range m.closed {
			if c[0] == id {
				reason = c[1]
				return true
			}
		}
		return false
	})
	return reason
}

// closeCall is one CloseNotification call seen on the bus.
type closeCall struct {
	ID uint32
	At time.Time
}

func (m *monitor) closeCalls() []closeCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]closeCall(nil), m.closes...)
}
