//go:build ort

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
)

// The quantized com.microsoft ops against ONNX Runtime. The ORT bridge feeds
// and returns float32, int32 and int64 only, so quantized inputs are
// initializers and a quantized output leaves the graph through Cast to int32
// (4-bit ones through DequantizeLinear with scale 1): the comparison is of
// the codes themselves, in quanta.

const qlMS = "com.microsoft"

// qlCase is one com.microsoft node; out is its output type.
type qlCase struct {
	name  string
	op    string
	attrs []*onnxpb.AttributeProto
	in    []opInput
	out   graph.DataType
	tol   float64 // allowed difference: quanta, or absolute for float outputs
}

// qlModel builds the case's graph: the node, then its output as int32 codes
// (8/16-bit), float codes (4-bit) or as is (float).
func (c qlCase) qlModel() (*graph.Model, map[string]*graph.Tensor) {
	m := graph.NewModel(graph.Opset{Version: 21}, graph.Opset{Domain: qlMS, Version: 1})
	g := m.Graph
	ins, feeds := addOpInputs(g, c.in)
	if len(feeds) == 0 {
		// The ORT bridge cannot run a graph without inputs: feed an unused one.
		g.AddInput("unused", graph.Float, []int64{1})
		feeds["unused"] = qlF32(0).Clone()
		feeds["unused"].Shape = []int{1}
	}
	nd := g.AddNode(c.op, "node", ins, []string{"y"}, c.attrs...)
	nd.Domain = qlMS
	y := nd.Output()
	y.SetTensorType(c.out, nil)
	switch c.out {
	case graph.Float:
		g.AddOutput(y)
	case graph.Int4, graph.Uint4:
		zp := graph.NewTensor(c.out, nil)
		dq := g.AddNode("DequantizeLinear", "codes", []*graph.Value{y, g.AddInitializer("one", graph.Float32Tensor(nil, []float32{1})), g.AddInitializer("zero", zp)}, []string{"codes"})
		dq.Domain = qlMS
		dq.Output().SetTensorType(graph.Float, nil)
		g.AddOutput(dq.Output())
	default:
		cast := g.AddNode("Cast", "codes", []*graph.Value{y}, []string{"codes"}, graph.AttrIntOf("to", int64(graph.Int32)))
		cast.Output().SetTensorType(graph.Int32, nil)
		g.AddOutput(cast.Output())
	}
	return m, feeds
}

// qlRunModel runs a model in onnxq and ORT (one thread, no graph
// optimizations) and returns both outputs by name.
func qlRunModel(t *testing.T, path string, m *graph.Model, feeds map[string]*graph.Tensor) (got, want map[string]*graph.Tensor) {
	t.Helper()
	got, want = runBoth(t, path, m, feeds)
	for name, w := range want {
		if g := got[name]; g == nil || !sameDims(g.Shape, w.Shape...) {
			t.Fatalf("%s: onnxq gave %v, ONNX Runtime %v", name, g, w.Shape)
		}
	}
	return got, want
}

// qlRun runs a case in both and returns the outputs as float64s.
func qlRun(t *testing.T, dir string, i int, c qlCase) (got, want []float64, shape []int) {
	t.Helper()
	m, feeds := c.qlModel()
	gm, wm := qlRunModel(t, filepath.Join(dir, fmt.Sprintf("ql%d.onnx", i)), m, feeds)
	name := m.Graph.Outputs[0].Name
	g, w := gm[name], wm[name]
	gf, err := asFloat64s(g)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := asFloat64s(w)
	if err != nil {
		t.Fatal(err)
	}
	return gf, wf, w.Shape
}

// qlCheck runs the cases and requires each output within its tolerance; it
// returns the largest difference of each op.
func qlCheck(t *testing.T, cases []qlCase) map[string]float64 {
	t.Helper()
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	worst := map[string]float64{}
	for i, c := range cases {
		got, want, shape := qlRun(t, dir, i, c)
		var d float64
		n, first := 0, -1
		for j := range got {
			if e := math.Abs(got[j] - want[j]); e > 0 {
				d = max(d, e)
				if n++; first < 0 {
					first = j
				}
			}
		}
		worst[c.op] = max(worst[c.op], d)
		if n > 0 {
			t.Logf("%s: %d of %d %v outputs differ, max %g (first at %d: onnxq %g, ORT %g)", c.name, n, len(got), shape, d, first, got[first], want[first])
		}
		if d > c.tol {
			t.Errorf("%s: differs from ONNX Runtime by %g > %g", c.name, d, c.tol)
		}
	}
	for op, d := range worst {
		t.Logf("%s: max difference from ONNX Runtime %g", op, d)
	}
	return worst
}

// qlRandCodes is a tensor of uniformly random codes over dt's whole range.
func qlRandCodes(seed uint64, dt graph.DataType, shape ...int) *graph.Tensor {
	r := rand.New(rand.NewPCG(seed, 11))
	lo, hi, _ := QuantRange(dt)
	v := make([]int64, graph.Numel(shape))
	for i := range v {
		v[i] = int64(lo) + r.Int64N(int64(hi-lo)+1)
	}
	t := graph.NewTensor(dt, shape)
	StoreInt64s(t, v)
	return t
}

