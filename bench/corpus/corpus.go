// Package corpus generates the benchmark's mail: a deterministic, seeded
// stream of realistic messages, so that every run and both servers see the
// same bytes.
//
// Message i of a Generator depends only on (Seed, Profile, MaxBytes, i): it
// can be regenerated at any time to check what a server returns. Each
// message carries two headers that let a reader check it without the
// generator: X-Bench-Id (seed and index) and X-Bench-Body (length and
// SHA-256 of everything after the header block). Servers may prepend
// headers (Return-Path, Delivered-To, Received); the original message is
// always a suffix of what they return.
//
// What the stream looks like (Realistic profile): 70% text/plain, 20%
// multipart/alternative (text and HTML), 10% multipart/mixed with a binary
// attachment; sizes log-normal from 1 KB to a few MB; From display names and
// subjects with non-ASCII text in RFC 2047 encoded words; attachment names
// in RFC 2231 form; threads of up to 8 messages linked by In-Reply-To and
// References; a rare word (RareWord) planted in the text of every message
// whose index is RareOffset modulo RareEvery, and a common word
// (CommonWord) in about 60% of messages. Neither planted word is a
// substring of any other word the generator writes, so SEARCH BODY has one
// exact answer, which Meta reports.
//
// This package depends on the standard library only.
package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"time"
)

// Profile selects the shape of the stream.
type Profile int

const (
	// Realistic mixes plain, alternative and attachment messages with a
	// long-tailed size distribution (up to MaxBytes).
	Realistic Profile = iota
	// Compact is Realistic without large attachments (sizes 1-32 KB): for
	// the 100,000-message mailbox, so that loading it takes minutes.
	Compact
	// Fixed4K is text/plain messages of about 4 KB: the delivery workloads.
	Fixed4K
)

// ParseProfile maps a name (realistic, compact, fixed4k) to a Profile.
func ParseProfile(s string) (Profile, error) {
	switch strings.ToLower(s) {
	case "realistic":
		return Realistic, nil
	case "compact":
		return Compact, nil
	case "fixed4k":
		return Fixed4K, nil
	}
	return 0, fmt.Errorf("corpus: unknown profile %q", s)
}

// Planted words and where they go.
const (
	RareWord   = "quokkafjord"
	CommonWord = "meridian"
	RareEvery  = 20011
	RareOffset = 17
	// CommonPercent is the share of messages that contain CommonWord.
	CommonPercent = 60
	// Senders is the number of distinct From addresses.
	Senders = 200
	// SearchSender is a sender of middling frequency, used by SEARCH FROM.
	SearchSender = 7
)

// Kind is the MIME shape of a message.
type Kind int

const (
	Plain Kind = iota
	Alternative
	Attachment
)

// Meta is what the generator decides about message i before writing it.
type Meta struct {
	Index     int
	Kind      Kind
	Sender    int  // index into the sender pool; SenderAddr gives the address
	HasRare   bool // body text contains RareWord
	HasCommon bool // body text contains CommonWord
	Target    int  // approximate size in bytes
	Thread    int  // thread group; messages of one group share a subject
	InThread  int  // position in the thread (0 = the root)
}

// Generator produces the messages. The zero value is the Realistic profile
// with seed 0 and MaxBytes 4 MiB.
type Generator struct {
	Seed    uint64
	Profile Profile
	// MaxBytes caps a message's size. Zero means 4 MiB (Realistic) or
	// 32 KiB (Compact).
	MaxBytes int
}

func (g *Generator) maxBytes() int {
	if g.MaxBytes > 0 {
		return g.MaxBytes
	}
	if g.Profile == Compact {
		return 32 << 10
	}
	return 4 << 20
}

func (g *Generator) rng(i int, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.Seed*0x9e3779b97f4a7c15+uint64(i), stream^0x5bd1e995))
}

// SenderAddr returns the address of sender k. Addresses have a fixed-width
// number, so one is never a substring of another.
func SenderAddr(k int) string {
	return fmt.Sprintf("p%03d@%s", k, senderDomains[k%len(senderDomains)])
}

var senderDomains = []string{"corp-a.example", "mail.example.org", "uni.example.edu", "shop.example.net", "lists.example.com"}

