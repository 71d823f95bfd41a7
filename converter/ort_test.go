//go:build ort

package converter

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/passes"
	"github.com/onnxq/onnxq/testmodels"
)

func ortRun(t *testing.T, path string, in map[string]*graph.Tensor) map[string]*graph.Tensor {
	t.Helper()
	out, err := ortref.RunFile(path, 2, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ortRunAt runs a model once in ONNX Runtime at a graph optimization level.
func ortRunAt(t *testing.T, path string, level ortref.Optimization, in map[string]*graph.Tensor) map[string]*graph.Tensor {
	t.Helper()
	out, err := ortref.RunFileWith(path, 1, level, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameFloats fails at the first element where ORT and onnxq differ.
func sameFloats(t *testing.T, what string, theirs, ours []float32) {
	t.Helper()
	for i, v := range theirs {
		if v != ours[i] {
			t.Fatalf("%s: ORT differs from onnxq at %d: %v vs %v", what, i, v, ours[i])
		}
	}
}

// TestQDQRunsInORTAndMatchesOnnxq: the QDQ testmodels classifiers run in
// onnxq as ONNX Runtime runs them. Two comparisons:
//
// As written against ORT without graph optimizations: both dequantize, run the
// float ops and quantize again; they sum in another order, which moves a value
// near a rounding boundary by a step; at the output, within one step.
//
// With the qlinear rewrite (the integer QLinearConv ORT fuses each group into)
// against ORT with all optimizations, layer by layer: every QLinearConv, fed
// ORT's own codes for its input, must give ORT's codes for its output exactly,
// except where ORT's kernel leaves exact int32 arithmetic, which the ONNX
// spec asks for and onnxq does. On x86 without VNNI (AVX2; AVX-512 without
// VNNI) MLAS multiplies uint8 activations by int8 weights with vpmaddubsw:
// it adds two neighbouring products (in the order kernel position, then input
// channel) into an int16 and saturates it, so 200*120 + 180*110 = 43800
// becomes 32767. There, each differing output must equal that saturating
// arithmetic, recomputed here. Measured on an AVX2 machine: the ResNet-50 stem
// (7x7x3, input codes up to 255) saturates 8800 pairs and 2539 of its 802816
// outputs move by up to 4 steps; the MobileNetV2 block's first 1x1 conv, 239
// of 12288 outputs by up to 19 steps; every other layer agrees exactly. With
// VNNI (vpdpbusd adds in int32) nothing differs. End to end, with the layers
// where ORT saturated pinned to ORT's codes, onnxq and ORT must agree exactly.
// Unpinned, the stem's differences reach the ResNet-50 logits as up to 2
// steps on 358 of 1000 outputs, an amount no bound follows from. (A real slip
// is caught: requantizing in float64, not float32 as ORT does, moves one
// output each in 6 ResNet-50 layers by a step.)
func TestQDQRunsInORTAndMatchesOnnxq(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		m     *graph.Model
		shape []int
		// asWritten: only the QDQ model as written; ORT's optimized graph
		// also runs Resize, Concat and the pools on uint8 codes with its
		// own rounding, which the qlinear comparison does not model.
		asWritten bool
	}{
		{"convbnrelu", testmodels.ConvBNReLU(1), []int{1, 3, 32, 32}, false},
		{"mobilenetv2-block", testmodels.MobileNetV2Block(1), []int{1, 8, 16, 16}, false},
		{"resnet50", testmodels.ResNet50(1, 1, true), []int{1, 3, 224, 224}, false},
		// Opset 3 (legacy broadcasts, ImageScaler, Upsample-1): upgraded first.
		{"legacy-cnn", testmodels.LegacyCNN(1), []int{1, 3, 32, 32}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, out, rep := convertTestModel(t, c.m, c.shape, calib.Config{})
			q, err := graph.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			x := graph.NewTensor(graph.Float, c.shape)
			for i, d := 0, x.Float32s(); i < len(d); i++ {
				d[i] = float32(math.Sin(float64(i) * 0.37))
			}
			in := map[string]*graph.Tensor{q.Graph.Inputs[0].Name: x}
			name := q.Graph.Outputs[0].Name
			var step float64
			for _, tr := range rep.Tensors {
				if tr.Name == name {
					step = float64(tr.Encoding.Scale[0])
				}
			}
			if step == 0 {
				t.Fatalf("output %q has no encoding", name)
			}

			ours := runOnce(t, q, x)
			theirs := ortRunAt(t, out, ortref.OptNone, in)[name].Float32s()
			worst, differ := 0.0, 0
			for i := range ours {
				d := math.Abs(float64(ours[i]) - float64(theirs[i]))
				worst = math.Max(worst, d)
				if d > step/2 {
					differ++
				}
			}
			t.Logf("as written vs ORT unoptimized: max |onnxq - ORT| = %.2f steps, %d of %d outputs differ", worst/step, differ, len(theirs))
			if worst > step*1.0001 {
				t.Errorf("as written vs ORT unoptimized: outputs differ by %.3g, more than one step %.3g", worst, step)
			}
			if c.asWritten {
				return
			}

			codes := ortCodes(t, out, in)
			ps, err := passes.Parse("qlinear", passes.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := (&passes.Pipeline{Passes: ps}).Run(q)
			if err != nil {
				t.Fatal(err)
			}
			if res.Changes[0].Count == 0 {
				t.Fatal("qlinear rewrote no Conv group")
			}
			pinned := 0
			for _, n := range append([]*graph.Node(nil), q.Graph.Nodes...) {
				if n.OpType != "QLinearConv" {
					continue
				}
				saturated := sameAsORTLayer(t, q, n, codes)
				if saturated > 0 {
					// ORT's codes for this layer, so the layers after it
					// start from the same input.
					key := strings.TrimSuffix(n.Output().Name, "_qlinear")
					pin := q.Graph.AddInitializer(q.Graph.UniqueName(key+"_ort"), codes[key])
					codes[pin.Name] = codes[key]
					if err := q.Graph.ReplaceUses(n.Output(), pin); err != nil {
						t.Fatal(err)
					}
					q.Graph.RemoveNode(n)
					pinned++
				}
			}
			sameFloats(t, fmt.Sprintf("qlinear (%d QLinearConv, %d pinned to ORT's codes) vs ORT optimized", res.Changes[0].Count, pinned), codes[name].Float32s(), runOnce(t, q, x))
		})
	}
}

// ortCodes runs a QDQ model in ONNX Runtime with all optimizations and returns
// the codes of every QuantizeLinear output (each cast to float as an extra
// output) by name, as tensors of their integer type, and the model's outputs
// as they are. The extra outputs must leave ORT's fusions alone: the test
// fails when the model output differs from a run without them.
func ortCodes(t *testing.T, path string, in map[string]*graph.Tensor) map[string]*graph.Tensor {
	t.Helper()
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]graph.DataType{}
	for _, n := range append([]*graph.Node(nil), m.Graph.Nodes...) {
		if n.OpType != "QuantizeLinear" {
			continue
		}
		o := n.Output()
		types[o.Name] = graph.Uint8
		if dt, _ := n.AttrInt("output_dtype", 0); dt != 0 {
			types[o.Name] = graph.DataType(dt)
		}
		if z := n.Input(2); z != nil {
			types[o.Name] = z.ElemType()
		}
		c := m.Graph.AddNode("Cast", "", []*graph.Value{o}, []string{o.Name + "_codes"}, graph.AttrIntOf("to", int64(graph.Float)))
		c.Output().SetTensorType(graph.Float, nil)
		m.Graph.AddOutput(c.Output())
	}
	probe := filepath.Join(t.TempDir(), "codes.onnx")
	if err := graph.Save(m, probe); err != nil {
		t.Fatal(err)
	}
	got := ortRunAt(t, probe, ortref.OptAll, in)
	out := map[string]*graph.Tensor{}
	for name, plain := range ortRunAt(t, path, ortref.OptAll, in) {
		sameFloats(t, "ORT with the codes as extra outputs", plain.Float32s(), got[name].Float32s())
		out[name] = plain
	}
	for name, dt := range types {
		f := got[name+"_codes"]
		c := graph.NewTensor(dt, f.Shape)
		v := make([]int64, f.Len())
		for i, x := range f.Float32s() {
			v[i] = int64(x)
		}
		kernels.StoreInt64s(c, v)
		out[name] = c
	}
	return out
}

// sameAsORTLayer runs one QLinearConv of the qlinear-rewritten model on ORT's
// codes for its input and compares with ORT's codes for its output. Where they
// differ, the input must be uint8 and ORT's value that of int16-saturating
// pair sums (u8s8AVX2); it returns how many outputs that explains.
func sameAsORTLayer(t *testing.T, m *graph.Model, n *graph.Node, codes map[string]*graph.Tensor) int {
	t.Helper()
	x := codes[strings.TrimSuffix(n.Input(0).Name, "_qlinear")]
	want := codes[strings.TrimSuffix(n.Output().Name, "_qlinear")]
	if x == nil || want == nil {
		t.Fatalf("%s: no ORT codes for its input %s or output %s", n.Name, n.Input(0).Name, n.Output().Name)
	}
	in := []*graph.Tensor{x}
	for _, v := range n.Inputs[1:] {
		if v == nil {
			in = append(in, nil)
			continue
		}
		if v.Const == nil {
			t.Fatalf("%s: input %s is not constant", n.Name, v.Name)
		}
		in = append(in, v.Const)
	}
	outs, err := kernels.EvalNode(m, n, in)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := kernels.LoadInt64s(outs[0]), kernels.LoadInt64s(want)
	if len(ours) != len(theirs) {
		t.Fatalf("%s: %d outputs, ORT %d", n.Name, len(ours), len(theirs))
	}
	explained, worst := 0, int64(0)
	for i := range ours {
		if ours[i] == theirs[i] {
			continue
		}
		sat, ok := u8s8AVX2(t, n, in, outs[0].Shape, i)
		if x.DType != graph.Uint8 || !ok || sat != theirs[i] {
			t.Errorf("%s: output %d is %d, ORT %d (not explained by int16 saturation: saturated %v, gives %d)", n.Name, i, ours[i], theirs[i], ok, sat)
			return explained
		}
		explained++
		worst = max(worst, ours[i]-theirs[i], theirs[i]-ours[i])
	}
	if explained > 0 {
		t.Logf("%s: %d of %d outputs differ from exact int32 arithmetic by up to %d steps, all as int16-saturating pair sums give", n.Name, explained, len(ours), worst)
	}
	return explained
}

// u8s8AVX2 recomputes output i of QLinearConv n as MLAS does on x86 without
// VNNI: raw uint8 codes (padding with the zero point) times raw int8 weights,
// the reduction dimension ordered kernel position, then input channel, summed
// in neighbouring pairs each saturated to int16, then the zero-point terms and
// the bias in int32, and the float32 requantization. ok says whether a pair
// saturated.
func u8s8AVX2(t *testing.T, n *graph.Node, in []*graph.Tensor, yShape []int, i int) (int64, bool) {
	t.Helper()
	if ap, _ := n.AttrString("auto_pad", "NOTSET"); ap != "NOTSET" || len(yShape) != 4 {
		t.Fatalf("%s: only explicit pads on 2-D convolutions are recomputed here", n.Name)
	}
	ints := func(k int) []int64 { return kernels.LoadInt64s(in[k]) }
	floats := func(k int) []float32 {
		v, err := in[k].AsFloat32()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	xv, w := ints(0), ints(3)
	xz, wz, yz := ints(2)[0], ints(5), ints(7)[0]
	xs, ws, ys := floats(1)[0], floats(4), floats(6)[0]
	c, h, wd := in[0].Shape[1], in[0].Shape[2], in[0].Shape[3]
	m, cg, kh, kw := in[3].Shape[0], in[3].Shape[1], in[3].Shape[2], in[3].Shape[3]
	oh, ow := yShape[2], yShape[3]
	b, oc, oy, ox := i/(m*oh*ow), i/(oh*ow)%m, i/ow%oh, i%ow
	group, _ := n.AttrInt("group", 1)
	st, _ := n.AttrInts("strides", []int64{1, 1})
	dl, _ := n.AttrInts("dilations", []int64{1, 1})
	pd, _ := n.AttrInts("pads", []int64{0, 0, 0, 0})
	g := oc / (m / int(group))
	var xk, wk []int64
	for ki := 0; ki < kh; ki++ {
		for kj := 0; kj < kw; kj++ {
			iy, ix := oy*int(st[0])+ki*int(dl[0])-int(pd[0]), ox*int(st[1])+kj*int(dl[1])-int(pd[1])
			for ci := 0; ci < cg; ci++ {
				v := xz
				if iy >= 0 && iy < h && ix >= 0 && ix < wd {
					v = xv[((b*c+g*cg+ci)*h+iy)*wd+ix]
				}
				xk = append(xk, v)
				wk = append(wk, w[((oc*cg+ci)*kh+ki)*kw+kj])
			}
		}
	}
	wzp := wz[0]
	if len(wz) > 1 {
		wzp = wz[oc]
	}
	var acc, sx, sw int64
	saturated := false
	for k := 0; k < len(xk); k += 2 {
		pair := xk[k] * wk[k]
		if k+1 < len(xk) {
			pair += xk[k+1] * wk[k+1]
		}
		if pair > math.MaxInt16 || pair < math.MinInt16 {
			pair, saturated = max(math.MinInt16, min(math.MaxInt16, pair)), true
		}
		acc += pair
	}
	for k := range xk {
		sx += xk[k]
		sw += wk[k]
	}
	acc += -xz*sw - wzp*sx + int64(len(xk))*xz*wzp
	if len(in) > 8 && in[8] != nil {
		acc += ints(8)[oc]
	}
	scale := ws[0]
	if len(ws) > 1 {
		scale = ws[oc]
	}
	mult := xs * scale / ys
	lo, hi, _ := kernels.QuantRange(in[7].DType)
	r := math.RoundToEven(float64(float32(acc)*mult)) + float64(yz)
	return int64(max(lo, min(hi, r))), saturated
}

// TestPaddleOCRQDQCosine calibrates the PaddleOCR det and rec models on 32 rendered
// pages with uint16 activations and int8 weights, and compares ONNX Runtime's QDQ
// output with the float model's on 4 held-back pages. (With uint8 activations
// these models stay below 0.99, and cls flips near-50/50 decisions on synthetic
// withLogits saves a copy of a PaddleOCR model (float or QDQ) with the input of
// its last Softmax as an extra output named by the value: the rec model's
// logits. In a QDQ model it is the value before its own Q/DQ pair.
func withLogits(t *testing.T, path, out string) string {
	t.Helper()
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var sm *graph.Node
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Softmax" {
			sm = n
		}
	}
	v := sm.Input(0)
	if v.Producer != nil && v.Producer.OpType == "DequantizeLinear" {
		v = v.Producer.Input(0).Producer.Input(0)
	}
	m.Graph.AddOutput(v)
	if err := graph.Save(m, out); err != nil {
		t.Fatal(err)
	}
	return v.Name
}

// TestPaddleOCRQDQCosine: each PaddleOCR model, calibrated on 32 rendered text
// images (PaddleOCR's own normalization per model), runs in ONNX Runtime with
// cosine >= 0.99 against the float model on 8 held-back images: det on the
// probability map, rec on the logits (the last Softmax's input), cls on the
// softmax. Types: uint16 activations, int8 per-channel weights; for cls one
// layer's weights at int16 (p2o.Conv.2, the stem conv), found by quantizing
// one layer at a time to int8 under int16 weights elsewhere (it alone drops
// the worst cosine to 0.9919; the next one to 0.9990) on other images
// (seeds 900-907) than the ones asserted here.
func TestPaddleOCRQDQCosine(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"rec", "det", "cls"} {
		t.Run(kind, func(t *testing.T) {
			hw := map[string][2]int{"det": {320, 320}, "rec": {48, 320}, "cls": {48, 192}}[kind]
			h, w := hw[0], hw[1]
			dir := t.TempDir()
			cal := filepath.Join(dir, "calib")
			mustMkdir(t, cal)
			for i := 0; i < 32; i++ {
				if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%02d.npy", i)), testdata.OCRInput(kind, h, w, uint64(100+i))); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(dir, kind+".qdq.onnx")
			model := testdata.OCRModel(t, kind)
			opt := Options{Model: model, Output: out, Calib: cal, Observer: calib.Config{Kind: "minmax"}, ActType: graph.Uint16}
			if kind == "cls" {
				f, err := overrides.Parse([]byte(`{"version": 1, "nodes": {"p2o.Conv.2": {"weight_dtype": "int16"}}}`))
				if err != nil {
					t.Fatal(err)
				}
				opt.Overrides = f
			}
			if _, err := Convert(context.Background(), opt); err != nil {
				t.Fatal(err)
			}
			compare := ""
			if kind == "rec" {
				fl, ql := filepath.Join(dir, "f.onnx"), filepath.Join(dir, "q.onnx")
				compare = withLogits(t, model, fl)
				withLogits(t, out, ql)
				model, out = fl, ql
			}
			worst := 1.0
			for i := 0; i < 8; i++ {
				in := map[string]*graph.Tensor{"x": testdata.OCRInput(kind, h, w, uint64(1000+i))}
				f := ortRun(t, model, in)
				q := ortRun(t, out, in)
				for name, fv := range f {
					if compare == "" || name == compare {
						worst = math.Min(worst, cosine(fv.Float32s(), q[name].Float32s()))
					}
				}
			}
			t.Logf("%s: worst cosine(float, QDQ) in ONNX Runtime over 8 held-back images: %.5f", kind, worst)
			if worst < 0.99 {
				t.Errorf("%s: cosine %.4f < 0.99", kind, worst)
			}
		})
	}
}

// TestMixedTypesRunInORT: int4 weights and uint16/int8 activations give opset-21
// QDQ models that ONNX Runtime loads, agreeing with onnxq within one output step.
func TestMixedTypesRunInORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		act, w graph.DataType
		block  int
	}{{graph.Uint8, graph.Int4, 0}, {graph.Uint16, graph.Int8, 0}, {graph.Int8, graph.Int8, 0}, {graph.Uint8, graph.Int4, 16}} {
		t.Run(fmt.Sprintf("%s-%s-block%d", c.act.Short(), c.w.Short(), c.block), func(t *testing.T) {
			dir, model, cal := withSamples(t, testmodels.ConvBNReLU(2), 8, []int{1, 3, 32, 32}, 3)
			out := filepath.Join(dir, "q.onnx")
			rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, ActType: c.act, WeightType: c.w, WeightBlockSize: c.block})
			if err != nil {
				t.Fatal(err)
			}
			q, _ := graph.Load(out)
			x := graph.NewTensor(graph.Float, []int{1, 3, 32, 32})
			for i, d := 0, x.Float32s(); i < len(d); i++ {
				d[i] = float32(math.Cos(float64(i) * 0.21))
			}
			ours := runOnce(t, q, x)
			theirs := ortRun(t, out, map[string]*graph.Tensor{"input": x})["logits"].Float32s()
			var step float64
			for _, tr := range rep.Tensors {
				if tr.Name == "logits" {
					step = float64(tr.Encoding.Scale[0])
				}
			}
			worst := 0.0
			for i := range ours {
				worst = math.Max(worst, math.Abs(float64(ours[i])-float64(theirs[i])))
			}
			if c.block > 0 {
				blocked := 0
				for _, n := range q.Graph.Nodes {
					if n.OpType == "DequantizeLinear" && n.HasAttr("block_size") {
						blocked++
					}
				}
				if blocked != 1 {
					t.Errorf("%d blocked DequantizeLinear nodes, want 1 (the Gemm weight)", blocked)
				}
			}
			t.Logf("opset %d: max |onnxq - ORT| %.3g, output step %.3g", q.OpsetVersion(""), worst, step)
			if worst > step*1.0001 {
				t.Errorf("differ by %.3g > one step %.3g", worst, step)
			}
		})
	}
}

