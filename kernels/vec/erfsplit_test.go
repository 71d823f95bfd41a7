//go:build amd64 && !purego

package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// erfRoutines are Erf's and GeluErf's AVX-512 routines: the one-pass one,
// the reference, and the ones that replaced it.
var erfRoutines = []struct {
	name          string
	onePass       func(dst, x *float32, n int)
	split, x2     func(dst, x *float32, n int) int
	public        func(dst, x []float32)
	isLarge       func(x float32) bool // takes erf's large branch
	splitBoundary float32              // x at erfSplit
}{
	{"Erf", erfAVX512, erfSplitAVX512, erfX2AVX512, Erf,
		func(x float32) bool { return !(abs32(x) < erfSplit) }, erfSplit},
	{"GeluErf", geluErfAVX512, geluErfSplitAVX512, geluErfX2AVX512, GeluErf,
		func(x float32) bool { return !(abs32(max(x, -200)*invSqrt2) < erfSplit) }, erfSplit * math.Sqrt2},
}

// erfTestValues fills x from one of several distributions (by kind) around
// erf's two branches, erfcMax, the subnormals and the special values.
func erfTestValues(r *rand.Rand, kind int, x []float32, boundary float32) {
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00000), math.Float32frombits(0xffc00001), math.Float32frombits(0x7f800001),
		math.Float32frombits(0x7fa5a5a5), math.Float32frombits(1), math.Float32frombits(0x807fffff),
		math.Float32frombits(0x00400000), 0x1p-126, -0x1p-126, math.MaxFloat32, -math.MaxFloat32,
		boundary, -boundary, math.Nextafter32(boundary, 0), -math.Nextafter32(boundary, 0),
		math.Nextafter32(boundary, 10), erfcMax, -erfcMax, math.Nextafter32(erfcMax, 10),
		erfcMax * math.Sqrt2, -erfcMax * math.Sqrt2, -200, math.Nextafter32(-200, 0), -201, 1e-20, -1e-30}
	frac := r.Float64() // kind 8: one mix per call (a block's worth)
	for i := range x {
		var v float64
		switch kind {
		case 0: // small branch only
			v = float64(boundary) * r.Float64()
		case 1: // large branch only, up to past erfcMax
			v = float64(boundary) + (7*math.Sqrt2-float64(boundary))*r.Float64()
		case 2, 3, 4, 5, 6: // N(0, k^2), k = 0.25 .. 4
			v = r.NormFloat64() * math.Ldexp(1, kind-4)
		case 7: // magnitudes 2^-40 .. 2^8, the subnormal-result and assist ranges of erfc included
			v = math.Ldexp(1, -40+r.IntN(48)) * (1 + r.Float64())
		case 8: // a random share of large lanes
			if r.Float64() < frac {
				v = float64(boundary) * (1 + 2*r.Float64())
			} else {
				v = float64(boundary) * r.Float64()
			}
		case 9: // any bits: NaN payloads, subnormals, infinities
			x[i] = math.Float32frombits(r.Uint32())
			continue
		default: // special values, some of them among ordinary ones
			if r.IntN(3) == 0 {
				v = r.NormFloat64() * 3
			} else {
				x[i] = specials[r.IntN(len(specials))]
				continue
			}
		}
		if r.IntN(2) == 0 {
			v = -v
		}
		x[i] = float32(v)
	}
}

const erfTestKinds = 11