// qlCode is a scalar (or, with shape, filled) code tensor of type dt.
func qlCode(dt graph.DataType, v int64, shape ...int) *graph.Tensor {
	t := graph.NewTensor(dt, shape)
	vals := make([]int64, t.Len())
	for i := range vals {
		vals[i] = v
	}
	StoreInt64s(t, vals)
	return t
}

// qlF32 is a scalar float32 tensor.
func qlF32(v float32) *graph.Tensor { return graph.Float32Tensor(nil, []float32{v}) }

// qlRandScale is a random scale in [lo, hi).
func qlRandScale(r *rand.Rand, lo, hi float64) float32 { return float32(lo + r.Float64()*(hi-lo)) }

// qlRandZP is a random zero point of dt, away from its ends.
func qlRandZP(r *rand.Rand, dt graph.DataType) int64 {
	lo, hi, _ := QuantRange(dt)
	span := (hi - lo) / 4
	return int64(lo+span) + r.Int64N(int64(2*span)+1)
}

// qlRandFloats is a tensor of normal values times sd.
func qlRandFloats(seed uint64, sd float32, shape ...int) *graph.Tensor {
	t := rnd(seed, shape...)
	for i, v := range t.Float32s() {
		t.Float32s()[i] = v * sd
	}
	return t
}

// qlScales is a 1-D tensor of n random scales in [lo, hi).
func qlScales(r *rand.Rand, n int, lo, hi float64) *graph.Tensor {
	v := make([]float32, n)
	for i := range v {
		v[i] = qlRandScale(r, lo, hi)
	}
	return graph.Float32Tensor([]int{n}, v)
}

// qlZPs is a 1-D tensor of n random zero points of dt.
func qlZPs(r *rand.Rand, dt graph.DataType, n int) *graph.Tensor {
	v := make([]int64, n)
	for i := range v {
		v[i] = qlRandZP(r, dt)
	}
	t := graph.NewTensor(dt, []int{n})
	StoreInt64s(t, v)
	return t
}

func TestQLinearQuantizeDequantizeMatchORT(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var cases []qlCase
	for i, dt := range []graph.DataType{graph.Uint8, graph.Int8, graph.Uint16, graph.Int16, graph.Uint4, graph.Int4} {
		lo, hi, _ := QuantRange(dt)
		// Scales that put the normal data well past the type's range.
		s := float32(6 / (hi - lo))
		seed := uint64(10 * i)
		zp := qlCode(dt, qlRandZP(r, dt))
		// Exact ties: x/s = k + 0.5 with s a power of two.
		ties := make([]float32, 64)
		for k := range ties {
			ties[k] = (float32(k-32) + 0.5) * 0.25
		}
		axis := func(a int64) []*onnxpb.AttributeProto { return []*onnxpb.AttributeProto{ai("axis", a)} }
		cases = append(cases,
			qlCase{name: dt.Short() + " Q per tensor", op: "QuantizeLinear", out: dt,
				in: []opInput{fin(qlRandFloats(seed, 1, 3, 4, 50)), kin(qlF32(s)), kin(zp)}},
			qlCase{name: dt.Short() + " Q no zero point", op: "QuantizeLinear", out: graph.Uint8,
				in: []opInput{fin(qlRandFloats(seed+1, 1, 2, 70)), kin(qlF32(0.01))}},
			qlCase{name: dt.Short() + " Q ties", op: "QuantizeLinear", out: dt,
				in: []opInput{fin(graph.Float32Tensor([]int{64}, ties)), kin(qlF32(0.25)), kin(qlCode(dt, 0))}},
			qlCase{name: dt.Short() + " Q per channel axis 1", op: "QuantizeLinear", out: dt, attrs: axis(1),
				in: []opInput{fin(qlRandFloats(seed+2, 1, 2, 5, 30)), kin(qlScales(r, 5, float64(s)/2, float64(s)*2)), kin(qlZPs(r, dt, 5))}},
			qlCase{name: dt.Short() + " Q per channel axis -1", op: "QuantizeLinear", out: dt, attrs: axis(-1),
				in: []opInput{fin(qlRandFloats(seed+3, 1, 6, 7)), kin(qlScales(r, 7, float64(s)/2, float64(s)*2)), kin(qlZPs(r, dt, 7))}},
			qlCase{name: dt.Short() + " DQ per tensor", op: "DequantizeLinear", out: graph.Float,
				in: []opInput{kin(qlRandCodes(seed+4, dt, 3, 40)), kin(qlF32(qlRandScale(r, 0.001, 0.1))), kin(zp)}},
			qlCase{name: dt.Short() + " DQ per channel axis 0", op: "DequantizeLinear", out: graph.Float, attrs: axis(0),
				in: []opInput{kin(qlRandCodes(seed+5, dt, 4, 3, 9)), kin(qlScales(r, 4, 0.001, 0.1)), kin(qlZPs(r, dt, 4))}},
		)
	}
	qlCheck(t, cases)
}

