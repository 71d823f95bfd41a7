//go:build ort

package kernels

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/testmodels"
)

// dqLSTMModel is one DynamicQuantizeLSTM node as ONNX Runtime's
// quantize_dynamic writes it: W and R quantized from float weights (int8
// symmetric with a scale per column, or uint8 with one scale and zero
// points 120 and 135), a bias, with state sequence_lens (rows of 20, 13 and 5
// steps), initial_h and initial_c, and Y, Y_h, Y_c as outputs. It also
// returns the
// LSTM of the dequantized weights, for comparison.
func dqLSTMModel(direction string, signed, state bool) (dq, float *graph.Model) {
	const seq, batch, in, hidden = 20, 3, 16, 32
	dirs := 1
	if direction == "bidirectional" {
		dirs = 2
	}
	b := testmodels.NewBuilder(9, 14)
	wf := b.Normal(dirs*in*4*hidden, 0, 0.3)
	rf := b.Normal(dirs*hidden*4*hidden, 0, 0.2)
	bias := b.Normal(dirs*8*hidden, 0, 0.2)
	// quantize: codes [dirs, k, 4h], their scales and zero points, and the
	// dequantized weights in LSTM's layout [dirs, 4h, k].
	quantize := func(v []float32, k int) (codes *graph.Tensor, scales, zps *graph.Tensor, deq []float32) {
		n := 4 * hidden
		dt := graph.Uint8
		if signed {
			dt = graph.Int8
		}
		codes = graph.NewTensor(dt, []int{dirs, k, n})
		raw := rawBytes(codes)
		deq = make([]float32, len(v))
		var sc []float32
		zpv := make([]byte, dirs)
		for d := range dirs {
			blk := v[d*k*n : (d+1)*k*n]
			colScale := func(j int) float32 {
				var m float32
				for r := range k {
					m = max(m, float32(math.Abs(float64(blk[r*n+j]))))
				}
				return m / 127
			}
			var whole float32
			if !signed {
				whole = colScale(0)
				for j := 1; j < n; j++ {
					whole = max(whole, colScale(j))
				}
				sc = append(sc, whole)
				// Off centre (120 and 135): the weights' zero points are
				// then not 0 once igemm's codes are shifted by 128.
				zpv[d] = byte(120 + 15*d)
			}
			for j := range n {
				s := whole
				if signed {
					s = colScale(j)
					sc = append(sc, s)
				}
				for r := range k {
					q := int(math.RoundToEven(float64(blk[r*n+j] / s)))
					q = max(-127, min(127, q))
					if signed {
						raw[(d*k+r)*n+j] = byte(int8(q))
					} else {
						zp := int(zpv[d])
						q = max(-zp, min(255-zp, q))
						raw[(d*k+r)*n+j] = byte(q + zp)
					}
					deq[(d*n+j)*k+r] = float32(q) * s
				}
			}
		}
		shape := []int{dirs}
		if signed {
			shape = []int{dirs, n}
		}
		scales = graph.Float32Tensor(shape, sc)
		// The zero points take the scales' shape (ORT reads the first of
		// each direction).
		zps = graph.NewTensor(dt, shape)
		zr := rawBytes(zps)
		for i := range zr {
			zr[i] = zpv[i*dirs/len(zr)]
		}
		return codes, scales, zps, deq
	}
	wq, ws, wz, wd := quantize(wf, in)
	rq, rs, rz, rd := quantize(rf, hidden)
	outs := func(g *graph.Graph, n *graph.Node) {
		for i, s := range [][]int{{seq, dirs, batch, hidden}, {dirs, batch, hidden}, {dirs, batch, hidden}} {
			dims := make([]int64, len(s))
			for j, d := range s {
				dims[j] = int64(d)
			}
			n.Outputs[i].SetTensorType(graph.Float, dims)
			g.AddOutput(n.Outputs[i])
		}
	}
	attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("hidden_size", hidden), graph.AttrStringOf("direction", direction)}
	dq = graph.NewModel(graph.Opset{Version: 14}, graph.Opset{Domain: "com.microsoft", Version: 1})
	g := dq.Graph
	x := g.AddInput("x", graph.Float, []int64{seq, batch, in})
	c := func(name string, t *graph.Tensor) *graph.Value { return g.AddInitializer(name, t) }
	// The optional state, the same in both models.
	var lens, h0, c0 *graph.Tensor
	if state {
		lens, _ = graph.TensorOf(graph.Int32, []int{batch}, []int32{seq, 13, 5})
		h0 = graph.Float32Tensor([]int{dirs, batch, hidden}, b.Normal(dirs*batch*hidden, 0, 0.5))
		c0 = graph.Float32Tensor([]int{dirs, batch, hidden}, b.Normal(dirs*batch*hidden, 0, 0.5))
	}
	stateIn := func(g *graph.Graph) []*graph.Value {
		if !state {
			return []*graph.Value{nil, nil, nil}
		}
		return []*graph.Value{g.AddInitializer("lens", lens), g.AddInitializer("h0", h0), g.AddInitializer("c0", c0)}
	}
	n := g.AddNode("DynamicQuantizeLSTM", "dqlstm", append(append([]*graph.Value{x, c("w", wq), c("r", rq), c("b", graph.Float32Tensor([]int{dirs, 8 * hidden}, bias))},
		stateIn(g)...), nil, c("w_scale", ws), c("w_zp", wz), c("r_scale", rs), c("r_zp", rz)), []string{"y", "y_h", "y_c"}, attrs...)
	n.Domain = "com.microsoft"
	outs(g, n)
	float = graph.NewModel(graph.Opset{Version: 14})
	g = float.Graph
	x = g.AddInput("x", graph.Float, []int64{seq, batch, in})
	n = g.AddNode("LSTM", "lstm", append([]*graph.Value{x, g.AddInitializer("w", graph.Float32Tensor([]int{dirs, 4 * hidden, in}, wd)),
		g.AddInitializer("r", graph.Float32Tensor([]int{dirs, 4 * hidden, hidden}, rd)), g.AddInitializer("b", graph.Float32Tensor([]int{dirs, 8 * hidden}, bias))},
		stateIn(g)...), []string{"y", "y_h", "y_c"}, attrs...)
	outs(g, n)
	return dq, float
}

