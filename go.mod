module gitlab.tails.boum.org/tails/entropy-gate

go 1.24.0

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	golang.org/x/sys v0.41.0
)
