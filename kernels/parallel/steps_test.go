package parallel

import (
	"strings"
	"sync/atomic"
	"testing"
)

// TestStepsInOrder checks that every part of every step runs once and that
// no part of a step starts before every part of the step before finished,
// on 1 to 3 threads, and with a busy pool (a nested call runs alone).
func TestStepsInOrder(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		for _, parts := range []int{1, 2, 5} {
			const steps = 200
			var done [steps]atomic.Int32
			var bad atomic.Int32
			Steps(threads, steps, parts, func(s, p int) {
				if s > 0 && done[s-1].Load() != int32(parts) {
					bad.Add(1)
				}
				done[s].Add(1)
			})
			for s := range done {
				if got := done[s].Load(); got != int32(parts) {
					t.Fatalf("threads %d parts %d: step %d ran %d parts", threads, parts, s, got)
				}
			}
			if bad.Load() != 0 {
				t.Fatalf("threads %d parts %d: %d parts started before their step's predecessor finished", threads, parts, bad.Load())
			}
		}
	}
	// Nested in a loop of For: each call runs on its goroutine alone.
	var total atomic.Int32
	For(2, 2, func(int) { Steps(2, 10, 3, func(int, int) { total.Add(1) }) })
	if total.Load() != 60 {
		t.Fatalf("nested: %d parts ran, want 60", total.Load())
	}
}

// TestStepsPanic checks that a panic in one part reaches the caller and does
// not leave the other goroutines waiting for the step.
func TestStepsPanic(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "boom") {
			t.Fatalf("recovered %v, want the part's panic", v)
		}
	}()
	Steps(2, 50, 2, func(s, p int) {
		if s == 7 && p == 1 {
			panic("boom")
		}
	})
}