// TestOverrideRulesRunInORT: a mixed-precision model from override rules (int16
// and uint16 activations, int4 weights, a float weight, a skipped Add) loads in
// ONNX Runtime, and both runs sit as close to the float model. They do not agree
// to the step: with the float-weight Conv_3 alone, ORT and onnxq differ by
// 0.024 at the output (every other override alone gives identical outputs);
// still open, see the issue note.
func TestOverrideRulesRunInORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	js := `{"version": 1, "op_types": {"Gemm": {"activation_dtype": "uint16"}},
	  "nodes": {"Conv_[12]": {"activation_dtype": "int16", "weight_dtype": "int4"}, "Conv_3": {"weight_dtype": "float"}},
	  "skip": {"op_types": ["Add"]}}`
	_, q, err := convertWith(t, testmodels.MobileNetV2Block(1), js)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "q.onnx")
	if err := graph.Save(q, path); err != nil {
		t.Fatal(err)
	}
	x := graph.NewTensor(graph.Float, []int{1, 8, 16, 16})
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(math.Sin(float64(i) * 0.37))
	}
	ours := runOnce(t, q, x)
	theirs := ortRun(t, path, map[string]*graph.Tensor{"input": x})["logits"].Float32s()
	worst, peak := 0.0, 0.0
	for i := range ours {
		worst = math.Max(worst, math.Abs(float64(ours[i])-float64(theirs[i])))
		peak = math.Max(peak, math.Abs(float64(theirs[i])))
	}
	ref := runOnce(t, testmodels.MobileNetV2Block(1), x)
	dOurs, dORT := 0.0, 0.0
	for i := range ref {
		dOurs = math.Max(dOurs, math.Abs(float64(ours[i])-float64(ref[i])))
		dORT = math.Max(dORT, math.Abs(float64(theirs[i])-float64(ref[i])))
	}
	t.Logf("vs float: onnxq %.3g ORT %.3g", dOurs, dORT)
	t.Logf("opset %d: max |onnxq - ORT| %.3g of peak %.3g", q.OpsetVersion(""), worst, peak)
	// Without ORT's graph optimizations both execute the same QDQ graph op by
	// op and agree exactly; with them, ORT fuses the float-weight Conv with
	// its Clip and sums in another order, which moves values near a rounding
	// boundary by one output step (measured: 1 step for Conv_1, 2 for Conv_3).
	sameFloats(t, "unoptimized", ortRunAt(t, path, ortref.OptNone, map[string]*graph.Tensor{"input": x})["logits"].Float32s(), ours)
	if dOurs > 1.5*dORT || dORT > 1.5*dOurs || worst > 0.05*peak {
		t.Errorf("onnxq (%.3g from float) and ORT (%.3g) differ by %.3g (peak %.3g)", dOurs, dORT, worst, peak)
	}
}

