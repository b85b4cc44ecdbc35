// SPDX-License-Identifier: GPL-3.0-or-later

package dbusapi

import (
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// testTimeout bounds every wait for something that must happen; tests
// never assert on how fast it happens.
const testTimeout = 20 * time.Second

// modernNotReady is a 5.18+ kernel before its CRNG is initialized.
var modernNotReady = pool.State{EntropyAvail: 12, PoolSize: 256, WriteWakeupThreshold: 256, Semantics: pool.Modern, PollMeansReady: true}

// modernReady is its counters once initialized (a Fake also needs
// SetReady).
var modernReady = pool.State{EntropyAvail: 256, PoolSize: 256, WriteWakeupThreshold: 256, Semantics: pool.Modern, PollMeansReady: true}

// statePath is a state file in a directory that does not exist yet, as
// /run/entropy-gate before the gate ran.
func statePath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "entropy-gate", "state.json")
}

func writeState(t *testing.T, path string, s gatestate.State) {
	t.Helper()
	if err := gatestate.Write(path, s); err != nil {
		t.Fatal(err)
	}
}

func TestReadSnapshotAppliesTheGateRule(t *testing.T) {
	legacy := pool.State{EntropyAvail: 100, PoolSize: 4096, Semantics: pool.Legacy}
	unknownCounters := pool.State{EntropyAvail: -1, PoolSize: -1, Semantics: pool.SemanticsUnknown}
	tests := []struct {
		name      string
		state     pool.State
		ready     bool
		unknown   error
		threshold int
		want      Snapshot
	}{
		{name: "not initialized", state: modernNotReady, threshold: 256,
			want: Snapshot{EntropyAvail: 12, Threshold: 256}},
		{name: "initialized, modern pool full", state: modernReady, ready: true, threshold: 256,
			want: Snapshot{Ready: true, CRNGInitialized: true, EntropyAvail: 256, Threshold: 256}},
		{name: "threshold clamped to the modern pool", state: modernReady, ready: true, threshold: 4096,
			want: Snapshot{Ready: true, CRNGInitialized: true, EntropyAvail: 256, Threshold: 256}},
		{name: "initialized, legacy pool below threshold", state: legacy, ready: true, threshold: 256,
			want: Snapshot{CRNGInitialized: true, EntropyAvail: 100, Threshold: 256}},
		{name: "threshold 0 means readiness only", state: legacy, ready: true, threshold: 0,
			want: Snapshot{Ready: true, CRNGInitialized: true, EntropyAvail: 100, Threshold: 0}},
		{name: "entropy_avail unknown: readiness decides", state: unknownCounters, ready: true, threshold: 256,
			want: Snapshot{Ready: true, CRNGInitialized: true, EntropyAvail: UnknownBits, Threshold: 256}},
		{name: "readiness unknown is not ready", state: modernReady, unknown: pool.ErrUnknownReadiness, threshold: 0,
			want: Snapshot{EntropyAvail: 256, Threshold: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := pool.NewFake(tt.state)
			if tt.ready {
				fake.SetReady()
			}
			if tt.unknown != nil {
				fake.SetUnknown(tt.unknown)
			}
			got, why := readSnapshot(fake, statePath(t), tt.threshold)
			tt.want.GateState = gatestate.NotRun
			tt.want.Seeds = map[string]gatestate.SeedSummary{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("snapshot = %+v, want %+v", got, tt.want)
			}
			if !errors.Is(why.readiness, tt.unknown) {
				t.Errorf("readiness problem = %v, want %v", why.readiness, tt.unknown)
			}
		})
	}
}

