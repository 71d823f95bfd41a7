package vec

// Prefetch asks the CPU to bring x's cache lines into L2, without waiting
// for them: a caller that will read or write x after a stretch of compute
// names it first, and its misses to memory overlap that compute instead of
// stalling the loop that comes later (a no-op without assembly).
func Prefetch(x []float32) {
	if len(x) > 0 && useSIMD {
		prefetchAsm(&x[0], len(x))
	}
}
