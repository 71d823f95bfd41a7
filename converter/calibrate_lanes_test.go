package converter

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

// TestCalibrationLanesMatchOneSession: calibration with samples run side
// by side (3 lanes) writes the same model bytes as one session, for
// min/max, the histogram observers and bias correction (its channel sums
// added in sample order); a moving average keeps one session; a sample
// that fails to read fails the conversion with the error one session
// gives, also with bias correction (lanes waiting their turn stop).
func TestCalibrationLanesMatchOneSession(t *testing.T) {
	m := testmodels.MobileNetV2Block(1)
	dir, model, cal := withSamples(t, m, 13, []int{1, 8, 16, 16}, 7)
	st := &settings{}
	names := []string{m.Graph.Nodes[0].Outputs[0].Name}
	if l := calibLanes(m, 13, Options{Threads: 3}, st, names); l != 3 {
		t.Fatalf("%d lanes for 3 threads, want 3", l)
	}
	if l := calibLanes(m, 13, Options{Threads: 3, Observer: calib.Config{Momentum: 0.1}}, st, names); l != 1 {
		t.Errorf("%d lanes with a moving average, want 1", l)
	}
	byKind := map[string][]byte{}
	for _, kind := range []string{"minmax", "percentile", "entropy", "minmax+bias-correction"} {
		var first []byte
		for _, threads := range []int{1, 3} {
			opt := Options{Model: model, Output: filepath.Join(dir, fmt.Sprintf("%s%d.onnx", kind, threads)), Calib: cal, Observer: calib.Config{Kind: kind}, Threads: threads}
			if kind == "minmax+bias-correction" {
				opt.Observer.Kind, opt.BiasCorrection = "minmax", true
			}
			b := convertedBytes(t, opt)
			if first == nil {
				first = b
			} else if !bytes.Equal(first, b) {
				t.Errorf("%s: 3 lanes differ from one session", kind)
			}
		}
		byKind[kind] = first
	}
	if bytes.Equal(byKind["minmax"], byKind["minmax+bias-correction"]) {
		t.Errorf("bias correction changed nothing: the lanes' means are untested")
	}
	// Samples 5 and 9 of the wrong shape: both fail, the first is reported.
	for _, i := range []int{5, 9} {
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("s%03d.npy", i)), graph.NewTensor(graph.Float, []int{1, 8, 15, 16})); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []string
	for _, threads := range []int{1, 3, 3} {
		_, err := Convert(context.Background(), Options{Model: model, Output: filepath.Join(dir, "bad.onnx"), Calib: cal, Threads: threads, BiasCorrection: len(msgs) == 2})
		if err == nil {
			t.Fatalf("threads %d: no error with a sample of the wrong shape", threads)
		}
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] || msgs[0] != msgs[2] {
		t.Errorf("errors differ:\none session: %s\n3 lanes:     %s\nwith bias correction: %s", msgs[0], msgs[1], msgs[2])
	}
	t.Logf("a bad sample: %s", msgs[1])
}

// convertedBytes converts as opt says and returns the written model's bytes.
func convertedBytes(t *testing.T, opt Options) []byte {
	t.Helper()
	if _, err := Convert(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(opt.Output)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
