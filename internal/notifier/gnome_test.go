// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// gnomeShell is a real GNOME Shell, headless (LAB.md), as the notification
// server of a desktop session: the helpers of desktop_test.go work against
// it, and it answers for its own state (Eval, allowed by --unsafe-mode)
// and takes screenshots.
type gnomeShell struct {
	*desktop
	// log holds the shell's output, shown when a test fails.
	log string
	// system and shell are the shell's system bus and the shell under
	// dbus-run-session.
	system, shell *exec.Cmd
	// unstick watches the shell's process group for a fork stuck before
	// exec.
	unstick *forkWatchdog
	// owner runs the shell; nil when the test is not root.
	owner *syscall.Credential
}

// shellUser runs GNOME Shell when the tests run as root: as root, the
// shell shows a warning about the privileged user first.
const shellUser = "entropy-gate-test"

// newGnomeShell starts GNOME Shell under dbus-run-session, with a system
// bus of its own, a home and runtime directory for its user, and the
// notifier's desktop file where it looks for applications.
func newGnomeShell(t *testing.T) *gnomeShell {
	t.Helper()
	// Without gjs, GNOME Shell's notification service cannot start.
	testenv.NeedCommands(t, "gnome-shell", "gjs", "dbus-run-session", "dbus-daemon")
	// Short: socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "en-gnome-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	g := &gnomeShell{desktop: &desktop{t: t, dir: dir}, log: filepath.Join(dir, "gnome-shell.log"), owner: sessionOwner(t)}
	home, runtime, share := filepath.Join(dir, "home"), filepath.Join(dir, "run"), filepath.Join(dir, "share")
	// GNOME Shell warns once per user that the screen cannot be locked
	// without GDM; this mark says it did, which keeps that banner away.
	writeFile(t, filepath.Join(home, ".local/share/gnome-shell/lock-warning-shown"), "")
	writeFile(t, filepath.Join(share, applications), readText(t, filepath.Join(desktopFiles(t), applications)))
	// The shell takes an application whose program is missing for none.
	bin := filepath.Join(dir, "bin")
	standIn(t, bin)
	if err := os.MkdirAll(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	g.giveAway(dir)
	env := []string{
		"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + runtime, "LANG=C.UTF-8",
		"XDG_DATA_DIRS=" + share + ":/usr/local/share:/usr/share",
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(g.log)
			t.Logf("GNOME Shell's output:\n%s", out)
		}
	})
	t.Cleanup(g.stop)

	// A shell that does not finish starting is stopped and started once
	// more: it is not what is under test, and its output says what it was
	// doing. (The one cause seen, a fork stuck before exec, is taken care
	// of by the watchdog; see forkWatchdog.)
	for attempt := 1; ; attempt++ {
		err := g.start(env)
		if err == nil {
			return g
		}
		out, _ := os.ReadFile(g.log)
		if attempt == shellAttempts {
			t.Fatalf("GNOME Shell, attempt %d: %v; its output:\n%s", attempt, err, out)
		}
		t.Logf("GNOME Shell, attempt %d: %v; its output:\n%s", attempt, err, out)
		g.stop()
	}
}

// shellAttempts is how many times newGnomeShell starts the shell.
const shellAttempts = 2

