package parallel

import "sync/atomic"

// Steps runs f(s, p) for every step s in [0, steps), in order, and every
// part p in [0, parts), on up to threads goroutines: the parts of a step run
// side by side, and a step starts when every part of the one before it has
// finished. It is one parallel region for all the steps where a loop of For
// calls would be one per step: a region's hand-off (~1 us) was a third of a
// step of an LSTM with 128 hidden units split in two. Parts are claimed one
// at a time, so a goroutine that comes late, or that the OS deschedules
// between parts, leaves its parts to the others; one descheduled inside a
// part holds its step up, as an item holds up For. A panic in f is re-raised
// in the caller.
func Steps(threads, steps, parts int, f func(step, part int)) {
	if steps <= 0 || parts <= 0 {
		return
	}
	n := min(threads, parts)
	if n <= 1 {
		for s := 0; s < steps; s++ {
			for p := 0; p < parts; p++ {
				f(s, p)
			}
		}
		return
	}
	// Per step, the parts claimed and the parts finished, a cache line each.
	type counters struct {
		claim, done atomic.Int32
		_           [56]byte
	}
	cs := make([]counters, steps)
	var aborted atomic.Bool
	For(n, n, func(int) {
		defer func() {
			if v := recover(); v != nil {
				aborted.Store(true) // the others stop waiting for parts that will not finish
				panic(v)
			}
		}()
		for s := 0; s < steps; s++ {
			c := &cs[s]
			for {
				p := int(c.claim.Add(1)) - 1
				if p >= parts {
					break
				}
				f(s, p)
				c.done.Add(1)
			}
			// A worker holds its thread for the job, a caller in
			// Session.Run's flush mode too.
			sp := spinner{tied: true}
			for c.done.Load() < int32(parts) {
				if aborted.Load() {
					return
				}
				sp.spin()
			}
		}
	})
}
