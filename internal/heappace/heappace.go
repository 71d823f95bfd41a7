// Package heappace keeps a loop over samples (calibration, sensitivity)
// from growing its peak memory with the number of samples: it runs the
// garbage collector between samples once their garbage outgrows a quarter
// of what was live after the last collection.
package heappace

import (
	"runtime"
	"runtime/metrics"
)

// Pacer collects between samples, when only the sessions and their state
// are live, once the garbage since the last collection outgrows a quarter
// of that (1 MiB at least: with most kernel outputs from a session's pool a
// sample leaves little garbage, and a larger allowance was reached by 20
// samples but not by 2, stories260K 28.5 -> 33.2 MiB). The collector then
// sizes the heap from this baseline, not from whatever a collection in the
// middle of a run happened to see (its buffers in use, the run's garbage)
// and doubled: a fixed cadence of every 8 samples let stories260K's heap
// swing to 36 MiB from a 9 MiB baseline, so 20 samples peaked 35% above 2.
// A loop that leaves little garbage per sample is rarely collected.
type Pacer struct {
	base   uint64
	fixed  uint64 // the allowance, when set (NewAllowing)
	sample []metrics.Sample
}

// New starts pacing from the heap as it is now.
func New() *Pacer {
	p := &Pacer{sample: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
	p.base = p.heap()
	return p
}

// NewAllowing paces with a fixed allowance of garbage, for a loop whose
// live heap (hundreds of compiled sessions) is much larger than what a
// sample allocates: a quarter of that heap would let the peak grow by
// more than the samples' own memory before the first collection.
func NewAllowing(bytes uint64) *Pacer {
	p := New()
	p.fixed = bytes
	return p
}

// heap is the bytes of live and not yet collected objects.
func (p *Pacer) heap() uint64 {
	metrics.Read(p.sample)
	if p.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return p.sample[0].Value.Uint64()
}

// BetweenSamples collects if the garbage since the last collection has
// outgrown the allowance.
func (p *Pacer) BetweenSamples() {
	allow := max(p.base/4, 1<<20)
	if p.fixed > 0 {
		allow = p.fixed
	}
	if p.heap() > p.base+allow {
		runtime.GC()
		p.base = p.heap()
	}
}