// start starts the shell's system bus and the shell, and waits until it
// has finished starting. It stops the test only for what a retry would not
// change.
func (g *gnomeShell) start(env []string) error {
	t := g.t
	// GNOME Shell needs a system bus, even one without logind.
	g.system = exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
	g.system.Env = env
	g.system.SysProcAttr = &syscall.SysProcAttr{Credential: g.owner}
	env = append(env, "DBUS_SYSTEM_BUS_ADDRESS="+g.startReadingLine(g.system))

	conf := filepath.Join(g.dir, "bus.conf")
	writeFile(t, conf, fmt.Sprintf(busConfig, g.dir, "<standard_session_servicedirs/>"))
	// The first line out is the session bus's address, then the shell's
	// own output goes to its log. Its own process group, so that the
	// services the bus starts for it stop with it, and the watchdog
	// knows its processes.
	g.shell = exec.Command("dbus-run-session", "--config-file="+conf, "--",
		"sh", "-c", `echo "$DBUS_SESSION_BUS_ADDRESS"; log=$1; shift; exec "$@" >"$log" 2>&1`, "sh", g.log,
		"gnome-shell", "--headless", "--wayland", "--no-x11", "--virtual-monitor", "1024x768", "--unsafe-mode")
	g.shell.Env = env
	g.shell.SysProcAttr = &syscall.SysProcAttr{Credential: g.owner, Setpgid: true}
	g.bus = g.startReadingLine(g.shell)
	g.unstick = newForkWatchdog(g.shell.Process.Pid, "gnome-shell")
	var err error
	if g.conn, err = dbus.Connect(g.bus); err != nil {
		return fmt.Errorf("connect to its bus: %w", err)
	}

	// Up when it answers (a few seconds, more on a busy machine), and it
	// takes the notification server's name a moment later.
	if err := pollUntil(time.Minute, "it to answer", func() error { return g.eval("true", nil) }); err != nil {
		return err
	}
	if err := pollUntil(shellCallTimeout, "it to own "+notificationsName, func() error {
		if has, err := g.hasNotificationServer(); err != nil || !has {
			return fmt.Errorf("owned %t: %v", has, err)
		}
		return nil
	}); err != nil {
		return err
	}
	// It ends its start by showing the overview; leave it once started,
	// as the desktop makes clearer screenshots.
	const starting = `Main.layoutManager._startingUp ||
		(Main.overview.hide(), !!(Main.overview.visible || Main.overview.animationInProgress))`
	return pollUntil(shellCallTimeout, "its start and the overview to end", func() error {
		var busy bool
		if err := g.eval(starting, &busy); err != nil {
			return err
		}
		if busy {
			return errors.New("still busy")
		}
		return nil
	})
}

// stop ends the shell, its session bus and its system bus, and says if
// the watchdog had to unstick the shell.
func (g *gnomeShell) stop() {
	if g.conn != nil {
		g.conn.Close()
		g.conn = nil
	}
	if g.unstick != nil {
		if n := g.unstick.stop(); n > 0 {
			g.t.Logf("killed %d forked child(ren) of GNOME Shell stuck before exec", n)
		}
		g.unstick = nil
	}
	stopProcess(g.shell)
	stopProcess(g.system)
}

// sessionOwner returns the unprivileged user that runs the session when
// the test runs as root, creating it if it is missing, and nil otherwise.
func sessionOwner(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(shellUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", shellUser).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v: %s", shellUser, err, out)
		}
		if u, err = user.Lookup(shellUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// giveAway makes the session's user own dir and everything in it.
func (g *gnomeShell) giveAway(dir string) {
	g.t.Helper()
	if g.owner == nil {
		return
	}
	err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(g.owner.Uid), int(g.owner.Gid))
	})
	if err != nil {
		g.t.Fatal(err)
	}
}

// shellCallTimeout bounds every call to the shell: one that wedged would
// otherwise hold the test until the package's timeout, saying nothing.
const shellCallTimeout = 30 * time.Second

// callShell calls a method of the shell, for at most shellCallTimeout.
func (g *gnomeShell) callShell(dest, path, method string, args ...any) *dbus.Call {
	ctx, cancel := context.WithTimeout(context.Background(), shellCallTimeout)
	defer cancel()
	return g.conn.Object(dest, dbus.ObjectPath(path)).CallWithContext(ctx, method, 0, args...)
}

