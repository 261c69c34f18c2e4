//go:build race

package embedded

// raceEnabled lets slow duplicate suites skip under the race detector
// (modernc's transpiled SQLite is instrumented too, see doc.go).
const raceEnabled = true
