// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeServer is a stand-in plymouthd on an abstract socket of its own. It
// reads each request the way plymouthd does and lets reply decide what
// happens next.
type fakeServer struct {
	addr string

	mu       sync.Mutex
	requests [][]byte // raw bytes of each request read
	conns    int
}

var fakeServers atomic.Int64

// startFake listens on a fresh abstract socket. reply runs for each
// request read; the connection is closed when it returns.
func startFake(t testing.TB, reply func(conn net.Conn)) *fakeServer {
	t.Helper()
	s := &fakeServer{addr: fmt.Sprintf("@/entropy-gate-test/plymouth-%d-%d", os.Getpid(), fakeServers.Add(1))}
	ln, err := net.Listen("unix", s.addr)
	if err != nil {
		t.Fatalf("listen on fake plymouthd socket: %v", err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				// Unblock a reply that never answers when the test ends.
				go func() { <-stop; conn.Close() }()
				s.mu.Lock()
				s.conns++
				s.mu.Unlock()
				request, err := readRequest(conn)
				if err != nil {
					return
				}
				s.mu.Lock()
				s.requests = append(s.requests, request)
				s.mu.Unlock()
				reply(conn)
			}()
		}
	}()
	return s
}

// readRequest reads one request as plymouthd's ply-boot-server does: a
// command byte and a marker, then, if the marker says so, a length byte
// and that many argument bytes.
func readRequest(r io.Reader) ([]byte, error) {
	header := make([]byte, 2)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, err
	}
	if header[1] != argMarker {
		return header, nil
	}
	var size [1]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	arg := make([]byte, size[0])
	if _, err := io.ReadFull(r, arg); err != nil {
		return nil, err
	}
	return append(append(header, size[0]), arg...), nil
}

func (s *fakeServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.requests...)
}

func (s *fakeServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func replyWith(b byte) func(net.Conn) {
	return func(conn net.Conn) { conn.Write([]byte{b}) }
}

// neverReply keeps the connection open without answering.
func neverReply(conn net.Conn) { io.Copy(io.Discard, conn) }

// hangUp closes the connection without a reply.
func hangUp(net.Conn) {}

// noServer is an address nobody listens on.
func noServer() string {
	return fmt.Sprintf("@/entropy-gate-test/absent-%d-%d", os.Getpid(), fakeServers.Add(1))
}
