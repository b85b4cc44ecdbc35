// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestClientRequestBytes(t *testing.T) {
	a253 := strings.Repeat("a", 253)
	a252 := strings.Repeat("a", 252)
	a254 := strings.Repeat("a", 254)
	tests := []struct {
		name string
		call func(Client) error
		want []byte
	}{
		{"ping", func(c Client) error { return c.Ping(context.Background()) }, []byte("P\x00")},
		{"pause", func(c Client) error { return c.PauseProgress(context.Background()) }, []byte("A\x00")},
		{"unpause", func(c Client) error { return c.UnpauseProgress(context.Background()) }, []byte("a\x00")},
		{"display", func(c Client) error { return c.DisplayMessage(context.Background(), "40%") }, []byte("M\x02\x0440%\x00")},
		{"display empty clears", func(c Client) error { return c.DisplayMessage(context.Background(), "") }, []byte("M\x02\x01\x00")},
		{"hide", func(c Client) error { return c.HideMessage(context.Background(), "hi") }, []byte("m\x02\x03hi\x00")},
		{"status", func(c Client) error { return c.UpdateStatus(context.Background(), "gate") }, []byte("U\x02\x05gate\x00")},
		{"utf-8 kept", func(c Client) error { return c.DisplayMessage(context.Background(), "é…") }, []byte("M\x02\x06é…\x00")},
		{"longest fits", func(c Client) error { return c.DisplayMessage(context.Background(), a254) },
			[]byte("M\x02\xff" + a254 + "\x00")},
		{"cut before 2-byte rune", func(c Client) error { return c.DisplayMessage(context.Background(), a253+"é") },
			[]byte("M\x02\xfe" + a253 + "\x00")},
		{"cut before 3-byte rune", func(c Client) error { return c.DisplayMessage(context.Background(), a252+"…tail") },
			[]byte("M\x02\xfd" + a252 + "\x00")},
		{"cut after whole rune", func(c Client) error { return c.DisplayMessage(context.Background(), a252+"é…") },
			[]byte("M\x02\xff" + a252 + "é\x00")},
		{"control and invalid bytes", func(c Client) error { return c.DisplayMessage(context.Background(), "a\nb\x00c\x1b\xff") },
			[]byte("M\x02\x08a b c  \x00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFake(t, replyWith(replyACK))
			if err := tt.call(Client{Addr: s.addr}); err != nil {
				t.Fatalf("request: %v", err)
			}
			got := s.received()
			if len(got) != 1 || !bytes.Equal(got[0], tt.want) {
				t.Errorf("server received %q, want [%q]", got, tt.want)
			}
		})
	}
}

func TestClientReplies(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		server  func(testing.TB) string // address
		ctx     context.Context
		wantErr error
	}{
		{"ack", fakeAddr(replyWith(replyACK)), context.Background(), nil},
		{"nak", fakeAddr(replyWith(replyNAK)), context.Background(), ErrNAK},
		{"no answer expected", fakeAddr(replyWith(0x05)), context.Background(), ErrProtocol},
		{"never answers", fakeAddr(neverReply), context.Background(), os.ErrDeadlineExceeded},
		{"hangs up before reply", fakeAddr(hangUp), context.Background(), io.ErrUnexpectedEOF},
		{"nobody listens", func(testing.TB) string { return noServer() }, context.Background(), ErrUnavailable},
		{"caller cancelled", fakeAddr(neverReply), canceled, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Client{Addr: tt.server(t), Timeout: 50 * time.Millisecond}
			start := time.Now()
			err := c.DisplayMessage(tt.ctx, "x")
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("DisplayMessage: %v, want %v", err, tt.wantErr)
			}
			// Generous: only a request that ignores its deadline takes this long.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("DisplayMessage took %v with a 50ms timeout", d)
			}
		})
	}
}

func TestClientCancelDuringRequest(t *testing.T) {
	s := startFake(t, neverReply)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err := Client{Addr: s.addr, Timeout: time.Hour}.Ping(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Ping: %v, want context.Canceled", err)
	}
}

func fakeAddr(reply func(net.Conn)) func(testing.TB) string {
	return func(t testing.TB) string { return startFake(t, reply).addr }
}
