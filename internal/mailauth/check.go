package mailauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
)

// Defaults for Checker.
const (
	// DefaultMaxSignatures bounds the DKIM signatures verified per message;
	// more are ignored (each costs a DNS query and a hash of the body).
	DefaultMaxSignatures = 5
	// MaxHeaderBytes bounds the header section read for the From: field.
	// A longer header section is not evaluated (dmarc=permerror).
	MaxHeaderBytes = 1 << 20
)

// Checker runs SPF, DKIM and DMARC checks. The zero value is not usable:
// set Resolver. A Checker is safe for concurrent use.
type Checker struct {
	// Resolver answers every DNS query. Required.
	Resolver Resolver
	// MaxSignatures bounds DKIM verifications per message (0: DefaultMaxSignatures).
	MaxSignatures int
}

// Input describes the SMTP transaction a message arrived in.
type Input struct {
	RemoteIP net.IP // the connecting client
	Helo     string // its EHLO/HELO argument
	MailFrom string // the envelope sender; "" for the null reverse-path
}

// DKIMOutcome is the result of one signature.
type DKIMOutcome struct {
	Domain string // d=
	Result authres.ResultValue
	Reason string
}

// Results is the outcome of Check.
type Results struct {
	SPF       authres.ResultValue
	SPFDomain string // the domain SPF evaluated (MAIL FROM's, or HELO's for the null sender)
	MailFrom  string
	Helo      string

	DKIM []DKIMOutcome // one per verified signature; empty: none

	DMARC       authres.ResultValue
	DMARCReason string
	FromDomain  string       // domain of the From: header, "" if unusable
	Policy      dmarc.Policy // the policy to apply ("" when DMARC did not fail)
}

// Check evaluates SPF, DKIM and DMARC for one message. msg is read up to
// its end (or until DKIM has what it needs); the caller owns it.
func (c *Checker) Check(ctx context.Context, in Input, msg io.Reader) *Results {
	res := &Results{MailFrom: in.MailFrom, Helo: in.Helo}
	res.SPF, res.SPFDomain = c.checkSPF(ctx, in)

	// Read the header section once, through a tee, to find From:, then
	// give DKIM the same bytes followed by the rest of the message.
	var seen bytes.Buffer
	br := bufio.NewReader(io.TeeReader(io.LimitReader(msg, MaxHeaderBytes), &seen))
	hdr, herr := textproto.ReadHeader(br)
	full := io.MultiReader(bytes.NewReader(seen.Bytes()), msg)
	if herr != nil {
		res.DMARC, res.DMARCReason = authres.ResultPermError, "unreadable header section"
		res.DKIM = []DKIMOutcome{{Result: authres.ResultPermError, Reason: "unreadable header section"}}
		return res
	}
	res.DKIM = c.checkDKIM(ctx, full)

	fromDomain, reason := fromDomainOf(hdr)
	if fromDomain == "" {
		res.DMARC, res.DMARCReason = authres.ResultPermError, reason
		return res
	}
	res.FromDomain = fromDomain
	c.checkDMARC(ctx, res)
	return res
}

