// SPDX-License-Identifier: GPL-3.0-or-later

package dbusapi

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// The service's names on the bus.
const (
	BusName    = "org.boum.tails.EntropyGate1"
	ObjectPath = dbus.ObjectPath("/org/boum/tails/EntropyGate1")
	Interface  = "org.boum.tails.EntropyGate1"
)

// Defaults for Config's zero values.
const (
	// DefaultMaxWait caps WaitReady's timeout: longer than the gate's
	// default timeout of two minutes, short enough that a forgotten
	// caller lets the service go.
	DefaultMaxWait = 5 * time.Minute
	// DefaultMaxWaiters bounds concurrent WaitReady calls of callers
	// other than root and PrivilegedUIDs.
	DefaultMaxWaiters = 32
	// DefaultMaxWaitersPerUser and DefaultMaxWaitersPerCaller bound how
	// many of those one uid, and one bus connection, may hold, so that
	// one local user cannot take them all.
	DefaultMaxWaitersPerUser   = 4
	DefaultMaxWaitersPerCaller = 2
	// DefaultReservedWaiters are the slots only root and PrivilegedUIDs
	// may take: their calls get through whatever others do.
	DefaultReservedWaiters = 8
	// DefaultRefreshInterval is how often entropy_avail is read while
	// someone waits in WaitReady.
	DefaultRefreshInterval = time.Second
)

// D-Bus error names the service replies with.
const (
	errLimitsExceeded   = "org.freedesktop.DBus.Error.LimitsExceeded"
	errPropertyReadOnly = "org.freedesktop.DBus.Error.PropertyReadOnly"
	errUnknownInterface = "org.freedesktop.DBus.Error.UnknownInterface"
	errUnknownProperty  = "org.freedesktop.DBus.Error.UnknownProperty"
)

var (
	// ErrTooManyWaiters is WaitReady's answer when the caller's slots
	// are taken (see Config); on the bus it is
	// org.freedesktop.DBus.Error.LimitsExceeded.
	ErrTooManyWaiters = errors.New("too many callers waiting")
	// ErrNameTaken means another process owns BusName.
	ErrNameTaken = errors.New("bus name owned by another process")
)

// Config is what a Service serves and how.
type Config struct {
	Pool pool.Pool
	// StatePath is the gate's state file.
	StatePath string
	// Threshold is the configured threshold, before clamping to the
	// pool, as `entropy-gate status` takes it.
	Threshold int
	// IdleTimeout ends Serve after this long without calls or waiters;
	// 0 serves until the context is done.
	IdleTimeout time.Duration
	// MaxWait caps WaitReady's timeout; 0 means DefaultMaxWait.
	MaxWait time.Duration
	// MaxWaiters bounds concurrent WaitReady calls of ordinary callers;
	// MaxWaitersPerUser and MaxWaitersPerCaller bound those of one uid
	// and of one bus connection. 0 means the Default.
	MaxWaiters, MaxWaitersPerUser, MaxWaitersPerCaller int
	// PrivilegedUIDs are users who, like root, have ReservedWaiters slots
	// of their own beside the ordinary ones: the persistent storage
	// assistant's user. 0 ReservedWaiters means the default.
	PrivilegedUIDs  []uint32
	ReservedWaiters int
	// RefreshInterval is how often entropy_avail is read while someone
	// waits; 0 means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Logf reports problems; nil discards them.
	Logf func(format string, args ...any)
}

// signaler sends signals; *dbus.Conn is one.
type signaler interface {
	Emit(path dbus.ObjectPath, name string, values ...any) error
}

// Service is the status service. Make it with New, then Serve it once.
type Service struct {
	cfg Config
	// wake tells the loop that the number of waiters changed.
	wake chan struct{}
	// stopping is closed when the loop ends, so waiters return.
	stopping chan struct{}

	mu sync.Mutex
	// current is what the properties said last.
	current Snapshot
	// changed is closed, and replaced, whenever current changes.
	changed chan struct{}
	// signals carries PropertiesChanged; nil until serving.
	signals signaler
	// unixUser tells a bus connection's uid; nil until serving.
	unixUser func(sender string) (uint32, error)
	// waiters counts every WaitReady waiting; the rest how they hold
	// their slots.
	waiters, ordinary, reserved int
	byUser                      map[uint32]int
	byCaller                    map[string]int
	lastCall                    time.Time
	// logged is the last problem of each kind that was logged, so a
	// lasting problem is logged once.
	logged [3]string
}

