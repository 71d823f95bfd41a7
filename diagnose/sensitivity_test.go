package diagnose_test

import (
	"context"
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/diagnose"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
)

// quantized returns the planted model quantized in memory and its samples.
func quantized(t *testing.T, m *graph.Model) (*converter.Quantized, dataset.Source) {
	t.Helper()
	dir := t.TempDir()
	fp := saveModel(t, m, dir, "float.onnx")
	data := writeSamples(t, m, filepath.Join(dir, "calib"), 8, 1)
	q, err := converter.Quantize(context.Background(), converter.Options{Model: fp, Calib: data, Threads: 1}, true)
	if err != nil {
		t.Fatal(err)
	}
	src, err := dataset.Open(data, dataset.InputsOf(q.Float), dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q, src
}

// TestSensitivityRanksPlantedFirst, in both modes, and splits its effect:
// the planted layer's damage is in its activation, not its weights.
func TestSensitivityRanksPlantedFirst(t *testing.T) {
	q, src := quantized(t, testmodels.PlantedOutlier(1))
	for _, mode := range []string{diagnose.QuantOne, diagnose.FloatOne} {
		res, err := diagnose.Sensitivity(context.Background(), q.Float, q.Plan, src, diagnose.SensitivityOptions{Mode: mode, Threads: 1, Split: true})
		if err != nil {
			t.Fatal(err)
		}
		top := res.Rows[0]
		t.Logf("%s: top %s %.2f dB (weights %.2f, activations %.2f), next %s %.2f dB", mode, top.Node, top.SQNR, top.Weight.SQNR, top.Activation.SQNR, res.Rows[1].Node, res.Rows[1].SQNR)
		if top.Node != testmodels.PlantedNode || top.Rank != 1 {
			t.Fatalf("%s: first is %s, want %s", mode, top.Node, testmodels.PlantedNode)
		}
		if mode == diagnose.QuantOne && !(top.Activation.SQNR < 10 && top.Weight.SQNR > 30) {
			t.Errorf("split: weights %.2f dB, activations %.2f dB", top.Weight.SQNR, top.Activation.SQNR)
		}
		if mode == diagnose.FloatOne && (res.All == nil || res.All.SQNR > 10 || top.SQNR < 25) {
			t.Errorf("float-one: all quantized %+v, planted left float %.2f dB", res.All, top.SQNR)
		}
	}
}

// TestSensitivityPrefixReuseIsExact: every unit's result from the suffix
// run equals a full run of the variant model.
func TestSensitivityPrefixReuseIsExact(t *testing.T) {
	q, src := quantized(t, testmodels.ConvBNReLU(4))
	res, err := diagnose.Sensitivity(context.Background(), q.Float, q.Plan, src, diagnose.SensitivityOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) < 6 {
		t.Fatalf("%d units", len(res.Rows))
	}
	for _, r := range res.Rows {
		names := map[string]bool{}
		for _, n := range r.Tensors() {
			names[n] = true
		}
		b, _ := graph.Marshal(q.Float)
		vm, _ := graph.Decode(b, "", graph.LoadOptions{})
		if err := passes.InsertQDQ(vm, diagnose.SubPlan(q.Plan, names, true)); err != nil {
			t.Fatal(err)
		}
		full, err := diagnose.Compare(context.Background(), q.Float, vm, src, diagnose.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		o := full.Outputs[0]
		if math.Abs(o.SQNR-r.SQNR) > 1e-9 || math.Abs(o.Cosine-r.Cosine) > 1e-12 {
			t.Errorf("%s: suffix run %.6f dB / %.9f, full run %.6f dB / %.9f", r.Node, r.SQNR, r.Cosine, o.SQNR, o.Cosine)
		}
	}
}

// TestSensitivityLanesMatchOneThread: variants measured side by side
// (three lanes, sessions made in small chunks so that several chunks run
// and are built ahead) rank and score every unit exactly as one thread
// does, in both modes.
func TestSensitivityLanesMatchOneThread(t *testing.T) {
	q, src := quantized(t, testmodels.ConvBNReLU(4))
	for _, mode := range []string{diagnose.QuantOne, diagnose.FloatOne} {
		var got [2]*diagnose.SensitivityResult
		for i, threads := range []int{1, 3} {
			res, err := diagnose.Sensitivity(context.Background(), q.Float, q.Plan, src, diagnose.SensitivityOptions{
				Mode: mode, Threads: threads, Split: true, SessionBudget: 1 << 9})
			if err != nil {
				t.Fatal(err)
			}
			got[i] = res
		}
		// Float-one variants hold none of their own constants (the one
		// float node's weights are the float model's): one chunk.
		if mode == diagnose.QuantOne && got[1].BaseRuns < 3 {
			t.Fatalf("%s: %d chunks, want several", mode, got[1].BaseRuns)
		}
		if !reflect.DeepEqual(got[0].Rows, got[1].Rows) || !reflect.DeepEqual(got[0].All, got[1].All) || got[0].SuffixShare != got[1].SuffixShare {
			t.Fatalf("%s: 3 lanes differ from 1 thread:\n%+v\n%+v", mode, got[1].Rows, got[0].Rows)
		}
		t.Logf("%s: %d units in %d chunks, the same at 1 thread and 3 lanes", mode, len(got[0].Rows), got[1].BaseRuns)
	}
}
