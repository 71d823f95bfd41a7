package wround

import (
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
