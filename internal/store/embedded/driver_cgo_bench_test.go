//go:build sqlitecgo

package embedded

// With -tags sqlitecgo the benchmarks also run on mattn/go-sqlite3 (cgo),
// to compare drivers. The production build never links it.

import _ "github.com/mattn/go-sqlite3"

func init() { benchDrivers = append(benchDrivers, "sqlite3") }
