package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// attnCase is a spelled-out attention graph: MatMul(q, kt), an optional scale,
// an optional Add of the mask input, Softmax, MatMul with v.
type attnCase struct {
	name           string
	q, kt, v, mask []int // shapes; mask nil for none
	scale          float32
	div, maskLeft  bool
	noScale        bool
	softmaxOpset   int64 // 0: 17
	axis           int64 // Softmax axis attribute (-1 or rank-1)
	fill           func(name string, d []float32, shape []int)
	wantFused      bool
	kPerm          []int64 // set: the graph's input is K, transposed by this perm
	wantSteps      int     // steps after fusion when not 1
	fullRows       int     // > 0: rows the skip check must send to a full computation (-1: none)
}

func (c attnCase) model() *graph.Model {
	opset := c.softmaxOpset
	if opset == 0 {
		opset = 17
	}
	m := graph.NewModel(graph.Opset{Domain: "", Version: opset})
	g := m.Graph
	in := func(name string, shape []int) *graph.Value {
		dims := make([]int64, len(shape))
		for i, d := range shape {
			dims[i] = int64(d)
		}
		return g.AddInput(name, graph.Float, dims)
	}
	q, kt, v := in("q", c.q), in("kt", c.kt), in("v", c.v)
	if c.kPerm != nil {
		kt = g.AddNode("Transpose", "kT", []*graph.Value{kt}, []string{"ktt"}, graph.AttrIntsOf("perm", c.kPerm...)).Output()
	}
	x := g.AddNode("MatMul", "qk", []*graph.Value{q, kt}, []string{"scores"}).Output()
	if !c.noScale {
		sc := g.AddInitializer("scale", graph.Float32Tensor([]int{}, []float32{c.scale}))
		op := "Mul"
		if c.div {
			op = "Div"
		}
		x = g.AddNode(op, "scale", []*graph.Value{x, sc}, []string{"scaled"}).Output()
	}
	if c.mask != nil {
		mk := in("mask", c.mask)
		args := []*graph.Value{x, mk}
		if c.maskLeft {
			args = []*graph.Value{mk, x}
		}
		x = g.AddNode("Add", "mask", args, []string{"masked"}).Output()
	}
	x = g.AddNode("Softmax", "softmax", []*graph.Value{x}, []string{"probs"}, graph.AttrIntOf("axis", c.axis)).Output()
	y := g.AddNode("MatMul", "pv", []*graph.Value{x, v}, []string{"y"}).Output()
	g.AddOutput(y)
	return m
}

func (c attnCase) inputs(seed uint64) map[string]*graph.Tensor {
	r := rand.New(rand.NewPCG(seed, 7))
	ins := map[string]*graph.Tensor{}
	mk := func(name string, shape []int) {
		t := graph.NewTensor(graph.Float, shape)
		d := t.Float32s()
		for i := range d {
			d[i] = float32(r.NormFloat64())
		}
		if name == "mask" {
			causal(d, shape, float32(math.Inf(-1)))
		}
		if c.fill != nil {
			c.fill(name, d, shape)
		}
		ins[name] = t
	}
	mk("q", c.q)
	mk("kt", c.kt)
	mk("v", c.v)
	if c.mask != nil {
		mk("mask", c.mask)
	}
	return ins
}

// causal fills a mask of shape [..., S, T] with 0 where key j <= query i
// (queries aligned to the last T keys) and neg elsewhere.
func causal(d []float32, shape []int, neg float32) {
	s, t := shape[len(shape)-2], shape[len(shape)-1]
	if len(shape) < 2 {
		s, t = 1, shape[0]
	}
	for o := 0; o < len(d); o += s * t {
		for i := 0; i < s; i++ {
			for j := 0; j < t; j++ {
				v := float32(0)
				if j > i+t-s {
					v = neg
				}
				d[o+i*t+j] = v
			}
		}
	}
}

