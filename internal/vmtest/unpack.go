// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
)

// UnpackSystem unpacks the Debian system that BootSystemd boots (built the
// first time, see PrepareSystemd) into the empty folder dir, with owners
// and device nodes, so that a test can run its commands with chroot, for
// example to install a package into it. It needs root.
func (l *Lab) UnpackSystem(ctx context.Context, dir string) error {
	s, err := l.system(ctx)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: unpacking a system with its owners and devices needs root", ErrUnavailable)
	}
	zstdPath, err := toolPath("zstd")
	if err != nil {
		return err
	}
	cpioPath, err := toolPath("cpio")
	if err != nil {
		return err
	}
	var zstdErr, cpioErr bytes.Buffer
	decompress := exec.CommandContext(ctx, zstdPath, "-q", "-d", "-c", s.archivePath())
	decompress.Stderr = &zstdErr
	archive, err := decompress.StdoutPipe()
	if err != nil {
		return fmt.Errorf("unpack system: %w", err)
	}
	extract := exec.CommandContext(ctx, cpioPath, "--extract", "--make-directories", "--preserve-modification-time", "--no-absolute-filenames", "--quiet")
	extract.Dir, extract.Stdin, extract.Stderr = dir, archive, &cpioErr
	if err := decompress.Start(); err != nil {
		return fmt.Errorf("unpack system: %w", err)
	}
	extractErr := extract.Run()
	decompressErr := decompress.Wait()
	if extractErr != nil {
		return fmt.Errorf("unpack system: cpio: %w: %s", extractErr, lastBytes(cpioErr.String(), 2000))
	}
	if decompressErr != nil {
		return fmt.Errorf("unpack system: zstd: %w: %s", decompressErr, lastBytes(zstdErr.String(), 2000))
	}
	return nil
}
