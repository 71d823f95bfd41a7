package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/testmodels"
)

// concatCases is a graph with Concats whose inputs can and cannot be
// written in place: a Relu and a Tanh read by the Concat alone (placed), a
// Sigmoid read by an Add too, an Identity (returns its input, so copied),
// an input given twice, a Concat inside a Concat, one on axis 0 (batch 1:
// placed), one on axis 2 (outer dimensions over 1: never), and an input
// that is also a graph output. H and W are free, so a run can change them.
func concatCases() *graph.Model {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{1, 4, -1, -1})
	op := func(typ, name string, in ...*graph.Value) *graph.Value {
		return g.AddNode(typ, name, in, []string{name}).Output()
	}
	cat := func(name string, axis int64, in ...*graph.Value) *graph.Value {
		return g.AddNode("Concat", name, in, []string{name}, graph.AttrIntOf("axis", axis)).Output()
	}
	a, b, c := op("Relu", "a", x), op("Sigmoid", "b", x), op("Identity", "c", x)
	cat1 := cat("cat1", 1, a, b, c)
	d := op("Tanh", "d", x)
	cat2 := cat("cat2", 1, d, cat1)
	e := op("Neg", "e", x)
	cat3 := cat("cat3", 1, e, e)
	f, h := op("Exp", "f", x), op("Abs", "h", x)
	cat4 := cat("cat4", 0, f, h)
	k, l := op("Softsign", "k", x), op("Floor", "l", x)
	cat5 := cat("cat5", 2, k, l)
	p := op("Sin", "p", x)
	cat6 := cat("cat6", 1, p, op("Cos", "q", x))
	// A Split whose second output goes to a Concat alone and whose first,
	// of the same shape, is read after the Concat.
	halves := g.AddNode("Split", "split", []*graph.Value{x}, []string{"s0", "s1"}, graph.AttrIntOf("axis", 1)).Outputs
	cat7 := cat("cat7", 1, halves[1], op("Elu", "m", x))
	u := op("Neg", "u", halves[0])
	for _, v := range []*graph.Value{cat2, op("Add", "bb", b, b), cat3, cat4, cat5, cat6, p, cat7, u} {
		g.AddOutput(v)
	}
	return m
}

// splitCases is a graph of Splits on the channels of one image, whose
// outputs can be views of their inputs (split_view.go) or cannot: a Split of
// the graph input into three; a Split of a Split's view (views of views)
// whose second half goes to a Concat alone (placed there instead) and whose
// first is read after that Concat; a Split of a graph output; one with an
// output that is a graph output (copied) and one read twice, as a C2f
// block reads its halves; and one on the rows (outer dimensions over 1:
// copied).
func splitCases() *graph.Model {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17})
	g := m.Graph
	x := g.AddInput("x", graph.Float, []int64{1, 6, -1, -1})
	op := func(typ, name string, in ...*graph.Value) *graph.Value {
		return g.AddNode(typ, name, in, []string{name}).Output()
	}
	split := func(name string, axis int64, parts int, in *graph.Value) []*graph.Value {
		var names []string
		for i := 0; i < parts; i++ {
			names = append(names, fmt.Sprintf("%s%d", name, i))
		}
		return g.AddNode("Split", name, []*graph.Value{in}, names, graph.AttrIntOf("axis", axis)).Outputs
	}
	cat := func(name string, in ...*graph.Value) *graph.Value {
		return g.AddNode("Concat", name, in, []string{name}, graph.AttrIntOf("axis", 1)).Output()
	}
	a := split("a", 1, 3, x)                   // 3 views of the graph input
	b := split("b", 1, 2, a[0])                // views of a view
	c := cat("c", b[1], op("Relu", "r", a[1])) // b1 placed in c instead
	d := op("Add", "d", b[0], a[2])            // read after c
	s := op("Tanh", "s", x)                    // a graph output
	sh := split("sh", 1, 2, s)                 // 2 views
	e := op("Mul", "e", sh[0], sh[1])
	t := split("t", 1, 2, op("Exp", "ex", x)) // t0 a graph output: copied; t1 a view
	f := op("Neg", "f", t[1])
	u := split("u", 1, 2, op("Abs", "ab", x)) // u0 placed in h, u1 a view read twice
	h := cat("h", u[0], u[1], op("Sin", "sn", u[1]))
	w := split("w", 2, 2, op("Cos", "cs", x)) // on the rows: copies
	k := op("Sub", "k", w[0], w[1])
	for _, v := range []*graph.Value{c, d, s, e, t[0], f, h, k} {
		g.AddOutput(v)
	}
	return m
}

