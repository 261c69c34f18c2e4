package testharness

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

// Ports for servers that tests start as subprocesses come from below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by
// default). A port the kernel hands out for ":0" comes from that range, and
// so does the source port of every outgoing connection that the many
// parallel test packages make: a port picked with ":0", closed and then
// bound again by a child process can meanwhile become some client's source
// port ("address already in use"). Below the range only another test's
// pick can collide, and picks are random and checked by binding.
const (
	portLow  = 10000
	portHigh = 32000
)

var (
	portMu   sync.Mutex
	portUsed = map[int]bool{} // handed out by this process
)

// FreePort returns a loopback TCP port that was free a moment ago, outside
// the ephemeral range.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow)
		if portUsed[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		portUsed[p] = true
		return p, nil
	}
	return 0, errors.New("testharness: no free port found")
}
