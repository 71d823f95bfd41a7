package converter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

// halfSamples writes n seeded samples of shape as .npy files of type dt.
func halfSamples(t *testing.T, dir string, n int, shape []int, dt graph.DataType, seed uint64) {
	t.Helper()
	mustMkdir(t, dir)
	for i := 0; i < n; i++ {
		x := uniformInput(shape, seed+uint64(i))
		if dt == graph.Float16 { // .npy has no bfloat16: those samples stay float32
			x = toType(x, dt)
		}
		if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("s%03d.npy", i)), x); err != nil {
			t.Fatal(err)
		}
	}
}

func uniformInput(shape []int, seed uint64) *graph.Tensor {
	x := graph.NewTensor(graph.Float, shape)
	d := x.Float32s()
	s := seed*2654435761 + 1
	for i := range d {
		s = s*6364136223846793005 + 1442695040888963407
		d[i] = float32(s>>40)/float32(1<<24)*2 - 1
	}
	return x
}

func toType(x *graph.Tensor, dt graph.DataType) *graph.Tensor {
	out := graph.NewTensor(dt, x.Shape)
	switch d := out.Data().(type) {
	case []graph.Float16Bits:
		for i, v := range x.Float32s() {
			d[i] = graph.ToFloat16(v)
		}
	case []graph.BFloat16Bits:
		for i, v := range x.Float32s() {
			d[i] = graph.ToBFloat16(v)
		}
	}
	return out
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// A float16 or bfloat16 model converts (with bias correction) to a QDQ model
// in its own type: every
// scale is of that type (so DequantizeLinear outputs it), the opset is at
// least 19, no value is declared float32, and onnxq runs the result with the
// float model's top-1 on the test inputs.
func TestConvertHalfModel(t *testing.T) {
	for _, dt := range []graph.DataType{graph.Float16, graph.BFloat16} {
		for name, build := range map[string]func(uint64) *graph.Model{"firenet": testmodels.FireNet, "resnetlite": testmodels.ResNetLite} {
			t.Run(dt.Short()+"/"+name, func(t *testing.T) {
				m := build(1)
				if err := testmodels.ToHalf(m, dt, false); err != nil {
					t.Fatal(err)
				}
				dims, _ := m.Graph.Inputs[0].StaticShape()
				dir := t.TempDir()
				model, out, cal := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "q.onnx"), filepath.Join(dir, "calib")
				if err := graph.Save(m, model); err != nil {
					t.Fatal(err)
				}
				halfSamples(t, cal, 16, dims, dt, 1)
				rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, NoMeasure: true, BiasCorrection: true})
				if err != nil {
					t.Fatal(err)
				}
				corrected := 0
				for _, c := range rep.Passes {
					if strings.HasPrefix(c.Pass, "bias-correction") {
						corrected += c.Count
					}
				}
				if corrected == 0 {
					t.Error("bias correction corrected no layer of the half model")
				}
				q, err := graph.Load(out)
				if err != nil {
					t.Fatal(err)
				}
				if v := q.OpsetVersion(""); v < 19 {
					t.Errorf("opset %d; half scales need 19", v)
				}
				var dqs, weights int
				for _, n := range q.Graph.Nodes {
					if n.OpType != "DequantizeLinear" && n.OpType != "QuantizeLinear" {
						continue
					}
					if s := n.Input(1).Const; s == nil || s.DType != dt {
						t.Fatalf("%s %s: scale is not a %s constant", n.OpType, n, dt.Short())
					}
					if n.OpType == "DequantizeLinear" {
						dqs++
						if n.Input(0).Const != nil {
							weights++
						}
					}
				}
				for _, v := range q.Graph.Values() {
					if v.ElemType() == graph.Float {
						t.Errorf("value %q is declared float32 in a %s model", v.Name, dt.Short())
					}
				}
				if weights == 0 || dqs == weights || len(rep.Tensors) == 0 {
					t.Fatalf("%d DequantizeLinear, %d on weights: the model is not quantized", dqs, weights)
				}
				fs, err := kernels.NewSession(m, kernels.Options{Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				qs, err := kernels.NewSession(q, kernels.Options{Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				agree, n := 0, 50
				for i := 0; i < n; i++ {
					in := map[string]*graph.Tensor{"input": toType(uniformInput(dims, uint64(1000+i)), dt)}
					fo, err := fs.Run(in)
					if err != nil {
						t.Fatal(err)
					}
					qo, err := qs.Run(in)
					if err != nil {
						t.Fatal(err)
					}
					if qo["logits"].DType != dt {
						t.Fatalf("QDQ output is %s", qo["logits"].DType.Short())
					}
					a, _ := fo["logits"].AsFloat32()
					b, _ := qo["logits"].AsFloat32()
					if argmax(a) == argmax(b) {
						agree++
					}
				}
				t.Logf("%d constants (weights, biases) and %d activations quantized; top-1 agreement %d/%d in onnxq", weights, dqs-weights, agree, n)
				if agree < n*95/100 {
					t.Errorf("top-1 agreement %d/%d", agree, n)
				}
			})
		}
	}
}

// A conversion that would quantize nothing fails with one line that says why,
// and writes nothing.
func TestNothingToQuantize(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]func() *graph.Model{
		"no quantizable op": func() *graph.Model {
			m := graph.NewModel(graph.Opset{Domain: "", Version: 13})
			x := m.Graph.AddInput("input", graph.Float, []int64{1, 8})
			y := m.Graph.AddNode("Tanh", "tanh", []*graph.Value{x}, []string{"y"}).Output()
			y.SetTensorType(graph.Float, []int64{1, 8})
			m.Graph.AddOutput(y)
			return m
		},
		"double": func() *graph.Model {
			m := graph.NewModel(graph.Opset{Domain: "", Version: 13})
			x := m.Graph.AddInput("input", graph.Double, []int64{1, 8})
			w := m.Graph.AddInitializer("w", graph.NewTensor(graph.Double, []int{8, 4}))
			y := m.Graph.AddNode("MatMul", "mm", []*graph.Value{x, w}, []string{"y"}).Output()
			y.SetTensorType(graph.Double, []int64{1, 4})
			m.Graph.AddOutput(y)
			return m
		},
		"quantized already": func() *graph.Model {
			m := graph.NewModel(graph.Opset{Domain: "", Version: 13})
			x := m.Graph.AddInput("input", graph.Float, []int64{1, 8})
			q := m.Graph.AddNode("DynamicQuantizeLinear", "dql", []*graph.Value{x}, []string{"xq", "xs", "xz"})
			w := m.Graph.AddInitializer("w", graph.NewTensor(graph.Int8, []int{8, 4}))
			y := m.Graph.AddNode("MatMulInteger", "mmi", []*graph.Value{q.Outputs[0], w, q.Outputs[2]}, []string{"y"}).Output()
			y.SetTensorType(graph.Int32, []int64{1, 4})
			m.Graph.AddOutput(y)
			return m
		},
	}
	want := map[string]string{"no quantizable op": "has none of the ops onnxq quantizes", "double": "compute in float64",
		"quantized already": "the model is quantized already (1 DynamicQuantizeLinear, 1 MatMulInteger)"}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			model, out := filepath.Join(dir, name+".onnx"), filepath.Join(dir, name+".qdq.onnx")
			if err := graph.Save(build(), model); err != nil {
				t.Fatal(err)
			}
			_, err := Convert(context.Background(), Options{Model: model, Output: out, WeightOnly: true})
			if err == nil {
				t.Fatal("converting a model with nothing to quantize succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "nothing to quantize: ") || !strings.Contains(msg, want[name]) || strings.Contains(msg, "\n") {
				t.Errorf("error %q", msg)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s was written", out)
			}
		})
	}
}
