module gitlab.tails.boum.org/tails/entropy-gate

go 1.24.0

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/esiqveland/notify v0.13.3
	github.com/godbus/dbus/v5 v5.2.4
	github.com/leonelquinteros/gotext v1.7.2
	golang.org/x/sys v0.41.0
)