// eval runs JavaScript in GNOME Shell and decodes its result, which the
// shell sends as JSON, into result unless that is nil.
func (g *gnomeShell) eval(js string, result any) error {
	var ok bool
	var out string
	call := g.callShell("org.gnome.Shell", "/org/gnome/Shell", "org.gnome.Shell.Eval", js)
	if err := call.Store(&ok, &out); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if !ok {
		return fmt.Errorf("eval %s: %s", js, out)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal([]byte(out), result); err != nil {
		return fmt.Errorf("eval %s: result %s: %w", js, out, err)
	}
	return nil
}

// traySource is a source of notifications in GNOME Shell's message tray,
// as the shell holds it.
type traySource struct {
	Title string
	// App is the desktop file the shell found for the source.
	App string
	// Icon is the source's icon, the application's when it has one.
	Icon          string
	Notifications []trayNotification
}

// trayNotification is one notification of a source.
type trayNotification struct {
	Title, Body string
	// Icon is the notification's own icon.
	Icon string
	// Urgency is the shell's: 0 low, 1 normal, 2 high, 3 critical.
	Urgency   int
	Resident  bool
	Transient bool
	// Banner: the shell shows it as a banner now.
	Banner bool
	// Listed: the message list (the calendar menu) holds it.
	Listed bool
}

// Urgencies of GNOME Shell's MessageTray.
const (
	shellUrgencyNormal   = 1
	shellUrgencyCritical = 3
)

// trayScript reads the message tray, the banner and the message list.
const trayScript = `(() => {
	const tray = Main.messageTray;
	const listed = Main.panel.statusArea.dateMenu._messageList._notificationSection._messages.map(m => m.notification);
	return tray.getSources().map(s => ({
		title: s.title,
		app: s.app ? s.app.get_id() : "",
		icon: s.app ? s.app.get_icon().to_string() : s._gicon ? s._gicon.to_string() : "",
		notifications: s.notifications.map(n => ({
			title: n.title,
			body: n.bannerBodyText,
			icon: n.gicon ? n.gicon.to_string() : "",
			urgency: n.urgency,
			resident: n.resident,
			transient: n.isTransient,
			banner: tray._notification === n && tray._notificationState === 2,
			listed: listed.includes(n),
		})),
	}));
})()`

// tray returns the sources in the message tray.
func (g *gnomeShell) tray() []traySource {
	g.t.Helper()
	var sources []traySource
	if err := g.eval(trayScript, &sources); err != nil {
		g.t.Fatal(err)
	}
	return sources
}

// waitTray waits until the tray satisfies cond, and returns it.
func (g *gnomeShell) waitTray(what string, cond func([]traySource) bool) []traySource {
	g.t.Helper()
	var sources []traySource
	met := false
	// waitFor ends the test when it times out; say what the tray held.
	defer func() {
		if !met {
			g.t.Logf("message tray: %+v", sources)
		}
	}()
	waitFor(g.t, what, func() bool {
		sources = g.tray()
		return cond(sources)
	})
	met = true
	return sources
}

// screenshot saves the screen as name.png with the artifacts. The shell
// writes it, as its own user, into the session's directory first.
func (g *gnomeShell) screenshot(name string) {
	g.t.Helper()
	// The shell draws on its next frame.
	time.Sleep(500 * time.Millisecond)
	shot := filepath.Join(g.dir, name+".png")
	var ok bool
	var used string
	call := g.callShell("org.gnome.Shell.Screenshot", "/org/gnome/Shell/Screenshot",
		"org.gnome.Shell.Screenshot.Screenshot", false, false, shot)
	if err := call.Store(&ok, &used); err != nil || !ok {
		g.t.Fatalf("screenshot: %v (success %t)", err, ok)
	}
	b, err := os.ReadFile(used)
	if err != nil {
		g.t.Fatal(err)
	}
	path := artifactPath(g.t, name+".png")
	writeFile(g.t, path, string(b))
	g.t.Logf("screenshot: %s", path)
}

// showMessageList opens or closes the calendar menu, where the message
// list shows the notifications the tray holds.
func (g *gnomeShell) showMessageList(open bool) {
	g.t.Helper()
	method := "close"
	if open {
		method = "open"
	}
	if err := g.eval("Main.panel.statusArea.dateMenu.menu."+method+"()", nil); err != nil {
		g.t.Fatal(err)
	}
}

// callsTo returns the calls sent to the bus name dest.
func callsTo(calls []notifyCall, dest string) []notifyCall {
	var to []notifyCall
	for _, c := range calls {
		if c.Destination == dest {
			to = append(to, c)
		}
	}
	return to
}

// ours returns the tray's sources of our application.
func ours(sources []traySource) []traySource {
	var found []traySource
	for _, s := range sources {
		if s.App == AppID+".desktop" {
			found = append(found, s)
		}
	}
	return found
}

// oneNotification: the tray holds exactly one source of ours, with one
// notification titled title.
func oneNotification(title string) func([]traySource) bool {
	return func(sources []traySource) bool {
		s := ours(sources)
		return len(s) == 1 && len(s[0].Notifications) == 1 && s[0].Notifications[0].Title == title
	}
}

// TestGnomeShell drives the notifier through "not ready → degraded → fine"
// against a real GNOME Shell, and checks the shell's own state: the banner
// names our application and shows our icon, the critical warning stays in
// the message tray, an update replaces it in place, and it is withdrawn
// once resolved.
func TestGnomeShell(t *testing.T) {
	g := newGnomeShell(t)
	mon := g.monitor()
	r := startNotifier(t, g.desktop, Options{Policy: DefaultPolicy()})

	const notReady = "Random number generator not ready"
	sources := g.waitTray("the warning in the tray", oneNotification(notReady))
	s := ours(sources)[0]
	n := s.Notifications[0]
	// The desktop-entry hint made the shell find our desktop file: the
	// source carries its name and icon.
	if s.Title != "Entropy Gate" || s.Icon != "security-medium-symbolic" {
		t.Errorf("source %q with icon %q, want Entropy Gate with the desktop file's icon", s.Title, s.Icon)
	}
	if n.Icon != "security-low-symbolic" || n.Urgency != shellUrgencyCritical || n.Transient {
		t.Errorf("notification: icon %q, urgency %d, transient %t; want security-low-symbolic, critical, kept", n.Icon, n.Urgency, n.Transient)
	}
	waitFor(t, "the banner", func() bool { return ours(g.tray())[0].Notifications[0].Banner })
	g.screenshot("gnome-1-banner")

	// The banner is still up a moment later (a critical one waits to be
	// dismissed), and the message list holds the warning.
	time.Sleep(2 * time.Second)
	if !ours(g.tray())[0].Notifications[0].Banner {
		t.Error("the critical banner went away by itself")
	}
	g.showMessageList(true)
	g.waitTray("the warning in the message list", func(sources []traySource) bool {
		s := ours(sources)
		return len(s) == 1 && len(s[0].Notifications) == 1 && s[0].Notifications[0].Listed
	})
	g.screenshot("gnome-2-message-list")
	g.showMessageList(false)

	// The gate opens by timeout and the CRNG initializes: one warning,
	// updated in place, now at normal urgency.
	r.writeState(t, gatestate.Open, gatestate.Timeout, "timeout expired")
	r.setReady()
	const degraded = "Started without enough randomness"
	sources = g.waitTray("the updated warning", oneNotification(degraded))
	n = ours(sources)[0].Notifications[0]
	if n.Icon != "security-medium-symbolic" || n.Urgency != shellUrgencyNormal {
		t.Errorf("updated notification: icon %q, urgency %d; want security-medium-symbolic, normal", n.Icon, n.Urgency)
	}
	// GNOME Shell's notification service passes each call on to the
	// shell: two calls for each of ours.
	calls := callsTo(mon.waitAnswered(t, 4), notificationsName)
	for _, c := range calls[1:] {
		if c.ReplacesID != calls[0].ID || c.ID != calls[0].ID {
			t.Errorf("update replaces %d and got id %d, want both %d", c.ReplacesID, c.ID, calls[0].ID)
		}
	}
	g.showMessageList(true)
	g.waitTray("the updated warning in the message list", func(sources []traySource) bool {
		return oneNotification(degraded)(sources) && ours(sources)[0].Notifications[0].Listed
	})
	g.screenshot("gnome-3-updated")
	g.showMessageList(false)

	// Resolved: withdrawn, nothing of ours left in the tray.
	r.writeState(t, gatestate.Open, gatestate.Ready, "")
	g.waitTray("the warning withdrawn", func(sources []traySource) bool {
		s := ours(sources)
		return len(s) == 0 || len(s[0].Notifications) == 0
	})
	mon.waitClosed(t, calls[0].ID)
}

// TestGnomeShellGermanAndFrench shows the warning in German and French in
// GNOME Shell, and keeps a screenshot of each with the artifacts.
func TestGnomeShellGermanAndFrench(t *testing.T) {
	g := newGnomeShell(t)
	for _, tt := range []struct{ lang, summary string }{
		{lang: "de", summary: "Zufallszahlengenerator nicht bereit"},
		{lang: "fr", summary: "Générateur de nombres aléatoires pas prêt"},
	} {
		r := startNotifier(t, g.desktop, Options{Policy: DefaultPolicy(), Translator: i18n.Find([]string{tt.lang}, "")})
		g.waitTray("the warning in "+tt.lang, oneNotification(tt.summary))
		waitFor(t, "the banner in "+tt.lang, func() bool { return ours(g.tray())[0].Notifications[0].Banner })
		g.screenshot("gnome-" + tt.lang)
		if err := r.stop(t); err != nil {
			t.Errorf("Run in %s = %v", tt.lang, err)
		}
		g.waitTray("the warning in "+tt.lang+" withdrawn", func(sources []traySource) bool { return len(ours(sources)) == 0 })
	}
}
