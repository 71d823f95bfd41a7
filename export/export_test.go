package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"
	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/testmodels"
)

// quantize converts m with opt into dir and returns the quantized model's
// path; calib > 0 writes that many seeded samples first.
func quantize(t *testing.T, m *graph.Model, name string, calib int, opt converter.Options) string {
	t.Helper()
	dir := t.TempDir()
	opt.Model = filepath.Join(dir, "float.onnx")
	if err := graph.Save(m, opt.Model); err != nil {
		t.Fatal(err)
	}
	if calib > 0 {
		opt.Calib = filepath.Join(dir, "calib")
		if err := os.Mkdir(opt.Calib, 0o755); err != nil {
			t.Fatal(err)
		}
		samples, err := testmodels.Samples(name, m, calib, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Graph.Inputs) > 1 { // Samples fills the first input only
			rnd := testmodels.NewBuilder(3, 17)
			for _, s := range samples {
				for _, in := range m.Graph.Inputs {
					shape, _ := in.StaticShape()
					s[in.Name] = graph.Float32Tensor(shape, rnd.Normal(graph.Numel(shape), 0, 1))
				}
			}
		}
		for i, s := range samples {
			for in, x := range s {
				d := opt.Calib
				if len(s) > 1 { // one subfolder per input
					d = filepath.Join(d, in)
					if err := os.MkdirAll(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := npy.WriteFile(filepath.Join(d, fmt.Sprintf("%d.npy", i)), x); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	opt.Output, opt.NoMeasure = filepath.Join(dir, "model.q.onnx"), true
	if _, err := converter.Convert(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	return opt.Output
}

// readSafetensors reads a file back with the safetensors library.
func readSafetensors(t *testing.T, path string) map[string]*graph.Tensor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Deserialize(b)
	if err != nil {
		t.Fatal(err)
	}
	back := map[safetensors.DType]graph.DataType{}
	for g, s := range stDTypes {
		back[s] = g
	}
	out := map[string]*graph.Tensor{}
	for _, nt := range st.Tensors() {
		shape := make([]int, len(nt.TensorView.Shape()))
		for i, d := range nt.TensorView.Shape() {
			shape[i] = int(d)
		}
		tt, err := graph.RawTensor(back[nt.TensorView.DType()], shape, append([]byte(nil), nt.TensorView.Data()...))
		if err != nil {
			t.Fatal(err)
		}
		out[nt.Name] = tt
	}
	return out
}

// readDescription reads the JSON description.
func readDescription(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// exportST exports a model as safetensors into a new folder and reads back
// the tensors and the description.
func exportST(t *testing.T, model string) (*Export, map[string]*graph.Tensor, map[string]any) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "npu")
	e, err := ExportFile(model, Safetensors, out)
	if err != nil {
		t.Fatal(err)
	}
	return e, readSafetensors(t, filepath.Join(out, WeightsFile)), readDescription(t, filepath.Join(out, DescriptionFile))
}

// dequantized runs the model's own DequantizeLinear node on its constants
// with onnxq's executor.
func dequantized(t *testing.T, m *graph.Model, dq *graph.Node) *graph.Tensor {
	t.Helper()
	mm := graph.NewModel(graph.Opset{Domain: "", Version: 21})
	var ins []*graph.Value
	for _, in := range dq.Inputs {
		if in == nil {
			ins = append(ins, nil)
			continue
		}
		ins = append(ins, mm.Graph.AddInitializer(in.Name, in.Const.Clone()))
	}
	n := mm.Graph.AddNode("DequantizeLinear", "dq", ins, []string{"y"}, dq.Attrs...)
	mm.Graph.AddOutput(n.Output())
	s, err := kernels.NewSession(mm, kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out["y"]
}

// weightDQ is the DequantizeLinear that feeds input i of the node named name.
func weightDQ(t *testing.T, m *graph.Model, name string, i int) *graph.Node {
	t.Helper()
	for _, n := range m.Graph.Nodes {
		if n.Name == name {
			if v := n.Input(i); v != nil && v.Producer != nil && v.Producer.OpType == "DequantizeLinear" {
				return v.Producer
			}
			t.Fatalf("input %d of %s is not dequantized", i, name)
		}
	}
	t.Fatalf("no node %s", name)
	return nil
}

// dequantLayer is msModelSlim's dequantization of an exported weight:
// (weight - weight_offset) x weight_scale, per output channel ([N] scales)
// or per group of K ([N, G] scales, groups of gs), into [N, K...].
func dequantLayer(w, scale, offset *graph.Tensor, gs int) []float32 {
	codes := kernels.LoadInt64s(w)
	s, o := scale.Float32s(), offset.Float32s()
	n := w.Shape[0]
	per := len(codes) / n
	groups := len(s) / n
	if gs == 0 {
		gs = per
	}
	out := make([]float32, len(codes))
	for i, c := range codes {
		row, col := i/per, i%per
		j := row*groups + col/gs
		out[i] = float32(c-int64(o[j])) * s[j]
	}
	return out
}

// transpose2 transposes a [r, c] float slice.
func transpose2(x []float32, r, c int) []float32 {
	out := make([]float32, len(x))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out[j*r+i] = x[i*c+j]
		}
	}
	return out
}

func sameFloats(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func wantKeys(t *testing.T, desc map[string]any, typ Type, layers []string, suffixes ...string) {
	t.Helper()
	for _, l := range layers {
		for _, s := range suffixes {
			if got := desc[l+s]; got != string(typ) {
				t.Errorf("description[%q] = %v, want %s", l+s, got, typ)
			}
		}
	}
}

var staticSuffixes = []string{SuffixWeight, SuffixWeightScale, SuffixWeightOffset, SuffixInputScale, SuffixInputOffset, SuffixDeqScale, SuffixQuantBias}

// TestW8A8CNN: a calibrated Conv/Gemm model exports every layer as W8A8 with
// the model's own integer codes and scales; the integer pipeline of the
// layout (x_q x weight + quant_bias) x deq_scale computes what the QDQ
// model's dequantized float arithmetic computes.
func TestW8A8CNN(t *testing.T) {
	path := quantize(t, testmodels.ConvBNReLU(1), "convbnrelu", 8, converter.Options{})
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e, st, desc := exportST(t, path)
	layers := []string{"Conv_1", "Conv_2", "Conv_3", "Gemm_1"}
	var keys []string
	for k := range desc {
		keys = append(keys, k)
	}
	if len(keys) != len(layers)*len(staticSuffixes)+1 || desc["model_quant_type"] != "W8A8" || e.QuantType != W8A8 {
		t.Errorf("description has %d keys (want %d), model_quant_type %v: %v", len(keys), len(layers)*len(staticSuffixes)+1, desc["model_quant_type"], keys)
	}
	wantKeys(t, desc, W8A8, layers, staticSuffixes...)
	if len(st) != len(layers)*len(staticSuffixes) {
		t.Errorf("%d tensors in the file, want %d", len(st), len(layers)*len(staticSuffixes))
	}
	for _, l := range layers {
		wdq, bdq := weightDQ(t, m, l, 1), weightDQ(t, m, l, 2)
		xdq := weightDQ(t, m, l, 0)
		w, ws, wo := st[l+SuffixWeight], st[l+SuffixWeightScale], st[l+SuffixWeightOffset]
		// Conv [N, C, kh, kw] and Gemm transB [N, K] are already N-first.
		if w.DType != graph.Int8 || !slices.Equal(w.Shape, wdq.Input(0).Const.Shape) || !slices.Equal(w.Data().([]int8), wdq.Input(0).Const.Data().([]int8)) {
			t.Fatalf("%s.weight %s%v is not the model's int8 codes", l, w.DType.Short(), w.Shape)
		}
		sameFloats(t, l+".weight_scale", ws.Float32s(), wdq.Input(1).Const.Float32s())
		sameFloats(t, l+".weight_offset", wo.Float32s(), make([]float32, len(ws.Float32s())))
		sameFloats(t, l+" dequantized weight", dequantLayer(w, ws, wo, 0), dequantized(t, m, wdq).Float32s())
		xs := xdq.Input(1).Const.Float32s()[0]
		xz := int64(xdq.Input(2).Const.Data().([]uint8)[0])
		sameFloats(t, l+".input_scale", st[l+SuffixInputScale].Float32s(), []float32{xs})
		sameFloats(t, l+".input_offset", st[l+SuffixInputOffset].Float32s(), []float32{float32(xz - 128)})
		// deq_scale is the int32 bias's own scale: onnxq writes
		// s_bias = s_x x s_w, so the codes carry over.
		sameFloats(t, l+".deq_scale", st[l+SuffixDeqScale].Float32s(), bdq.Input(1).Const.Float32s())
		codes := kernels.LoadInt64s(w)
		bq := bdq.Input(0).Const.Data().([]int32)
		qb := st[l+SuffixQuantBias].Data().([]int32)
		n, per := w.Shape[0], len(codes)/w.Shape[0]
		for c := 0; c < n; c++ {
			var sum int64
			for _, v := range codes[c*per : (c+1)*per] {
				sum += v
			}
			if want := int64(bq[c]) - (xz-128)*sum; int64(qb[c]) != want {
				t.Fatalf("%s.quant_bias[%d] = %d, want %d", l, c, qb[c], want)
			}
		}
	}
	// The Gemm through the layout's integer pipeline against the QDQ
	// model's float arithmetic on the same uint8 input codes.
	l := "Gemm_1"
	xdq, wdq, bdq := weightDQ(t, m, l, 0), weightDQ(t, m, l, 1), weightDQ(t, m, l, 2)
	xs, xz := xdq.Input(1).Const.Float32s()[0], float64(xdq.Input(2).Const.Data().([]uint8)[0])
	wf, bf := dequantized(t, m, wdq).Float32s(), dequantized(t, m, bdq).Float32s()
	w, qb, deq := kernels.LoadInt64s(st[l+SuffixWeight]), st[l+SuffixQuantBias].Data().([]int32), st[l+SuffixDeqScale].Float32s()
	n, k := st[l+SuffixWeight].Shape[0], st[l+SuffixWeight].Shape[1]
	for trial := 0; trial < 4; trial++ {
		xu := make([]int64, k)
		for i := range xu {
			xu[i] = int64((i*37 + trial*101) % 256)
		}
		for c := 0; c < n; c++ {
			ref := float64(bf[c])
			acc := int64(qb[c])
			for i := 0; i < k; i++ {
				ref += float64(float32(float64(xu[i])-xz)*xs) * float64(wf[c*k+i])
				acc += (xu[i] - 128) * w[c*k+i] // int8 input codes
			}
			got := float64(acc) * float64(deq[c])
			if math.Abs(got-ref) > 1e-5*(1+math.Abs(ref)) {
				t.Fatalf("Gemm output %d: integer pipeline %g, QDQ float %g", c, got, ref)
			}
		}
	}
}

// TestW8A8MatMul: a calibrated MatMul ([K, N] in ONNX) exports [N, K] codes,
// and the integer pipeline (no bias: quant_bias only folds the input offset)
// computes the QDQ model's product.
func TestW8A8MatMul(t *testing.T) {
	path := quantize(t, blockedModel(), "blocked", 4, converter.Options{})
	m, _ := graph.Load(path)
	_, st, desc := exportST(t, path)
	wantKeys(t, desc, W8A8, []string{"proj", "Gemm_1"}, staticSuffixes...)
	xdq, wdq := weightDQ(t, m, "MatMul_1", 0), weightDQ(t, m, "MatMul_1", 1)
	wf := transpose2(dequantized(t, m, wdq).Float32s(), 40, 24)
	sameFloats(t, "proj dequantized", dequantLayer(st["proj.weight"], st["proj.weight_scale"], st["proj.weight_offset"], 0), wf)
	xs, xz := xdq.Input(1).Const.Float32s()[0], float64(xdq.Input(2).Const.Data().([]uint8)[0])
	w, qb, deq := kernels.LoadInt64s(st["proj.weight"]), st["proj.quant_bias"].Data().([]int32), st["proj.deq_scale"].Float32s()
	for c := 0; c < 24; c++ {
		var ref float64
		acc := int64(qb[c])
		for i := 0; i < 40; i++ {
			xu := int64((i*53 + c) % 256)
			ref += float64(float32(float64(xu)-xz)*xs) * float64(wf[c*40+i])
			acc += (xu - 128) * w[c*40+i]
		}
		if got := float64(acc) * float64(deq[c]); math.Abs(got-ref) > 1e-5*(1+math.Abs(ref)) {
			t.Fatalf("MatMul output %d: integer pipeline %g, QDQ float %g", c, got, ref)
		}
	}
}

// TestGatherTable: an embedding table a rule quantizes (DequantizeLinear ->
// Gather) is exported in its own [vocab, dim] layout, one scale per row, as
// weight-only W8A16 tensors.
func TestGatherTable(t *testing.T) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := m.Graph
	b := testmodels.NewBuilder(3, 17)
	ids := g.AddInput("input_ids", graph.Int64, []int64{1, 8})
	table := g.AddInitializer("embed.weight", graph.Float32Tensor([]int{32, 16}, b.Normal(32*16, 0, 1)))
	h := g.AddNode("Gather", "Gather_1", []*graph.Value{table, ids}, []string{"h"})
	h.Output().SetTensorType(graph.Float, []int64{1, 8, 16})
	w := g.AddInitializer("proj.weight", graph.Float32Tensor([]int{16, 8}, b.Normal(16*8, 0, 0.3)))
	y := g.AddNode("MatMul", "MatMul_1", []*graph.Value{h.Output(), w}, []string{"logits"})
	y.Output().SetTensorType(graph.Float, []int64{1, 8, 8})
	g.AddOutput(y.Output())
	ovr := &overrides.File{Version: 1, Tensors: map[string]*overrides.Tensor{"embed.weight": {DType: "int8"}}}
	path := quantize(t, m, "", 0, converter.Options{WeightOnly: true, Overrides: ovr})
	q, _ := graph.Load(path)
	_, st, desc := exportST(t, path)
	wantKeys(t, desc, W8A16, []string{"embed", "proj"}, SuffixWeight, SuffixWeightScale, SuffixWeightOffset)
	if !slices.Equal(st["embed.weight"].Shape, []int{32, 16}) || !slices.Equal(st["embed.weight_scale"].Shape, []int{32}) {
		t.Fatalf("embed shapes %v %v", st["embed.weight"].Shape, st["embed.weight_scale"].Shape)
	}
	dq := weightDQ(t, q, "Gather_1", 0)
	sameFloats(t, "embed dequantized", dequantLayer(st["embed.weight"], st["embed.weight_scale"], st["embed.weight_offset"], 0), dequantized(t, q, dq).Float32s())

	// A 16-bit table has no place in the layout: it is written dequantized,
	// as FLOAT, under its own name.
	ovr.Tensors["embed.weight"].DType = "int16"
	path = quantize(t, m, "", 0, converter.Options{WeightOnly: true, Overrides: ovr})
	q, _ = graph.Load(path)
	_, st, desc = exportST(t, path)
	if desc["embed.weight"] != "FLOAT" || desc["embed.weight_scale"] != nil || desc["proj.weight"] != "W8A16" {
		t.Errorf("int16 table: description %v", desc)
	}
	sameFloats(t, "int16 embed", st["embed.weight"].Float32s(), dequantized(t, q, weightDQ(t, q, "Gather_1", 0)).Float32s())
}

// blockedModel is X [2, 3, 40] x W [40, 24] (MatMul) and X2 [4, 40] x
// W2^T + b (Gemm transB): K = 40 is not a multiple of the block of 16.
func blockedModel() *graph.Model {
	b := testmodels.NewBuilder(7, 17)
	x := b.Input("x", 2, 3, 40)
	b.Output(b.MatMul(x, b.Const("proj.weight", []int{40, 24}, b.Normal(40*24, 0, 0.3))))
	b.Output(b.Gemm(b.Input("x2", 4, 40), 24))
	return b.M
}

// asymmetric makes every weight asymmetric (zero points), for offsets that
// are not all 0.
func asymmetric() *overrides.File {
	f := false
	return &overrides.File{Version: 1, Defaults: &overrides.Rule{WeightSymmetric: &f}}
}

// TestW4A16Blocked: per-group int4/uint4 weights (DequantizeLinear with
// block_size, a short last group) export as [N, K] codes with [N, G] scales
// and offsets that dequantize to the model's DequantizeLinear output.
func TestW4A16Blocked(t *testing.T) {
	for _, c := range []struct {
		dt  graph.DataType
		ovr *overrides.File
	}{{graph.Int4, nil}, {graph.Uint4, asymmetric()}} {
		t.Run(c.dt.Short(), func(t *testing.T) {
			path := quantize(t, blockedModel(), "", 0, converter.Options{WeightOnly: true, WeightType: c.dt, WeightBlockSize: 16, Overrides: c.ovr})
			m, _ := graph.Load(path)
			e, st, desc := exportST(t, path)
			// proj.weight names its layer "proj"; the Gemm's fc_w has no
			// ".weight", so its node names it.
			wantKeys(t, desc, W4A16, []string{"proj", "Gemm_1"}, SuffixWeight, SuffixWeightScale, SuffixWeightOffset)
			if desc["Gemm_1.bias"] != "W4A16" || desc["group_size"] != 16.0 || len(desc) != 9 || len(st) != 7 {
				t.Errorf("description %v", desc)
			}
			for _, l := range e.Layers {
				if l.GroupSize != 16 {
					t.Errorf("layer %s group size %d", l.Name, l.GroupSize)
				}
			}
			nonzero := false
			for _, cs := range []struct {
				layer, node string
				k, n        int
				kFirst      bool
			}{{"proj", "MatMul_1", 40, 24, true}, {"Gemm_1", "Gemm_1", 40, 24, false}} {
				dq := weightDQ(t, m, cs.node, 1)
				w, ws, wo := st[cs.layer+SuffixWeight], st[cs.layer+SuffixWeightScale], st[cs.layer+SuffixWeightOffset]
				if !slices.Equal(w.Shape, []int{cs.n, cs.k}) || !slices.Equal(ws.Shape, []int{cs.n, 3}) || !slices.Equal(wo.Shape, []int{cs.n, 3}) {
					t.Fatalf("%s: shapes %v %v %v", cs.layer, w.Shape, ws.Shape, wo.Shape)
				}
				// Codes: the model's, transposed to [N, K] for MatMul, shifted
				// by 8 for uint4, as int8 values in [-8, 7].
				model := kernels.LoadInt64s(dq.Input(0).Const)
				zp := kernels.LoadInt64s(dq.Input(2).Const)
				shift := int64(0)
				if c.dt == graph.Uint4 {
					shift = 8
				}
				codes := kernels.LoadInt64s(w)
				for ni := 0; ni < cs.n; ni++ {
					for ki := 0; ki < cs.k; ki++ {
						mi, zi := ni*cs.k+ki, ni*3+ki/16
						if cs.kFirst {
							mi, zi = ki*cs.n+ni, (ki/16)*cs.n+ni
						}
						if codes[ni*cs.k+ki] != model[mi]-shift || codes[ni*cs.k+ki] < -8 || codes[ni*cs.k+ki] > 7 {
							t.Fatalf("%s code [%d,%d] = %d, model %d", cs.layer, ni, ki, codes[ni*cs.k+ki], model[mi])
						}
						if ki%16 == 0 {
							if got := wo.Float32s()[ni*3+ki/16]; got != float32(zp[zi]-shift) {
								t.Fatalf("%s offset [%d,%d] = %g, model zero point %d", cs.layer, ni, ki/16, got, zp[zi])
							}
							nonzero = nonzero || zp[zi]-shift != 0
						}
					}
				}
				want := dequantized(t, m, dq).Float32s()
				if cs.kFirst {
					want = transpose2(want, cs.k, cs.n)
				}
				sameFloats(t, cs.layer+" dequantized", dequantLayer(w, ws, wo, 16), want)
			}
			if (c.ovr != nil) != nonzero {
				t.Errorf("asymmetric %v, but nonzero offsets %v", c.ovr != nil, nonzero)
			}
		})
	}
}

// TestBlockAboveK: a weight whose K is below the block size is one group per
// column in the model; the export writes it per channel ([N] scales, no
// group size), the other weight per group.
func TestBlockAboveK(t *testing.T) {
	b := testmodels.NewBuilder(7, 17)
	y := b.MatMul(b.Input("x", 2, 40), b.Const("a.weight", []int{40, 24}, b.Normal(40*24, 0, 0.3)))
	b.Output(b.MatMul(y, b.Const("b.weight", []int{24, 8}, b.Normal(24*8, 0, 0.3))))
	for _, format := range []string{converter.FormatONNX, converter.FormatMatMulNBits} {
		path := quantize(t, b.M, "", 0, converter.Options{WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 32, WeightFormat: format})
		e, st, desc := exportST(t, path)
		if !slices.Equal(st["a.weight_scale"].Shape, []int{24, 2}) || !slices.Equal(st["b.weight_scale"].Shape, []int{8}) || desc["group_size"] != 32.0 {
			t.Errorf("%s: scales %v and %v, group size %v", format, st["a.weight_scale"].Shape, st["b.weight_scale"].Shape, desc["group_size"])
		}
		for _, l := range e.Layers {
			if want := map[string]int{"a": 32, "b": 0}[l.Name]; l.GroupSize != want {
				t.Errorf("%s: layer %s group size %d, want %d", format, l.Name, l.GroupSize, want)
			}
		}
		if format == converter.FormatONNX {
			m, _ := graph.Load(path)
			dq := weightDQ(t, m, "MatMul_2", 1)
			want := transpose2(dequantized(t, m, dq).Float32s(), 24, 8)
			sameFloats(t, "b dequantized", dequantLayer(st["b.weight"], st["b.weight_scale"], st["b.weight_offset"], 0), want)
		}
	}
}

// TestMatMulNBits: MatMulNBits' packed blocks export to exactly what the
// same weights give in DequantizeLinear form (padding past K dropped,
// stored unsigned codes shifted back), per group and per channel.
func TestMatMulNBits(t *testing.T) {
	for _, c := range []struct {
		name  string
		opt   converter.Options
		group int
	}{
		{"int4-g16", converter.Options{WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 16}, 16},
		{"uint4-g32-asym", converter.Options{WeightOnly: true, WeightType: graph.Uint4, WeightBlockSize: 32, Overrides: asymmetric()}, 32},
		{"int8-per-channel", converter.Options{WeightOnly: true, WeightType: graph.Int8}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			qdq := quantize(t, blockedModel(), "", 0, c.opt)
			c.opt.WeightFormat = converter.FormatMatMulNBits
			nbits := quantize(t, blockedModel(), "", 0, c.opt)
			m, _ := graph.Load(nbits)
			if m.Graph.Nodes[len(m.Graph.Nodes)-1].OpType != "MatMulNBits" {
				t.Fatalf("no MatMulNBits in the model")
			}
			_, a, da := exportST(t, qdq)
			e, b, db := exportST(t, nbits)
			want := W4A16
			if c.opt.WeightType == graph.Int8 {
				want = W8A16
			}
			wantKeys(t, db, want, []string{"proj", "Gemm_1"}, SuffixWeight, SuffixWeightScale, SuffixWeightOffset)
			if len(da) != len(db) || len(a) != len(b) {
				t.Errorf("QDQ export has %d keys, MatMulNBits export %d", len(da), len(db))
			}
			for _, l := range e.Layers {
				if l.Name == "proj" && (l.Op != "MatMulNBits" || l.GroupSize != c.group) {
					t.Errorf("layer proj: %+v", l)
				}
			}
			for _, s := range []string{SuffixWeight, SuffixWeightScale, SuffixWeightOffset} {
				x, y := a["proj"+s], b["proj"+s]
				if x.DType != y.DType || !slices.Equal(x.Shape, y.Shape) || string(graph.RawBytes(x)) != string(graph.RawBytes(y)) {
					t.Errorf("proj%s: QDQ %s%v, MatMulNBits %s%v differ", s, x.DType.Short(), x.Shape, y.DType.Short(), y.Shape)
				}
			}
		})
	}
}

// TestDynamic: both dynamic forms export the int8 weights, per-column scales
// and the Gemm's float bias as W8A8_DYNAMIC, identical across the forms and
// dequantizing to the weight-only model's weights.
func TestDynamic(t *testing.T) {
	ref := quantize(t, blockedModel(), "", 0, converter.Options{WeightOnly: true, WeightType: graph.Int8})
	_, want, _ := exportST(t, ref)
	for _, format := range []string{converter.FormatONNX, converter.FormatORT} {
		path := quantize(t, blockedModel(), "", 0, converter.Options{Dynamic: true, WeightType: graph.Int8, WeightFormat: format})
		_, st, desc := exportST(t, path)
		// The dynamic rewrite names weights after their node.
		wantKeys(t, desc, W8A8Dynamic, []string{"MatMul_1", "Gemm_1"}, SuffixWeight, SuffixWeightScale, SuffixWeightOffset)
		if desc["Gemm_1.bias"] != "W8A8_DYNAMIC" || desc["model_quant_type"] != "W8A8_DYNAMIC" || len(desc) != 8 {
			t.Errorf("%s: description %v", format, desc)
		}
		for _, p := range [][2]string{{"MatMul_1", "proj"}, {"Gemm_1", "Gemm_1"}} {
			for _, s := range []string{SuffixWeight, SuffixWeightScale, SuffixWeightOffset} {
				x, y := st[p[0]+s], want[p[1]+s]
				if string(graph.RawBytes(x)) != string(graph.RawBytes(y)) || !slices.Equal(x.Shape, y.Shape) {
					t.Errorf("%s %s%s differs from the weight-only export", format, p[0], s)
				}
			}
		}
		sameFloats(t, format+" Gemm bias", st["Gemm_1.bias"].Float32s(), want["Gemm_1.bias"].Float32s())
	}
}

// TestDynamicPerToken: both per-token dynamic forms (onnxq's row quantizer
// feeding MatMulInteger, or ORT's MatMulIntegerToFloat) export as
// W8A8_DYNAMIC with the model's own int8 codes (transposed to [N, K]) and
// weight scales, the same as the weight-only export, and no tensor of the
// quantizer's constants; safetensors and .npy agree.
func TestDynamicPerToken(t *testing.T) {
	ref := quantize(t, blockedModel(), "", 0, converter.Options{WeightOnly: true, WeightType: graph.Int8})
	_, want, _ := exportST(t, ref)
	for _, format := range []string{converter.FormatONNX, converter.FormatORT} {
		path := quantize(t, blockedModel(), "", 0, converter.Options{Dynamic: true, DynamicPerToken: true, WeightType: graph.Int8, WeightFormat: format})
		m, err := graph.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		ops := map[string]bool{}
		for _, n := range m.Graph.Nodes {
			ops[n.OpType] = true
		}
		if ops["DynamicQuantizeLinear"] || !ops["ReduceMax"] {
			t.Fatalf("%s: not the per-token form: %v", format, ops)
		}
		e, st, desc := exportST(t, path)
		wantKeys(t, desc, W8A8Dynamic, []string{"MatMul_1", "Gemm_1"}, SuffixWeight, SuffixWeightScale, SuffixWeightOffset)
		if desc["Gemm_1.bias"] != "W8A8_DYNAMIC" || desc["model_quant_type"] != "W8A8_DYNAMIC" || len(desc) != 8 || len(st) != 7 {
			t.Errorf("%s: description %v", format, desc)
		}
		op := "MatMulInteger"
		if format == converter.FormatORT {
			op = "MatMulIntegerToFloat"
		}
		for _, l := range e.Layers {
			if l.Op != op || l.Type != W8A8Dynamic {
				t.Errorf("%s: layer %+v, want %s", format, l, op)
			}
		}
		for _, p := range [][2]string{{"MatMul_1", "proj"}, {"Gemm_1", "Gemm_1"}} {
			// The model's own [K, N] codes and [N] scales.
			mw, ms := m.Graph.Value(p[0]+"_weight_quantized"), m.Graph.Value(p[0]+"_weight_scale")
			if mw == nil || ms == nil || mw.Const.DType != graph.Int8 {
				t.Fatalf("%s: %s has no int8 weight and scale", format, p[0])
			}
			k, n := mw.Const.Shape[0], mw.Const.Shape[1]
			codes := make([]float32, k*n)
			for i, v := range kernels.LoadInt64s(mw.Const) {
				codes[i] = float32(v)
			}
			got := make([]float32, k*n)
			for i, v := range kernels.LoadInt64s(st[p[0]+SuffixWeight]) {
				got[i] = float32(v)
			}
			if !slices.Equal(st[p[0]+SuffixWeight].Shape, []int{n, k}) {
				t.Errorf("%s %s.weight is %v, want [%d %d]", format, p[0], st[p[0]+SuffixWeight].Shape, n, k)
			}
			sameFloats(t, format+" "+p[0]+" codes", got, transpose2(codes, k, n))
			sameFloats(t, format+" "+p[0]+" scales", st[p[0]+SuffixWeightScale].Float32s(), ms.Const.Float32s())
			sameFloats(t, format+" "+p[0]+" offsets", st[p[0]+SuffixWeightOffset].Float32s(), make([]float32, n))
			for _, s := range []string{SuffixWeight, SuffixWeightScale, SuffixWeightOffset} {
				x, y := st[p[0]+s], want[p[1]+s]
				if string(graph.RawBytes(x)) != string(graph.RawBytes(y)) || !slices.Equal(x.Shape, y.Shape) {
					t.Errorf("%s %s%s differs from the weight-only export", format, p[0], s)
				}
			}
		}
		sameFloats(t, format+" Gemm bias", st["Gemm_1.bias"].Float32s(), want["Gemm_1.bias"].Float32s())
		out := filepath.Join(t.TempDir(), "npy")
		if _, err := ExportFile(path, NPY, out); err != nil {
			t.Fatal(err)
		}
		for name, x := range st {
			y, err := npy.ReadFile(filepath.Join(out, NPYFileName(name)))
			if err != nil {
				t.Fatal(err)
			}
			if string(graph.RawBytes(x)) != string(graph.RawBytes(y)) || !slices.Equal(x.Shape, y.Shape) {
				t.Errorf("%s %s: .npy differs from safetensors", format, name)
			}
		}
	}
}

// TestDynamicPerTokenBroken: a per-token model whose quantizer and layer
// disagree is a one-line error naming the layer, not a wrong export.
func TestDynamicPerTokenBroken(t *testing.T) {
	for _, c := range []struct {
		format, want string
		edit         func(m *graph.Model)
	}{
		{converter.FormatONNX, `layer "MatMul_1_MatMulInteger" (MatMulInteger): its input zero point is not a uint8 constant equal to the quantizer's offset 128`, func(m *graph.Model) {
			for _, n := range m.Graph.Nodes {
				if n.OpType == "MatMulInteger" {
					zp, _ := graph.TensorOf(graph.Uint8, nil, []uint8{0})
					n.Inputs[2] = m.Graph.AddInitializer("zero", zp)
				}
			}
		}},
		{converter.FormatORT, `layer "MatMul_1" (MatMulIntegerToFloat): its input scale is not the constant 1`, func(m *graph.Model) {
			for _, n := range m.Graph.Nodes {
				if n.OpType == "MatMulIntegerToFloat" {
					n.Inputs[2] = m.Graph.AddInitializer(n.Name+"_two", graph.Float32Tensor(nil, []float32{2}))
				}
			}
		}},
		{converter.FormatONNX, "not quantized by a DynamicQuantizeLinear or onnxq's per-token quantizer", func(m *graph.Model) {
			for _, n := range m.Graph.Nodes {
				if n.OpType == "Div" && n.Input(1).Const != nil { // the scale's 1/127
					n.Inputs[1] = m.Graph.AddInitializer(n.Name+"_255", graph.Float32Tensor(nil, []float32{255}))
				}
			}
		}},
	} {
		path := quantize(t, blockedModel(), "", 0, converter.Options{Dynamic: true, DynamicPerToken: true, WeightType: graph.Int8, WeightFormat: c.format})
		m, err := graph.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		c.edit(m)
		if err := graph.Save(m, path); err != nil {
			t.Fatal(err)
		}
		_, err = ExportFile(path, Safetensors, filepath.Join(t.TempDir(), "out"))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", c.format, err, c.want)
		}
	}
}

// TestNPYMatchesSafetensors: the .npy folder holds the same tensors, one
// file each, and the same description.
func TestNPYMatchesSafetensors(t *testing.T) {
	path := quantize(t, blockedModel(), "", 0, converter.Options{WeightOnly: true, WeightType: graph.Int4, WeightBlockSize: 16})
	_, st, desc := exportST(t, path)
	out := filepath.Join(t.TempDir(), "npy")
	if _, err := ExportFile(path, NPY, out); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != len(st)+1 {
		t.Errorf("%d files, want %d tensors + description", len(entries), len(st))
	}
	for name, want := range st {
		got, err := npy.ReadFile(filepath.Join(out, NPYFileName(name)))
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || string(graph.RawBytes(got)) != string(graph.RawBytes(want)) {
			t.Errorf("%s: .npy %s%v differs from safetensors %s%v", name, got.DType.Short(), got.Shape, want.DType.Short(), want.Shape)
		}
	}
	if d := readDescription(t, filepath.Join(out, DescriptionFile)); fmt.Sprint(d) != fmt.Sprint(desc) {
		t.Errorf("descriptions differ:\n%v\n%v", d, desc)
	}
	if got := NPYFileName("/model/layers.0/MatMul:0.weight"); got != "%2Fmodel%2Flayers.0%2FMatMul%3A0.weight.npy" {
		t.Errorf("NPYFileName = %s", got)
	}
}

// TestFloatTensors: float initializers no layer quantized are listed as
// FLOAT under their own names (a weight-only model keeps its LayerNorm-like
// Mul constant and a float MatMul weight).
func TestFloatTensors(t *testing.T) {
	b := testmodels.NewBuilder(5, 17)
	x := b.Input("x", 2, 16)
	h := b.MatMul(x, b.Const("a.weight", []int{16, 16}, b.Normal(256, 0, 0.3)))
	h = b.Binary("Mul", h, b.Const("norm.weight", []int{16}, b.Normal(16, 1, 0.1)))
	b.Output(b.MatMul(h, b.Const("head.weight", []int{16, 8}, b.Normal(128, 0, 0.3))))
	ovr := &overrides.File{Version: 1, Nodes: map[string]*overrides.Rule{"MatMul_2": {WeightDType: "float"}}}
	path := quantize(t, b.M, "", 0, converter.Options{WeightOnly: true, Overrides: ovr})
	_, st, desc := exportST(t, path)
	for name, typ := range map[string]string{"a.weight": "W8A16", "norm.weight": "FLOAT", "head.weight": "FLOAT"} {
		if desc[name] != typ {
			t.Errorf("description[%q] = %v, want %s (all: %v)", name, desc[name], typ, desc)
		}
	}
	m, _ := graph.Load(path)
	sameFloats(t, "norm.weight", st["norm.weight"].Float32s(), m.Graph.Value("norm.weight").Const.Float32s())
	// An initializer nothing reads (a float original --keep-initializer-inputs
	// leaves beside its quantized copy) is not exported: it would take the
	// layer's name.
	m.Graph.AddInitializer("a.weight_orig", graph.Float32Tensor([]int{2}, []float32{1, 2}))
	if err := graph.Save(m, path); err != nil {
		t.Fatal(err)
	}
	_, st2, _ := exportST(t, path)
	if _, ok := st2["a.weight_orig"]; ok || len(st2) != len(st) {
		t.Errorf("dead initializer exported: %d tensors, before %d", len(st2), len(st))
	}
}

// TestBadInput: a float model, a format that does not exist and an output
// that cannot be written are one-line errors that leave no file behind.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	float := filepath.Join(dir, "float.onnx")
	if err := graph.Save(blockedModel(), float); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	_, err := ExportFile(float, Safetensors, out)
	if err == nil || !strings.Contains(err.Error(), "no quantized weights") || strings.Contains(err.Error(), "\n") {
		t.Errorf("float model: %v", err)
	}
	if _, err := ParseFormat("gguf"); err == nil || !strings.Contains(err.Error(), "safetensors or npy") {
		t.Errorf("unknown format: %v", err)
	}
	q := quantize(t, blockedModel(), "", 0, converter.Options{WeightOnly: true})
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{filepath.Join(file, "out"), filepath.Join(dir, "missing", "out"), file} {
		for _, f := range Formats {
			_, err := ExportFile(q, f, bad)
			if err == nil || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s to %s: %v", f, bad, err)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 { // float.onnx, a-file
		t.Errorf("left behind: %v", entries)
	}
}

// TestInexpressible: quantized layers msModelSlim's layout has no form for
// are one-line errors naming the layer, not a partial export.
func TestInexpressible(t *testing.T) {
	f := false
	for _, c := range []struct {
		name string
		opt  converter.Options
		want string
	}{
		{"uint16 activations", converter.Options{ActType: graph.Uint16}, `layer "Conv_1" (Conv): its input is quantized to uint16: W8A8 takes 8-bit activations`},
		{"int16 weights", converter.Options{WeightType: graph.Int16}, `layer "Conv_1" (Conv): its weights have 16 bits: the layout holds 4- and 8-bit weights`},
		{"asymmetric weights", converter.Options{Overrides: &overrides.File{Version: 1, Defaults: &overrides.Rule{WeightSymmetric: &f}}}, "W8A8's quant_bias cannot absorb a weight offset"},
	} {
		path := quantize(t, testmodels.ConvBNReLU(1), "convbnrelu", 4, c.opt)
		out := filepath.Join(t.TempDir(), "out")
		_, err := ExportFile(path, Safetensors, out)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", c.name, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: %s written", c.name, out)
		}
	}
}

// TestWriteIsAtomic: a write that fails part way leaves an existing folder's
// files as they were and no temporary files; a new folder is not created.
func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "quant_model_description.json")
	if err := os.WriteFile(keep, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	fail := map[string]func(w io.Writer) error{
		"quant_model_description.json": func(w io.Writer) error { _, err := w.Write([]byte("new")); return err },
		"z.npy": func(w io.Writer) error {
			w.Write([]byte("half"))
			return fmt.Errorf("disk full")
		},
	}
	if err := writeFiles(dir, fail); err == nil {
		t.Fatal("no error")
	}
	if b, _ := os.ReadFile(keep); string(b) != "old" {
		t.Errorf("existing file now %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	fresh := filepath.Join(dir, "new")
	if err := writeFiles(fresh, fail); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("%s exists after a failed write", fresh)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}
