package load

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// Metric is one measured number.
type Metric struct {
	Name  string  `json:"name"` // e.g. "msgs/s", "p99 ms"
	Value float64 `json:"value"`
	// HigherBetter says which way is good (throughput: true; latency,
	// memory: false). The table's ratio is always Skrytka/Dovecot; this
	// only tells the reader how to read it.
	HigherBetter bool `json:"higher_better"`
}

// Result is what one workload run on one server produced.
type Result struct {
	Workload string   `json:"workload"` // e.g. "1-lmtp"
	Server   string   `json:"server"`
	Round    int      `json:"round"`
	Params   string   `json:"params"` // fixed parameters, for the table
	Metrics  []Metric `json:"metrics"`
	Checked  int      `json:"checked"` // items whose correctness was verified
	Note     string   `json:"note,omitempty"`
}

func (r *Result) add(name string, v float64, higherBetter bool) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, HigherBetter: higherBetter})
}

// Latencies collects operation durations from many goroutines.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// Count returns the number of recorded durations.
func (l *Latencies) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// Quantile returns the q-quantile (0..1) in milliseconds.
func (l *Latencies) Quantile(q float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return math.NaN()
	}
	s := append([]time.Duration(nil), l.d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(q*float64(len(s)))) - 1
	if k < 0 {
		k = 0
	}
	return float64(s[k]) / float64(time.Millisecond)
}

// Median returns the median of vs (NaN for none).
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// errorf wraps a correctness failure so callers can tell it from I/O trouble.
type CheckError struct{ msg string }

func (e *CheckError) Error() string { return "check failed: " + e.msg }

func checkf(format string, args ...any) error {
	return &CheckError{msg: fmt.Sprintf(format, args...)}
}
