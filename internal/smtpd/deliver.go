package smtpd

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dmarc"
	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/mailauth"
	"github.com/skrytka/skrytka/internal/store"
)

// Data receives the message of an SMTP transaction (DATA or BDAT).
func (s *session) Data(r io.Reader) error {
	results, err := s.deliver(r)
	if err != nil {
		return err
	}
	// One reply for all recipients: success only if every one of them
	// has the message. If every one failed, the reply says why (a
	// temporary reason wins, so that the sender retries); if only some
	// failed, the whole transaction is retried (see the package notes).
	var first, firstTemp error
	for _, e := range results {
		if e != nil && first == nil {
			first = e
		}
		if isTemporary(e) && firstTemp == nil {
			firstTemp = e
		}
	}
	switch {
	case first == nil:
		return nil
	case !allFailed(results):
		return errTemp
	case firstTemp != nil:
		return firstTemp
	}
	return first
}

// LMTPData receives the message of an LMTP transaction and reports one
// status per RCPT (RFC 2033 §4.2).
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	results, err := s.deliver(r)
	if err != nil {
		return err // go-smtp gives this status to every recipient
	}
	for i, rc := range s.rcpts {
		status.SetStatus(rc.raw, results[i])
	}
	return nil
}

func allFailed(results []error) bool {
	for _, e := range results {
		if e == nil {
			return false
		}
	}
	return true
}