// TestPaddleOCRMixedPrecision: one overrides file on the rec model sets two
// Conv outputs to uint16, its Softmax to float and one Conv's weights to int4
// per channel; the Q/DQ nodes carry exactly those types and ONNX Runtime runs it.
func TestPaddleOCRMixedPrecision(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	model := testdata.OCRModel(t, "rec")
	orig, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	var convs []*graph.Node
	var softmax *graph.Node
	for _, n := range orig.Graph.Nodes {
		if n.OpType == "Conv" {
			convs = append(convs, n)
		}
		if n.OpType == "Softmax" && softmax == nil {
			softmax = n
		}
	}
	if len(convs) < 3 || softmax == nil {
		t.Fatalf("rec model: %d convs, softmax %v", len(convs), softmax)
	}
	js := fmt.Sprintf(`{"version": 1, "nodes": {%q: {"activation_dtype": "uint16"}, %q: {"activation_dtype": "uint16"}, %q: {"weight_dtype": "int4"}, %q: {"activation_dtype": "float"}}}`,
		convs[1].Name, convs[2].Name, convs[4].Name, softmax.Name)
	f, err := overrides.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cal := filepath.Join(dir, "calib")
	mustMkdir(t, cal)
	for i := 0; i < 8; i++ {
		x := testdata.OCRInput("rec", 48, 320, uint64(100+i))
		if err := npy.WriteFile(filepath.Join(cal, fmt.Sprintf("%02d.npy", i)), x); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "rec.qdq.onnx")
	rep, err := Convert(context.Background(), Options{Model: model, Output: out, Calib: cal, Observer: calib.Config{Kind: "minmax"}, Overrides: f})
	if err != nil {
		t.Fatal(err)
	}
	bySource := map[string][]*TensorReport{}
	for _, tr := range rep.Tensors {
		bySource[tr.Override] = append(bySource[tr.Override], tr)
	}
	for _, c := range convs[1:3] {
		trs := bySource[fmt.Sprintf("nodes[%q]", c.Name)]
		if len(trs) != 1 || trs[0].Encoding.DType != graph.Uint16 {
			t.Errorf("%s: output tensors %v, want one uint16", c.Name, trs)
		}
	}
	trs := bySource[fmt.Sprintf("nodes[%q]", convs[4].Name)]
	if len(trs) != 1 || trs[0].Kind != "weight" || trs[0].Encoding.DType != graph.Int4 || len(trs[0].Encoding.Scale) < 2 {
		t.Errorf("%s: weight tensors %+v, want one int4 per-channel", convs[4].Name, trs)
	}
	floatSoftmax := false
	for _, ft := range rep.FloatTensors {
		floatSoftmax = floatSoftmax || ft.Reason == fmt.Sprintf("overrides: nodes[%q]", softmax.Name)
	}
	if !floatSoftmax {
		t.Errorf("the report does not list the Softmax output as kept float by nodes[%q]", softmax.Name)
	}
	q, err := graph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	got := quantTypes(q)
	for _, o := range softmax.Outputs {
		if _, ok := got[o.Name]; ok {
			t.Errorf("softmax output %s is quantized", o.Name)
		}
	}
	// The written model: Q/DQ types in the file match the report.
	for _, tr := range rep.Tensors {
		if tr.Override != "" && got[tr.Name] != tr.Encoding.DType {
			t.Errorf("%s: written as %v, report says %v", tr.Name, got[tr.Name], tr.Encoding.DType)
		}
	}
	x := testdata.OCRInput("rec", 48, 320, 901)
	in := map[string]*graph.Tensor{"x": x}
	fo, qo := ortRun(t, model, in), ortRun(t, out, in)
	for name, fv := range fo {
		t.Logf("%s: cosine(float, mixed QDQ) in ONNX Runtime %.4f (opset %d, softmax output float: %v)", name, cosine(fv.Float32s(), qo[name].Float32s()), q.OpsetVersion(""), floatSoftmax)
		for _, v := range qo[name].Float32s() {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: non-finite output", name)
			}
		}
	}
}

