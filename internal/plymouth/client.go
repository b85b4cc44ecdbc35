// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultAddr is plymouthd's control socket. It is an abstract unix socket
// (the leading @), so there is one per network namespace and none on disk.
const DefaultAddr = "@/org/freedesktop/plymouthd"

// DefaultTimeout bounds one request: connecting, sending and reading the
// reply. plymouthd answers from its main loop in well under a millisecond;
// a daemon that takes longer is busy or stuck and not worth waiting for.
const DefaultTimeout = 200 * time.Millisecond

// maxArgLen is the longest argument a request can carry: its length plus
// the terminating NUL travel in one byte.
const maxArgLen = 254

// Protocol bytes, from plymouth's ply-boot-protocol.h.
const (
	argMarker byte = 0x02 // a length byte and a NUL-terminated argument follow the command
	noArg     byte = 0x00 // the request ends after the command
	replyACK  byte = 0x06
	replyNAK  byte = 0x15
)

var (
	// ErrUnavailable means nothing accepted the connection: no plymouthd
	// runs (in this network namespace) or it has quit.
	ErrUnavailable = errors.New("not available")
	// ErrNAK means plymouthd refused the request. It refuses every request
	// from a peer that is not root (SO_PEERCRED) and unknown commands.
	ErrNAK = errors.New("request refused")
	// ErrProtocol means the reply was not one this client can expect to
	// the commands it sends.
	ErrProtocol = errors.New("unexpected reply")
)

// Client sends requests to plymouthd. The zero value talks to DefaultAddr
// with DefaultTimeout.
//
// Every request uses a connection of its own, as the plymouth command does.
// Updates come at most a few times a second, and a connect to a local
// socket costs microseconds. A kept connection would have to notice that
// plymouthd quit or restarted (at the end of boot it does), and after a
// timed-out request a late reply would be read as the answer to the next
// one; a fresh connection per request has neither problem and holds no
// file descriptor across the boot.
type Client struct {
	// Addr is the unix socket address; a leading @ means abstract.
	Addr string
	// Timeout bounds each request.
	Timeout time.Duration
}

// Ping asks whether plymouthd is running and accepts requests from us.
func (c Client) Ping(ctx context.Context) error {
	return c.do(ctx, "ping", []byte{'P', noArg})
}

// DisplayMessage shows text on the splash. Themes differ: most replace the
// previous message, the details theme prints each one as a line. An empty
// text clears the message line.
func (c Client) DisplayMessage(ctx context.Context, text string) error {
	return c.do(ctx, "display message", withArg('M', text))
}

// HideMessage removes a message shown before; text must match it. Some
// themes ignore it, so prefer DisplayMessage with an empty text.
func (c Client) HideMessage(ctx context.Context, text string) error {
	return c.do(ctx, "hide message", withArg('m', text))
}

// UpdateStatus sets the boot status string that themes may show or use to
// drive their progress.
func (c Client) UpdateStatus(ctx context.Context, status string) error {
	return c.do(ctx, "update status", withArg('U', status))
}

// PauseProgress stops the splash's progress animation.
func (c Client) PauseProgress(ctx context.Context) error {
	return c.do(ctx, "pause progress", []byte{'A', noArg})
}

// UnpauseProgress restarts the splash's progress animation.
func (c Client) UnpauseProgress(ctx context.Context) error {
	return c.do(ctx, "unpause progress", []byte{'a', noArg})
}

// do sends one request and reads its one-byte reply.
func (c Client) do(ctx context.Context, name string, request []byte) error {
	if err := c.exchange(ctx, request); err != nil {
		return fmt.Errorf("plymouth %s: %w", name, err)
	}
	return nil
}

func (c Client) exchange(ctx context.Context, request []byte) error {
	addr, timeout := c.Addr, c.Timeout
	if addr == "" {
		addr = DefaultAddr
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", addr)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("connect: %w", ctx.Err())
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	// A cancelled context ends a pending read or write at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := conn.Write(request); err != nil {
		return fmt.Errorf("send request: %w", ctxErr(ctx, err))
	}
	var reply [1]byte
	if _, err := io.ReadFull(conn, reply[:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read reply: %w", ctxErr(ctx, err))
	}
	switch reply[0] {
	case replyACK:
		return nil
	case replyNAK:
		return ErrNAK
	default:
		return fmt.Errorf("%w 0x%02x", ErrProtocol, reply[0])
	}
}

// ctxErr prefers the context's reason over the I/O error it caused, so a
// cancelled request says context.Canceled rather than a deadline error; a
// timeout stays os.ErrDeadlineExceeded.
func ctxErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return err
}

// withArg encodes a request with an argument: command, 0x02, length of the
// argument including its NUL, the argument, NUL.
func withArg(command byte, arg string) []byte {
	arg = truncate(oneLine(arg), maxArgLen)
	request := make([]byte, 0, 3+len(arg)+1)
	request = append(request, command, argMarker, byte(len(arg)+1))
	request = append(request, arg...)
	return append(request, 0)
}

// oneLine makes text safe to show as a single line and to send as a C
// string: invalid UTF-8 and control characters (newlines, escapes, NULs)
// become spaces.
func oneLine(text string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
}

// truncate cuts s to at most max bytes without splitting a UTF-8 sequence.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