// Meta returns the decisions for message i (cheap: no body is generated).
func (g *Generator) Meta(i int) Meta {
	r := g.rng(i, 1)
	m := Meta{Index: i}
	m.HasRare = i%RareEvery == RareOffset
	m.HasCommon = r.IntN(100) < CommonPercent
	// Zipf-like sender choice: a few senders write most of the mail.
	u := r.Float64()
	m.Sender = int(math.Floor(math.Pow(float64(Senders), u))) - 1
	if m.Sender < 0 {
		m.Sender = 0
	}
	m.Thread = i / 8
	tr := g.rng(m.Thread, 2)
	if tr.IntN(100) < 40 { // 40% of groups are one thread of 8 messages
		m.InThread = i % 8
	}
	maxB := g.maxBytes()
	switch g.Profile {
	case Fixed4K:
		m.Kind, m.Target = Plain, 4096
	case Compact:
		k := r.IntN(100)
		switch {
		case k < 75:
			m.Kind = Plain
		case k < 95:
			m.Kind = Alternative
		default:
			m.Kind = Attachment
		}
		m.Target = logNormal(r, 4500, 0.8, 1024, maxB)
	default:
		k := r.IntN(100)
		switch {
		case k < 70:
			m.Kind = Plain
			m.Target = logNormal(r, 4000, 0.7, 1024, maxB)
		case k < 90:
			m.Kind = Alternative
			m.Target = logNormal(r, 14000, 0.8, 2048, maxB)
		default:
			m.Kind = Attachment
			m.Target = logNormal(r, 250000, 1.4, 8192, maxB)
		}
	}
	if m.Target > maxB {
		m.Target = maxB
	}
	return m
}

func logNormal(r *rand.Rand, median, sigma float64, lo, hi int) int {
	v := int(median * math.Exp(sigma*r.NormFloat64()))
	if v < lo {
		v = lo
	}
	if v > hi {
		v = hi
	}
	return v
}

var baseDate = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// MessageID returns the Message-ID (without angle brackets) of message i.
func (g *Generator) MessageID(i int) string {
	return fmt.Sprintf("%d.%d@bench.example", i, g.Seed)
}