func TestReadSnapshotGateState(t *testing.T) {
	tests := []struct {
		name    string
		content func(t *testing.T, path string)
		want    string
		problem bool
	}{
		{name: "no state file", content: func(*testing.T, string) {}, want: gatestate.NotRun},
		{name: "waiting", content: func(t *testing.T, p string) { writeState(t, p, gatestate.State{Phase: gatestate.Waiting}) }, want: "waiting"},
		{name: "open when ready", content: func(t *testing.T, p string) {
			writeState(t, p, gatestate.State{Phase: gatestate.Open, Outcome: gatestate.Ready})
		}, want: "open"},
		{name: "opened by timeout is degraded", content: func(t *testing.T, p string) {
			writeState(t, p, gatestate.State{Phase: gatestate.Open, Outcome: gatestate.Timeout})
		}, want: GateDegraded},
		{name: "timed out", content: func(t *testing.T, p string) {
			writeState(t, p, gatestate.State{Phase: gatestate.TimedOut, Outcome: gatestate.Timeout})
		}, want: "timed-out"},
		{name: "garbage", content: func(t *testing.T, p string) {
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("{not json"), 0o644)
		}, want: gatestate.Unknown, problem: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := statePath(t)
			tt.content(t, path)
			got, why := readSnapshot(pool.NewFake(modernNotReady), path, 256)
			if got.GateState != tt.want {
				t.Errorf("GateState = %q, want %q", got.GateState, tt.want)
			}
			if (why.gateState != nil) != tt.problem {
				t.Errorf("state file problem = %v, want one: %v", why.gateState, tt.problem)
			}
		})
	}
}

func TestSeedsPropertyType(t *testing.T) {
	snap := Snapshot{Seeds: map[string]gatestate.SeedSummary{
		"sector": {Loaded: true, CreditedBits: 256, Refreshed: true},
		"file":   {Error: "read /run/live/medium/seed: no such file"},
	}}
	seeds := snap.properties()[propSeeds]
	if sig := seeds.Signature().String(); sig != "a{sa{sv}}" {
		t.Fatalf("Seeds signature %s, want a{sa{sv}}", sig)
	}
	sector := seeds.Value().(map[string]map[string]dbus.Variant)["sector"]
	for key, want := range map[string]any{"loaded": true, "credited_bits": uint32(256), "mixed": false, "refreshed": true, "error": ""} {
		if got := sector[key].Value(); got != want {
			t.Errorf("sector[%s] = %#v, want %#v", key, got, want)
		}
	}
	// The empty value the service serves today has the same type.
	empty := Snapshot{Seeds: map[string]gatestate.SeedSummary{}}.properties()[propSeeds]
	if sig := empty.Signature().String(); sig != "a{sa{sv}}" {
		t.Errorf("empty Seeds signature %s, want a{sa{sv}}", sig)
	}
}

// recorder collects PropertiesChanged signals.
type recorder struct {
	t       *testing.T
	changes chan map[string]dbus.Variant
}

func (r *recorder) Emit(path dbus.ObjectPath, name string, values ...any) error {
	if path != ObjectPath || name != "org.freedesktop.DBus.Properties.PropertiesChanged" || len(values) != 3 ||
		values[0] != Interface || len(values[2].([]string)) != 0 {
		r.t.Errorf("unexpected signal %s %s %v", path, name, values)
		return nil
	}
	select {
	case r.changes <- values[1].(map[string]dbus.Variant):
	default:
		r.t.Error("too many signals")
	}
	return nil
}

// next returns the first signal that satisfies ok, failing the test if
// none comes.
func (r *recorder) next(ok func(map[string]dbus.Variant) bool) map[string]dbus.Variant {
	r.t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case c := <-r.changes:
			if ok(c) {
				return c
			}
		case <-timeout:
			r.t.Fatal("no PropertiesChanged signal came")
			return nil
		}
	}
}

func has(name string, value any) func(map[string]dbus.Variant) bool {
	return func(c map[string]dbus.Variant) bool {
		v, ok := c[name]
		return ok && v.Value() == value
	}
}

