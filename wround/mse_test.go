package wround

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestMSEClipBeatsRTN(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const m, k, n = 1024, 64, 16
	x := correlated(r, m, k)
	for _, tc := range []struct {
		name       string
		group      int
		qmin, qmax int32
		sym, pt    bool
		rows       bool
	}{
		{"int4 per-channel symmetric, rows", k, -8, 7, true, false, true},
		{"uint4 group 16, rows", 16, 0, 15, false, false, true},
		{"int8 per-tensor, rows", k, -128, 127, true, true, true},
		{"int4 group 32, no data", 32, -8, 7, true, false, false},
	} {
		l := &Layer{N: n, K: k, QMin: tc.qmin, QMax: tc.qmax, Group: tc.group, Symmetric: tc.sym, PerTensor: tc.pt}
		l.W = make([]float32, n*k)
		for i := range l.W {
			l.W[i] = float32(0.05 * studentT(r, 4))
		}
		if tc.pt {
			l.Group = 0
		}
		fitMinMax(l)
		w := append([]float32(nil), l.W...)
		in := &Inputs{}
		if tc.rows {
			in.X, in.M = x, m
		}
		before := l.OutputMSE(l.RTN(), x, m)
		beforeW := weightMSE(l, l.RTN(), w)
		zeros := append([]int32(nil), l.Zero...)
		res, err := Run("mse", l, in, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		after, afterW := l.OutputMSE(res.Codes, x, m), weightMSE(l, res.Codes, w)
		t.Logf("%s: output MSE %.4g -> %.4g, weight MSE %.4g -> %.4g", tc.name, before, after, beforeW, afterW)
		got, want := after, before
		if !tc.rows {
			got, want = afterW, beforeW
		}
		if !(got < 0.95*want) {
			t.Errorf("%s: clipping search %.4g is not 5%% below RTN's %.4g", tc.name, got, want)
		}
		if tc.sym {
			for i := range zeros {
				if l.Zero[i] != zeros[i] {
					t.Fatalf("%s: a symmetric layer's zero point moved", tc.name)
				}
			}
		}
	}
}

// TestMSEClipRowsMatchGroupError: the batched search (one product for all
// candidates of a chunk of rows) picks the ranges that scoring each
// candidate alone with groupError picks.
func TestMSEClipRowsMatchGroupError(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const m, k, n = 512, 48, 9
	x := correlated(r, m, k)
	h := hessian(x, m, k)
	for _, group := range []int{k, 16, 20} {
		l := &Layer{N: n, K: k, QMin: 0, QMax: 15, Group: group}
		l.W = make([]float32, n*k)
		for i := range l.W {
			l.W[i] = float32(0.05 * studentT(r, 4))
		}
		fitMinMax(l)
		want := cloneLayer(l)
		d := make([]float64, k)
		for row := range n {
			for g := range want.Groups() {
				k0, k1 := want.span(g)
				p := want.Param(row, k0)
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, v := range want.W[row*k+k0 : row*k+k1] {
					lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
				}
				bs, bz, best := want.Scale[p], want.Zero[p], math.Inf(1)
				for step := clipSteps; step >= 0; step-- {
					want.FitRange(p, lo*clipRatio(step), hi*clipRatio(step))
					if e := want.groupError(row, k0, k1, h, d); e < best {
						bs, bz, best = want.Scale[p], want.Zero[p], e
					}
				}
				want.Scale[p], want.Zero[p] = bs, bz
			}
		}
		if _, err := Run("mse", l, &Inputs{H: h}, DefaultOptions()); err != nil {
			t.Fatal(err)
		}
		minmax := cloneLayer(l)
		fitMinMax(minmax)
		changed := 0
		for i := range l.Scale {
			if l.Scale[i] != want.Scale[i] || l.Zero[i] != want.Zero[i] {
				t.Fatalf("group %d, scale %d: (%v, %d), scored alone (%v, %d)", group, i, l.Scale[i], l.Zero[i], want.Scale[i], want.Zero[i])
			}
			if minmax.Scale[i] != l.Scale[i] {
				changed++
			}
		}
		if changed == 0 {
			t.Fatalf("group %d: the search kept every min/max range", group)
		}
	}
	// Per tensor: clipTensor's one product per candidate against
	// groupError's loops over every row.
	l := &Layer{N: n, K: k, QMin: -8, QMax: 7, PerTensor: true, Symmetric: true}
	l.W = make([]float32, n*k)
	for i := range l.W {
		l.W[i] = float32(0.05 * studentT(r, 4))
	}
	fitMinMax(l)
	want := cloneLayer(l)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range want.W {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	bs, bz, best := want.Scale[0], want.Zero[0], math.Inf(1)
	d := make([]float64, k)
	for step := clipSteps; step >= 0; step-- {
		want.FitRange(0, lo*clipRatio(step), hi*clipRatio(step))
		if e := want.groupError(0, 0, k, h, d); e < best {
			bs, bz, best = want.Scale[0], want.Zero[0], e
		}
	}
	if _, err := Run("mse", l, &Inputs{H: h}, DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if l.Scale[0] != bs || l.Zero[0] != bz {
		t.Fatalf("per tensor: (%v, %d), scored by groupError (%v, %d)", l.Scale[0], l.Zero[0], bs, bz)
	}
	minmax := cloneLayer(l)
	fitMinMax(minmax)
	if minmax.Scale[0] == l.Scale[0] {
		t.Fatal("per tensor: the search kept the min/max range")
	}
}
