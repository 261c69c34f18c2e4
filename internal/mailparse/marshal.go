package mailparse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Binary encoding of Info, stored once per message and decoded on every
// FETCH ENVELOPE/BODYSTRUCTURE, so Unmarshal is built to be cheap: the
// input is copied into one string that all decoded strings share, and
// parts, parameters, addresses, languages and envelopes each come from one
// allocation sized by counts stored up front.
//
// Layout (version 1), integers as unsigned varints, strings as a varint
// length then the bytes:
//
//	version byte (1)
//	counts: parts, params, addresses, languages, envelopes (besides the root's)
//	date: unix seconds (zigzag varint), zone offset seconds (zigzag); 0,0 = zero time
//	preview string
//	root envelope
//	parts in breadth-first order, so that each part's children are
//	consecutive: type, subtype, id, desc, encoding, md5, disposition,
//	location, type spelling, flags (1 HasDisposition, 2 has envelope), params,
//	disposition params, languages, HeaderStart, BodyStart-HeaderStart,
//	End-BodyStart, Lines, number of children, [envelope]
//	envelope: present bits, date, subject, in-reply-to, message-id, then
//	from, sender, reply-to, to, cc, bcc, each a count of addresses
//	(flags 1 group start, 2 group end; name, adl, mailbox, host)
const marshalVersion = 1

// ErrBadEncoding is returned by Unmarshal for input Marshal did not make.
var ErrBadEncoding = errors.New("mailparse: bad encoding")

// Marshal encodes info for storage. Unmarshal reverses it.
func (info *Info) Marshal() ([]byte, error) {
	var c struct{ parts, params, addrs, langs, envs int }
	countEnv := func(e *Envelope) {
		c.addrs += len(e.From) + len(e.Sender) + len(e.ReplyTo) + len(e.To) + len(e.Cc) + len(e.Bcc)
	}
	countEnv(&info.Envelope)
	order := []*Part{&info.Root}
	for i := 0; i < len(order); i++ {
		p := order[i]
		c.params += len(p.Params) + len(p.DispositionParams)
		c.langs += len(p.Language)
		if p.Envelope != nil {
			c.envs++
			countEnv(p.Envelope)
		}
		for j := range p.Children {
			order = append(order, &p.Children[j])
		}
	}
	c.parts = len(order)

	b := make([]byte, 0, 256)
	b = append(b, marshalVersion)
	for _, n := range []int{c.parts, c.params, c.addrs, c.langs, c.envs} {
		b = binary.AppendUvarint(b, uint64(n))
	}
	if info.Date.IsZero() {
		b = append(b, 0, 0)
	} else {
		_, zone := info.Date.Zone()
		b = binary.AppendVarint(b, info.Date.Unix())
		b = binary.AppendVarint(b, int64(zone))
	}
	b = appendStr(b, info.Preview)
	b = appendEnvelope(b, &info.Envelope)
	for _, p := range order {
		for _, s := range []string{p.Type, p.Subtype, p.ID, p.Desc, p.Encoding, p.MD5, p.Disposition, p.Location, p.TypeSpelling} {
			b = appendStr(b, s)
		}
		var flags byte
		if p.HasDisposition {
			flags |= 1
		}
		if p.Envelope != nil {
			flags |= 2
		}
		b = append(b, flags)
		b = appendParams(b, p.Params)
		b = appendParams(b, p.DispositionParams)
		b = binary.AppendUvarint(b, uint64(len(p.Language)))
		for _, l := range p.Language {
			b = appendStr(b, l)
		}
		if p.HeaderStart < 0 || p.BodyStart < p.HeaderStart || p.End < p.BodyStart || p.Lines < 0 {
			return nil, fmt.Errorf("mailparse: marshal: inconsistent offsets %d %d %d", p.HeaderStart, p.BodyStart, p.End)
		}
		b = binary.AppendUvarint(b, uint64(p.HeaderStart))
		b = binary.AppendUvarint(b, uint64(p.BodyStart-p.HeaderStart))
		b = binary.AppendUvarint(b, uint64(p.End-p.BodyStart))
		b = binary.AppendUvarint(b, uint64(p.Lines))
		b = binary.AppendUvarint(b, uint64(len(p.Children)))
		if p.Envelope != nil {
			b = appendEnvelope(b, p.Envelope)
		}
	}
	return b, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendParams(b []byte, ps []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendStr(b, p.Name)
		b = appendStr(b, p.Value)
	}
	return b
}

func appendEnvelope(b []byte, e *Envelope) []byte {
	b = append(b, byte(e.Present))
	for _, s := range []string{e.Date, e.Subject, e.InReplyTo, e.MessageID} {
		b = appendStr(b, s)
	}
	for _, l := range [][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, a := range l {
			var f byte
			if a.GroupStart {
				f |= 1
			}
			if a.GroupEnd {
				f |= 2
			}
			b = append(b, f)
			b = appendStr(b, a.Name)
			b = appendStr(b, a.ADL)
			b = appendStr(b, a.Mailbox)
			b = appendStr(b, a.Host)
		}
	}
	return b
}

