package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/bench/corpus"
)

// mailSession is one SMTP or LMTP connection that sends many transactions,
// as an MTA does.
type mailSession struct {
	c    *smtp.Client
	lmtp bool
}

func (t *Target) openMail(lmtp bool) (*mailSession, error) {
	port := t.SMTP
	if lmtp {
		port = t.LMTP
	}
	conn, err := t.dial(port)
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	if lmtp {
		c = smtp.NewClientLMTP(conn)
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = 2 * time.Minute
	c.SubmissionTimeout = 5 * time.Minute
	if err := c.Hello("bench.localhost"); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s hello: %w", protoName(lmtp), err)
	}
	return &mailSession{c: c, lmtp: lmtp}, nil
}

func protoName(lmtp bool) string {
	if lmtp {
		return "LMTP"
	}
	return "SMTP"
}

// send delivers msg to rcpts in one transaction and returns an error unless
// every recipient got a 2xx.
func (s *mailSession) send(from string, rcpts []string, msg []byte) error {
	var mopts *smtp.MailOptions
	if ok, _ := s.c.Extension("8BITMIME"); ok {
		mopts = &smtp.MailOptions{Body: smtp.Body8BitMIME}
	}
	if err := s.c.Mail(from, mopts); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, r := range rcpts {
		if err := s.c.Rcpt(r, nil); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", r, err)
		}
	}
	w, err := s.c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return fmt.Errorf("DATA write: %w", err)
	}
	if s.lmtp {
		resp, err := w.CloseWithLMTPResponse()
		if err != nil {
			return fmt.Errorf("end of DATA: %w", err)
		}
		if len(resp) != len(rcpts) {
			return checkf("LMTP gave %d replies for %d recipients", len(resp), len(rcpts))
		}
		return nil
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

func (s *mailSession) close() {
	s.c.Quit()
	s.c.Close()
}

// Load delivers messages [from, from+count) of gen to every address in rcpts
// over LMTP, or SMTP if the target has no LMTP port (one transaction per
// message, all recipients in it), using
// sessions concurrent connections. It is how the corpus is put into a server
// before the read workloads run; progress, if set, is called now and then.
func Load(ctx context.Context, t *Target, gen *corpus.Generator, rcpts []string, from, count, sessions int, progress func(done int)) error {
	if sessions < 1 {
		sessions = 1
	}
	var next atomic.Int64
	next.Store(int64(from))
	var done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, sessions)
	for w := 0; w < sessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := t.openMail(t.LMTP != 0)
			if err != nil {
				errc <- err
				return
			}
			defer s.close()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= from+count {
					return
				}
				msg := gen.Message(i)
				m := gen.Meta(i)
				if err := s.send(corpus.SenderAddr(m.Sender), rcpts, msg); err != nil {
					errc <- fmt.Errorf("load message %d: %w", i, err)
					return
				}
				d := done.Add(1)
				if progress != nil && d%1000 == 0 {
					progress(int(d))
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// DeliveryParams configure workloads 1 and 2.
type DeliveryParams struct {
	Sessions int           // concurrent connections (20)
	Duration time.Duration // how long to deliver
	Sinks    int           // recipients sink1..sinkN round robin (= Sessions)
	Seed     uint64
}

// Deliver runs workload 1 (lmtp=true) or 2 (SMTP): Fixed4K messages from
// p.Sessions connections for p.Duration, one recipient each. It then checks
// over IMAP that each sink's INBOX grew by exactly what was acknowledged and
// that the last message delivered to each reads back byte-identical.
// Afterwards it expunges everything in the sinks' INBOXes.
func Deliver(ctx context.Context, t *Target, lmtp bool, p DeliveryParams) (*Result, error) {
	name := "2-smtp"
	if lmtp {
		name = "1-lmtp"
	}
	res := &Result{Workload: name, Server: t.Name,
		Params: fmt.Sprintf("4 KB text, %d sessions, %s", p.Sessions, p.Duration)}
	if p.Sinks == 0 {
		p.Sinks = p.Sessions
	}
	before := make([]uint32, p.Sinks)
	for k := range before {
		n, err := t.countInbox(t.Named(fmt.Sprintf("sink%d", k+1)))
		if err != nil {
			return nil, err
		}
		before[k] = n
	}
	gen := &corpus.Generator{Seed: p.Seed, Profile: corpus.Fixed4K}
	var next atomic.Int64
	next.Store(int64(time.Now().UnixNano() % 1e9)) // fresh indices each run
	acked := make([]atomic.Int64, p.Sinks)
	lastIdx := make([]atomic.Int64, p.Sinks)
	var lat Latencies
	deadline := time.Now().Add(p.Duration)
	var wg sync.WaitGroup
	errc := make(chan error, p.Sessions)
	start := time.Now()
	for w := 0; w < p.Sessions; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s, err := t.openMail(lmtp)
			if err != nil {
				errc <- err
				return
			}
			defer s.close()
			sink := w % p.Sinks
			rcpt := t.Named(fmt.Sprintf("sink%d", sink+1))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := int(next.Add(1))
				msg := gen.Message(i)
				t0 := time.Now()
				if err := s.send("bench@sender.example", []string{rcpt}, msg); err != nil {
					errc <- fmt.Errorf("%s delivery: %w", protoName(lmtp), err)
					return
				}
				lat.Add(time.Since(t0))
				acked[sink].Add(1)
				lastIdx[sink].Store(int64(i))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	for err := range errc {
		return nil, err
	}
	total := 0
	for k := range acked {
		n := int(acked[k].Load())
		total += n
		rcpt := t.Named(fmt.Sprintf("sink%d", k+1))
		after, err := t.countInbox(rcpt)
		if err != nil {
			return nil, err
		}
		if int(after)-int(before[k]) != n {
			return nil, checkf("%s: INBOX grew by %d, but %d deliveries were acknowledged", rcpt, int(after)-int(before[k]), n)
		}
		if n > 0 {
			raw, err := t.fetchLast(rcpt)
			if err != nil {
				return nil, err
			}
			if err := gen.VerifyExact(raw, int(lastIdx[k].Load())); err != nil {
				// Sessions to one sink race; accept any verified bench message.
				if _, err2 := corpus.Verify(raw); err2 != nil {
					return nil, checkf("%s: last message: %v", rcpt, err2)
				}
			}
			res.Checked++
		}
		res.Checked += n
	}
	// Empty the sinks again (not timed), so that the stores stay as loaded
	// and every run starts from the same state.
	for k := range acked {
		if err := t.emptyInbox(t.Named(fmt.Sprintf("sink%d", k+1))); err != nil {
			return nil, err
		}
	}
	res.add("msgs/s", float64(total)/elapsed.Seconds(), true)
	res.add("p99 ms", lat.Quantile(0.99), false)
	return res, nil
}
