package wround

import (
	"math"
	"math/rand/v2"
	"testing"
)

// studentT draws from Student's t with nu degrees of freedom: heavy tails,
// as trained weights have.
func studentT(r *rand.Rand, nu int) float64 {
	var chi float64
	for range nu {
		z := r.NormFloat64()
		chi += z * z
	}
	return r.NormFloat64() / math.Sqrt(chi/float64(nu))
}

func weightMSE(l *Layer, q []int32, w []float32) float64 {
	d := l.Dequantized(q)
	var s float64
	for i := range d {
		e := float64(d[i]) - float64(w[i])
		s += e * e
	}
	return s / float64(len(d))
}

func TestHQQBeatsRTNOnHeavyTails(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct {
		name       string
		group      int
		qmin, qmax int32
		sym        bool
	}{
		{"uint4 group 32", 32, 0, 15, false},
		{"int4 group 64 symmetric", 64, -8, 7, true},
		{"int3 per-channel", 128, -4, 3, false},
	} {
		l := &Layer{N: 32, K: 128, QMin: tc.qmin, QMax: tc.qmax, Group: tc.group, Symmetric: tc.sym}
		l.W = make([]float32, l.N*l.K)
		for i := range l.W {
			l.W[i] = float32(0.02 * studentT(r, 3))
		}
		fitMinMax(l)
		w := append([]float32(nil), l.W...)
		rtn := weightMSE(l, l.RTN(), w)
		res, err := Run("hqq", l, nil, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Check(); err != nil {
			t.Fatalf("%s: after HQQ: %v", tc.name, err)
		}
		got := weightMSE(l, res.Codes, w)
		t.Logf("%s: weight MSE RTN %.4g, HQQ %.4g (%.2fx)", tc.name, rtn, got, rtn/got)
		if !(got < 0.97*rtn) {
			t.Errorf("%s: HQQ weight MSE %.4g is not 3%% below RTN's %.4g", tc.name, got, rtn)
		}
		// The codes are nearest rounding on the new grid: what QDQ
		// insertion reproduces from the written-back weights.
		for i, q := range l.RTN() {
			if q != res.Codes[i] {
				t.Fatalf("%s: code %d is not nearest on the returned grid", tc.name, i)
			}
		}
	}
}

func TestHQQPinnedKeepsGrid(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	l := randomLayer(r, 4, 32, 32, 0, 15, false)
	l.Pinned = true
	scale := append([]float32(nil), l.Scale...)
	if _, err := Run("hqq", l, nil, DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	for i := range scale {
		if scale[i] != l.Scale[i] {
			t.Fatal("HQQ changed a pinned scale")
		}
	}
}
