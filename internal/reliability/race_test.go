//go:build race

package reliability

// raceEnabled: the race detector slows everything several times; the soak
// test scales its load down under it.
const raceEnabled = true