// New returns a Service with its first snapshot read.
func New(cfg Config) *Service {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	for _, limit := range []struct {
		v   *int
		def int
	}{
		{&cfg.MaxWaiters, DefaultMaxWaiters},
		{&cfg.MaxWaitersPerUser, DefaultMaxWaitersPerUser},
		{&cfg.MaxWaitersPerCaller, DefaultMaxWaitersPerCaller},
		{&cfg.ReservedWaiters, DefaultReservedWaiters},
	} {
		if *limit.v <= 0 {
			*limit.v = limit.def
		}
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	s := &Service{
		cfg:      cfg,
		wake:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		changed:  make(chan struct{}),
		byUser:   map[uint32]int{},
		byCaller: map[string]int{},
		lastCall: time.Now(),
	}
	s.mu.Lock()
	s.current = s.readLocked()
	s.mu.Unlock()
	return s
}

func (s *Service) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// Serve exports the object on conn, takes the bus name and serves until
// ctx is done or the service was idle for IdleTimeout. It releases the
// name before it returns, so that the bus activates a new instance for
// the next caller.
func (s *Service) Serve(ctx context.Context, conn *dbus.Conn) error {
	exports := []struct {
		v     any
		iface string
	}{
		{gateObject{s}, Interface},
		{propertiesObject{s}, "org.freedesktop.DBus.Properties"},
		{introspectableObject{s}, "org.freedesktop.DBus.Introspectable"},
	}
	for _, e := range exports {
		if err := conn.Export(e.v, ObjectPath, e.iface); err != nil {
			return fmt.Errorf("export %s: %w", e.iface, err)
		}
	}
	reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request bus name %s: %w", BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("request bus name %s: %w", BusName, ErrNameTaken)
	}
	s.mu.Lock()
	s.unixUser = func(sender string) (uint32, error) {
		var uid uint32
		err := conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, sender).Store(&uid)
		return uid, err
	}
	s.mu.Unlock()
	s.run(ctx, conn)
	if _, err := conn.ReleaseName(BusName); err != nil && ctx.Err() == nil {
		return fmt.Errorf("release bus name %s: %w", BusName, err)
	}
	return nil
}

// run follows the pool and the state file, emitting PropertiesChanged
// through signals, until ctx is done or the service is idle.
func (s *Service) run(ctx context.Context, signals signaler) {
	ctx, cancel := context.WithCancel(ctx)
	var sources sync.WaitGroup
	defer sources.Wait()
	defer cancel()
	defer close(s.stopping)

	s.mu.Lock()
	s.signals = signals
	s.mu.Unlock()

	events := make(chan struct{}, 1)
	notify := func() {
		select {
		case events <- struct{}{}:
		default: // one pending refresh covers every event before it
		}
	}
	sources.Add(1)
	go func() {
		defer sources.Done()
		// Passive: watching must not make the kernel generate entropy.
		err := s.cfg.Pool.Wait(ctx, pool.Passive)
		switch {
		case err == nil:
			notify()
		case ctx.Err() == nil:
			s.logf("wait for the CRNG: %v", err)
		}
	}()
	if w, err := gatestate.Watch(s.cfg.StatePath); err != nil {
		s.logf("%v: the gate's state is read only when a caller asks", err)
	} else {
		defer w.Close()
		sources.Add(1)
		go func() {
			defer sources.Done()
			for range w.Changes() {
				notify()
			}
			if err := w.Err(); err != nil {
				s.logf("%v: the gate's state is read only when a caller asks", err)
			}
		}()
	}
	// Whatever changed before the sources ran.
	s.refresh()

	var idle *time.Timer
	if s.cfg.IdleTimeout > 0 {
		idle = time.NewTimer(s.cfg.IdleTimeout)
		defer idle.Stop()
	}
	s.loop(ctx, events, idle)
}

// loop serves events until ctx is done or the idle timer finds the
// service idle.
func (s *Service) loop(ctx context.Context, events <-chan struct{}, idle *time.Timer) {
	var idleC <-chan time.Time
	if idle != nil {
		idleC = idle.C
	}
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		var tick <-chan time.Time
		if ticker != nil {
			tick = ticker.C
		}
		select {
		case <-ctx.Done():
			return
		case <-events:
			s.refresh()
		case <-tick:
			s.refresh()
		case <-s.wake:
		case <-idleC:
			left := s.idleLeft(time.Now())
			if left <= 0 {
				return
			}
			idle.Reset(left)
		}
		// entropy_avail has no change event: read it periodically,
		// but only while someone waits for it.
		switch waiting := s.waiting(); {
		case waiting && ticker == nil:
			ticker = time.NewTicker(s.cfg.RefreshInterval)
		case !waiting && ticker != nil:
			ticker.Stop()
			ticker = nil
		}
	}
}