// startService runs a service's loop until the test ends and returns it
// with its signal recorder.
func startService(t *testing.T, cfg Config) (*Service, *recorder) {
	t.Helper()
	cfg.Logf = t.Logf
	s := New(cfg)
	rec := &recorder{t: t, changes: make(chan map[string]dbus.Variant, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.run(ctx, rec)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s, rec
}

func TestPropertiesChangedWhenPoolTurnsReady(t *testing.T) {
	fake := pool.NewFake(modernNotReady)
	_, rec := startService(t, Config{Pool: fake, StatePath: statePath(t), Threshold: 256})
	fake.SetEntropyAvail(256)
	fake.SetReady()
	got := rec.next(has(propReady, true))
	for name, want := range map[string]any{propCRNGInitialized: true, propEntropyAvail: uint32(256)} {
		if v, ok := got[name]; !ok || v.Value() != want {
			t.Errorf("PropertiesChanged %s = %v, want %v", name, v, want)
		}
	}
	for _, unchanged := range []string{propThreshold, propGateState, propSeeds} {
		if _, ok := got[unchanged]; ok {
			t.Errorf("PropertiesChanged carries %s, which did not change", unchanged)
		}
	}
}

func TestPropertiesChangedWhenStateFileChanges(t *testing.T) {
	path := statePath(t) // its directory does not exist yet
	_, rec := startService(t, Config{Pool: pool.NewFake(modernNotReady), StatePath: path, Threshold: 256})
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"gate creates its directory and writes", func() { writeState(t, path, gatestate.State{Phase: gatestate.Waiting}) }, "waiting"},
		{"gate replaces the file", func() { writeState(t, path, gatestate.State{Phase: gatestate.Open, Outcome: gatestate.Timeout}) }, GateDegraded},
		{"file removed", func() { os.Remove(path) }, gatestate.NotRun},
		{"file written in place", func() { os.WriteFile(path, []byte(`{"version":1,"state":"seeding"}`), 0o644) }, "seeding"},
		{"directory removed", func() { os.RemoveAll(filepath.Dir(path)) }, gatestate.NotRun},
		{"directory back", func() { writeState(t, path, gatestate.State{Phase: gatestate.TimedOut}) }, "timed-out"},
	}
	for _, step := range steps {
		step.do()
		got := rec.next(func(c map[string]dbus.Variant) bool { _, ok := c[propGateState]; return ok })
		if v := got[propGateState].Value(); v != step.want {
			t.Errorf("%s: GateState changed to %v, want %q", step.name, v, step.want)
		}
	}
}