// qlBinaryShapes are the operand shapes of the broadcasting cases: same
// shape, a trailing vector, a per-channel column, both sides broadcast, a
// scalar on either side, a single element.
var qlBinaryShapes = [][2][]int{
	{{2, 3, 8, 8}, {2, 3, 8, 8}},
	{{2, 3, 4, 5}, {5}},
	{{2, 3, 4, 5}, {3, 1, 1}},
	{{3, 1}, {1, 40}},
	{{4, 1, 6}, {4, 5, 1}},
	{nil, {2, 37}},
	{{2, 37}, {1}},
	{{1, 1}, {1}},
	{{7, 1}, {7, 1}},
}

func TestQLinearAddMulMatchORT(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	var cases []qlCase
	for _, op := range []string{"QLinearAdd", "QLinearMul"} {
		for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
			for si, sh := range qlBinaryShapes {
				for trial := 0; trial < 6; trial++ {
					sa, sb := qlRandScale(r, 0.002, 0.1), qlRandScale(r, 0.002, 0.1)
					sc := qlRandScale(r, 0.01, 0.2)
					if op == "QLinearMul" {
						sc = qlRandScale(r, 0.0005, 0.02)
					}
					if trial == 0 {
						sc /= 10 // most outputs saturate
					}
					seed := uint64(1000*si + 10*trial)
					in := []opInput{kin(qlRandCodes(seed, dt, sh[0]...)), kin(qlF32(sa)), kin(qlCode(dt, qlRandZP(r, dt))),
						kin(qlRandCodes(seed+1, dt, sh[1]...)), kin(qlF32(sb)), kin(qlCode(dt, qlRandZP(r, dt))),
						kin(qlF32(sc)), kin(qlCode(dt, qlRandZP(r, dt)))}
					cases = append(cases, qlCase{name: fmt.Sprintf("%s %s %v+%v #%d", op, dt.Short(), sh[0], sh[1], trial), op: op, out: dt, in: in})
				}
			}
			// Every pair of codes, elementwise and with either side single
			// per run: rounding of ORT's float32 steps shows on a few of
			// the 65536 (the order of its fused multiply-adds among them).
			rows, cols := qlPairs(dt)
			for li, layout := range [][2]*graph.Tensor{{rows, cols}, {rows, qlColumn(dt)}, {qlColumn(dt), cols}} {
				for trial := 0; trial < 8; trial++ {
					sc := qlRandScale(r, 0.01, 0.3)
					if op == "QLinearMul" {
						sc = qlRandScale(r, 0.0005, 0.01)
					}
					in := []opInput{kin(layout[0]), kin(qlF32(qlRandScale(r, 0.001, 0.1))), kin(qlCode(dt, qlRandZP(r, dt))),
						kin(layout[1]), kin(qlF32(qlRandScale(r, 0.001, 0.1))), kin(qlCode(dt, qlRandZP(r, dt))),
						kin(qlF32(sc)), kin(qlCode(dt, qlRandZP(r, dt)))}
					cases = append(cases, qlCase{name: fmt.Sprintf("%s %s all pairs layout %d #%d", op, dt.Short(), li, trial), op: op, out: dt, in: in})
				}
			}
			if op == "QLinearMul" {
				// Scales where ORT's one ratio sa*sb/sc and the plain
				// (p*sa*sb)/sc round some product to different codes (about
				// one random set in a thousand; qlMulFormsDiffer found these).
				for k, q := range qlMulRatioCases[dt] {
					if !qlMulFormsDiffer(dt, q.sa, q.za, q.sb, q.zb, q.sc, q.zc) {
						t.Fatalf("%s %s set %d: the two forms agree", op, dt.Short(), k)
					}
					in := []opInput{kin(rows), kin(qlF32(q.sa)), kin(qlCode(dt, int64(q.za))), kin(cols), kin(qlF32(q.sb)), kin(qlCode(dt, int64(q.zb))),
						kin(qlF32(q.sc)), kin(qlCode(dt, int64(q.zc)))}
					cases = append(cases, qlCase{name: fmt.Sprintf("%s %s all pairs, ratio rounding #%d", op, dt.Short(), k), op: op, out: dt, in: in})
				}
			}
			// Exact ties (scales of halves): rounding half to even.
			in := []opInput{kin(rows), kin(qlF32(0.5)), kin(qlCode(dt, qlRandZP(r, dt))), kin(cols), kin(qlF32(0.5)), kin(qlCode(dt, qlRandZP(r, dt))),
				kin(qlF32(1)), kin(qlCode(dt, qlRandZP(r, dt)))}
			if op == "QLinearMul" {
				in[6] = kin(qlF32(64))
			}
			cases = append(cases, qlCase{name: fmt.Sprintf("%s %s ties", op, dt.Short()), op: op, out: dt, in: in})
		}
	}
	qlCheck(t, cases)
}

