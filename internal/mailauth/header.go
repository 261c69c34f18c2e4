package mailauth

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// Header returns the Authentication-Results header field (RFC 8601 §2.2)
// for these results, stamped with authservID (our hostname), folded with
// one method per line and ending in CRLF.
func (r *Results) Header(authservID string) string {
	var parts []authres.Result
	spfRes := &authres.SPFResult{Value: r.SPF}
	if r.MailFrom != "" {
		spfRes.From = r.MailFrom
	} else {
		spfRes.Helo = r.Helo
	}
	parts = append(parts, spfRes)
	if len(r.DKIM) == 0 {
		parts = append(parts, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, d := range r.DKIM {
		parts = append(parts, &authres.DKIMResult{Value: d.Result, Reason: d.Reason, Domain: d.Domain})
	}
	if r.DMARC != "" {
		parts = append(parts, &authres.DMARCResult{Value: r.DMARC, Reason: r.DMARCReason, From: r.FromDomain})
	}

	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(sanitizeHeaderText(authservID))
	for _, p := range parts {
		// Format one method at a time so each can go on its own
		// folded line without splitting inside a quoted value.
		s := authres.Format("x", []authres.Result{p})
		s = strings.TrimPrefix(s, "x; ")
		b.WriteString(";\r\n\t")
		b.WriteString(sanitizeHeaderText(strings.TrimSpace(s)))
	}
	b.WriteString("\r\n")
	return b.String()
}

// sanitizeHeaderText replaces bytes that must not appear in a header field
// body (CR, LF, other controls, DEL) with a space. Values in results can
// come from the network (HELO, MAIL FROM, d=, error texts).
func sanitizeHeaderText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
