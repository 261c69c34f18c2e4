package store

import (
	"fmt"
	"testing"
)

func TestApplyFlags(t *testing.T) {
	cur := []string{"Work", "$Label1"}
	for _, tc := range []struct {
		name    string
		sys     SysFlags
		op      FlagOp
		f       Flags
		wantSys SysFlags
		wantKws string
	}{
		{"add", FlagSeen, FlagsAdd, Flags{Sys: FlagFlagged, Keywords: []string{"work", "New"}}, FlagSeen | FlagFlagged, "[Work $Label1 New]"},
		{"remove", FlagSeen | FlagDeleted, FlagsRemove, Flags{Sys: FlagDeleted, Keywords: []string{"WORK"}}, FlagSeen, "[$Label1]"},
		{"replace keeps downloaded", FlagSeen | FlagDownloaded, FlagsReplace, Flags{Sys: FlagDraft, Keywords: []string{"X"}}, FlagDraft | FlagDownloaded, "[X]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append(make([]string, 0, 10), cur...) // spare capacity: an in-place append would show
			sys, kws := ApplyFlags(tc.sys, in, tc.op, tc.f)
			if sys != tc.wantSys || fmt.Sprint(kws) != tc.wantKws {
				t.Errorf("got %v %v, want %v %s", sys, kws, tc.wantSys, tc.wantKws)
			}
			if fmt.Sprint(in) != fmt.Sprint(cur) || fmt.Sprint(in[:cap(in)][2:3]) != "[]" {
				t.Errorf("ApplyFlags modified its input: %v", in[:cap(in)])
			}
		})
	}
	if !SameKeywords([]string{"a", "B"}, []string{"b", "A"}) || SameKeywords([]string{"a"}, []string{"b"}) {
		t.Error("SameKeywords")
	}
}