// TestDynamicQuantizeLSTMMatchesORT: DynamicQuantizeLSTM against ONNX
// Runtime, forward, reverse and bidirectional, int8 weights with a scale
// per column and uint8 with one, with and without sequence_lens and
// initial states, at 1 and 2 threads, on igemm and on the float32 GEMM. Its products quantize
// X and each step's h to uint8 as ORT's do, so onnxq stays far closer to
// ORT than either is to the LSTM of the same dequantized weights (whose
// distance is the activations' quantization).
func TestDynamicQuantizeLSTMMatchesORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	saved := useIgemm
	defer func() { useIgemm = saved }()
	dir := t.TempDir()
	for _, direction := range []string{"forward", "reverse", "bidirectional"} {
		for _, v := range []struct{ signed, state bool }{{true, false}, {false, false}, {true, true}} {
			signed := v.signed
			name := fmt.Sprintf("%s signed %v state %v", direction, signed, v.state)
			dq, fl := dqLSTMModel(direction, signed, v.state)
			p := filepath.Join(dir, "dq.onnx")
			if err := graph.Save(dq, p); err != nil {
				t.Fatal(err)
			}
			b := testmodels.NewBuilder(3, 14)
			x := graph.Float32Tensor([]int{20, 3, 16}, b.Normal(20*3*16, 0, 1))
			in := map[string]*graph.Tensor{"x": x}
			want, err := ortref.RunFile(p, 1, in)
			if err != nil {
				t.Fatalf("%s: ORT: %v", name, err)
			}
			fs, err := NewSession(fl, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			fo, err := fs.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, run := range []struct {
				threads int
				path    string
				igemm   bool
			}{{1, "", useIgemm}, {2, "", useIgemm}, {1, intPaths()[0].name, intPaths()[0].igemm}} {
				threads := run.threads
				useIgemm = run.igemm
				s, err := NewSession(dq, Options{Threads: threads})
				useIgemm = saved
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got, err := s.Run(in)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, o := range []string{"y", "y_h", "y_c"} {
					e, ef := relErr(t, got[o], want[o]), relErr(t, fo[o], want[o])
					t.Logf("%s, %d threads %s, %s: against ORT %.2e, the float LSTM of the dequantized weights against ORT %.2e", name, threads, run.path, o, e, ef)
					if e > 1e-5 || e > ef/100 {
						t.Errorf("%s, %d threads: output %s differs from ORT by %.2e (the float LSTM by %.2e)", name, threads, o, e, ef)
					}
				}
			}
		}
	}
}
