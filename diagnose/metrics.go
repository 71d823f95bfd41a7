// Package diagnose compares two models on the same samples: output and
// layerwise error metrics, tensor statistics, and per-node sensitivity.
package diagnose

import (
	"math"
	"slices"

	"github.com/onnxq/onnxq/kernels/vec"
)

// PerfectSQNR is the SQNR reported when two tensors are identical (the true
// value is infinite, which JSON cannot carry).
const PerfectSQNR = 200.0

// Acc accumulates the error of a test tensor against a reference tensor over
// samples, in fixed memory: cosine, SQNR and MSE are global over every value
// seen, not averages of per-sample figures.
type Acc struct {
	N                   int64
	sumRR, sumTT, sumRT float64
	sumErr2             float64
	maxAbs              float64
	// Top-1 agreement along a class axis, when one is set.
	ClassAxisLen       int // size of the class axis (last axis); 0: none
	top1Agree, top1All int64
	// Per-channel energies, when SetChannels gave a layout: a tensor whose
	// channels differ in range can look fine in total (the big channel
	// dominates the energy) while the small ones were rounded away.
	inner            int
	chanRR, chanErr2 []float64
}

// SetChannels makes Add also accumulate per channel, for a layout of
// [outer, channels, inner] (NCHW: channels = C, inner = H*W). It is ignored
// once set, and for fewer than two channels.
func (a *Acc) SetChannels(channels, inner int) {
	if a.chanRR != nil || channels < 2 || inner < 1 {
		return
	}
	a.inner = inner
	a.chanRR, a.chanErr2 = make([]float64, channels), make([]float64, channels)
}

// Add accumulates one sample; ref and test have the same length.
func (a *Acc) Add(ref, test []float32) { a.Apply(a.Measure(ref, test)) }

// AccSample is what one sample adds to an Acc: Measure computes it from the
// tensors without changing the Acc, Apply adds it, in the order Add would,
// so samples measured side by side and applied in sample order give the
// bits of Add one sample after the other.
type AccSample struct {
	n                  int64
	rr, tt, rt, e2, mx float64
	chans              []float64 // per channel: its ref^2 and error^2 sums over the sample
	top1Agree, top1All int64
}

// Measure computes one sample's sums with a's channel and class layout.
// Blocks of 16 or more values a channel (NCHW maps) take one pass each
// (vec.ErrorSums), their sums going to their channel and, in block order,
// into the totals; shorter ones ([N, C] rows) one pass over the tensor for
// the totals and a plain loop for the channels. (Two passes, the totals
// then the channels, a value at a time, took 59% of a layerwise compare of
// PaddleOCR cls on one thread.) A channel's blocks are summed within the
// sample first, so a sample's sums take 16 bytes a channel, whatever the
// tensor's size.
func (a *Acc) Measure(ref, test []float32) AccSample {
	var m AccSample
	test = test[:len(ref)]
	m.n = int64(len(ref))
	c := len(a.chanRR)
	switch {
	case c > 0 && len(ref)%(c*a.inner) == 0 && a.inner >= 16:
		m.chans = make([]float64, 2*c)
		for b, off := 0, 0; off < len(ref); b, off = b+1, off+a.inner {
			rr, tt, rt, e2, mx := vec.ErrorSums(ref[off:off+a.inner], test[off:off+a.inner])
			ch := b % c
			m.chans[2*ch] += rr
			m.chans[2*ch+1] += e2
			m.rr, m.tt, m.rt, m.e2 = m.rr+rr, m.tt+tt, m.rt+rt, m.e2+e2
			if mx > m.mx || mx != mx { // NaN stays
				m.mx = mx
			}
		}
	case c > 0 && len(ref)%(c*a.inner) == 0:
		m.rr, m.tt, m.rt, m.e2, m.mx = vec.ErrorSums(ref, test)
		m.chans = make([]float64, 2*c)
		for b, off := 0, 0; off < len(ref); b, off = b+1, off+a.inner {
			var rr, e2 float64
			for i := off; i < off+a.inner; i++ {
				x := float64(ref[i])
				d := x - float64(test[i])
				rr += x * x
				e2 += d * d
			}
			ch := b % c
			m.chans[2*ch] += rr
			m.chans[2*ch+1] += e2
		}
	default:
		m.rr, m.tt, m.rt, m.e2, m.mx = vec.ErrorSums(ref, test)
	}
	if c := a.ClassAxisLen; c > 1 && len(ref)%c == 0 {
		for off := 0; off < len(ref); off += c {
			if argmax(ref[off:off+c]) == argmax(test[off:off+c]) {
				m.top1Agree++
			}
			m.top1All++
		}
	}
	return m
}

// Apply adds one sample's sums (from Measure on an Acc of the same layout).
func (a *Acc) Apply(m AccSample) {
	a.N += m.n
	a.sumRR += m.rr
	a.sumTT += m.tt
	a.sumRT += m.rt
	a.sumErr2 += m.e2
	if m.mx > a.maxAbs || m.mx != m.mx {
		a.maxAbs = m.mx
	}
	for ch := 0; 2*ch < len(m.chans); ch++ {
		a.chanRR[ch] += m.chans[2*ch]
		a.chanErr2[ch] += m.chans[2*ch+1]
	}
	a.top1Agree += m.top1Agree
	a.top1All += m.top1All
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Cosine similarity of the flattened tensors over all samples (1 when both
// are all zeros, 0 when only one is).
func (a *Acc) Cosine() float64 {
	if a.sumRR == 0 && a.sumTT == 0 {
		return 1
	}
	if a.sumRR == 0 || a.sumTT == 0 {
		return 0
	}
	return a.sumRT / math.Sqrt(a.sumRR*a.sumTT)
}

// SQNR is the signal-to-quantization-noise ratio in dB: reference energy over
// error energy, PerfectSQNR when they are identical.
func (a *Acc) SQNR() float64 {
	if a.sumErr2 == 0 {
		return PerfectSQNR
	}
	if a.sumRR == 0 {
		return -PerfectSQNR
	}
	return math.Min(PerfectSQNR, 10*math.Log10(a.sumRR/a.sumErr2))
}

// ChannelSQNR is the median over channels of each channel's SQNR (channels
// that are all zero in the reference do not count); ok is false without a
// channel layout.
func (a *Acc) ChannelSQNR() (float64, bool) {
	var per []float64
	for c, rr := range a.chanRR {
		if rr == 0 {
			continue
		}
		e := a.chanErr2[c]
		if e == 0 {
			per = append(per, PerfectSQNR)
		} else {
			per = append(per, math.Min(PerfectSQNR, 10*math.Log10(rr/e)))
		}
	}
	if len(per) == 0 {
		return 0, false
	}
	slices.Sort(per)
	if len(per)%2 == 1 {
		return per[len(per)/2], true
	}
	return (per[len(per)/2-1] + per[len(per)/2]) / 2, true
}

// MSE is the mean squared error per value.
func (a *Acc) MSE() float64 {
	if a.N == 0 {
		return 0
	}
	return a.sumErr2 / float64(a.N)
}

// MaxAbs is the largest absolute difference seen.
func (a *Acc) MaxAbs() float64 { return a.maxAbs }

// Top1 is the share of rows whose argmax along the class axis agrees; ok is
// false when the tensor has no class axis.
func (a *Acc) Top1() (float64, bool) {
	if a.top1All == 0 {
		return 0, false
	}
	return float64(a.top1Agree) / float64(a.top1All), true
}
