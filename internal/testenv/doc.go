// SPDX-License-Identifier: GPL-3.0-or-later

// Package testenv says which host commands the tests and the QEMU lab
// need and which are missing, with the Debian package that ships each.
//
// Tests never install packages: .ci/test-deps lists every package they
// use and `sudo make deps` (part of `make test`) installs them. A test
// that lacks a command skips with one line that names it, its package
// and that command, so nothing skips in CI.
package testenv