// TestConcatInPlaceSameOutputs: with inputs written in place, every output
// has the bits of the session that copies them all, run after run, when
// the input's shape changes between runs and back, for the edge cases of
// concatCases and the zoo's Concat nets; the runs after the first do place
// inputs; and the pool stops allocating (fails when a Concat's buffer is
// never given back).
func TestConcatInPlaceSameOutputs(t *testing.T) {
	// Buffers come poisoned (NaN): one given back while a view or a placed
	// input still lies in it shows when the pool hands it out again.
	poisonBuffers = true
	defer func() { poisonBuffers = false }()
	r := rand.New(rand.NewPCG(31, 32))
	type model struct {
		name  string
		m     *graph.Model
		feeds []map[string]*graph.Tensor
		least int // inputs placed per run after the first, at least
		views int // Split outputs made views per run, exactly
	}
	feed := func(shape ...int) map[string]*graph.Tensor {
		return map[string]*graph.Tensor{"x": graph.Float32Tensor(shape, randFloats(r, graph.Numel(shape)))}
	}
	models := []model{{"cases", concatCases(), []map[string]*graph.Tensor{
		feed(1, 4, 6, 5), feed(1, 4, 6, 5), feed(1, 4, 6, 5), feed(1, 4, 6, 5), feed(1, 4, 3, 7), feed(1, 4, 3, 7),
		feed(1, 4, 6, 5), feed(1, 4, 6, 5), feed(1, 4, 6, 5), feed(1, 4, 6, 5),
	}, 8, 1}, {"splits", splitCases(), []map[string]*graph.Tensor{
		feed(1, 6, 4, 5), feed(1, 6, 4, 5), feed(1, 6, 4, 5), feed(1, 6, 2, 3), feed(1, 6, 2, 3), feed(1, 6, 4, 5), feed(1, 6, 4, 5),
	}, 2, 8}}
	for _, name := range []string{"squeezenet", "yolo-silu"} {
		m, err := testmodels.Build(name, 1)
		if err != nil {
			t.Fatal(err)
		}
		in, err := testmodels.Samples(name, m, 8, 1)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, model{name, m, in, 8, 0})
	}
	for _, md := range models {
		t.Run(md.name, func(t *testing.T) {
			placed := mustSession(t, md.m, false, 2)
			copied := mustSession(t, md.m, true, 2)
			// The pool check runs on one thread: scratch taken inside
			// parallel regions makes a 2-thread run's allocations depend on
			// how the threads interleave (a loaded machine took 4 more
			// buffers over the first runs, then none).
			one := mustSession(t, md.m, false, 1)
			made0 := -1 // the pool's allocations after a shape's third run
			streak := 0 // runs of the shape so far
			for run, in := range md.feeds {
				got, err := placed.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				want, err := copied.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				for name, w := range want {
					sameTensorBits(t, fmt.Sprintf("run %d %s", run, name), got[name], w)
				}
				if run > 0 && sameShape(md.feeds[run-1], in) && placed.concats.placed < md.least {
					t.Errorf("run %d placed %d Concat inputs, want at least %d", run, placed.concats.placed, md.least)
				}
				if placed.concats.views != md.views {
					t.Errorf("run %d made %d Split outputs views, want %d", run, placed.concats.views, md.views)
				}
				placed.Recycle(got)
				copied.Recycle(want)
				// Truly one thread, even under make test's forced split.
				split := parallel.ForcedSplit()
				parallel.ForceSplit(0)
				res, err := one.Run(in)
				parallel.ForceSplit(split)
				if err != nil {
					t.Fatal(err)
				}
				one.Recycle(res)
				// From the third run of a shape on, the pool allocates
				// nothing: a Concat buffer not given back would cost a new
				// one every run. (The pool takes the most recently freed
				// buffer that fits, so the buffers settle a run after the
				// shape's first runs have set them up.)
				if run == 0 || !sameShape(md.feeds[run-1], in) {
					streak = 0
				}
				streak++
				switch made := one.ctx.pool.made; {
				case streak < 3:
					made0 = -1
				case made0 < 0:
					made0 = made
				case made > made0 && !splitForced():
					t.Errorf("run %d: the pool has allocated %d buffers, %d after the shape's third run", run, made, made0)
				}
			}
		})
	}
}

func sameShape(a, b map[string]*graph.Tensor) bool {
	for name, t := range a {
		u := b[name]
		if u == nil || fmt.Sprint(u.Shape) != fmt.Sprint(t.Shape) {
			return false
		}
	}
	return true
}

func mustSession(t *testing.T, m *graph.Model, noPlace bool, threads int) *Session {
	t.Helper()
	defer func() { noConcatPlace, noSplitViews = false, false }()
	noConcatPlace, noSplitViews = noPlace, noPlace
	s, err := NewSession(m, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sameTensorBits(t *testing.T, what string, got, want *graph.Tensor) {
	t.Helper()
	if got == nil || fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		t.Fatalf("%s: got %v, want shape %v", what, got, want.Shape)
	}
	g, w := got.Float32s(), want.Float32s()
	for i := range w {
		if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, g[i], w[i])
		}
	}
}
