package smtpd

import (
	"errors"
	"fmt"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/skrytka/skrytka/internal/store"
)

func TestReplyFor(t *testing.T) {
	tests := []struct {
		err       error
		permQuota bool
		code      int
		enh       smtp.EnhancedCode
	}{
		{nil, false, 0, smtp.EnhancedCode{}},
		{store.ErrOverQuota, false, 452, smtp.EnhancedCode{4, 2, 2}},
		{fmt.Errorf("deliver: %w", store.ErrOverQuota), true, 552, smtp.EnhancedCode{5, 2, 2}},
		{store.ErrTooLarge, false, 552, smtp.EnhancedCode{5, 3, 4}},
		{store.ErrNotFound, false, 550, smtp.EnhancedCode{5, 1, 1}},
		{store.ErrUnavailable, false, 451, smtp.EnhancedCode{4, 3, 0}},
		{store.ErrClosed, false, 451, smtp.EnhancedCode{4, 3, 0}},
		{errors.New("disk on fire"), false, 451, smtp.EnhancedCode{4, 3, 0}},
		{errRelayDenied, false, 554, smtp.EnhancedCode{5, 7, 1}},
	}
	for _, tc := range tests {
		s := &Server{opts: Options{QuotaFullPermanent: tc.permQuota}}
		got := s.replyFor(tc.err)
		if tc.code == 0 {
			if got != nil {
				t.Errorf("replyFor(nil) = %v", got)
			}
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(got, &se) || se.Code != tc.code || se.EnhancedCode != tc.enh {
			t.Errorf("replyFor(%v) = %v, want %d %v", tc.err, got, tc.code, tc.enh)
			continue
		}
		if isTemporary(got) != (tc.code/100 == 4) {
			t.Errorf("isTemporary(%v) wrong", got)
		}
		if se.Code/100 == 4 && se.Code != 452 && se.Message != errTemp.Message {
			t.Errorf("our fault leaks detail: %q", se.Message)
		}
	}
}