// qlMulRatioCases are QLinearMul scales and zero points (sa, za, sb, zb, sc,
// zc) under which the ratio form and the plain form part.
var qlMulRatioCases = map[graph.DataType][]struct {
	sa float32
	za int32
	sb float32
	zb int32
	sc float32
	zc int32
}{
	graph.Uint8: {{0.029292308, 80, 0.07877568, 120, 0.006473047, 71}, {0.012865185, 124, 0.06450932, 170, 0.0042560226, 66}, {0.07156809, 75, 0.025790488, 168, 0.0067348313, 117}},
	graph.Int8:  {{0.016367404, -35, 0.053038623, -50, 0.007842203, -18}, {0.016070556, -64, 0.094063774, -55, 0.0028437118, -63}, {0.09745214, 63, 0.036052868, 44, 0.0093589155, 6}},
}

// qlMulFormsDiffer reports whether some pair of codes gets another code from
// the plain float product (p*sa*sb)/sc than from ORT's p*(sa*sb/sc).
func qlMulFormsDiffer(dt graph.DataType, sa float32, za int32, sb float32, zb int32, sc float32, zc int32) bool {
	lo, hi, _ := QuantRange(dt)
	ratio := float32(sa*sb) / sc
	const span = 255 * 255
	seen := make([]bool, 2*span+1) // the distinct products
	for a := int32(lo); a <= int32(hi); a++ {
		for b := int32(lo); b <= int32(hi); b++ {
			seen[(a-za)*(b-zb)+span] = true
		}
	}
	for i, ok := range seen {
		p := float32(i - span)
		if ok && qlRound(float32(p*ratio)+float32(zc), lo, hi) != qlRound(float32(float32(p*sa)*sb)/sc+float32(zc), lo, hi) {
			return true
		}
	}
	return false
}

// qlPairs is every pair of dt's 256 codes: a [256, 256] tensor of row codes
// and one of column codes.
func qlPairs(dt graph.DataType) (rows, cols *graph.Tensor) {
	lo, _, _ := QuantRange(dt)
	rv, cv := make([]int64, 65536), make([]int64, 65536)
	for i := 0; i < 256; i++ {
		for j := 0; j < 256; j++ {
			rv[i*256+j], cv[i*256+j] = int64(lo)+int64(i), int64(lo)+int64(j)
		}
	}
	rows, cols = graph.NewTensor(dt, []int{256, 256}), graph.NewTensor(dt, []int{256, 256})
	StoreInt64s(rows, rv)
	StoreInt64s(cols, cv)
	return rows, cols
}

// qlColumn is dt's 256 codes as a [256, 1] column.
func qlColumn(dt graph.DataType) *graph.Tensor {
	c := qlAllCodes(dt)
	c.Shape = []int{256, 1}
	return c
}

// qlAllCodes is the 256 codes of an 8-bit type, as a [4, 64] tensor.
func qlAllCodes(dt graph.DataType) *graph.Tensor {
	lo, _, _ := QuantRange(dt)
	v := make([]int64, 256)
	for i := range v {
		v[i] = int64(lo) + int64(i)
	}
	t := graph.NewTensor(dt, []int{4, 64})
	StoreInt64s(t, v)
	return t
}

func TestQLinearSigmoidLeakyReluMatchORT(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var cases []qlCase
	for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
		for trial := 0; trial < 40; trial++ {
			xs := qlRandScale(r, 0.005, 0.2)
			x := []opInput{kin(qlAllCodes(dt)), kin(qlF32(xs)), kin(qlCode(dt, qlRandZP(r, dt)))}
			// Sigmoid's output in [0, 1]: ORT's quantizer gives 1/256 (uint8)
			// or 1/256 with -128 (int8); random ones too.
			ys, yz := float32(1.0/256), int64(0)
			if dt == graph.Int8 {
				yz = -128
			}
			if trial%2 == 1 {
				ys, yz = qlRandScale(r, 0.002, 0.01), qlRandZP(r, dt)
			}
			sig := append(append([]opInput(nil), x...), kin(qlF32(ys)), kin(qlCode(dt, yz)))
			cases = append(cases, qlCase{name: fmt.Sprintf("sigmoid %s #%d", dt.Short(), trial), op: "QLinearSigmoid", out: dt, in: sig, tol: 1})
			lr := append(append([]opInput(nil), x...), kin(qlF32(qlRandScale(r, 0.005, 0.2))), kin(qlCode(dt, qlRandZP(r, dt))))
			var attrs []*onnxpb.AttributeProto
			if trial%3 != 0 {
				attrs = []*onnxpb.AttributeProto{af("alpha", qlRandScale(r, 0.01, 0.5))}
			}
			if trial%5 == 4 { // omitted zero points
				lr[2], lr[4] = none(), none()
			}
			cases = append(cases, qlCase{name: fmt.Sprintf("leakyrelu %s #%d", dt.Short(), trial), op: "QLinearLeakyRelu", attrs: attrs, out: dt, in: lr})
		}
		// Exact ties: x/2 and alpha 0.25, with an odd output zero point.
		cases = append(cases, qlCase{name: "leakyrelu ties " + dt.Short(), op: "QLinearLeakyRelu", attrs: []*onnxpb.AttributeProto{af("alpha", 0.25)}, out: dt,
			in: []opInput{kin(qlAllCodes(dt)), kin(qlF32(1)), kin(qlCode(dt, 3)), kin(qlF32(2)), kin(qlCode(dt, 5))}})
	}
	qlCheck(t, cases)
}

