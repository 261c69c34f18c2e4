package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count written in human units in the config file:
// "50MiB", "512KiB", "1GB" or a plain number of bytes. KB/MB/GB are powers
// of 1000, KiB/MiB/GiB powers of 1024; "K", "M", "G" alone mean the binary
// units.
type Size int64

// UnmarshalText parses a size.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText writes s in the largest exact binary unit.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Size) String() string {
	n := int64(s)
	for _, u := range []struct {
		name string
		mul  int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mul == 0 {
			return strconv.FormatInt(n/u.mul, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
}

// ParseSize parses a size such as "50MiB" (see Size).
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("bad size %q: want a number with a unit such as 50MiB", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q: %v", s, err)
	}
	mul, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("bad size %q: unknown unit %q (use B, KiB, MiB, GiB, KB, MB or GB)", s, strings.TrimSpace(t[i:]))
	}
	if n > (1<<62)/mul {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return Size(n * mul), nil
}

// Duration is a time span written in human units in the config file:
// Go duration syntax ("30s", "1h30m") plus "d" for days ("5d").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText writes d in Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Duration) String() string {
	if d != 0 && d%Duration(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/Duration(24*time.Hour)), 10) + "d"
	}
	return time.Duration(d).String()
}

// ParseDuration parses "30s", "10m", "2h", "5d" or a combination such as
// "1d12h".
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("bad duration %q: want e.g. 30s, 10m, 2h or 5d", s)
	}
	var days int64
	if i := strings.IndexByte(t, 'd'); i >= 0 {
		n, err := strconv.ParseInt(t[:i], 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad duration %q: want e.g. 30s, 10m, 2h or 5d", s)
		}
		days, t = n, t[i+1:]
	}
	var rest time.Duration
	if t != "" {
		var err error
		rest, err = time.ParseDuration(t)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q: want e.g. 30s, 10m, 2h or 5d", s)
		}
	}
	if rest < 0 {
		return 0, fmt.Errorf("bad duration %q: negative", s)
	}
	return Duration(time.Duration(days)*24*time.Hour + rest), nil
}