// decoder reads the encoding; the first error sticks and later reads
// return zero values.
type decoder struct {
	s   string
	i   int
	bad bool
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	var shift uint
	for n := 0; n < 10; n++ {
		if d.i >= len(d.s) {
			d.bad = true
			return 0
		}
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.bad = true
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// count reads a count and checks it against what the input could hold.
func (d *decoder) count(limit int) int {
	n := d.uvarint()
	if n > uint64(limit) || n > uint64(len(d.s)) {
		d.bad = true
		return 0
	}
	return int(n)
}

func (d *decoder) byte1() byte {
	if d.i >= len(d.s) {
		d.bad = true
		return 0
	}
	c := d.s[d.i]
	d.i++
	return c
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.i) {
		d.bad = true
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

func (d *decoder) int64v() int64 {
	u := d.uvarint()
	if u > 1<<62 {
		d.bad = true
		return 0
	}
	return int64(u)
}

// Unmarshal decodes what Marshal produced.
func Unmarshal(b []byte) (*Info, error) {
	if len(b) == 0 || b[0] != marshalVersion {
		return nil, fmt.Errorf("%w: unknown version", ErrBadEncoding)
	}
	d := &decoder{s: string(b), i: 1}
	nParts := d.count(len(b))
	nParams := d.count(len(b))
	nAddrs := d.count(len(b))
	nLangs := d.count(len(b))
	nEnvs := d.count(len(b))
	if d.bad || nParts < 1 {
		return nil, fmt.Errorf("%w: counts", ErrBadEncoding)
	}
	info := &Info{}
	parts := make([]Part, nParts)
	var params []Param
	if nParams > 0 {
		params = make([]Param, nParams)
	}
	var addrs []Address
	if nAddrs > 0 {
		addrs = make([]Address, nAddrs)
	}
	var langs []string
	if nLangs > 0 {
		langs = make([]string, nLangs)
	}
	var envs []Envelope
	if nEnvs > 0 {
		envs = make([]Envelope, nEnvs)
	}
	sec, zone := d.varint(), d.varint()
	if sec != 0 || zone != 0 {
		if zone < -24*3600 || zone > 24*3600 {
			zone = 0
		}
		info.Date = time.Unix(sec, 0).In(time.FixedZone("", int(zone)))
	}
	info.Preview = d.str()
	d.envelope(&info.Envelope, &addrs)

	next := 1
	for i := 0; i < nParts && !d.bad; i++ {
		p := &parts[i]
		p.Type, p.Subtype, p.ID, p.Desc = d.str(), d.str(), d.str(), d.str()
		p.Encoding, p.MD5, p.Disposition, p.Location = d.str(), d.str(), d.str(), d.str()
		p.TypeSpelling = d.str()
		flags := d.byte1()
		p.HasDisposition = flags&1 != 0
		p.Params = d.params(&params)
		p.DispositionParams = d.params(&params)
		if n := d.count(len(langs)); n > 0 {
			p.Language = langs[:n:n]
			for j := range p.Language {
				p.Language[j] = d.str()
			}
			langs = langs[n:]
		}
		p.HeaderStart = d.int64v()
		p.BodyStart = p.HeaderStart + d.int64v()
		p.End = p.BodyStart + d.int64v()
		p.Lines = d.int64v()
		nc := d.count(nParts - next)
		if nc > 0 {
			p.Children = parts[next : next+nc : next+nc]
			next += nc
		}
		if flags&2 != 0 {
			if len(envs) == 0 {
				d.bad = true
				break
			}
			p.Envelope = &envs[0]
			envs = envs[1:]
			d.envelope(p.Envelope, &addrs)
		}
	}
	if d.bad || next != nParts {
		return nil, fmt.Errorf("%w: truncated or inconsistent", ErrBadEncoding)
	}
	info.Root = parts[0]
	return info, nil
}

func (d *decoder) params(pool *[]Param) []Param {
	n := d.count(len(*pool))
	if n == 0 {
		return nil
	}
	ps := (*pool)[:n:n]
	*pool = (*pool)[n:]
	for i := range ps {
		ps[i].Name, ps[i].Value = d.str(), d.str()
	}
	return ps
}

func (d *decoder) envelope(e *Envelope, pool *[]Address) {
	e.Present = EnvField(d.byte1())
	e.Date, e.Subject, e.InReplyTo, e.MessageID = d.str(), d.str(), d.str(), d.str()
	for _, l := range []*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		n := d.count(len(*pool))
		if n == 0 {
			continue
		}
		as := (*pool)[:n:n]
		*pool = (*pool)[n:]
		for i := range as {
			f := d.byte1()
			as[i] = Address{GroupStart: f&1 != 0, GroupEnd: f&2 != 0}
			as[i].Name, as[i].ADL, as[i].Mailbox, as[i].Host = d.str(), d.str(), d.str(), d.str()
		}
		*l = as
	}
}