func TestQLinearConcatMatchORT(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	var cases []qlCase
	for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
		for _, ax := range []int64{1, -1, 0} {
			for trial := 0; trial < 4; trial++ {
				ys, yz := qlRandScale(r, 0.01, 0.1), qlRandZP(r, dt)
				in := []opInput{kin(qlF32(ys)), kin(qlCode(dt, yz))}
				for k, n := range []int{3, 1, 5} {
					shape := []int{2, 4, 6}
					a := int(ax)
					if a < 0 {
						a += 3
					}
					shape[a] = n
					xs, xz := qlRandScale(r, 0.005, 0.2), qlRandZP(r, dt)
					if k == 1 { // already in Y's quantization: copied
						xs, xz = ys, yz
					}
					in = append(in, kin(qlRandCodes(uint64(100*trial+k), dt, shape...)), kin(qlF32(xs)), kin(qlCode(dt, xz)))
				}
				cases = append(cases, qlCase{name: fmt.Sprintf("concat %s axis %d #%d", dt.Short(), ax, trial), op: "QLinearConcat",
					attrs: []*onnxpb.AttributeProto{ai("axis", ax)}, out: dt, in: in})
			}
		}
	}
	qlCheck(t, cases)
}

func TestQLinearSoftmaxMatchORT(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	type shape struct {
		dims        []int
		axis, opset int64
	}
	shapes := []shape{{[]int{4, 10}, -1, 13}, {[]int{2, 5, 3}, 1, 13}, {[]int{2, 3, 4}, 1, 12}, {[]int{3, 1000}, 1, 13}, {[]int{2, 3, 4}, 0, 12}}
	var cases []qlCase
	for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
		for si, sh := range shapes {
			for trial := 0; trial < 6; trial++ {
				xs := qlRandScale(r, 0.005, 0.05)
				if trial >= 4 {
					xs = qlRandScale(r, 0.1, 0.5) // peaked rows: probabilities near 1
				}
				// ORT's quantizer: 1/256 and 0 (uint8) or -128 (int8); others too.
				ys, yz := float32(1.0/256), int64(0)
				if dt == graph.Int8 {
					yz = -128
				}
				if trial%2 == 1 {
					ys, yz = qlRandScale(r, 0.002, 0.01), qlRandZP(r, dt)
				}
				attrs := []*onnxpb.AttributeProto{ai("axis", sh.axis), ai("opset", sh.opset)}
				in := []opInput{kin(qlRandCodes(uint64(10*si+trial), dt, sh.dims...)), kin(qlF32(xs)), kin(qlCode(dt, qlRandZP(r, dt))), kin(qlF32(ys)), kin(qlCode(dt, yz))}
				cases = append(cases, qlCase{name: fmt.Sprintf("softmax %s %v axis %d opset %d #%d", dt.Short(), sh.dims, sh.axis, sh.opset, trial),
					op: "QLinearSoftmax", attrs: attrs, out: dt, in: in})
			}
		}
	}
	// A row whose top probability rounds to 1: code 256 saturates.
	peak := graph.NewTensor(graph.Int8, []int{2, 4})
	copy(peak.Data().([]int8), []int8{127, -128, -128, -128, 0, 1, 2, 3})
	cases = append(cases, qlCase{name: "softmax int8 saturating", op: "QLinearSoftmax", attrs: []*onnxpb.AttributeProto{ai("opset", 13)}, out: graph.Int8,
		in: []opInput{kin(peak), kin(qlF32(0.5)), kin(qlCode(graph.Int8, 0)), kin(qlF32(1.0 / 256)), kin(qlCode(graph.Int8, -128))}})
	qlCheck(t, cases)
}

func TestQLinearGlobalAveragePoolMatchORT(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	var cases []qlCase
	for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
		for si, sh := range [][]int{{2, 3, 5, 7}, {1, 16, 4, 4}, {2, 9, 1, 13}, {1, 4, 3, 3, 3}, {2, 20, 9}} {
			for _, cl := range []int64{0, 1} {
				for trial := 0; trial < 3; trial++ {
					xs := qlRandScale(r, 0.01, 0.1)
					ys := xs * qlRandScale(r, 0.2, 1.5)
					if trial == 0 {
						ys = xs / 8 // saturates
					}
					in := []opInput{kin(qlRandCodes(uint64(10*si+trial), dt, sh...)), kin(qlF32(xs)), kin(qlCode(dt, qlRandZP(r, dt))), kin(qlF32(ys)), kin(qlCode(dt, qlRandZP(r, dt)))}
					cases = append(cases, qlCase{name: fmt.Sprintf("gap %s %v channels_last %d #%d", dt.Short(), sh, cl, trial), op: "QLinearGlobalAveragePool",
						attrs: []*onnxpb.AttributeProto{ai("channels_last", cl)}, out: dt, in: in})
				}
			}
		}
		// Means of two codes: exact ties, with an odd output zero point.
		cases = append(cases, qlCase{name: "gap ties " + dt.Short(), op: "QLinearGlobalAveragePool", out: dt,
			in: []opInput{kin(qlRandCodes(5, dt, 2, 64, 1, 2)), kin(qlF32(0.5)), kin(qlCode(dt, 1)), kin(qlF32(0.5)), kin(qlCode(dt, 7))}})
	}
	qlCheck(t, cases)
}

