package imapd

import (
	"github.com/skrytka/skrytka/internal/imapwire"
	"github.com/skrytka/skrytka/internal/mailparse"
	"github.com/skrytka/skrytka/internal/store"
)

// appendEnvelope renders a message's ENVELOPE from its parsed metadata.
func (c *conn) appendEnvelope(b []byte, m *store.Message) []byte {
	if m.Parsed == nil {
		return imapwire.AppendEnvelope(b, &mailparse.Envelope{}, c.utf8)
	}
	return imapwire.AppendEnvelope(b, &m.Parsed.Envelope, c.utf8)
}

// appendStructure renders BODY (ext false) or BODYSTRUCTURE.
func (c *conn) appendStructure(b []byte, m *store.Message, ext bool) []byte {
	if m.Parsed == nil {
		p := mailparse.Part{Type: "text", Subtype: "plain", End: m.Size}
		return imapwire.AppendBodyStructure(b, &p, ext, c.utf8)
	}
	return imapwire.AppendBodyStructure(b, &m.Parsed.Root, ext, c.utf8)
}