func TestWaitReady(t *testing.T) {
	legacyInitialized := pool.State{EntropyAvail: 100, PoolSize: 4096, Semantics: pool.Legacy}
	tests := []struct {
		name    string
		state   pool.State
		ready   bool
		timeout time.Duration
		maxWait time.Duration
		// during runs while the call waits.
		during func(*pool.Fake)
		want   bool
	}{
		{name: "ready already", state: modernReady, ready: true, timeout: time.Hour, want: true},
		{name: "zero timeout only asks", state: modernNotReady, timeout: 0, want: false},
		{name: "times out", state: modernNotReady, timeout: 50 * time.Millisecond, want: false},
		{name: "timeout capped", state: modernNotReady, timeout: time.Hour, maxWait: 50 * time.Millisecond, want: false},
		{name: "pool turns ready while waiting", state: modernNotReady, timeout: time.Hour,
			during: func(f *pool.Fake) { f.SetEntropyAvail(256); f.SetReady() }, want: true},
		// No event says entropy_avail rose: the refresh while waiting does.
		{name: "threshold reached while waiting", state: legacyInitialized, ready: true, timeout: time.Hour,
			during: func(f *pool.Fake) { f.SetEntropyAvail(300) }, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := pool.NewFake(tt.state)
			if tt.ready {
				fake.SetReady()
			}
			s, _ := startService(t, Config{Pool: fake, StatePath: statePath(t), Threshold: 256, MaxWait: tt.maxWait, RefreshInterval: 10 * time.Millisecond})
			type answer struct {
				ready bool
				err   error
			}
			answers := make(chan answer, 1)
			go func() {
				r, err := s.WaitReady(someone, tt.timeout)
				answers <- answer{r, err}
			}()
			if tt.during != nil {
				waitFor(t, "a waiter", func() bool { return s.waiting() })
				tt.during(fake)
			}
			select {
			case a := <-answers:
				if a.err != nil || a.ready != tt.want {
					t.Errorf("WaitReady = %v, %v; want %v", a.ready, a.err, tt.want)
				}
			case <-time.After(testTimeout):
				t.Fatal("WaitReady did not return")
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, testTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Service) waiterCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiters
}

// someone is an ordinary caller, unknown to the bus (as callers are
// without one).
var someone = Caller{Name: ":1.7", UID: UnknownUID}

func TestWaitReadyBoundsWaiters(t *testing.T) {
	fake := pool.NewFake(modernNotReady)
	s, _ := startService(t, Config{Pool: fake, StatePath: statePath(t), Threshold: 256, MaxWaiters: 2, MaxWaitersPerUser: 2})
	answers := make(chan bool, 2)
	for range 2 {
		go func() {
			r, _ := s.WaitReady(someone, time.Hour)
			answers <- r
		}()
	}
	waitFor(t, "two waiters", func() bool { return s.waiterCount() == 2 })
	if _, err := s.WaitReady(someone, time.Hour); !errors.Is(err, ErrTooManyWaiters) {
		t.Errorf("third WaitReady: %v, want %v", err, ErrTooManyWaiters)
	}
	_, dbusErr := gateObject{s}.WaitReady(dbus.Sender(someone.Name), uint64(time.Hour/time.Microsecond))
	if dbusErr == nil || dbusErr.Name != errLimitsExceeded {
		t.Errorf("third WaitReady on the bus: %v, want %s", dbusErr, errLimitsExceeded)
	}
	fake.SetEntropyAvail(256)
	fake.SetReady()
	for range 2 {
		if !<-answers {
			t.Error("a waiter returned false once the pool was ready")
		}
	}
	if n := s.waiterCount(); n != 0 {
		t.Errorf("%d waiters left", n)
	}
}

func TestTimeoutFromUsec(t *testing.T) {
	s := New(Config{Pool: pool.NewFake(modernNotReady), StatePath: statePath(t), MaxWait: time.Minute})
	tests := []struct {
		name string
		usec uint64
		want time.Duration
	}{
		{"zero", 0, 0},
		{"below the cap", 1500000, 1500 * time.Millisecond},
		{"at the cap", 60000000, time.Minute},
		{"above the cap", 60000001, time.Minute},
		{"would overflow a Duration", 1<<64 - 1, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.timeoutFromUsec(tt.usec); got != tt.want {
				t.Errorf("timeoutFromUsec(%d) = %s, want %s", tt.usec, got, tt.want)
			}
		})
	}
}

func TestIdleExit(t *testing.T) {
	s := New(Config{Pool: pool.NewFake(modernNotReady), StatePath: statePath(t), IdleTimeout: 100 * time.Millisecond, Logf: t.Logf})
	// A caller waiting from before the start keeps the service alive past
	// its idle timeout.
	waited := make(chan struct{})
	go func() {
		s.WaitReady(someone, 400*time.Millisecond)
		close(waited)
	}()
	waitFor(t, "a waiter", s.waiting)
	done := make(chan struct{})
	go func() {
		s.run(context.Background(), &recorder{t: t, changes: make(chan map[string]dbus.Variant, 100)})
		close(done)
	}()
	select {
	case <-waited:
	case <-done:
		t.Fatal("service went idle while a caller waited")
	case <-time.After(testTimeout):
		t.Fatal("WaitReady did not return")
	}
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("service did not exit once idle")
	}
}

// countingPool counts how often the counters are read.
type countingPool struct {
	pool.Pool
	reads atomic.Int64
}

