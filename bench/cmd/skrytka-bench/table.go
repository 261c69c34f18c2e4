package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/skrytka/skrytka/bench/load"
)

// cmdTable reads JSON results and prints a Markdown table: per workload and
// metric, the median over rounds for server a and server b, and a/b.
func cmdTable(args []string) error {
	fs := flag.NewFlagSet("table", flag.ExitOnError)
	a := fs.String("a", "skrytka", "first server (numerator of the ratio)")
	b := fs.String("b", "dovecot", "second server")
	fs.Parse(args)
	type key struct{ w, m string }
	vals := map[key]map[string][]float64{}
	better := map[key]bool{}
	params := map[string]map[string]string{}
	var order []key
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r load.Result
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", path, err)
			}
			if params[r.Workload] == nil {
				params[r.Workload] = map[string]string{}
			}
			params[r.Workload][r.Server] = r.Params
			for _, m := range r.Metrics {
				k := key{r.Workload, m.Name}
				if vals[k] == nil {
					vals[k] = map[string][]float64{}
					order = append(order, k)
				}
				vals[k][r.Server] = append(vals[k][r.Server], m.Value)
				better[k] = m.HigherBetter
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return err
		}
	}
	// Sort by workload, keeping metric order as first seen.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && order[j].w < order[j-1].w; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	fmt.Printf("| workload | parameters | metric | %s | %s | %s/%s | better |\n", *a, *b, *a, *b)
	fmt.Println("|---|---|---|---:|---:|---:|---|")
	for _, k := range order {
		va, vb := load.Median(vals[k][*a]), load.Median(vals[k][*b])
		ratio := "—"
		if !math.IsNaN(va) && !math.IsNaN(vb) && vb != 0 {
			ratio = fmt.Sprintf("%.2f", va/vb)
		} else if k.w == "2-smtp" && !math.IsNaN(va) {
			// Dovecot has no SMTP: compare with our own LMTP.
			if own := load.Median(vals[key{"1-lmtp", k.m}][*a]); !math.IsNaN(own) && own != 0 {
				ratio = fmt.Sprintf("%.2f vs own LMTP", va/own)
			}
		}
		dir := "lower"
		if better[k] {
			dir = "higher"
		}
		p := params[k.w][*a]
		if p == "" {
			p = params[k.w][*b]
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", k.w, p, k.m, cell(vals[k][*a]), cell(vals[k][*b]), ratio, dir)
	}
	return nil
}

func cell(vs []float64) string {
	if len(vs) == 0 {
		return "—"
	}
	m := load.Median(vs)
	s := fmtNum(m)
	if len(vs) > 1 {
		s += fmt.Sprintf(" (n=%d)", len(vs))
	}
	return s
}

func fmtNum(v float64) string {
	switch {
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
}
