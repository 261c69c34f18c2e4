package outbound

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"
)

// DSN describes a delivery status notification (RFC 3464) for the sender
// of a message that failed (or is delayed) for some recipients.
type DSN struct {
	ReportingMTA string    // our hostname
	Sender       string    // the original envelope sender; the DSN goes there
	Arrival      time.Time // when we accepted the message
	Header       []byte    // the original message's header section
	Results      []Result  // the recipients to report (failed or delayed)
	Delayed      bool      // "delayed" (still retrying) instead of "failed"
}

// Build returns the DSN message (CRLF line endings). It is sent with the
// null reverse-path so that it can never cause another DSN (RFC 3464 §2.2,
// RFC 5321 §4.5.5).
func (d DSN) Build(now time.Time) []byte {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)

	subject, action := "Undelivered Mail Returned to Sender", "failed"
	intro := "Your message could not be delivered to the following recipients. No further attempts will be made."
	if d.Delayed {
		subject, action = "Delivery Delayed", "delayed"
		intro = "Your message has not yet been delivered to the following recipients. Delivery will be retried."
	}

	// Part 1: for people.
	var human strings.Builder
	human.WriteString("This is the mail system at " + d.ReportingMTA + ".\r\n\r\n" + intro + "\r\n\r\n")
	for _, r := range d.Results {
		human.WriteString("<" + clean(r.Rcpt) + ">: " + clean(diagnostic(r)) + "\r\n")
	}
	w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}})
	w.Write([]byte(human.String()))

	// Part 2: message/delivery-status (RFC 3464 §2.2, §2.3).
	var st strings.Builder
	st.WriteString("Reporting-MTA: dns; " + clean(d.ReportingMTA) + "\r\n")
	if !d.Arrival.IsZero() {
		st.WriteString("Arrival-Date: " + d.Arrival.Format(time.RFC1123Z) + "\r\n")
	}
	for _, r := range d.Results {
		st.WriteString("\r\nFinal-Recipient: rfc822; " + clean(r.Rcpt) + "\r\n")
		st.WriteString("Action: " + action + "\r\n")
		st.WriteString("Status: " + statusCode(r) + "\r\n")
		if r.Host != "" {
			st.WriteString("Remote-MTA: dns; " + clean(r.Host) + "\r\n")
		}
		if se, ok := r.SMTPError(); ok && se.Code >= 400 {
			st.WriteString(fmt.Sprintf("Diagnostic-Code: smtp; %d %s\r\n", se.Code, clean(se.Message)))
		}
		st.WriteString("Last-Attempt-Date: " + now.Format(time.RFC1123Z) + "\r\n")
	}
	w, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"message/delivery-status"}})
	w.Write([]byte(st.String()))

	// Part 3: the original header (RFC 3462 text/rfc822-headers).
	w, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/rfc822-headers"}})
	w.Write(d.Header)
	mw.Close()

	var msg bytes.Buffer
	var id [12]byte
	rand.Read(id[:])
	msg.WriteString("From: Mail Delivery System <MAILER-DAEMON@" + clean(d.ReportingMTA) + ">\r\n")
	msg.WriteString("To: <" + clean(d.Sender) + ">\r\n")
	msg.WriteString("Subject: " + subject + "\r\n")
	msg.WriteString("Date: " + now.Format(time.RFC1123Z) + "\r\n")
	msg.WriteString("Message-ID: <" + hex.EncodeToString(id[:]) + "@" + clean(d.ReportingMTA) + ">\r\n")
	msg.WriteString("Auto-Submitted: auto-replied\r\n") // RFC 3834 §5
	msg.WriteString("MIME-Version: 1.0\r\n")
	msg.WriteString("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + mw.Boundary() + "\"\r\n")
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes()
}

// statusCode is the RFC 3463 status for a result.
func statusCode(r Result) string {
	if se, ok := r.SMTPError(); ok && se.EnhancedCode[0] >= 2 {
		return fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	} else if ok && se.Code >= 400 {
		return fmt.Sprintf("%d.0.0", se.Code/100)
	}
	if r.Temporary {
		return "4.4.1" // no answer from host
	}
	return "5.4.4" // unable to route
}

func diagnostic(r Result) string {
	if se, ok := r.SMTPError(); ok {
		return fmt.Sprintf("%d %s", se.Code, se.Message)
	}
	if r.Err != nil {
		return r.Err.Error()
	}
	return "delivered"
}

// clean keeps report fields on one line.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