func TestQLinearAveragePoolMatchORT(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	ints := func(n string, v ...int64) *onnxpb.AttributeProto { return graph.AttrIntsOf(n, v...) }
	str := func(n, v string) *onnxpb.AttributeProto { return graph.AttrStringOf(n, v) }
	type pool struct {
		shape []int // NCHW
		attrs []*onnxpb.AttributeProto
	}
	pools := []pool{
		{[]int{2, 3, 9, 10}, []*onnxpb.AttributeProto{ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1)}},
		{[]int{2, 3, 9, 10}, []*onnxpb.AttributeProto{ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1), ai("count_include_pad", 1)}},
		{[]int{1, 4, 8, 11}, []*onnxpb.AttributeProto{ints("kernel_shape", 2, 3), ints("strides", 2, 2), ai("ceil_mode", 1)}},
		{[]int{1, 4, 8, 11}, []*onnxpb.AttributeProto{ints("kernel_shape", 3, 2), ints("strides", 2, 3), ai("ceil_mode", 1), ints("pads", 1, 0, 1, 1), ai("count_include_pad", 1)}},
		{[]int{1, 2, 7, 7}, []*onnxpb.AttributeProto{ints("kernel_shape", 3, 3), str("auto_pad", "SAME_UPPER"), ints("strides", 2, 2)}},
		{[]int{1, 2, 8, 8}, []*onnxpb.AttributeProto{ints("kernel_shape", 4, 4), str("auto_pad", "SAME_LOWER"), ints("strides", 3, 3), ai("count_include_pad", 1)}},
		{[]int{1, 2, 8, 9}, []*onnxpb.AttributeProto{ints("kernel_shape", 3, 3), str("auto_pad", "VALID")}},
		{[]int{2, 3, 5, 6}, []*onnxpb.AttributeProto{ints("kernel_shape", 5, 6)}},                                    // the whole plane: ORT's global path
		{[]int{2, 3, 5, 6}, []*onnxpb.AttributeProto{ints("kernel_shape", 5, 6), ints("pads", 0, 1, 0, 0)}},          // padded: the float path
		{[]int{2, 5, 17}, []*onnxpb.AttributeProto{ints("kernel_shape", 4), ints("strides", 3), ints("pads", 2, 1)}}, // 1-D
		{[]int{1, 2, 5, 6, 7}, []*onnxpb.AttributeProto{ints("kernel_shape", 2, 3, 3), ints("strides", 2, 2, 2), ints("pads", 1, 1, 0, 0, 1, 1)}},
	}
	var cases []qlCase
	// Means of two codes: exact ties, with an odd output zero point. ORT's
	// float path rounds avg/y_scale + zero point, its integer (whole-plane)
	// path avg/y_scale, then adds the zero point: they differ on ties.
	for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
		for _, k := range []int64{2, 4} {
			cases = append(cases, qlCase{name: fmt.Sprintf("avgpool ties %s kernel 1x2 on 1x%d", dt.Short(), k), op: "QLinearAveragePool", out: dt,
				attrs: []*onnxpb.AttributeProto{ints("kernel_shape", 1, 2), ints("strides", 1, 2)},
				in:    []opInput{kin(qlRandCodes(uint64(k), dt, 2, 64, 1, int(k))), kin(qlF32(0.5)), kin(qlCode(dt, 1)), kin(qlF32(0.5)), kin(qlCode(dt, 7))}})
		}
	}
	for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
		for pi, p := range pools {
			for _, cl := range []int64{0, 1} {
				for trial := 0; trial < 2; trial++ {
					shape := p.shape
					if cl == 1 { // NHWC: channels last
						shape = append(append([]int{p.shape[0]}, p.shape[2:]...), p.shape[1])
					}
					xs := qlRandScale(r, 0.01, 0.1)
					ys := xs * qlRandScale(r, 0.3, 1.5)
					if trial == 0 {
						ys = xs / 4 // saturates
					}
					in := []opInput{kin(qlRandCodes(uint64(10*pi+trial), dt, shape...)), kin(qlF32(xs)), kin(qlCode(dt, qlRandZP(r, dt))), kin(qlF32(ys)), kin(qlCode(dt, qlRandZP(r, dt)))}
					attrs := append(append([]*onnxpb.AttributeProto(nil), p.attrs...), ai("channels_last", cl))
					cases = append(cases, qlCase{name: fmt.Sprintf("avgpool %s %v #%d channels_last %d #%d", dt.Short(), shape, pi, cl, trial), op: "QLinearAveragePool",
						attrs: attrs, out: dt, in: in})
				}
			}
		}
	}
	qlCheck(t, cases)
}

