package testmodels_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/testmodels"
)

// built caches the zoo models for this test binary (seed 1): the builder's
// probe takes seconds on the larger ones. Callers must not modify them.
var built = map[string]*graph.Model{}

func zooModel(t *testing.T, name string) *graph.Model {
	t.Helper()
	if m := built[name]; m != nil {
		return m
	}
	start := time.Now()
	m, err := testmodels.Build(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %v", time.Since(start))
	built[name] = m
	return m
}

// std is the standard deviation of a float32 tensor.
func std(t *graph.Tensor) float64 {
	var s1, s2 float64
	d := t.Float32s()
	for _, v := range d {
		s1 += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(len(d))
	return math.Sqrt(math.Max(s2/n-(s1/n)*(s1/n), 0))
}

// TestZooTrainedLike runs every zoo model on its sample inputs and checks what
// "trained-like" promises: each block output keeps a standard deviation in
// [0.1, 10], and the logits spread by input so that top-1 is not a fixed class
// nor a near tie.
func TestZooTrainedLike(t *testing.T) {
	for _, name := range testmodels.Zoo() {
		t.Run(name, func(t *testing.T) {
			m := zooModel(t, name)
			if err := m.Graph.Validate(); err != nil {
				t.Fatalf("invalid model: %v", err)
			}
			blocks := testmodels.BlockOutputs(m)
			if len(blocks) == 0 {
				t.Fatal("no block outputs recorded")
			}
			want := map[string]bool{}
			for _, b := range blocks {
				want[b] = true
			}
			stds := map[string][]float64{}
			s, err := kernels.NewSession(m, kernels.Options{Threads: 1, TapOnly: want, Tap: func(n string, x *graph.Tensor) {
				stds[n] = append(stds[n], std(x))
			}})
			if err != nil {
				t.Fatal(err)
			}
			n := 16
			if name == "yolo-silu" {
				n = 4 // no logits to check, block scales only
			}
			samples, err := testmodels.Samples(name, m, n, 7)
			if err != nil {
				t.Fatal(err)
			}
			out := m.Graph.Outputs[0].Name
			var logits, noisy [][]float32
			r := rand.New(rand.NewPCG(5, 5))
			for _, in := range samples {
				res, err := s.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				logits = append(logits, append([]float32(nil), res[out].Float32s()...))
				if name == "yolo-silu" {
					continue // detections: checked by the block outputs
				}
				// The same input with noise of std 0.01, about int8 rounding
				// of an input range of +-4.
				perturbed := map[string]*graph.Tensor{}
				for k, x := range in {
					y := x.Clone()
					for i, d := 0, y.Float32s(); i < len(d); i++ {
						d[i] += float32(0.01 * r.NormFloat64())
					}
					perturbed[k] = y
				}
				if res, err = s.Run(perturbed); err != nil {
					t.Fatal(err)
				}
				noisy = append(noisy, append([]float32(nil), res[out].Float32s()...))
			}
			for b := range stds {
				stds[b] = stds[b][:0:0]
			}
			for _, in := range samples { // block scales on the clean inputs only
				if _, err := s.Run(in); err != nil {
					t.Fatal(err)
				}
			}
			lo, hi := math.Inf(1), 0.0
			for _, b := range blocks {
				if len(stds[b]) != n {
					t.Fatalf("block output %q seen %d times, want %d", b, len(stds[b]), n)
				}
				v := median(stds[b])
				lo, hi = math.Min(lo, v), math.Max(hi, v)
				if v < 0.1 || v > 10 {
					t.Errorf("block output %q: std %.3g outside [0.1, 10]", b, v)
				}
			}
			t.Logf("%d block outputs, std from %.3g to %.3g", len(blocks), lo, hi)
			checkLogits(t, name, m, logits, noisy)
		})
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// checkLogits: for classifiers, the per-class logit spread across inputs is
// O(1), and top-1 is neither one fixed class nor a coin toss: it changes from
// input to input but survives input noise of quantization size (most rows
// keep their top-1, 85% allowed), so top-1 agreement measures a quantizer, not chance.
func checkLogits(t *testing.T, name string, m *graph.Model, logits, noisy [][]float32) {
	shape, _ := m.Graph.Outputs[0].StaticShape()
	classes := shape[len(shape)-1]
	if name == "yolo-silu" {
		return // detections: checked by the block outputs
	}
	var tops []int
	var margins, spreads []float64
	agree := 0
	for i, l := range logits {
		for r := 0; r+classes <= len(l); r += classes {
			best, second := top2(l[r : r+classes])
			tops = append(tops, best)
			margins = append(margins, float64(l[r+best]-l[r+second]))
			if b, _ := top2(noisy[i][r : r+classes]); b == best {
				agree++
			}
		}
	}
	for j := 0; j < classes && len(logits[0]) == classes; j++ {
		var v []float64
		for _, l := range logits {
			v = append(v, float64(l[j]))
		}
		spreads = append(spreads, stdOf(v))
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(tops)))
	kept := float64(agree) / float64(len(tops))
	t.Logf("top-1 over %d rows: %d distinct classes; median margin %.3g; median per-class spread across inputs %.3g; top-1 kept under noise %.0f%%", len(tops), len(distinct), median(margins), medianOr(spreads), 100*kept)
	if kept < 0.85 {
		t.Errorf("top-1 kept on only %.0f%% of rows under input noise of 0.01: a coin toss", 100*kept)
	}
	if len(distinct) < min(4, len(tops)/2) {
		t.Errorf("top-1 takes only %d classes over %d rows: logits do not depend on the input", len(distinct), len(tops))
	}
	if mm := median(margins); mm < 0.1 {
		t.Errorf("median top-1 margin %.3g < 0.1: top-1 is a near tie", mm)
	}
}

// top2 returns the indices of the largest and second largest values.
func top2(row []float32) (best, second int) {
	best, second = -1, -1
	for j := range row {
		if best < 0 || row[j] > row[best] {
			best, second = j, best
		} else if second < 0 || row[j] > row[second] {
			second = j
		}
	}
	return best, second
}

func stdOf(v []float64) float64 {
	var s1, s2 float64
	for _, x := range v {
		s1 += x
		s2 += x * x
	}
	n := float64(len(v))
	return math.Sqrt(math.Max(s2/n-(s1/n)*(s1/n), 0))
}

func medianOr(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return median(v)
}

// TestZooDeterministic: the same seed gives a byte-identical model (the probe
// runs on two goroutines), another seed a different one.
func TestZooDeterministic(t *testing.T) {
	dir := t.TempDir()
	save := func(name string, seed uint64, file string) []byte {
		m, err := testmodels.Build(name, seed)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, file)
		if err := graph.Save(m, p); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, name := range []string{"resnet20", "transformer"} {
		a, b, c := save(name, 1, "a.onnx"), save(name, 1, "b.onnx"), save(name, 2, "c.onnx")
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two builds with seed 1 differ", name)
		}
		if bytes.Equal(a, c) {
			t.Errorf("%s: seeds 1 and 2 give the same model", name)
		}
	}
}

func TestSamplesReproducible(t *testing.T) {
	m, err := testmodels.Build("lstm", 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := testmodels.Samples("lstm", m, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := testmodels.Samples("lstm", m, 2, 3)
	if x, y := a[1]["input"].Float32s(), b[1]["input"].Float32s(); !slices.Equal(x, y) || len(x) != 64*64 {
		t.Errorf("samples are not reproducible or have %d values, want %d", len(x), 64*64)
	}
	if _, err := testmodels.Build("no-such-model", 1); err == nil {
		t.Error("Build accepted an unknown name")
	}
}