// TestErfSplitMatchesOnePass: Erf and GeluErf on AVX-512 (the split and
// two-vector routines, and the choice between them block by block) give
// the one-pass routines' bits, NaN payloads included, on more than 10^7
// values each: long slices of every distribution, blocks of changing mixes
// (each routine in turn), every tail length 0..40 after 0, 96 and one or
// more whole blocks, and dst aliasing x.
func TestErfSplitMatchesOnePass(t *testing.T) {
	if !use512 {
		t.Skip("no AVX-512 on this machine")
	}
	r := rand.New(rand.NewPCG(5, 9))
	for _, f := range erfRoutines {
		checked := 0
		check := func(what string, x []float32, alias bool) {
			n := len(x)
			want := make([]float32, n)
			got := [3][]float32{make([]float32, n), make([]float32, n), make([]float32, n)}
			if n == 0 {
				f.public(got[0], x)
				return
			}
			f.onePass(&want[0], &x[0], n)
			large := 0
			for _, v := range x {
				if f.isLarge(v) {
					large++
				}
			}
			for i := range got {
				src := x
				if alias {
					copy(got[i], x)
					src = got[i]
				}
				counted := large
				switch i {
				case 0:
					f.public(got[i], src)
				case 1:
					counted = f.x2(&got[i][0], &src[0], n)
				case 2:
					if n > splitBlock {
						continue
					}
					counted = f.split(&got[i][0], &src[0], n)
				}
				if counted != large {
					t.Fatalf("%s %s n=%d routine %d: %d large lanes counted, %d in x", f.name, what, n, i, counted, large)
				}
				for j := range want {
					if math.Float32bits(got[i][j]) != math.Float32bits(want[j]) {
						t.Fatalf("%s %s n=%d alias=%v routine %d (public, x2, split): x=%g (%#x): %g (%#x), one-pass %g (%#x)",
							f.name, what, n, alias, i, x[j], math.Float32bits(x[j]), got[i][j], math.Float32bits(got[i][j]),
							want[j], math.Float32bits(want[j]))
					}
				}
				checked += n
			}
		}
		// long slices, one distribution each
		for kind := range erfTestKinds {
			x := make([]float32, 300_000+r.IntN(1000))
			erfTestValues(r, kind, x, f.splitBoundary)
			check(fmt.Sprintf("kind %d", kind), x, kind%2 == 0)
		}
		// blocks of changing mixes: all small, all large, or a random share,
		// so Erf's choice of routine changes from block to block
		for range 20 {
			x := make([]float32, 0, 40*splitBlock)
			for len(x) < 40*splitBlock {
				b := make([]float32, splitBlock)
				kind := []int{0, 1, 8, 8, 9}[r.IntN(5)]
				erfTestValues(r, kind, b, f.splitBoundary)
				x = append(x, b...)
			}
			check("block mix", x[:len(x)-r.IntN(600)], false)
		}
		// every tail length, after vectors of none, some or whole blocks
		for _, base := range []int{0, 96, 256, splitBlock, 2 * splitBlock, 3*splitBlock + 96} {
			for tail := 0; tail <= 40; tail++ {
				for kind := range erfTestKinds {
					x := make([]float32, base+tail)
					erfTestValues(r, kind, x, f.splitBoundary)
					check(fmt.Sprintf("kind %d", kind), x, false)
					check(fmt.Sprintf("kind %d", kind), x, true)
				}
			}
		}
		t.Logf("%s: %d values, the one-pass routine's bits", f.name, checked)
		if checked < 10_000_000 {
			t.Errorf("%s: %d values checked, fewer than 10^7", f.name, checked)
		}
	}
}

// BenchmarkErfSplit times Erf and GeluErf (ns per float) against their
// one-pass AVX-512 routines on N(0, k^2) data, 4096 floats and a ViT-B MLP's
// 197x3072: each iteration times both, in turn, and the medians are
// reported (the machine is shared), with the median of the ratios.
func BenchmarkErfSplit(b *testing.B) {
	if !use512 {
		b.Skip("no AVX-512 on this machine")
	}
	for _, n := range []int{4096, 197 * 3072} {
		for _, k := range []float64{0.5, 1, 2, 4, 16} {
			x := make([]float32, n)
			r := rand.New(rand.NewPCG(1, uint64(k*16)))
			for i := range x {
				x[i] = float32(k * r.NormFloat64())
			}
			dst := make([]float32, n)
			for _, f := range erfRoutines {
				b.Run(fmt.Sprintf("%s/n=%d/k=%g", f.name, n, k), func(b *testing.B) {
					var old, cur, ratio []float64
					for i := range b.N {
						run := func(g func()) float64 {
							t0 := time.Now()
							g()
							return float64(time.Since(t0).Nanoseconds()) / float64(n)
						}
						var o, c float64
						if i%2 == 0 {
							o = run(func() { f.onePass(&dst[0], &x[0], n) })
							c = run(func() { f.public(dst, x) })
						} else {
							c = run(func() { f.public(dst, x) })
							o = run(func() { f.onePass(&dst[0], &x[0], n) })
						}
						old, cur, ratio = append(old, o), append(cur, c), append(ratio, o/c)
					}
					med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
					b.ReportMetric(med(old), "old-ns/elem")
					b.ReportMetric(med(cur), "new-ns/elem")
					b.ReportMetric(med(ratio), "speedup")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}