// refresh reads a new snapshot and, if it differs from the last,
// announces the difference to waiters and on the bus.
func (s *Service) refresh() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.readLocked()
	changed := changedProperties(s.current, next)
	if len(changed) == 0 {
		return next
	}
	s.current = next
	close(s.changed)
	s.changed = make(chan struct{})
	if s.signals != nil {
		// Under the lock, so signals leave in the order of the changes.
		if err := s.signals.Emit(ObjectPath, "org.freedesktop.DBus.Properties.PropertiesChanged", Interface, changed, []string{}); err != nil {
			s.logf("emit PropertiesChanged: %v", err)
		}
	}
	return next
}

func (s *Service) readLocked() Snapshot {
	snap, why := readSnapshot(s.cfg.Pool, s.cfg.StatePath, s.cfg.Threshold)
	for i, err := range []error{why.readiness, why.counters, why.gateState} {
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != "" && msg != s.logged[i] {
			s.logf("%s", msg)
		}
		s.logged[i] = msg
	}
	return snap
}

// touch records a call, which keeps the service from going idle.
func (s *Service) touch() {
	s.mu.Lock()
	s.lastCall = time.Now()
	s.mu.Unlock()
}

func (s *Service) waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiters > 0
}

// idleLeft is how long until the service counts as idle at now; never
// while someone waits.
func (s *Service) idleLeft(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiters > 0 {
		return s.cfg.IdleTimeout
	}
	return s.lastCall.Add(s.cfg.IdleTimeout).Sub(now)
}

func (s *Service) pokeLoop() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Caller is who calls WaitReady: its bus connection's unique name, and
// its uid as the bus daemon saw it (UnknownUID if it could not say).
type Caller struct {
	Name string
	UID  uint32
}

// UnknownUID is the uid of callers the bus could not identify: they share
// one user's slots.
const UnknownUID = math.MaxUint32

// WaitReady waits up to timeout, capped at MaxWait, for the gate's rule
// to hold, and says whether it does. A zero timeout only asks. It fails
// with ErrTooManyWaiters when the caller's slots are taken (see Config).
func (s *Service) WaitReady(c Caller, timeout time.Duration) (bool, error) {
	s.touch()
	if snap := s.refresh(); snap.Ready || timeout <= 0 {
		return snap.Ready, nil
	}
	ready, changed, slot, err := s.enterWait(c)
	if ready || err != nil {
		return ready, err
	}
	defer s.leaveWait(c, slot)
	timer := time.NewTimer(min(timeout, s.cfg.MaxWait))
	defer timer.Stop()
	for {
		select {
		case <-changed:
			if ready, changed = s.readyAndChanged(); ready {
				return true, nil
			}
		case <-timer.C:
			return s.refresh().Ready, nil
		case <-s.stopping:
			ready, _ := s.readyAndChanged()
			return ready, nil
		}
	}
}

// slot says which budget a waiting call holds.
type slot int

const (
	ordinarySlot slot = iota
	reservedSlot
)

func (s *Service) privileged(uid uint32) bool {
	return uid == 0 || slices.Contains(s.cfg.PrivilegedUIDs, uid)
}

// enterWait takes a slot for c: root and PrivilegedUIDs first from their
// reserve, then like everyone else from the ordinary slots, which one uid
// and one connection may only hold a few of.
func (s *Service) enterWait(c Caller) (bool, <-chan struct{}, slot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current.Ready {
		return true, nil, 0, nil
	}
	privileged := s.privileged(c.UID)
	var taken slot
	switch {
	case privileged && s.reserved < s.cfg.ReservedWaiters:
		taken = reservedSlot
	case s.ordinary >= s.cfg.MaxWaiters:
		return false, nil, 0, fmt.Errorf("%w: %d callers wait already, the limit", ErrTooManyWaiters, s.ordinary)
	case !privileged && s.byUser[c.UID] >= s.cfg.MaxWaitersPerUser:
		return false, nil, 0, fmt.Errorf("%w: uid %d has %d calls waiting already, the limit", ErrTooManyWaiters, c.UID, s.byUser[c.UID])
	case !privileged && s.byCaller[c.Name] >= s.cfg.MaxWaitersPerCaller:
		return false, nil, 0, fmt.Errorf("%w: %s has %d calls waiting already, the limit", ErrTooManyWaiters, c.Name, s.byCaller[c.Name])
	default:
		taken = ordinarySlot
	}
	s.count(c, taken, 1)
	s.pokeLoop()
	return false, s.changed, taken, nil
}

func (s *Service) leaveWait(c Caller, taken slot) {
	s.mu.Lock()
	s.count(c, taken, -1)
	s.lastCall = time.Now()
	s.mu.Unlock()
	s.pokeLoop()
}