func (p *countingPool) State() (pool.State, error) {
	p.reads.Add(1)
	return p.Pool.State()
}

func TestPeriodicReadsOnlyWhileWaiting(t *testing.T) {
	counting := &countingPool{Pool: pool.NewFake(modernNotReady)}
	s, _ := startService(t, Config{Pool: counting, StatePath: statePath(t), RefreshInterval: 5 * time.Millisecond})
	before := counting.reads.Load()
	s.WaitReady(someone, 100*time.Millisecond) // twenty refresh intervals
	// Besides the periodic reads, WaitReady reads once at its start and
	// once at its end.
	if n := counting.reads.Load() - before; n < 5 {
		t.Errorf("only %d reads of entropy_avail while a caller waited", n)
	}
	time.Sleep(20 * time.Millisecond) // the loop hears the waiter left
	before = counting.reads.Load()
	time.Sleep(100 * time.Millisecond)
	if n := counting.reads.Load() - before; n != 0 {
		t.Errorf("%d reads of entropy_avail without a caller", n)
	}
}

func TestPropertiesInterface(t *testing.T) {
	fake := pool.NewFake(modernNotReady)
	props := propertiesObject{New(Config{Pool: fake, StatePath: statePath(t), Threshold: 256})}
	all, err := props.GetAll(Interface)
	if err != nil {
		t.Fatal(err)
	}
	wantSig := map[string]string{
		propReady: "b", propCRNGInitialized: "b", propEntropyAvail: "u",
		propThreshold: "u", propGateState: "s", propSeeds: "a{sa{sv}}",
	}
	if len(all) != len(wantSig) {
		t.Errorf("GetAll returned %d properties, want %d", len(all), len(wantSig))
	}
	for name, sig := range wantSig {
		if got := all[name].Signature().String(); got != sig {
			t.Errorf("%s has signature %q, want %q", name, got, sig)
		}
	}
	// Reads are fresh, without waiting for an event.
	fake.SetEntropyAvail(200)
	if v, err := props.Get(Interface, propEntropyAvail); err != nil || v.Value() != uint32(200) {
		t.Errorf("Get EntropyAvail = %v, %v; want 200", v, err)
	}

	tests := []struct {
		name      string
		call      func() *dbus.Error
		wantError string
	}{
		{"Set a property", func() *dbus.Error { return props.Set(Interface, propReady, dbus.MakeVariant(true)) }, errPropertyReadOnly},
		{"Set an unknown property", func() *dbus.Error { return props.Set(Interface, "Nope", dbus.MakeVariant(true)) }, errUnknownProperty},
		{"Get an unknown property", func() *dbus.Error { _, err := props.Get(Interface, "Nope"); return err }, errUnknownProperty},
		{"Get from another interface", func() *dbus.Error { _, err := props.Get("org.example.Other", propReady); return err }, errUnknownInterface},
		{"GetAll of another interface", func() *dbus.Error { _, err := props.GetAll("org.example.Other"); return err }, errUnknownInterface},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || err.Name != tt.wantError {
				t.Errorf("error %v, want %s", err, tt.wantError)
			}
		})
	}
	if v, _ := props.Get(Interface, propReady); v.Value() != false {
		t.Error("Ready changed after a refused Set")
	}
}

// repoIntrospection is the interface file shipped in units/dbus.
const repoIntrospection = "../../units/dbus/org.boum.tails.EntropyGate1.xml"

// parseIntrospection parses introspection XML, so that comments and
// layout do not count.
func parseIntrospection(t *testing.T, data []byte) introspect.Node {
	t.Helper()
	var n introspect.Node
	if err := xml.Unmarshal(data, &n); err != nil {
		t.Fatalf("parse introspection: %v", err)
	}
	return n
}

