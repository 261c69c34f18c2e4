// Package bulk fills a store with a large generated corpus without going
// through any protocol: Skrytka's embedded store through its Go API (Stage
// and Append in big batches), and a Dovecot Maildir by writing the message
// files Dovecot itself would write. Workload 7 of issue 8 (start-up with
// 1,000,000 messages in the store) needs stores of that size, and
// delivering a million messages over LMTP takes hours.
//
// Both loaders put the same messages into the same accounts and can resume:
// an account whose INBOX already holds some of its messages gets only the
// rest, so an interrupted load is continued by running it again.
package bulk

import (
	"fmt"
	"runtime"
	"time"

	"github.com/skrytka/skrytka/bench/corpus"
)

// Plan says what goes where: Accounts accounts named Prefix1..PrefixN at
// Domain, each with PerAccount messages in its INBOX. Message j of account
// a (both 0-based) is message a*PerAccount+j of Gen. All but the newest
// Unread messages of each INBOX carry \Seen, as in a mailbox whose owner
// has read most of it.
type Plan struct {
	Accounts   int
	PerAccount int
	Prefix     string
	Domain     string
	Gen        *corpus.Generator
	Unread     int
	// Progress, if set, is called after each batch with the messages
	// stored so far (this run) and the total of the plan.
	Progress func(done, total int)
}

// Address returns the address of account a (0-based).
func (p *Plan) Address(a int) string {
	return fmt.Sprintf("%s%d@%s", p.Prefix, a+1, p.Domain)
}

// Index returns the corpus index of message j of account a.
func (p *Plan) Index(a, j int) int { return a*p.PerAccount + j }

// Total is the number of messages in the plan.
func (p *Plan) Total() int { return p.Accounts * p.PerAccount }

func (p *Plan) seen(j int) bool { return j < p.PerAccount-p.Unread }

// InternalDate is the arrival time given to message j of an account: one
// message every 10 minutes, ending at a fixed date, so both stores agree.
func (p *Plan) InternalDate(j int) time.Time {
	end := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	return end.Add(-time.Duration(p.PerAccount-1-j) * 10 * time.Minute)
}

// parallel computes out[k] = f(lo+k) for k in [0, hi-lo) on every core.
func parallel[T any](lo, hi int, f func(j int) (T, error)) ([]T, error) {
	workers := runtime.GOMAXPROCS(0)
	out := make([]T, hi-lo)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			for j := lo + w; j < hi; j += workers {
				v, err := f(j)
				if err != nil {
					errs <- err
					return
				}
				out[j-lo] = v
			}
			errs <- nil
		}(w)
	}
	var first error
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return out, first
}