// TestORTOverridesDialect: an ONNX Runtime TensorQuantOverrides file drives
// the conversion as it would ORT's quantizer: types, symmetry, a one-sided
// range, per-channel int4 weights and a fixed per-channel encoding; ORT
// runs the result, and without graph optimizations agrees with onnxq exactly.
func TestORTOverridesDialect(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	fixed := make([]string, 10)
	for i := range fixed {
		fixed[i] = fmt.Sprintf(`{"scale": %g, "zero_point": 0}`, 0.004+0.001*float64(i))
	}
	fixed[0] = strings.Replace(fixed[0], "{", `{"axis": 0, "quant_type": "QInt8", `, 1)
	js := `{"input": [{"quant_type": "QUInt16"}],
	  "Clip_1_out": [{"quant_type": "QInt16", "symmetric": true, "rmax": 6.0}],
	  "conv_w_2": [{"axis": 0, "quant_type": "QInt4", "symmetric": true}],
	  "fc_w": [` + strings.Join(fixed, ", ") + `]}`
	rep, q, err := convertWith(t, testmodels.MobileNetV2Block(1), js)
	if err != nil {
		t.Fatal(err)
	}
	got := quantTypes(q)
	for name, dt := range map[string]graph.DataType{"input": graph.Uint16, "Clip_1_out": graph.Int16, "conv_w_2_bnfold": graph.Int4, "fc_w": graph.Int8, "Clip_2_out": graph.Uint8} {
		if got[name] != dt {
			t.Errorf("%s: %v, want %v", name, got[name], dt)
		}
	}
	for _, tr := range rep.Tensors {
		switch tr.Name {
		case "Clip_1_out":
			if tr.Range[1] != 6 || tr.Encoding.ZeroPoint[0] != 0 {
				t.Errorf("Clip_1_out: range %v, zero point %d", *tr.Range, tr.Encoding.ZeroPoint[0])
			}
		case "fc_w":
			if tr.Observer != "overrides" || len(tr.Encoding.Scale) != 10 || tr.Encoding.Scale[9] != 0.013 {
				t.Errorf("fc_w: %s %v", tr.Observer, tr.Encoding.Scale)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "q.onnx")
	if err := graph.Save(q, path); err != nil {
		t.Fatal(err)
	}
	x := graph.NewTensor(graph.Float, []int{1, 8, 16, 16})
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(math.Cos(float64(i) * 0.21))
	}
	ours := runOnce(t, q, x)
	sameFloats(t, "unoptimized", ortRunAt(t, path, ortref.OptNone, map[string]*graph.Tensor{"input": x})["logits"].Float32s(), ours)
	worst := 0.0
	for i, v := range ortRun(t, path, map[string]*graph.Tensor{"input": x})["logits"].Float32s() {
		worst = math.Max(worst, math.Abs(float64(v-ours[i])))
	}
	t.Logf("optimized ORT vs onnxq: %.3g", worst)
}
