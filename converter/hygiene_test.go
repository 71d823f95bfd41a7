package converter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// convertIR3 converts the IR 3 style ConvBNReLU (every weight also a graph
// input) and returns the float and QDQ paths and the report.
func convertIR3(t *testing.T, keep bool) (model, out string, rep *Report) {
	t.Helper()
	dir, model, cal := withSamples(t, testmodels.IR3Style(testmodels.ConvBNReLU(1)), 8, []int{1, 3, 32, 32}, 1)
	out = filepath.Join(dir, "q.onnx")
	rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Observer: calib.Config{}, KeepInitializerInputs: keep})
	if err != nil {
		t.Fatal(err)
	}
	return model, out, rep
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestIR3InitializerInputs: weights listed as graph inputs become constants,
// so the QDQ model holds only their quantized copies, lists no weight as an
// input and is smaller than the float model; the report names what went. With
// KeepInitializerInputs the inputs stay.
func TestIR3InitializerInputs(t *testing.T) {
	model, out, rep := convertIR3(t, false)
	f, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	weightInputs := len(f.Graph.Inputs) - 1
	q, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Graph.Inputs) != 1 || q.Graph.Inputs[0].Name != "input" {
		t.Errorf("inputs %d, want only \"input\"", len(q.Graph.Inputs))
	}
	if q.IRVersion() < 4 {
		t.Errorf("ir_version %d: initializers that are not inputs need IR 4", q.IRVersion())
	}
	floats := 0
	for _, v := range q.Graph.Initializers {
		if len(v.Consumers) == 0 {
			t.Errorf("initializer %q is read by nothing", v.Name)
		}
		if v.Const.DType == graph.Float && v.Const.Len() > 32 {
			floats++ // only scales and small tensors may stay float
		}
	}
	if floats != 0 {
		t.Errorf("%d large float initializers left beside the quantized weights", floats)
	}
	fs, qs := fileSize(t, model), fileSize(t, out)
	t.Logf("float %d bytes, QDQ %d bytes (%.2fx)", fs, qs, float64(fs)/float64(qs))
	if qs >= fs {
		t.Errorf("QDQ model %d bytes is not below the float model's %d", qs, fs)
	}
	var removed []string
	for _, c := range rep.Passes {
		if c.Pass == "initializers-not-inputs" {
			if c.Count != weightInputs {
				t.Errorf("initializers-not-inputs: %d changed, want %d", c.Count, weightInputs)
			}
			removed = c.Notes
		}
	}
	if len(removed) == 0 || !strings.Contains(strings.Join(removed, " "), `input "`) {
		t.Errorf("the report does not list the removed inputs: %v", removed)
	}
	if last := rep.Passes[len(rep.Passes)-1]; last.Pass != "drop-unused-initializers" {
		t.Errorf("last report entry %q, want the sweep after QDQ insertion", last.Pass)
	}

	_, out, rep = convertIR3(t, true)
	q, err = graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Graph.Inputs) != weightInputs+1 {
		t.Errorf("KeepInitializerInputs: %d inputs, want %d", len(q.Graph.Inputs), weightInputs+1)
	}
	for _, c := range rep.Passes {
		if c.Pass == "initializers-not-inputs" {
			t.Error("KeepInitializerInputs still ran initializers-not-inputs")
		}
	}
}