func TestQGemmMatchORT(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	type types struct{ a, b graph.DataType }
	var cases []qlCase
	for ti, ty := range []types{{graph.Uint8, graph.Uint8}, {graph.Uint8, graph.Int8}, {graph.Int8, graph.Int8}} {
		for _, dims := range [][3]int{{5, 7, 6}, {16, 64, 24}} {
			m, k, n := dims[0], dims[1], dims[2]
			for trial := 0; trial < 8; trial++ {
				transA, transB := trial&1 != 0, trial&2 != 0
				ash, bsh := []int{m, k}, []int{k, n}
				if transA {
					ash = []int{k, m}
				}
				if transB {
					bsh = []int{n, k}
				}
				as := qlRandScale(r, 0.005, 0.05)
				bScale, bZP := opInput(kin(qlF32(qlRandScale(r, 0.005, 0.05)))), kin(qlCode(ty.b, qlRandZP(r, ty.b)))
				if trial&4 != 0 { // per column
					bScale, bZP = kin(qlScales(r, n, 0.005, 0.05)), kin(qlZPs(r, ty.b, n))
				}
				c := none()
				switch trial % 3 {
				case 1:
					c = kin(qlBias(r, n))
				case 2:
					c = kin(qlBias(r, m, n))
				}
				in := []opInput{kin(qlRandCodes(uint64(100*ti+trial), ty.a, ash...)), kin(qlF32(as)), kin(qlCode(ty.a, qlRandZP(r, ty.a))),
					kin(qlRandCodes(uint64(100*ti+trial+50), ty.b, bsh...)), bScale, bZP, c}
				attrs := []*onnxpb.AttributeProto{ai("transA", int64(trial&1)), ai("transB", int64(trial>>1&1))}
				if trial%4 == 3 {
					attrs = append(attrs, af("alpha", 0.5))
				}
				name := fmt.Sprintf("qgemm %s/%s %v trans %v/%v #%d", ty.a.Short(), ty.b.Short(), dims, transA, transB, trial)
				// Quantized output, in range and saturating.
				ys := float32(float64(as) * 0.03 * math.Sqrt(float64(k)) * 40 * qlRandF(r, 0.5, 2))
				if trial == 0 {
					ys /= 20
				}
				q := append(append([]opInput(nil), in...), kin(qlF32(ys)), kin(qlCode(ty.a, qlRandZP(r, ty.a))))
				cases = append(cases, qlCase{name: name + " quantized", op: "QGemm", attrs: attrs, out: ty.a, in: q})
				// Float output, without and with y_scale.
				cases = append(cases, qlCase{name: name + " float", op: "QGemm", attrs: attrs, out: graph.Float, in: in})
				if trial%2 == 0 {
					cases = append(cases, qlCase{name: name + " float / y_scale", op: "QGemm", attrs: attrs, out: graph.Float, in: append(append([]opInput(nil), in...), kin(qlF32(ys)))})
				}
			}
		}
	}
	// Exact ties: accumulators times 0.5*0.5/0.5, odd zero point.
	for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
		cases = append(cases, qlCase{name: "qgemm ties " + dt.Short(), op: "QGemm", out: dt, in: []opInput{
			kin(qlNearCodes(7, dt, 1, 9, 3)), kin(qlF32(0.5)), kin(qlCode(dt, 1)), kin(qlNearCodes(8, graph.Int8, 0, 3, 11)), kin(qlF32(0.5)), kin(qlCode(graph.Int8, 0)),
			none(), kin(qlF32(0.5)), kin(qlCode(dt, 3))}})
	}
	qlCheck(t, cases)
}

// qlRandF is a random float64 in [lo, hi).
func qlRandF(r *rand.Rand, lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }

// qlBias is an int32 tensor of random values in [-2000, 2000).
func qlBias(r *rand.Rand, shape ...int) *graph.Tensor {
	v := make([]int32, graph.Numel(shape))
	for i := range v {
		v[i] = int32(r.IntN(4000) - 2000)
	}
	return int32Tensor(shape, v)
}

