package mailparse

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics or hangs, that the offsets of
// every part lie within the message and nest properly, that the binary
// encoding round-trips, and that ExtractText copes. Seeds live in
// testdata/fuzz/FuzzParse; run with go test -fuzz=FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: <a@b>\r\n\r\nx\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: multipart/digest; boundary=\"a\"\n\n--a\n\nSubject: d\n\n--a\n--a--"))
	f.Add([]byte("To: g:a@b,(c) \"q\\\"\" <@r,@s:x@[1.2.3.4]>;, <>, , x\r\nContent-Type: text/plain; a*0*=us-ascii''%41; a*1=b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		done := make(chan struct{})
		timer := time.AfterFunc(10*time.Second, func() {
			select {
			case <-done:
			default:
				panic("Parse hangs")
			}
		})
		defer timer.Stop()
		info, err := Parse(bytes.NewReader(msg))
		close(done)
		if err != nil {
			t.Fatalf("Parse failed on in-memory input: %v", err)
		}
		checkTree(t, info, int64(len(msg)))
		enc, err := info.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Date.Equal(info.Date) {
			t.Fatalf("date %v != %v", got.Date, info.Date)
		}
		got.Date = info.Date
		if !reflect.DeepEqual(got, info) {
			t.Fatalf("round trip differs")
		}
		if _, _, err := ExtractText(bytes.NewReader(msg), info, 1<<16); err != nil {
			t.Fatal(err)
		}
	})
}
