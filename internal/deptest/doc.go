// Package deptest holds repository-wide tests of the code's shape: the
// dependency direction of STYLE.md (front ends never reach a database
// driver or a backend; nothing imports cmd) and a doc comment on every
// package. It has no code of its own and nothing imports it.
package deptest
