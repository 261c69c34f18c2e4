package smtpd

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/store/embedded"
)

// benchMsg is a 4 KB message.
var benchMsg = func() string {
	var b strings.Builder
	b.WriteString("From: Load <load@example.org>\r\nTo: alice@skrytka.test\r\nSubject: benchmark message\r\n" +
		"Message-ID: <bench@example.org>\r\nDate: Fri, 27 Nov 2026 21:00:00 +0000\r\n\r\n")
	for b.Len() < 4096-80 {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again and again.\r\n")
	}
	return b.String()
}()

const benchSessions = 20

// benchDelivery delivers b.N messages of 4 KB over 20 concurrent sessions
// (each a persistent connection sending one message per transaction to one
// of the three accounts) and reports messages per second.
func benchDelivery(b *testing.B, mode Mode, configure func(*Options)) {
	benchDeliveryWith(b, mode, configure, benchSessions, embedded.Options{})
}

func benchDeliveryWith(b *testing.B, mode Mode, configure func(*Options), sessions int, so embedded.Options) {
	e := newEnvStore(b, openStoreOpts(b, so), mode, configure)
	rcpts := []string{"alice@skrytka.test", "bob@skrytka.test", "carol@skrytka.test"}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	clients := make([]*smtp.Client, sessions)
	for i := range clients {
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			b.Fatal(err)
		}
		if mode == ModeLMTP {
			clients[i] = smtp.NewClientLMTP(nc)
		} else {
			clients[i] = smtp.NewClient(nc)
		}
		if err := clients[i].Hello("load.example.org"); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(benchMsg)))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				if err := sendOne(c, rcpts[(int(n)+i)%len(rcpts)], mode == ModeLMTP); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	// Deliveries per SQLite commit (each commit is one fsync of the WAL):
	// how much group commit is sharing the fsyncs.
	if batches, ops := e.raw.WriteStats(); batches > 0 {
		b.ReportMetric(float64(ops)/float64(batches), "ops/commit")
	}
	// CPU time of the whole process (server and the in-process clients)
	// per message: unlike msgs/s it does not depend on how busy the
	// machine is with other work.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	for _, c := range clients {
		c.Quit()
	}
}

// cpuTime is the user and system CPU time used by this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sendOne(c *smtp.Client, rcpt string, lmtp bool) error {
	if err := c.Mail("load@example.org", nil); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return fmt.Errorf("RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write([]byte(benchMsg)); err != nil {
		return err
	}
	if lmtp {
		_, err = w.CloseWithLMTPResponse()
	} else {
		err = w.Close()
	}
	return err
}

func BenchmarkLMTPDelivery(b *testing.B) { benchDelivery(b, ModeLMTP, nil) }

func BenchmarkSMTPDelivery(b *testing.B) { benchDelivery(b, ModeMX, nil) }

// BenchmarkLMTPDeliveryOneSession: one session, so every message waits for
// its own commit and fsync.
func BenchmarkLMTPDeliveryOneSession(b *testing.B) {
	benchDeliveryWith(b, ModeLMTP, nil, 1, embedded.Options{})
}

// BenchmarkLMTPDeliveryNoGroupCommit: 20 sessions, but one commit (and
// fsync) per write: the difference to BenchmarkLMTPDelivery is what group
// commit buys.
func BenchmarkLMTPDeliveryNoGroupCommit(b *testing.B) {
	benchDeliveryWith(b, ModeLMTP, nil, benchSessions, embedded.Options{MaxBatch: 1})
}

// BenchmarkSMTPDeliveryNoChecks is the MX without SPF/DKIM/DMARC (and so
// without the spool): the difference to BenchmarkSMTPDelivery is their cost.
func BenchmarkSMTPDeliveryNoChecks(b *testing.B) {
	benchDelivery(b, ModeMX, func(o *Options) { o.NoAuthChecks = true })
}
