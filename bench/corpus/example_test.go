package corpus_test

import (
	"fmt"

	"github.com/skrytka/skrytka/bench/corpus"
)

func ExampleVerify() {
	g := &corpus.Generator{Seed: 7, Profile: corpus.Fixed4K}
	msg := g.Message(12)
	c, err := corpus.Verify(msg)
	fmt.Println(c.Index, err)
	// Output: 12 <nil>
}