// checkSPF runs RFC 7208 check_host() for the MAIL FROM identity, or for
// the HELO identity when the reverse-path is null (RFC 7208 §2.4).
func (c *Checker) checkSPF(ctx context.Context, in Input) (authres.ResultValue, string) {
	domain := in.Helo
	if i := strings.LastIndexByte(in.MailFrom, '@'); i >= 0 {
		domain = in.MailFrom[i+1:]
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if in.RemoteIP == nil || domain == "" {
		return authres.ResultNone, domain
	}
	r, _ := spf.CheckHostWithSender(in.RemoteIP, in.Helo, in.MailFrom,
		spf.WithContext(ctx), spf.WithResolver(c.Resolver))
	return authres.ResultValue(r), domain
}

func (c *Checker) checkDKIM(ctx context.Context, msg io.Reader) []DKIMOutcome {
	max := c.MaxSignatures
	if max <= 0 {
		max = DefaultMaxSignatures
	}
	verifs, err := dkim.VerifyWithOptions(msg, &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return c.Resolver.LookupTXT(ctx, name) },
		MaxVerifications: max,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return []DKIMOutcome{{Result: authres.ResultPermError, Reason: "message unreadable for DKIM"}}
	}
	var out []DKIMOutcome
	for _, v := range verifs {
		o := DKIMOutcome{Domain: strings.ToLower(v.Domain), Result: authres.ResultPass}
		switch {
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			o.Result, o.Reason = authres.ResultTempError, v.Err.Error()
		case dkim.IsPermFail(v.Err):
			o.Result, o.Reason = authres.ResultPermError, v.Err.Error()
		default:
			o.Result, o.Reason = authres.ResultFail, v.Err.Error()
		}
		out = append(out, o)
	}
	return out
}

// fromDomainOf returns the domain of the single author address in From:
// (RFC 7489 §6.6.1), or "" and why not.
func fromDomainOf(h textproto.Header) (string, string) {
	froms := h.Values("From")
	if len(froms) != 1 {
		return "", "not exactly one From field"
	}
	addrs, err := mail.ParseAddressList(froms[0])
	if err != nil || len(addrs) != 1 {
		return "", "From field without exactly one address"
	}
	i := strings.LastIndexByte(addrs[0].Address, '@')
	if i < 0 || i == len(addrs[0].Address)-1 {
		return "", "From address without a domain"
	}
	return strings.ToLower(strings.TrimSuffix(addrs[0].Address[i+1:], ".")), ""
}

// checkDMARC applies RFC 7489 §6.6: find the policy record (at the From
// domain, else at its organizational domain), then pass if SPF or DKIM
// passed for an identifier aligned with the From domain.
func (c *Checker) checkDMARC(ctx context.Context, res *Results) {
	lookup := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) {
		return c.Resolver.LookupTXT(ctx, name)
	}}
	org := OrgDomain(res.FromDomain)
	rec, err := dmarc.LookupWithOptions(res.FromDomain, lookup)
	if errors.Is(err, dmarc.ErrNoPolicy) && org != res.FromDomain {
		rec, err = dmarc.LookupWithOptions(org, lookup)
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		res.DMARC = authres.ResultNone
		return
	case dmarc.IsTempFail(err):
		res.DMARC, res.DMARCReason = authres.ResultTempError, "policy lookup failed"
		return
	case err != nil:
		res.DMARC, res.DMARCReason = authres.ResultPermError, "unusable policy record"
		return
	}

	aligned := func(domain string, mode dmarc.AlignmentMode) bool {
		domain = strings.ToLower(domain)
		if mode == dmarc.AlignmentStrict {
			return domain == res.FromDomain
		}
		return OrgDomain(domain) == org
	}
	if res.SPF == authres.ResultPass && aligned(res.SPFDomain, rec.SPFAlignment) {
		res.DMARC = authres.ResultPass
		return
	}
	for _, d := range res.DKIM {
		if d.Result == authres.ResultPass && aligned(d.Domain, rec.DKIMAlignment) {
			res.DMARC = authres.ResultPass
			return
		}
	}
	res.DMARC = authres.ResultFail
	res.DMARCReason = "no aligned SPF or DKIM pass"
	res.Policy = rec.Policy
	if rec.SubdomainPolicy != "" && res.FromDomain != org {
		res.Policy = rec.SubdomainPolicy
	}
	// pct= (RFC 7489 §6.6.4): apply the policy to that share of failing
	// mail only; the rest gets the next weaker policy.
	if rec.Percent != nil && *rec.Percent < 100 && rand.IntN(100) >= *rec.Percent {
		switch res.Policy {
		case dmarc.PolicyReject:
			res.Policy = dmarc.PolicyQuarantine
		case dmarc.PolicyQuarantine:
			res.Policy = dmarc.PolicyNone
		}
	}
}
