//go:build race

package auth_test

// raceEnabled: the race detector slows the store lookups of the many-login
// tests about twentyfold, so they run fewer logins under it.
const raceEnabled = true