// checkIntrospection compares introspection XML with the repository's
// interface file.
func checkIntrospection(t *testing.T, got string) {
	t.Helper()
	b, err := os.ReadFile(repoIntrospection)
	if err != nil {
		t.Fatal(err)
	}
	want := parseIntrospection(t, b)
	if g := parseIntrospection(t, []byte(got)); !reflect.DeepEqual(g, want) {
		t.Errorf("introspection differs from %s:\ngot  %+v\nwant %+v", repoIntrospection, g, want)
	}
	var ours *introspect.Interface
	for i := range want.Interfaces {
		if want.Interfaces[i].Name == Interface {
			ours = &want.Interfaces[i]
		}
	}
	if ours == nil || len(ours.Properties) != len(Snapshot{}.properties()) {
		t.Errorf("%s does not describe every property of %s", repoIntrospection, Interface)
	}
}

func TestIntrospectionMatchesInterfaceFile(t *testing.T) {
	checkIntrospection(t, Introspection())
}

// One user, or one connection, cannot take every slot, and root and the
// privileged users (the assistant's) always get one.
func TestWaitReadySlotsPerCaller(t *testing.T) {
	const assistant = 1000
	type call struct {
		name    string
		caller  Caller
		wantErr bool
	}
	tests := []struct {
		name  string
		calls []call
	}{
		{name: "one connection holds two slots, not three", calls: []call{
			{name: "first", caller: Caller{":1.1", 65534}},
			{name: "second", caller: Caller{":1.1", 65534}},
			{name: "third", caller: Caller{":1.1", 65534}, wantErr: true},
			{name: "same user, other connection", caller: Caller{":1.2", 65534}},
		}},
		{name: "one user holds three slots, not four", calls: []call{
			{name: "first", caller: Caller{":1.1", 65534}},
			{name: "second", caller: Caller{":1.2", 65534}},
			{name: "third", caller: Caller{":1.3", 65534}},
			{name: "fourth", caller: Caller{":1.4", 65534}, wantErr: true},
			{name: "another user", caller: Caller{":1.5", 65533}},
		}},
		{name: "ordinary slots full: root and the assistant still get in", calls: []call{
			{name: "user a", caller: Caller{":1.1", 65534}},
			{name: "user a again", caller: Caller{":1.2", 65534}},
			{name: "user a a third time", caller: Caller{":1.3", 65534}},
			{name: "user b", caller: Caller{":1.4", 65533}},
			{name: "user c, no slot left", caller: Caller{":1.5", 65532}, wantErr: true},
			{name: "root", caller: Caller{":1.6", 0}},
			{name: "the assistant", caller: Caller{":1.7", assistant}},
			{name: "the assistant again: reserve spent, ordinary full", caller: Caller{":1.7", assistant}, wantErr: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := pool.NewFake(modernNotReady)
			s, _ := startService(t, Config{Pool: fake, StatePath: statePath(t), Threshold: 256,
				MaxWaiters: 4, MaxWaitersPerUser: 3, MaxWaitersPerCaller: 2, ReservedWaiters: 2, PrivilegedUIDs: []uint32{assistant}})
			answers := make(chan bool, len(tt.calls))
			waiting := 0
			for _, c := range tt.calls {
				errs := make(chan error, 1)
				go func() {
					r, err := s.WaitReady(c.caller, time.Hour)
					errs <- err
					answers <- r
				}()
				if c.wantErr {
					if err := <-errs; !errors.Is(err, ErrTooManyWaiters) {
						t.Errorf("%s: WaitReady: %v, want %v", c.name, err, ErrTooManyWaiters)
					}
					<-answers
					continue
				}
				waiting++
				waitFor(t, c.name+" waiting", func() bool { return s.waiterCount() == waiting })
			}
			fake.SetEntropyAvail(256)
			fake.SetReady()
			for range waiting {
				if !<-answers {
					t.Error("a waiter returned false once the pool was ready")
				}
			}
			if n := s.waiterCount(); n != 0 {
				t.Errorf("%d waiters left", n)
			}
		})
	}
}