func attnCases() []attnCase {
	base := attnCase{q: []int{1, 4, 100, 8}, kt: []int{1, 4, 8, 100}, v: []int{1, 4, 100, 8}, mask: []int{100, 100}, scale: 0.35, axis: -1, wantFused: true}
	with := func(name string, f func(c *attnCase)) attnCase {
		c := base
		c.name = name
		f(&c)
		return c
	}
	negMask := func(neg float32) func(string, []float32, []int) {
		return func(name string, d []float32, shape []int) {
			if name == "mask" {
				causal(d, shape, neg)
			}
		}
	}
	return []attnCase{
		with("causal-inf", func(c *attnCase) { c.fullRows = -1 }),
		with("causal-1e9-mask-left", func(c *attnCase) { c.fill, c.maskLeft = negMask(-1e9), true }),
		with("causal-lowest", func(c *attnCase) { c.fill = negMask(-math.MaxFloat32) }),
		// -1e4 with scores up to ~1e4: the skip bound fails and rows run in full.
		with("causal-1e4-large-scores", func(c *attnCase) {
			c.fill = func(name string, d []float32, shape []int) {
				negMask(-1e4)(name, d, shape)
				if name == "q" {
					for i := range d {
						d[i] *= 4000
					}
				}
			}
		}),
		// One query row 4000 times larger against a -1e4 mask: its own bound
		// (||q|| * max ||k|| * scale, about 1.8e4) still proves its tail
		// zero, and the other rows' bounds are their own (a bound from the
		// block's largest element, as before, sent the whole block of 48
		// rows to a full computation).
		with("causal-1e4-one-large-row", func(c *attnCase) {
			c.fullRows = -1
			c.fill = func(name string, d []float32, shape []int) {
				negMask(-1e4)(name, d, shape)
				if name == "q" {
					for i := 40 * 8; i < 41*8; i++ {
						d[i] *= 4000
					}
				}
			}
		}),
		// A key a million times larger in the first head's last column: every
		// row of that head whose tail holds it (rows 0-98) must run in full;
		// the other heads skip.
		with("causal-1e4-large-key-in-tail", func(c *attnCase) {
			c.fullRows = 99
			c.fill = func(name string, d []float32, shape []int) {
				negMask(-1e4)(name, d, shape)
				if name == "kt" {
					for i := 0; i < 8; i++ {
						d[i*100+99] *= 1e6
					}
				}
			}
		}),
		// A -Inf tail is exactly 0 whatever the scores: large ones still skip.
		with("causal-inf-large-scores", func(c *attnCase) {
			c.fullRows = -1
			c.fill = func(name string, d []float32, shape []int) {
				if name == "q" {
					for i := range d {
						d[i] *= 4000
					}
				}
			}
		}),
		// A mask value of -100 is not a skippable tail: computed in full.
		with("causal-100", func(c *attnCase) { c.fill = negMask(-100) }),
		with("div-scale", func(c *attnCase) { c.div, c.scale = true, 2.8284271 }),
		with("no-scale", func(c *attnCase) { c.noScale = true }),
		with("no-mask", func(c *attnCase) { c.mask = nil }),
		with("padding-mask-b1t", func(c *attnCase) {
			c.q, c.kt, c.v, c.mask = []int{2, 3, 50, 8}, []int{2, 3, 8, 60}, []int{2, 3, 60, 8}, []int{2, 1, 1, 60}
			c.fill = func(name string, d []float32, shape []int) {
				if name == "mask" {
					for b := 0; b < 2; b++ {
						for j := 0; j < 60; j++ {
							d[b*60+j] = 0
							if j >= 45-10*b {
								d[b*60+j] = -1e9
							}
						}
					}
				}
			}
		}),
		with("gqa-broadcast-kv-wide-head", func(c *attnCase) {
			c.q, c.kt, c.v, c.mask = []int{2, 4, 70, 16}, []int{2, 1, 16, 90}, []int{1, 90, 20}, []int{70, 90}
		}),
		with("rank3", func(c *attnCase) {
			c.q, c.kt, c.v, c.mask = []int{6, 97, 8}, []int{6, 8, 97}, []int{6, 97, 8}, []int{97, 97}
		}),
		// NaN in a masked key column, Inf in a masked value row: the unfused
		// ops give NaN there, and so must the fused step.
		with("nan-in-masked-key", func(c *attnCase) {
			c.fill = func(name string, d []float32, shape []int) {
				if name == "kt" {
					d[3*100+99] = float32(math.NaN())
				}
			}
		}),
		with("inf-in-masked-value", func(c *attnCase) {
			c.fill = func(name string, d []float32, shape []int) {
				if name == "v" {
					d[99*8+2] = float32(math.Inf(1))
				}
			}
		}),
		with("fully-masked-row", func(c *attnCase) {
			c.fill = func(name string, d []float32, shape []int) {
				if name == "mask" {
					for j := 0; j < 100; j++ {
						d[5*100+j] = float32(math.Inf(-1))
					}
				}
			}
		}),
		with("opset11-axis-last", func(c *attnCase) { c.softmaxOpset, c.axis = 11, 3 }),
		// K as [.., T, d] with its Transpose fused: read in place.
		with("k-transposed", func(c *attnCase) { c.kt, c.kPerm = []int{1, 4, 100, 8}, []int64{0, 1, 3, 2} }),
		with("k-transposed-rank3-gqa", func(c *attnCase) {
			c.q, c.kt, c.v, c.mask, c.kPerm = []int{6, 97, 8}, []int{1, 97, 8}, []int{6, 97, 8}, []int{97, 97}, []int64{0, 2, 1}
		}),
		// Another permutation stays a Transpose of its own.
		with("k-other-perm", func(c *attnCase) {
			c.kt, c.kPerm, c.wantSteps = []int{1, 100, 4, 8}, []int64{0, 2, 3, 1}, 2
		}),
		// Softmax over another axis is not attention: the step runs the unfused ops.
		with("softmax-axis-2", func(c *attnCase) { c.axis, c.wantFused = 2, true }),
		// The mask would widen the scores: the unfused ops run.
		with("mask-widens", func(c *attnCase) { c.mask = []int{3, 1, 1, 100} }),
	}
}

