// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// guestMainEnv makes this package's test binary, copied into a guest, run
// one of the guest-side programs instead of the tests.
const guestMainEnv = "ENTROPY_GATE_INTEGRATION_MAIN"

func TestMain(m *testing.M) {
	switch os.Getenv(guestMainEnv) {
	case "wait-random":
		os.Exit(waitRandom())
	}
	code := m.Run()
	removeLiveTree()
	os.Exit(code)
}

// buildTestBinary compiles the tests of pkg, a folder of the module root
// such as ./internal/seeders, into a static binary a guest can run.
func buildTestBinary(ctx context.Context, t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg)+".test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-trimpath", "-o", bin, pkg)
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the tests of %s: %v\n%s", pkg, err, out)
	}
	return bin
}