// count adds delta to every count a slot of c is in; s.mu is held.
func (s *Service) count(c Caller, taken slot, delta int) {
	s.waiters += delta
	if taken == reservedSlot {
		s.reserved += delta
		return
	}
	s.ordinary += delta
	s.byUser[c.UID] += delta
	s.byCaller[c.Name] += delta
	if s.byUser[c.UID] == 0 {
		delete(s.byUser, c.UID)
	}
	if s.byCaller[c.Name] == 0 {
		delete(s.byCaller, c.Name)
	}
}

func (s *Service) readyAndChanged() (bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current.Ready, s.changed
}

// caller identifies a bus connection by asking the bus its uid.
func (s *Service) caller(sender string) Caller {
	s.mu.Lock()
	unixUser := s.unixUser
	s.mu.Unlock()
	c := Caller{Name: sender, UID: UnknownUID}
	if unixUser == nil {
		return c
	}
	uid, err := unixUser(sender)
	if err != nil {
		s.logf("uid of caller %s: %v", sender, err)
		return c
	}
	c.UID = uid
	return c
}

// timeoutFromUsec converts WaitReady's argument without overflowing: a
// timeout beyond the cap is the cap.
func (s *Service) timeoutFromUsec(usec uint64) time.Duration {
	if usec >= uint64(s.cfg.MaxWait/time.Microsecond) {
		return s.cfg.MaxWait
	}
	return time.Duration(usec) * time.Microsecond
}

// gateObject is the org.boum.tails.EntropyGate1 interface on the bus.
type gateObject struct{ s *Service }

func (o gateObject) WaitReady(sender dbus.Sender, timeoutUsec uint64) (bool, *dbus.Error) {
	ready, err := o.s.WaitReady(o.s.caller(string(sender)), o.s.timeoutFromUsec(timeoutUsec))
	if errors.Is(err, ErrTooManyWaiters) {
		return false, dbus.NewError(errLimitsExceeded, []any{err.Error() + "; try again later, or watch PropertiesChanged"})
	}
	if err != nil {
		return false, dbus.MakeFailedError(err)
	}
	return ready, nil
}

// propertiesObject is org.freedesktop.DBus.Properties: every read is
// fresh, nothing can be written.
type propertiesObject struct{ s *Service }

func (o propertiesObject) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	o.s.touch()
	if err := checkProperty(iface, name); err != nil {
		return dbus.Variant{}, err
	}
	return o.s.refresh().properties()[name], nil
}

func (o propertiesObject) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	o.s.touch()
	if iface != Interface {
		return nil, unknownInterface(iface)
	}
	return o.s.refresh().properties(), nil
}

func (o propertiesObject) Set(iface, name string, _ dbus.Variant) *dbus.Error {
	o.s.touch()
	if err := checkProperty(iface, name); err != nil {
		return err
	}
	return dbus.NewError(errPropertyReadOnly, []any{fmt.Sprintf("property %s is read-only", name)})
}

func checkProperty(iface, name string) *dbus.Error {
	if iface != Interface {
		return unknownInterface(iface)
	}
	if _, ok := (Snapshot{}).properties()[name]; !ok {
		return dbus.NewError(errUnknownProperty, []any{fmt.Sprintf("no property %q in %s", name, Interface)})
	}
	return nil
}

func unknownInterface(iface string) *dbus.Error {
	return dbus.NewError(errUnknownInterface, []any{fmt.Sprintf("no properties in interface %q", iface)})
}

// introspectableObject is org.freedesktop.DBus.Introspectable.
type introspectableObject struct{ s *Service }

func (o introspectableObject) Introspect() (string, *dbus.Error) {
	o.s.touch()
	return Introspection(), nil
}

// Introspection is the object's introspection XML, as Introspect
// returns it; units/dbus/org.boum.tails.EntropyGate1.xml must describe
// the same interfaces.
func Introspection() string {
	read := func(name, typ string) introspect.Property {
		return introspect.Property{Name: name, Type: typ, Access: "read"}
	}
	node := introspect.Node{
		Interfaces: []introspect.Interface{
			introspect.IntrospectData,
			prop.IntrospectData,
			{
				Name: Interface,
				Methods: []introspect.Method{{
					Name: "WaitReady",
					Args: []introspect.Arg{
						{Name: "timeout_usec", Type: "t", Direction: "in"},
						{Name: "ready", Type: "b", Direction: "out"},
					},
				}},
				Properties: []introspect.Property{
					read(propReady, "b"),
					read(propCRNGInitialized, "b"),
					read(propEntropyAvail, "u"),
					read(propThreshold, "u"),
					read(propGateState, "s"),
					read(propSeeds, "a{sa{sv}}"),
				},
			},
		},
	}
	b, err := xml.MarshalIndent(node, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("marshal introspection: %v", err)) // static data
	}
	return strings.TrimSpace(introspect.IntrospectDeclarationString) + "\n" + string(b) + "\n"
}