// TestFusedAttentionIsExact compares the fused step with the unfused ops,
// bit for bit, at 1 and 2 threads and with every parallel split forced.
func TestFusedAttentionIsExact(t *testing.T) {
	defer func() { noWholeHeads = false }()
	for _, c := range attnCases() {
		t.Run(c.name, func(t *testing.T) {
			m := c.model()
			for _, whole := range []bool{true, false} {
				noWholeHeads = !whole // short heads in one block, and in blocks of attnBlock rows
				for _, split := range []int{0, 3} {
					for _, threads := range []int{1, 2} {
						if split > 0 {
							parallel.ForceSplit(split)
						}
						fused, err := NewSession(m, Options{Threads: threads})
						if err != nil {
							t.Fatal(err)
						}
						plain, err := NewSession(m, Options{Threads: threads, NoFusion: true})
						if err != nil {
							t.Fatal(err)
						}
						wantSteps := max(1, c.wantSteps)
						if got := len(fused.steps) == wantSteps; got != c.wantFused {
							t.Fatalf("fused into %d steps: %v, want %v (%d steps)", wantSteps, got, c.wantFused, len(fused.steps))
						}
						in := c.inputs(uint64(threads))
						full := attnFullRows.Load()
						a, err := fused.Run(in)
						if err != nil {
							t.Fatal(err)
						}
						if full = attnFullRows.Load() - full; c.fullRows != 0 && full != int64(max(0, c.fullRows)) {
							t.Errorf("threads %d split %d: %d rows computed in full, want %d", threads, split, full, max(0, c.fullRows))
						}
						b, err := plain.Run(in)
						parallel.ForceSplit(0)
						if err != nil {
							t.Fatal(err)
						}
						got, want := a["y"].Float32s(), b["y"].Float32s()
						nan := 0
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("threads %d split %d: y[%d] = %v fused, %v unfused", threads, split, i, got[i], want[i])
							}
							if math.IsNaN(float64(want[i])) {
								nan++
							}
						}
						if strings.HasPrefix(c.name, "nan") || strings.HasPrefix(c.name, "inf") || strings.HasPrefix(c.name, "fully") {
							if nan == 0 {
								t.Errorf("the case should give NaN somewhere")
							}
						} else if nan > 0 {
							t.Errorf("%d NaN outputs", nan)
						}
					}
				}
			}
		})
	}
}

// TestFusedAttentionSkipsMaskedColumns: with a causal -inf mask the fused
// step computes about half of the scores, checked through the rows it keeps.
func TestFusedAttentionSkipsMaskedColumns(t *testing.T) {
	d := make([]float32, 6*8)
	causal(d, []int{6, 8}, float32(math.Inf(-1)))
	got := maskTails(d, 8)
	want := []int32{3, 4, 5, 6, 7, 8}
	if fmt.Sprint(got.start) != fmt.Sprint(want) {
		t.Errorf("maskTails = %v, want %v", got.start, want)
	}
	if !math.IsInf(float64(got.max[0]), -1) {
		t.Errorf("the largest value of an all -Inf tail = %v, want -Inf", got.max[0])
	}
	d[2*8+7] = -9999               // above attnMaskedAt: the tail ends before it
	d[3*8+6] = float32(math.NaN()) // a NaN is not masked: the tail is the last column
	d[1*8+5] = -1e9                // a mixed tail: its largest value counts
	got = maskTails(d, 8)
	if got.start[2] != 8 || got.start[3] != 7 {
		t.Errorf("maskTails rows 2, 3 = %d, %d, want 8, 7", got.start[2], got.start[3])
	}
	if got.start[1] != 4 || got.max[1] != -1e9 {
		t.Errorf("maskTails row 1 = %d, max %v, want 4, -1e9", got.start[1], got.max[1])
	}
}

// BenchmarkAttention is one layer of stories260K's attention, [1, 8, 256, 8]
// heads with a causal mask, fused and as separate ops.
func BenchmarkAttention(b *testing.B) {
	c := attnCase{q: []int{1, 8, 256, 8}, kt: []int{1, 8, 8, 256}, v: []int{1, 8, 256, 8}, mask: []int{256, 256}, scale: 0.35, axis: -1,
		fill: func(name string, d []float32, shape []int) {
			if name == "mask" {
				causal(d, shape, -1e9)
			}
		}}
	m := c.model()
	in := c.inputs(1)
	for _, fuse := range []bool{true, false} {
		b.Run(map[bool]string{true: "fused", false: "unfused"}[fuse], func(b *testing.B) {
			s, err := NewSession(m, Options{Threads: 1, NoFusion: !fuse})
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuTime()
			for b.Loop() {
				out, err := s.Run(in)
				if err != nil {
					b.Fatal(err)
				}
				s.Recycle(out)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
}
