package wround

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
)

// realLayer is one pointwise (1x1) conv of a trained network with the
// inputs it sees on a real image: its rows are the input's pixels.
type realLayer struct {
	name string
	l    *Layer
	x    []float32 // rows x K
	m    int
}

// fastestDetLayers runs FastestDet (a trained COCO detector from
// ../shared/models) on its reference image and returns its pointwise convs
// with at least minK input channels, their weights on a symmetric int4
// per-channel grid (the converter's default fit), and their input rows.
func fastestDetLayers(t *testing.T, minK, count int) []realLayer {
	t.Helper()
	dir := filepath.Join(testdata.Root(), "..", "shared", "models", "fastestdet")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("ONNXQ_REQUIRE_DATA") != "" {
			t.Fatalf("%s not found: ../shared/models is required", dir)
		}
		t.Skipf("%s not found", dir)
	}
	m, err := graph.Load(filepath.Join(dir, "FastestDet.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := npy.ReadFile(filepath.Join(dir, "reference", "000000000009_input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	var out []realLayer
	want := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if n.OpType != "Conv" || len(out) == count {
			continue
		}
		w := n.Inputs[1].Const
		if g, _ := n.AttrInt("group", 1); w == nil || g != 1 || len(w.Shape) != 4 || w.Shape[2] != 1 || w.Shape[3] != 1 || w.Shape[1] < minK {
			continue
		}
		l := &Layer{N: w.Shape[0], K: w.Shape[1], QMin: -8, QMax: 7, Group: w.Shape[1], Symmetric: true}
		l.W = append([]float32(nil), w.Float32s()...)
		for r := range l.N {
			var amax float32
			for _, v := range l.W[r*l.K : (r+1)*l.K] {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			l.Scale = append(l.Scale, max(amax, 1e-8)/7)
			l.Zero = append(l.Zero, 0)
		}
		out = append(out, realLayer{name: n.Inputs[0].Name, l: l})
		want[n.Inputs[0].Name] = true
	}
	s, err := kernels.NewSession(m, kernels.Options{Threads: 1, TapOnly: want, Tap: func(name string, v *graph.Tensor) {
		for i := range out {
			if out[i].name != name || out[i].x != nil {
				continue
			}
			// NCHW, batch 1: the pixels are the rows.
			c, hw := v.Shape[1], v.Shape[2]*v.Shape[3]
			data := v.Float32s()
			out[i].x, out[i].m = make([]float32, hw*c), hw
			for p := range hw {
				for k := range c {
					out[i].x[p*c+k] = data[k*hw+p]
				}
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(map[string]*graph.Tensor{s.Inputs()[0].Name: img}); err != nil {
		t.Fatal(err)
	}
	if len(out) < count {
		t.Fatalf("%d pointwise convs with K >= %d, want %d", len(out), minK, count)
	}
	return out
}

// On real layers and real inputs, half the pixels to learn from and half
// held out: AdaRound (2000 steps) and AWQ lower int4 nearest rounding's
// output error.
func TestRealLayersFastestDet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs AdaRound on four real layers")
	}
	for _, rl := range fastestDetLayers(t, 48, 4) {
		l := rl.l
		k := l.K
		// Even pixels calibrate, odd ones are held out, at most 2048 each.
		step := max(2, rl.m/2048/2*2)
		var cal, held []float32
		for p := 0; p+1 < rl.m; p += step {
			cal = append(cal, rl.x[p*k:(p+1)*k]...)
			held = append(held, rl.x[(p+1)*k:(p+2)*k]...)
		}
		mc, mh := len(cal)/k, len(held)/k
		rtn := l.RTN()
		nearCal, nearHeld := l.OutputMSE(rtn, cal, mc), l.OutputMSE(rtn, held, mh)

		o := DefaultOptions()
		o.AdaRoundIters, o.AdaRoundLR = 2000, 0.01
		ada, err := Run("adaround", l, &Inputs{X: cal, M: mc}, o)
		if err != nil {
			t.Fatal(err)
		}
		adaCal, adaHeld := l.OutputMSE(ada.Codes, cal, mc)/nearCal, l.OutputMSE(ada.Codes, held, mh)/nearHeld

		aw := *l
		aw.W, aw.Scale, aw.Zero = append([]float32(nil), l.W...), append([]float32(nil), l.Scale...), append([]int32(nil), l.Zero...)
		res, err := Run("awq", &aw, &Inputs{X: cal, M: mc, AbsMean: absMean(cal, mc, k)}, o)
		if err != nil {
			t.Fatal(err)
		}
		awqCal, awqHeld := awqError(&aw, res.Codes, res.InputScale, l.W, cal, mc)/nearCal, awqError(&aw, res.Codes, res.InputScale, l.W, held, mh)/nearHeld
		t.Logf("%s (%dx%d, %d rows): output MSE / nearest: adaround %.3f (held out %.3f), awq %.3f (held out %.3f)", rl.name, l.N, k, mc, adaCal, adaHeld, awqCal, awqHeld)
		// AWQ's grid includes alpha 0 and its clipping only takes gains:
		// on its own rows it is never worse than nearest.
		if awqCal > 1+1e-6 {
			t.Errorf("%s: awq's output MSE is %.3f x nearest's on its own rows", rl.name, awqCal)
		}
		// Measured with the code search: 0.16-0.40 (held out 0.18-0.50);
		// AdaRound alone 0.19-0.46 (0.20-0.54).
		if !(adaCal < 0.45 && adaHeld < 0.55) {
			t.Errorf("%s: adaround's output MSE is %.3f (held out %.3f) x nearest's", rl.name, adaCal, adaHeld)
		}
	}
}
