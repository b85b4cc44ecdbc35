// Package gatestate is the gate's state file, /run/entropy-gate/state.json:
// what the gate is doing and how its wait ended, for the CLI's status, the
// desktop notifier and the D-Bus service to read. It never holds secrets.
package gatestate