// Message returns the bytes of message i, CRLF line endings throughout.
func (g *Generator) Message(i int) []byte {
	m := g.Meta(i)
	r := g.rng(i, 3)
	var body bytes.Buffer
	var ctype string
	textTarget := m.Target - 900 // header block is roughly this big
	if textTarget < 300 {
		textTarget = 300
	}
	switch m.Kind {
	case Plain:
		cte, text := g.textPart(r, m, textTarget)
		ctype = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + "\r\n"
		body.WriteString(text)
	case Alternative:
		b := boundary(g, i, "alt")
		ctype = "Content-Type: multipart/alternative; boundary=\"" + b + "\"\r\n"
		cte, text := g.textPart(r, m, textTarget*2/5)
		body.WriteString("This is a multi-part message in MIME format.\r\n\r\n--" + b + "\r\n")
		body.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n")
		body.WriteString(text)
		body.WriteString("\r\n--" + b + "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		body.WriteString(htmlPart(r, textTarget*3/5))
		body.WriteString("\r\n--" + b + "--\r\n")
	case Attachment:
		b := boundary(g, i, "mix")
		ctype = "Content-Type: multipart/mixed; boundary=\"" + b + "\"\r\n"
		textLen := 600 + r.IntN(3000)
		cte, text := g.textPart(r, m, textLen)
		body.WriteString("--" + b + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n")
		body.WriteString(text)
		name, typ := attachmentName(r)
		body.WriteString("\r\n--" + b + "\r\nContent-Type: " + typ + "\r\nContent-Transfer-Encoding: base64\r\n")
		body.WriteString("Content-Disposition: attachment; " + name + "\r\n\r\n")
		raw := (m.Target - textLen - 1200) * 3 / 4
		if raw < 512 {
			raw = 512
		}
		writeBase64(&body, r, raw)
		body.WriteString("--" + b + "--\r\n")
	}
	bodyBytes := body.Bytes()
	sum := sha256.Sum256(bodyBytes)

	var h bytes.Buffer
	date := baseDate.Add(time.Duration(i) * 97 * time.Second)
	h.WriteString("Date: " + date.Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\r\n")
	h.WriteString("From: " + encodeName(senderName(m.Sender)) + " <" + SenderAddr(m.Sender) + ">\r\n")
	h.WriteString("To: " + encodeName(recipientNames[i%len(recipientNames)]) + " <team" + strconv.Itoa(i%13) + "@bench.example>\r\n")
	if i%5 == 0 {
		h.WriteString("Cc: ops@bench.example, =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jorg@bench.example>\r\n")
	}
	h.WriteString("Subject: " + g.subject(m) + "\r\n")
	h.WriteString("Message-ID: <" + g.MessageID(i) + ">\r\n")
	if m.InThread > 0 {
		parent := i - 1
		h.WriteString("In-Reply-To: <" + g.MessageID(parent) + ">\r\n")
		h.WriteString("References:")
		for j := i - m.InThread; j < i; j++ {
			h.WriteString(" <" + g.MessageID(j) + ">")
			if (j-(i-m.InThread))%3 == 2 && j != i-1 {
				h.WriteString("\r\n")
			}
		}
		h.WriteString("\r\n")
	}
	h.WriteString("MIME-Version: 1.0\r\n")
	h.WriteString(ctype)
	h.WriteString("X-Bench-Id: " + strconv.FormatUint(g.Seed, 10) + "-" + strconv.Itoa(i) + "\r\n")
	h.WriteString("X-Bench-Body: " + strconv.Itoa(len(bodyBytes)) + " " + hex.EncodeToString(sum[:]) + "\r\n")
	h.WriteString("\r\n")
	h.Write(bodyBytes)
	return h.Bytes()
}

func boundary(g *Generator, i int, kind string) string {
	return fmt.Sprintf("=_%s_%d_%x", kind, i, g.Seed)
}

func (g *Generator) subject(m Meta) string {
	r := g.rng(m.Thread, 4)
	if m.InThread == 0 && m.Thread*8 != m.Index {
		// Not part of a thread: a subject of its own.
		r = g.rng(m.Index, 5)
	}
	n := 3 + r.IntN(6)
	words := make([]string, 0, n+1)
	nonASCII := r.IntN(100) < 25
	for k := 0; k < n; k++ {
		words = append(words, vocab[r.IntN(len(vocab))])
	}
	if nonASCII {
		words = append(words, foreignWords[r.IntN(len(foreignWords))])
	}
	s := strings.Join(words, " ")
	s = strings.ToUpper(s[:1]) + s[1:]
	if m.InThread > 0 {
		s = "Re: " + s
	}
	for _, c := range s {
		if c >= 0x80 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

func encodeName(s string) string {
	for _, c := range s {
		if c >= 0x80 {
			if len(s)%2 == 0 {
				return mime.QEncoding.Encode("utf-8", s)
			}
			return mime.BEncoding.Encode("UTF-8", s)
		}
	}
	if strings.ContainsAny(s, "\",.;:<>@()") {
		return strconv.Quote(s)
	}
	return s
}

func senderName(k int) string {
	return firstNames[k%len(firstNames)] + " " + lastNames[(k/len(firstNames)+k)%len(lastNames)]
}

// textPart writes about n bytes of text and returns its transfer encoding.
func (g *Generator) textPart(r *rand.Rand, m Meta, n int) (cte, text string) {
	var b strings.Builder
	nonASCII := r.IntN(100) < 20
	plantRare, plantCommon := m.HasRare, m.HasCommon
	lines := 0
	for b.Len() < n {
		var line strings.Builder
		for line.Len() < 60 {
			if line.Len() > 0 {
				line.WriteByte(' ')
			}
			switch {
			case lines == 2 && plantCommon && line.Len() > 20:
				line.WriteString(CommonWord)
				plantCommon = false
			case lines == 3 && plantRare && line.Len() > 10:
				line.WriteString(RareWord)
				plantRare = false
			case nonASCII && r.IntN(12) == 0:
				line.WriteString(foreignWords[r.IntN(len(foreignWords))])
			default:
				line.WriteString(vocab[r.IntN(len(vocab))])
			}
		}
		if r.IntN(9) == 0 {
			line.WriteByte('.')
		}
		b.WriteString(line.String())
		b.WriteString("\n")
		lines++
		if r.IntN(7) == 0 {
			b.WriteString("\n")
		}
		// Planted words must land even in short messages.
		if b.Len() >= n && (plantRare || plantCommon) {
			n = b.Len() + 200
		}
	}
	if !nonASCII {
		return "7bit", crlf(b.String())
	}
	var q bytes.Buffer
	w := quotedprintable.NewWriter(&q)
	w.Write([]byte(b.String()))
	w.Close()
	return "quoted-printable", crlf(q.String())
}

func htmlPart(r *rand.Rand, n int) string {
	var b strings.Builder
	b.WriteString("<html><head><meta charset=\"utf-8\"></head><body>\n")
	for b.Len() < n {
		b.WriteString("<p>")
		for k := 0; k < 12; k++ {
			b.WriteString(vocab[r.IntN(len(vocab))])
			b.WriteByte(' ')
		}
		b.WriteString("</p>\n")
	}
	b.WriteString("</body></html>\n")
	var q bytes.Buffer
	w := quotedprintable.NewWriter(&q)
	w.Write([]byte(b.String()))
	w.Close()
	return crlf(q.String())
}

func attachmentName(r *rand.Rand) (param, ctype string) {
	switch r.IntN(4) {
	case 0:
		return "filename*=UTF-8''%C3%9Cbersicht%20Q3.pdf", "application/pdf"
	case 1:
		return "filename=\"photo.jpg\"", "image/jpeg"
	case 2:
		return "filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	default:
		return "filename=\"report.zip\"", "application/zip"
	}
}

func writeBase64(b *bytes.Buffer, r *rand.Rand, n int) {
	raw := make([]byte, n)
	for k := 0; k+8 <= n; k += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			raw[k+j] = byte(v >> (8 * j))
		}
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
}

// crlf turns every line ending (LF or CRLF) into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// Checked is the result of Verify.
type Checked struct {
	Seed  uint64
	Index int
}

// Verify checks a message as a server returned it: it finds X-Bench-Id and
// X-Bench-Body in the header block and checks the body's length and hash.
// It needs no generator.
func Verify(raw []byte) (Checked, error) {
	var c Checked
	sep := bytes.Index(raw, []byte("\r\n\r\n"))
	if sep < 0 {
		return c, errors.New("corpus: no header/body separator")
	}
	hdr, body := raw[:sep+2], raw[sep+4:]
	id := headerValue(hdr, "X-Bench-Id")
	sum := headerValue(hdr, "X-Bench-Body")
	if id == "" || sum == "" {
		return c, errors.New("corpus: not a bench message (no X-Bench-Id/X-Bench-Body)")
	}
	seedS, idxS, ok := strings.Cut(id, "-")
	if !ok {
		return c, fmt.Errorf("corpus: bad X-Bench-Id %q", id)
	}
	var err error
	if c.Seed, err = strconv.ParseUint(seedS, 10, 64); err != nil {
		return c, fmt.Errorf("corpus: bad X-Bench-Id %q", id)
	}
	if c.Index, err = strconv.Atoi(idxS); err != nil {
		return c, fmt.Errorf("corpus: bad X-Bench-Id %q", id)
	}
	lenS, hashS, _ := strings.Cut(sum, " ")
	n, err := strconv.Atoi(lenS)
	if err != nil {
		return c, fmt.Errorf("corpus: bad X-Bench-Body %q", sum)
	}
	if len(body) != n {
		return c, fmt.Errorf("corpus: message %s: body is %d bytes, want %d", id, len(body), n)
	}
	got := sha256.Sum256(body)
	if hex.EncodeToString(got[:]) != hashS {
		return c, fmt.Errorf("corpus: message %s: body hash differs", id)
	}
	return c, nil
}

// VerifyExact checks that raw ends with exactly message c.Index of g (a
// server may only have prepended header fields).
func (g *Generator) VerifyExact(raw []byte, index int) error {
	want := g.Message(index)
	if !bytes.HasSuffix(raw, want) {
		return fmt.Errorf("corpus: message %d: returned bytes (%d) do not end with the delivered message (%d)", index, len(raw), len(want))
	}
	return nil
}

func headerValue(hdr []byte, name string) string {
	for _, line := range bytes.Split(hdr, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(k), name) {
			return strings.TrimSpace(string(v))
		}
	}
	return ""
}
