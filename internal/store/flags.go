package store

import "strings"

// ApplyFlags computes a message's new flags when op combines f with its
// current system flags and keywords. It never modifies kws. Both backends
// use it, so SetFlags means the same everywhere.
func ApplyFlags(sys SysFlags, kws []string, op FlagOp, f Flags) (SysFlags, []string) {
	switch op {
	case FlagsAdd:
		sys |= f.Sys
		kws = append([]string(nil), kws...)
		for _, k := range f.Keywords {
			if !HasKeyword(kws, k) {
				kws = append(kws, k)
			}
		}
	case FlagsRemove:
		sys &^= f.Sys
		out := kws[:0:0]
		for _, k := range kws {
			if !HasKeyword(f.Keywords, k) {
				out = append(out, k)
			}
		}
		kws = out
	default:
		// FlagDownloaded is not an IMAP flag: replacing the IMAP flags
		// keeps it.
		sys = f.Sys | sys&FlagDownloaded
		kws = append([]string(nil), f.Keywords...)
	}
	return sys, kws
}

// HasKeyword reports whether kws holds k, compared case-insensitively.
func HasKeyword(kws []string, k string) bool {
	for _, x := range kws {
		if strings.EqualFold(x, k) {
			return true
		}
	}
	return false
}

// SameKeywords reports whether a and b hold the same keywords, in any
// order and case.
func SameKeywords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, k := range a {
		if !HasKeyword(b, k) {
			return false
		}
	}
	return true
}
