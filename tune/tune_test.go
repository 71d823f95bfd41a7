package tune_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/testmodels"
	"github.com/onnxq/onnxq/tune"
)

// setup writes the planted-outlier model with calibration and held-out samples.
func setup(t *testing.T) (model, calib, eval string) {
	t.Helper()
	dir := t.TempDir()
	m := testmodels.PlantedOutlier(1)
	model = filepath.Join(dir, "planted.onnx")
	if err := graph.Save(m, model); err != nil {
		t.Fatal(err)
	}
	write := func(sub string, n int, seed uint64) string {
		d := filepath.Join(dir, sub)
		os.MkdirAll(d, 0o755)
		r := rand.New(rand.NewPCG(seed, 3))
		for i := range n {
			x := make([]float32, 3*32*32)
			for j := range x {
				x[j] = float32(r.NormFloat64())
			}
			if err := npy.WriteFile(filepath.Join(d, fmt.Sprintf("%03d.npy", i)), graph.Float32Tensor([]int{1, 3, 32, 32}, x)); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	return model, write("calib", 16, 1), write("eval", 12, 2)
}

// TestTuneRaisesThePlantedLayer: the target is met by raising exactly the
// planted layer, for both preferences, and converting with the written
// overrides meets it on the held-out data too.
func TestTuneRaisesThePlantedLayer(t *testing.T) {
	model, calib, eval := setup(t)
	for _, prefer := range []string{tune.PreferInt16, tune.PreferFloat} {
		res, err := tune.Run(context.Background(), tune.Options{
			Convert: converter.Options{Model: model, Calib: calib, Threads: 1}, Eval: eval,
			TargetCos: 0.999, Prefer: prefer,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Met || len(res.Best.Nodes) != 1 || res.Best.Nodes[0] != testmodels.PlantedNode {
			t.Fatalf("%s: met %v, raised %v; want exactly %s", prefer, res.Met, res.Best.Nodes, testmodels.PlantedNode)
		}
		if res.Steps[0].Phase != "base" || res.Steps[0].Met || res.Best.Metric < 0.999 || res.Best.Int8MACShare >= 1 {
			t.Errorf("%s: steps %+v best %+v", prefer, res.Steps, res.Best)
		}
		// The overrides, written and read back, give the same model quality.
		p := filepath.Join(t.TempDir(), "q.json")
		if err := res.Overrides.Write(p); err != nil {
			t.Fatal(err)
		}
		f, _, err := overrides.LoadAny(p)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "q.onnx")
		rep, err := converter.Convert(context.Background(), converter.Options{Model: model, Calib: calib, Eval: eval, Output: out, Overrides: f, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if c := rep.Measured.Outputs[0].Cosine; c < 0.999 {
			t.Errorf("%s: converted with the tuned overrides: cosine %.5f on held-out data", prefer, c)
		}
		t.Logf("%s: raised %v, cosine %.6f, int8 MACs %.1f%%, %d candidates", prefer, res.Best.Nodes, res.Best.Metric, 100*res.Best.Int8MACShare, len(res.Steps))
	}
}

// TestTuneUnreachable: a target no candidate meets returns ErrNotMet with
// the best candidate found.
func TestTuneUnreachable(t *testing.T) {
	model, calib, eval := setup(t)
	res, err := tune.Run(context.Background(), tune.Options{
		Convert: converter.Options{Model: model, Calib: calib, Threads: 1}, Eval: eval,
		TargetSQNR: 150, Prefer: tune.PreferInt16, MaxRaise: 2,
	})
	if !errors.Is(err, tune.ErrNotMet) || res == nil || res.Best.Met || res.Overrides == nil || res.Best.Raised == 0 {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if !strings.Contains(err.Error(), "best sqnr_db") {
		t.Errorf("error: %v", err)
	}
}

// TestEvalCmd: the command's last number is the metric; failures and
// missing numbers are errors that say so.
func TestEvalCmd(t *testing.T) {
	ctx := context.Background()
	if v, err := tune.RunEvalCmd(ctx, "echo loading {model}; echo 'top-1: 83.5%'", "/tmp/x y.onnx"); err != nil || v != 83.5 {
		t.Errorf("got %v, %v", v, err)
	}
	if _, err := tune.RunEvalCmd(ctx, "echo oops >&2; exit 3", "m.onnx"); err == nil || !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), "oops") {
		t.Errorf("failing command: %v", err)
	}
	if _, err := tune.RunEvalCmd(ctx, "echo no number here", "m.onnx"); err == nil || !strings.Contains(err.Error(), "printed no number") {
		t.Errorf("no number: %v", err)
	}
	// tune stops on the first candidate when the command fails.
	model, calib, _ := setup(t)
	_, err := tune.Run(ctx, tune.Options{Convert: converter.Options{Model: model, Calib: calib, Threads: 1}, EvalCmd: "false", Target: 1})
	if err == nil || errors.Is(err, tune.ErrNotMet) {
		t.Errorf("failing eval command: %v", err)
	}
}

// TestTuneOptionErrors: targets and preferences are checked first.
func TestTuneOptionErrors(t *testing.T) {
	for _, c := range []struct {
		opt  tune.Options
		want string
	}{
		{tune.Options{}, "give one target"},
		{tune.Options{TargetCos: 0.9, TargetSQNR: 20}, "give one target"},
		{tune.Options{TargetCos: 2}, "not in (-1, 1]"},
		{tune.Options{TargetCos: 0.9, Prefer: "int3"}, "not int16"},
		{tune.Options{TargetCos: 0.9, Prefer: "int8"}, "4-bit"},
		{tune.Options{TargetCos: 0.9}, "--calib"},
	} {
		if _, err := tune.Run(context.Background(), c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opt, err, c.want)
		}
	}
}

// TestTuneReferenceSameSteps: keeping the float model's outputs across the
// evaluations gives every step the metric that running it each time gives,
// at 1 and 2 threads (lanes).
func TestTuneReferenceSameSteps(t *testing.T) {
	model, calib, eval := setup(t)
	defer tune.SetNoReference(false)
	for _, threads := range []int{1, 2} {
		var steps [2][]float64
		for i, off := range []bool{false, true} {
			tune.SetNoReference(off)
			res, err := tune.Run(context.Background(), tune.Options{
				Convert: converter.Options{Model: model, Calib: calib, Threads: threads}, Eval: eval, TargetCos: 0.999,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range res.Steps {
				steps[i] = append(steps[i], st.Metric)
			}
		}
		if fmt.Sprint(steps[0]) != fmt.Sprint(steps[1]) || len(steps[0]) < 2 {
			t.Errorf("threads %d: steps' metrics %v with the kept outputs, %v running the float model", threads, steps[0], steps[1])
		}
	}
}

// TestTuneOnEveryFamily runs tune (int16 preference, a cosine target few
// reach) with the CLI's defaults (SmoothQuant of 8-bit MatMul inputs on) on
// every zoo model and family but the slowest, and holds each candidate it
// measures to the base conversion's cosine less 0.002: raising tensors to
// 16 bits may cost a little where ranges shift, not the model. (Candidates
// measured with ranges the cache kept from another float model fell to
// cosine 0.25 on the ViT.)
func TestTuneOnEveryFamily(t *testing.T) {
	if testing.Short() {
		t.Skip("converts every family a few times")
	}
	for _, name := range append(testmodels.Zoo(), testmodels.Families()...) {
		if name == "yolo-silu" || name == "efficientnet" {
			continue // hundreds of nodes: minutes of candidates
		}
		t.Run(name, func(t *testing.T) {
			m, err := testmodels.Build(name, 1)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			model, cal := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "calib")
			if err := graph.Save(m, model); err != nil {
				t.Fatal(err)
			}
			samples, err := testmodels.Samples(name, m, 6, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := testmodels.WriteSamples(cal, samples); err != nil {
				t.Fatal(err)
			}
			res, err := tune.Run(context.Background(), tune.Options{
				Convert:   converter.Options{Model: model, Calib: cal, Threads: 2, SmoothQuantDefault: true},
				TargetCos: 0.99999, Prefer: tune.PreferInt16,
			})
			if err != nil && !errors.Is(err, tune.ErrNotMet) {
				t.Fatal(err)
			}
			base := res.Steps[0].Metric
			var worst tune.Step
			worst.Metric = math.Inf(1)
			for _, s := range res.Steps {
				if s.Metric < worst.Metric {
					worst = s
				}
			}
			t.Logf("base cosine %.6f, best %.6f with %d raised, worst candidate %.6f (%s, %d raised), %d candidates", base, res.Best.Metric, res.Best.Raised, worst.Metric, worst.Phase, worst.Raised, len(res.Steps))
			if worst.Metric < base-0.002 {
				t.Errorf("a candidate with %d tensors raised measured cosine %.6f, the base %.6f", worst.Raised, worst.Metric, base)
			}
		})
	}
}