// deliver stages the message once and delivers it to every recipient's
// INBOX (or Junk) in one store call. It returns one reply per entry of
// s.rcpts (nil for success), or an error that applies to all.
func (s *session) deliver(r io.Reader) ([]error, error) {
	s.cn.startData()
	defer s.cn.endData()
	if s.cn.kill.Load() {
		return nil, errTooManyErrors
	}
	if len(s.rcpts) == 0 {
		return nil, errNoMailFrom
	}
	ctx := s.ctx()
	start := time.Now()
	defer s.runCleanup()
	id := newID()
	data := &trackReader{r: r}
	var body io.Reader = data
	authRes := ""
	junk := false

	if s.srv.opts.Mode == ModeMX && s.srv.checker != nil {
		// The checks need the whole message before the header that
		// reports them can be written above it: spool it first.
		sp := &spool{dir: s.srv.opts.SpoolDir}
		defer sp.Close()
		if _, err := io.Copy(sp, data); err != nil {
			return nil, s.readError(data, err)
		}
		res := s.srv.checker.Check(ctx, mailauth.Input{
			RemoteIP: s.remoteIP(), Helo: s.sc.Hostname(), MailFrom: s.fromString(),
		}, sp.Reader())
		authRes = res.Header(s.srv.opts.Hostname)
		if s.srv.opts.DMARCPolicy == DMARCEnforce && res.DMARC == authres.ResultFail {
			switch res.Policy {
			case dmarc.PolicyReject:
				s.log.Info("rejected by DMARC policy", "from_domain", res.FromDomain)
				return nil, errDMARCReject
			case dmarc.PolicyQuarantine:
				junk = true
			}
		}
		body = sp.Reader()
	}
	if s.srv.opts.Mode == ModeSubmission {
		add, msg, err := s.submissionHeader(data)
		if err != nil {
			if data.err != nil {
				return nil, s.readError(data, err)
			}
			return nil, err
		}
		authRes = s.submissionAuthResults()
		body = io.MultiReader(strings.NewReader(add), msg)
	}
	if s.srv.opts.Mode != ModeLMTP {
		// Only we may speak for our hostname (RFC 8601 §5).
		body = mailauth.StripResults(body, s.srv.opts.Hostname)
	}

	if err := s.enqueueRemote(ctx, data, &body, id); err != nil {
		return nil, err
	}
	// One target per distinct account, shared by the RCPTs that map to it.
	var targets []store.DeliveryTarget
	index := map[store.AccountID]int{}
	for _, rc := range s.rcpts {
		for _, a := range rc.accts {
			if _, ok := index[a.ID]; ok {
				continue
			}
			index[a.ID] = len(targets)
			t := store.DeliveryTarget{Account: a.ID}
			if junk {
				t.Mailbox = s.srv.junkMailbox(ctx, a.ID)
			}
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		// Only remote recipients: all queued.
		s.log.Info("queued", "id", id, "from", s.fromString(), "rcpts", len(s.rcpts))
		return make([]error, len(s.rcpts)), nil
	}
	prefix := traceHeaders(s.trace(authRes, id, time.Now()))
	// go-smtp enforces MaxMessageBytes on the bytes as sent; the store's
	// own cap is a backstop that allows for our headers and for bare LF
	// turning into CRLF.
	limit := 2*s.srv.opts.MaxMessageBytes + int64(len(prefix))
	staged, err := s.srv.opts.Store.Stage(ctx, io.MultiReader(strings.NewReader(prefix), body), limit)
	if err != nil {
		if data.err != nil {
			return nil, s.readError(data, err)
		}
		if errors.Is(err, store.ErrTooLarge) {
			return nil, smtp.ErrDataTooLarge
		}
		s.log.Error("stage failed", "err", err)
		return nil, s.srv.replyFor(err)
	}
	defer staged.Discard()

	dctx, cancel := context.WithTimeout(ctx, s.srv.opts.DeliverTimeout)
	defer cancel()
	errs, err := s.srv.opts.Store.Deliver(dctx, staged, targets)
	if err != nil {
		s.log.Error("deliver failed", "err", err, "id", id)
		return nil, s.srv.replyFor(err)
	}
	if len(errs) != len(targets) {
		s.log.Error("deliver returned a wrong number of results", "id", id)
		return nil, errTemp
	}

	results := make([]error, len(s.rcpts))
	delivered := 0
	for i, rc := range s.rcpts {
		for _, a := range rc.accts {
			if e := errs[index[a.ID]]; e != nil {
				reply := s.srv.replyFor(e)
				if results[i] == nil || isTemporary(reply) {
					results[i] = reply
				}
				level := slogLevelFor(reply)
				s.log.Log(ctx, level, "delivery failed", "id", id, "rcpt", a.Address, "err", e)
			}
		}
		if results[i] == nil {
			delivered++
		}
	}
	s.log.Info("delivered", "id", id, "from", s.fromString(), "rcpts", len(s.rcpts),
		"ok", delivered, "size", staged.Size(), "dur", time.Since(start).Round(time.Millisecond))
	return results, nil
}

func (s *session) fromString() string {
	if s.from.Domain == "" {
		return ""
	}
	return s.from.String()
}

// enqueueRemote puts the message into the outbound queue for the remote
// recipients of a submission, with our Received field on top (the fields
// of final delivery, Return-Path and Delivered-To, are for local copies
// only). The message is spooled first because local recipients need it
// too; *body is then replaced by a reader over the spool.
func (s *session) enqueueRemote(ctx context.Context, data *trackReader, body *io.Reader, id string) error {
	var remote []string
	for _, rc := range s.rcpts {
		if rc.remote {
			remote = append(remote, rc.addr.String())
		}
	}
	if len(remote) == 0 {
		return nil
	}
	sp := &spool{dir: s.srv.opts.SpoolDir}
	s.cleanup = append(s.cleanup, sp.Close)
	if _, err := io.Copy(sp, *body); err != nil {
		return s.readError(data, err)
	}
	trace := received(s.trace("", id, time.Now()))
	err := s.srv.opts.Queue.Enqueue(ctx, s.fromString(), remote,
		io.MultiReader(strings.NewReader(trace), sp.Reader()), 2*s.srv.opts.MaxMessageBytes)
	if err != nil {
		s.log.Error("enqueue failed", "id", id, "err", err)
		return s.srv.replyFor(err)
	}
	*body = sp.Reader()
	return nil
}

// readError turns a failure while reading the message into a reply.
func (s *session) readError(data *trackReader, err error) error {
	if errors.Is(data.err, smtp.ErrDataTooLarge) {
		return smtp.ErrDataTooLarge
	}
	if errors.Is(data.err, smtp.ErrTooLongLine) {
		// RFC 5321 §4.5.3.1.6; go-smtp then closes the connection.
		return errLineTooLong
	}
	if data.err != nil {
		// The client went away or timed out mid-message; it will not see
		// the reply, but say it properly in case it is still there.
		s.log.Debug("message read failed", "err", data.err)
		return errTemp
	}
	s.log.Error("spooling failed", "err", err)
	return errTemp
}

// junkMailbox returns the name of the account's \Junk mailbox, or "" (INBOX)
// when it has none.
func (s *Server) junkMailbox(ctx context.Context, acct store.AccountID) string {
	boxes, err := s.opts.Store.Mailboxes(ctx, acct)
	if err != nil {
		return ""
	}
	for _, b := range boxes {
		if b.SpecialUse == store.SpecialJunk && !b.NoSelect {
			return b.Name
		}
	}
	return ""
}

// trackReader remembers the first error of the client's data stream, so
// that a size overrun or a broken connection can be told apart from a store
// failure when the store reports only that reading failed.
type trackReader struct {
	r   io.Reader
	err error
}

func (t *trackReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}