// TestQOperatorModelMatchesORT runs a small QOperator-format model, as ONNX
// Runtime's quantizer writes one, end to end: QuantizeLinear, QLinearConv,
// QLinearLeakyRelu, QLinearAdd (broadcast constant), QLinearConcat,
// QLinearSigmoid, QLinearAveragePool, QLinearGlobalAveragePool, Reshape,
// QGemm, DequantizeLinear, for uint8 and int8 activations.
func TestQOperatorModelMatchesORT(t *testing.T) {
	if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, dt := range []graph.DataType{graph.Uint8, graph.Int8} {
		t.Run(dt.Short(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(9, 9))
			m := graph.NewModel(graph.Opset{Version: 17}, graph.Opset{Domain: qlMS, Version: 1})
			g := m.Graph
			nInit := 0
			init := func(x *graph.Tensor) *graph.Value {
				nInit++
				return g.AddInitializer(fmt.Sprintf("c%d", nInit), x)
			}
			// Activation zero points are written for uint8; int8 takes them - 128.
			zp := func(v int64) *graph.Value {
				if dt == graph.Int8 {
					v -= 128
				}
				return init(qlCode(dt, v))
			}
			sc := func(v float32) *graph.Value { return init(qlF32(v)) }
			// Every quantized tensor is also an output, as int32 codes.
			node := func(op, domain string, in []*graph.Value, attrs ...*onnxpb.AttributeProto) *graph.Value {
				n := g.AddNode(op, "", in, []string{g.UniqueName(op)}, attrs...)
				n.Domain = domain
				if op != "DequantizeLinear" && op != "Reshape" {
					c := g.AddNode("Cast", "", []*graph.Value{n.Output()}, []string{op + "_codes"}, graph.AttrIntOf("to", int64(graph.Int32)))
					c.Output().SetTensorType(graph.Int32, nil)
					g.AddOutput(c.Output())
				}
				return n.Output()
			}
			x := g.AddInput("x", graph.Float, []int64{1, 3, 8, 8})
			xq := node("QuantizeLinear", "", []*graph.Value{x, sc(0.03), zp(128)})
			w := qlRandCodes(21, graph.Int8, 4, 3, 3, 3)
			conv := node("QLinearConv", "", []*graph.Value{xq, sc(0.03), zp(128), init(w), init(qlScales(r, 4, 0.005, 0.02)), init(qlCode(graph.Int8, 0, 4)),
				sc(0.05), zp(120), init(qlBias(r, 4))}, graph.AttrIntsOf("kernel_shape", 3, 3), graph.AttrIntsOf("pads", 1, 1, 1, 1))
			lr := node("QLinearLeakyRelu", qlMS, []*graph.Value{conv, sc(0.05), zp(120), sc(0.04), zp(100)}, af("alpha", 0.1))
			add := node("QLinearAdd", qlMS, []*graph.Value{lr, sc(0.04), zp(100), init(qlRandCodes(22, dt, 4, 1, 1)), sc(0.02), zp(128), sc(0.05), zp(110)})
			cat := node("QLinearConcat", qlMS, []*graph.Value{sc(0.06), zp(115), add, sc(0.05), zp(110), conv, sc(0.05), zp(120)}, ai("axis", 1))
			sig := node("QLinearSigmoid", qlMS, []*graph.Value{cat, sc(0.06), zp(115), sc(1.0 / 256), zp(0)})
			pool := node("QLinearAveragePool", qlMS, []*graph.Value{sig, sc(1.0 / 256), zp(0), sc(1.0 / 300), zp(5)},
				graph.AttrIntsOf("kernel_shape", 2, 2), graph.AttrIntsOf("strides", 2, 2))
			gap := node("QLinearGlobalAveragePool", qlMS, []*graph.Value{pool, sc(1.0 / 300), zp(5), sc(1.0 / 280), zp(3)})
			flat := node("Reshape", "", []*graph.Value{gap, init(graph.Int64Tensor([]int{2}, []int64{1, 8}))})
			gemm := node("QGemm", qlMS, []*graph.Value{flat, sc(1.0 / 280), zp(3), init(qlRandCodes(23, graph.Int8, 8, 5)), init(qlF32(0.01)),
				init(qlCode(graph.Int8, 0)), init(qlBias(r, 5)), sc(0.01), zp(128)})
			y := node("DequantizeLinear", qlMS, []*graph.Value{gemm, sc(0.01), zp(128)})
			y.SetTensorType(graph.Float, nil)
			g.AddOutput(y)
			feeds := map[string]*graph.Tensor{"x": qlRandFloats(31, 2, 1, 3, 8, 8)}
			got, want := qlRunModel(t, filepath.Join(dir, dt.Short()+".onnx"), m, feeds)
			t.Logf("onnxq %v\nORT   %v", got[y.Name].Float32s(), want[y.Name].Float32s())
			for name, w := range want {
				if d := maxAbsDiff(t, qlAsFloat(got[name]), qlAsFloat(w)); d != 0 {
					t.Errorf("%s differs from ONNX Runtime by %g", name, d)
				}
			}
			if len(want) != 10 {
				t.Errorf("compared %d outputs, want 10", len(want))
			}
		})
	}
}

// qlAsFloat is t as float32 (int32 codes converted).
func qlAsFloat(t *graph.Tensor) *graph.Tensor {
	if t.DType == graph.Float {
		return t
	}
	out, err := castTensor(t, graph.Float)
	if err != nil {
		panic(err)
	}
	return out
}

// qlNearCodes is a tensor of random codes within 4 of center (small products).
func qlNearCodes(seed uint64, dt graph.DataType, center int64, shape ...int) *graph.Tensor {
	r := rand.New(rand.NewPCG(seed, 13))
	v := make([]int64, graph.Numel(shape))
	for i := range v {
		v[i] = center + r.Int64N(9) - 4
	}
	t := graph.NewTensor(dt, shape)
	StoreInt64s(t, v)
	return t
}
