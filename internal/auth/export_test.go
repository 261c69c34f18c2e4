package auth

// Argon2Checks returns how many argon2id checks a has run, so tests can
// tell a cache hit from a full check without timing anything.
func Argon2Checks(a *Authenticator) int64 { return a.verified.Load() }

// CacheLen returns the number of entries in a's credentials cache.
func CacheLen(a *Authenticator) int {
	if c := a.credCache(); c != nil {
		return c.len()
	}
	return 0
}
