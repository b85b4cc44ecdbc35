// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"fmt"
	"slices"

	"github.com/esiqveland/notify"
	"github.com/godbus/dbus/v5"
)

const (
	// notificationsName is the notification server's bus name.
	notificationsName = "org.freedesktop.Notifications"
	// AppID names the application: its desktop file is AppID.desktop
	// (the desktop-entry hint, which makes GNOME list it under Settings →
	// Notifications), and it owns AppID on the session bus so that only
	// one instance runs.
	AppID = "org.boum.tails.EntropyNotify"
)

// serverEvent is a signal from the notification server or about it.
// Closed and action signals share one channel so their order survives:
// a click may close the notification before or after invoking the action.
type serverEvent struct {
	kind   serverEventKind
	id     uint32
	reason notify.Reason
	key    string
	// owner is the server's new unique name, "" when it left the bus.
	owner string
}

type serverEventKind int

const (
	eventClosed serverEventKind = iota
	eventAction
	eventOwner
)

// server is the desktop's notification server, seen over the session
// bus. It follows the server's bus name, so a restarted server is noticed.
type server struct {
	conn     *dbus.Conn
	n        notify.Notifier
	ownerSig chan *dbus.Signal
	events   chan serverEvent
	done     chan struct{}
	// markup: the server parses body markup, so bodies are escaped.
	markup bool
}

// ownerRule matches the bus daemon's announcements of the notification
// server's name changing hands.
var ownerRule = []dbus.MatchOption{
	dbus.WithMatchSender("org.freedesktop.DBus"),
	dbus.WithMatchInterface("org.freedesktop.DBus"),
	dbus.WithMatchMember("NameOwnerChanged"),
	dbus.WithMatchArg(0, notificationsName),
}

// printfLogger adapts a printf function to notify's logger.
type printfLogger func(format string, args ...any)

func (l printfLogger) Printf(format string, args ...any) { l(format, args...) }

func newServer(conn *dbus.Conn, debugf func(string, ...any)) (*server, error) {
	s := &server{
		conn:     conn,
		ownerSig: make(chan *dbus.Signal, 16),
		events:   make(chan serverEvent, 16),
		done:     make(chan struct{}),
	}
	n, err := notify.New(conn,
		// notify's own logger writes to the standard logger.
		notify.WithLogger(printfLogger(debugf)),
		notify.WithOnClosed(func(c *notify.NotificationClosedSignal) {
			s.emit(serverEvent{kind: eventClosed, id: c.ID, reason: c.Reason})
		}),
		notify.WithOnAction(func(a *notify.ActionInvokedSignal) {
			s.emit(serverEvent{kind: eventAction, id: a.ID, key: a.ActionKey})
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("subscribe to notification signals: %w", err)
	}
	s.n = n
	if err := conn.AddMatchSignal(ownerRule...); err != nil {
		n.Close()
		return nil, fmt.Errorf("watch the notification server: %w", err)
	}
	conn.Signal(s.ownerSig)
	go s.followOwner()
	s.refreshCapabilities()
	return s, nil
}

func (s *server) emit(e serverEvent) {
	select {
	case s.events <- e:
	case <-s.done:
	}
}

func (s *server) followOwner() {
	for {
		select {
		case sig, ok := <-s.ownerSig:
			if !ok {
				return
			}
			if sig.Name != "org.freedesktop.DBus.NameOwnerChanged" || len(sig.Body) != 3 {
				continue
			}
			name, _ := sig.Body[0].(string)
			owner, _ := sig.Body[2].(string)
			if name == notificationsName {
				s.emit(serverEvent{kind: eventOwner, owner: owner})
			}
		case <-s.done:
			return
		}
	}
}

// refreshCapabilities asks the server whether it parses body markup; a
// new server may differ from the last one.
func (s *server) refreshCapabilities() {
	caps, err := s.n.GetCapabilities()
	s.markup = err == nil && slices.Contains(caps, "body-markup")
}

// show sends n, replacing notification replaces unless it is 0, and
// returns the notification's id.
func (s *server) show(n Notice, replaces uint32) (uint32, error) {
	note := notify.Notification{
		AppName:    n.AppName,
		ReplacesID: replaces,
		AppIcon:    n.Icon,
		Summary:    n.Summary,
		Body:       n.Body,
		Actions:    []notify.Action{notify.NewDefaultAction(n.DetailsLabel)},
		// Critical notifications stay until dismissed; the server
		// chooses for the others.
		ExpireTimeout: notify.ExpireTimeoutSetByNotificationServer,
	}
	if n.Urgency == notify.UrgencyCritical {
		note.ExpireTimeout = notify.ExpireTimeoutNever
	}
	note.SetUrgency(n.Urgency)
	note.AddHint(notify.Hint{ID: "desktop-entry", Variant: dbus.MakeVariant(AppID)})
	id, err := s.n.SendNotification(note)
	if err != nil {
		return 0, fmt.Errorf("send notification: %w", err)
	}
	return id, nil
}

func (s *server) close(id uint32) error {
	if _, err := s.n.CloseNotification(id); err != nil {
		return fmt.Errorf("close notification %d: %w", id, err)
	}
	return nil
}

// shutdown stops the signal handling. It does not close the connection.
func (s *server) shutdown() {
	close(s.done)
	s.n.Close()
	s.conn.RemoveSignal(s.ownerSig)
	s.conn.RemoveMatchSignal(ownerRule...)
}
