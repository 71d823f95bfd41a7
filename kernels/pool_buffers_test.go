package kernels

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

func TestPoolTakesBackOnlyItsOwn(t *testing.T) {
	p := newBufferPool()
	ctx := &Context{pool: p}
	f := ctx.Float32([]int{1000})
	k, _ := bufKey(f)
	p.put(k)
	if n, b := p.idle(); n != 1 || b != sizeClass(4000) {
		t.Fatalf("after one put: %d buffers, %d bytes idle; want 1, %d", n, b, sizeClass(4000))
	}
	p.put(k) // a second put of the same buffer must not list it twice
	if n, _ := p.idle(); n != 1 {
		t.Fatalf("double put listed %d buffers", n)
	}
	// 500 int64 are the same 4000 bytes: the float32 buffer comes back as int64.
	i := ctx.New(graph.Int64, []int{500})
	if ki, _ := bufKey(i); ki != k {
		t.Error("int64 tensor of the same byte size did not reuse the idle buffer")
	}
	for j, v := range i.Int64s() {
		if v != 0 {
			t.Fatalf("New left %d at %d", v, j)
		}
	}
	// A kernel's own allocation of exactly a class size is not taken in:
	// before, such buffers piled up in the free lists, one per run.
	foreign := graph.NewTensor(graph.Float, []int{sizeClass(4096) / 4})
	kf, _ := bufKey(foreign)
	p.put(kf)
	if n, _ := p.idle(); n != 0 {
		t.Errorf("a foreign buffer went into the free lists (%d idle)", n)
	}
	// Every fixed-size element type gets a tensor of its Go type and length.
	for _, dt := range []graph.DataType{graph.Float, graph.Double, graph.Float16, graph.BFloat16, graph.Int8, graph.Uint8,
		graph.Int16, graph.Uint16, graph.Int32, graph.Uint32, graph.Int64, graph.Uint64, graph.Bool, graph.Float8E4M3FN} {
		x := ctx.New(dt, []int{3, 7})
		want := graph.NewTensor(dt, []int{3, 7})
		if x.DType != dt || x.Len() != 21 || !slices.Equal(graph.RawBytes(x), graph.RawBytes(want)) {
			t.Errorf("%s: got %T of %d elements", dt, x.Data(), x.Len())
		}
	}
	if s := ctx.New(graph.String, []int{2}); s.Len() != 2 {
		t.Error("string tensor")
	}
}

// storiesDir is the tiny Llama of ../shared/models, or a skip.
func storiesDir(t testing.TB) string {
	dir := filepath.Join(testdata.Root(), "..", "shared", "models", "stories260K")
	if _, err := os.Stat(filepath.Join(dir, "stories260K.onnx")); err != nil {
		if os.Getenv("ONNXQ_REQUIRE_DATA") != "" {
			t.Fatalf("stories260K not found in %s", dir)
		}
		t.Skipf("stories260K not found in %s", dir)
	}
	return dir
}

// storiesWindow is token window i of the model's dev text, [1, 256] int64.
func storiesWindow(t testing.TB, dir string, i int) *graph.Tensor {
	ids, err := npy.ReadFile(filepath.Join(dir, "tinystories_dev_ids.npy"))
	if err != nil {
		t.Fatal(err)
	}
	w := ids.Shape[1]
	return graph.Int64Tensor([]int{1, w}, slices.Clone(ids.Int64s()[i*w:(i+1)*w]))
}

// TestClassIndex: classIndex numbers the classes sizeClass gives one after
// another from minClass, and classAt undoes it.
func TestClassIndex(t *testing.T) {
	c := minClass
	for i := 0; i < 120; i++ { // up to 7 << 35 bytes
		if got := classIndex(c); got != i {
			t.Fatalf("classIndex(%d) = %d, want %d", c, got, i)
		}
		if got := classAt(i); got != c {
			t.Fatalf("classAt(%d) = %d, want %d", i, got, c)
		}
		if sizeClass(c) != c {
			t.Fatalf("%d is not a class", c)
		}
		c = sizeClass(c + 1)
	}
}

// TestPoolTakesTheMostRecentlyFreed: get hands out the most recently freed
// buffer among its own class and the next poolReach (up to 4x the size),
// which goes back to its own class; a more recent buffer past that reach
// is left for requests its size.
func TestPoolTakesTheMostRecentlyFreed(t *testing.T) {
	// Each case frees buffers of 4000, 16000 and 64000 bytes in the order
	// given and asks for 4000.
	for _, tc := range []struct {
		name  string
		order []int // indexes of the sizes, freed in this order
		want  int   // which buffer the request takes
	}{
		{"4x freed last", []int{0, 1}, 1},
		{"own freed last", []int{1, 0}, 0},
		{"16x freed last, past the reach", []int{0, 2}, 0},
		{"only 16x idle", []int{2}, -1},
	} {
		p := newBufferPool()
		p.reach = poolReach // a session's own pool without taps
		sizes := []int{4000, 16000, 64000}
		var bufs []unsafe.Pointer
		for _, n := range sizes {
			bufs = append(bufs, p.get(n))
		}
		for _, i := range tc.order {
			p.put(bufs[i])
		}
		b := p.get(4000)
		if tc.want < 0 {
			if slices.Contains(bufs, b) || p.made != 4 {
				t.Fatalf("%s: took an idle buffer (made %d), want a new one", tc.name, p.made)
			}
			continue
		}
		if b != bufs[tc.want] {
			t.Fatalf("%s: took buffer %d, want %d", tc.name, slices.Index(bufs, b), tc.want)
		}
		// It goes back to the class of its size, not of the request.
		p.put(b)
		if c := sizeClass(sizes[tc.want]); !slices.Contains(p.free[classIndex(c)], idleBuf{b, p.puts}) {
			t.Fatalf("%s: the buffer did not go back to its class %d", tc.name, c)
		}
	}
}

// TestRunsDoNotRetainMemory: after the first runs, more runs neither add
// buffers to the pool nor leave any out, and the live heap stays where it
// was, on ConvBNReLU, stories260K and every zoo model. On stories260K the
// int64 and bool tensors of the mask and position arithmetic go through the
// pool too. Outputs the caller keeps are not overwritten by later runs;
// recycled ones are reused. The pool is measured after run 4: the outputs
// of run 2 stay with the caller, and with the most recently freed buffer
// taken across classes the transformer's pool settles one run after that
// (5, 5, 6 buffers, then 7 from run 4 to run 100).
func TestRunsDoNotRetainMemory(t *testing.T) {
	type model struct {
		name string
		m    func(t *testing.T) *graph.Model
		in   func(t *testing.T) map[string]*graph.Tensor
	}
	models := []model{
		{"ConvBNReLU", func(*testing.T) *graph.Model { return testmodels.ConvBNReLU(3) }, func(*testing.T) map[string]*graph.Tensor {
			x := graph.NewTensor(graph.Float, []int{1, 3, 32, 32})
			for i, d := 0, x.Float32s(); i < len(d); i++ {
				d[i] = float32(i%13) - 6
			}
			return map[string]*graph.Tensor{"input": x}
		}},
		{"stories260K", func(t *testing.T) *graph.Model {
			m, err := graph.Load(filepath.Join(storiesDir(t), "stories260K.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			return m
		}, func(t *testing.T) map[string]*graph.Tensor {
			return map[string]*graph.Tensor{"input_ids": storiesWindow(t, storiesDir(t), 0)}
		}},
	}
	for _, name := range append(testmodels.Zoo(), testmodels.Families()...) { // every family, built when its turn comes
		var m *graph.Model
		models = append(models, model{name, func(t *testing.T) *graph.Model {
			var err error
			if m, err = testmodels.Build(name, 1); err != nil {
				t.Fatal(err)
			}
			return m
		}, func(t *testing.T) map[string]*graph.Tensor {
			in, err := testmodels.Samples(name, m, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			m = nil // the subtest holds it; the next ones' heaps should not
			return in[0]
		}})
	}
	for _, c := range models {
		t.Run(c.name, func(t *testing.T) {
			m, in := c.m(t), c.in(t)
			s, err := NewSession(m, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			heap := func() uint64 {
				// Twice: a sync.Pool (the parallel pool's jobs) keeps its
				// contents through one collection.
				runtime.GC()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			var kept map[string]*graph.Tensor
			var keptCopy []float32
			var idle, idleBytes int
			var heap4 uint64
			var made4 int
			for run := 1; run <= 20; run++ {
				outs, err := s.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				if len(s.ctx.pool.out) != len(s.lent) {
					t.Fatalf("run %d: %d buffers still out, %d of them outputs", run, len(s.ctx.pool.out), len(s.lent))
				}
				switch {
				case run == 2: // kept by the caller across the later runs
					kept = outs
					keptCopy = slices.Clone(outs[s.OutputNames()[0]].Float32s())
				case run > 2:
					if got := outs[s.OutputNames()[0]].Float32s(); !slices.Equal(got, keptCopy) {
						t.Fatalf("run %d computed different outputs", run)
					}
					s.Recycle(outs)
				}
				if run == 4 {
					idle, idleBytes = s.ctx.pool.idle()
					made4 = s.ctx.pool.made
					heap4 = heap()
				}
			}
			// A buffer a step takes and never gives back (an output the
			// graph leaves out: an LSTM's Y_h and Y_c, a GRU's unused
			// cell state) is collected, but costs a fresh one every run.
			if !splitForced() { // the counts vary with a forced split's chunks' order
				if made := s.ctx.pool.made; made != made4 {
					t.Errorf("the pool allocated %d buffers by run 4 and %d by run 20", made4, made)
				}
				if n, b := s.ctx.pool.idle(); n != idle || b != idleBytes {
					t.Errorf("pool grew from %d buffers (%d bytes) after 4 runs to %d (%d) after 20", idle, idleBytes, n, b)
				}
				if h := heap(); float64(h) > 1.05*float64(heap4)+(512<<10) {
					t.Errorf("live heap grew from %d bytes after 4 runs to %d after 20", heap4, h)
				}
			}
			if !slices.Equal(kept[s.OutputNames()[0]].Float32s(), keptCopy) {
				t.Error("an output the caller kept was overwritten by later runs")
			}
			// A recycled output's memory serves the next run.
			outs, _ := s.Run(in)
			k, _ := bufKey(outs[s.OutputNames()[0]])
			s.Recycle(outs)
			again, _ := s.Run(in)
			if k2, _ := bufKey(again[s.OutputNames()[0]]); k2 != k && !wasReused(s, k) {
				t.Error("a recycled output buffer was neither reused nor kept idle")
			}
			t.Logf("%s: %d buffers (%.1f MiB) idle between runs, live heap %.1f MiB", c.name, idle, float64(idleBytes)/(1<<20), float64(heap4)/(1<<20))
		})
	}
}

// wasReused reports whether buffer k is out again (used by the last run) or idle in the pool.
func wasReused(s *Session, k unsafe.Pointer) bool {
	if _, ok := s.ctx.pool.out[k]; ok {
		return true
	}
	for _, l := range s.ctx.pool.free {
		if slices.ContainsFunc(l, func(b idleBuf) bool { return b.p == k }) {
			return true
		}
	}
	return false
}

// TestOutputFedBackIsNotRecycled: an output of one run given as the next run's
// input (an autoregressive loop) belongs to the caller: a view of it inside the
// graph must not hand its memory back to the pool when the view dies.
func TestOutputFedBackIsNotRecycled(t *testing.T) {
	b := testmodels.NewBuilder(1, 13)
	x := b.Input("x", 1, 64)
	f := b.Flatten(x) // a view of the input
	b.Output(b.Add(f, f))
	s, err := NewSession(b.M, Options{Threads: 1, NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	in := graph.NewTensor(graph.Float, []int{1, 64})
	for i, d := 0, in.Float32s(); i < len(d); i++ {
		d[i] = float32(i)
	}
	name := s.OutputNames()[0]
	outs, err := s.Run(map[string]*graph.Tensor{"x": in})
	if err != nil {
		t.Fatal(err)
	}
	fed := outs[name] // 2x, fed back below and kept
	want := slices.Clone(fed.Float32s())
	for run := 0; run < 3; run++ {
		if _, err := s.Run(map[string]*graph.Tensor{"x": fed}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fed.Float32s(), want) {
			t.Fatalf("run %d overwrote the caller's tensor fed back as input", run+2)
		}
	}
}

// TestSharedPoolAcrossSessions: sessions made with one Options.Pool and run
// in turn (each run's outputs recycled) compute what sessions with pools of
// their own compute, and after the first round of runs take every buffer
// from the shared pool: it then holds one set of buffers, not one a
// session (the pool made no buffer in the later rounds). The two models
// have layers of the same sizes, as the variants of one model that
// sensitivity and tune run do.
func TestSharedPoolAcrossSessions(t *testing.T) {
	names := []string{"resnet20", "resnet-cifar"}
	shared := NewBufferPool()
	var own, sh []*Session
	var ins []map[string]*graph.Tensor
	for _, name := range names {
		a, in := zooSessionWith(t, name, Options{Threads: 1})
		b, _ := zooSessionWith(t, name, Options{Threads: 1, Pool: shared})
		own, sh, ins = append(own, a), append(sh, b), append(ins, in)
	}
	var made int
	for round := 0; round < 3; round++ {
		if round == 1 {
			made = shared.p.made
		}
		for i := range names {
			want, err := own[i].Run(ins[i])
			if err != nil {
				t.Fatal(err)
			}
			got, err := sh[i].Run(ins[i])
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range want {
				if !slices.Equal(w.Float32s(), got[k].Float32s()) {
					t.Fatalf("%s round %d: output %s differs with the shared pool", names[i], round, k)
				}
			}
			own[i].Recycle(want)
			sh[i].Recycle(got)
		}
	}
	if made == 0 {
		t.Fatal("the sessions did not take their buffers from Options.Pool")
	}
	if shared.p.made != made && !splitForced() {
		t.Errorf("the shared pool made %d buffers after the first round (%d in it)", shared.p.made-made, made)
	}
	if sep := own[0].ctx.pool.made + own[1].ctx.pool.made; made >= sep {
		t.Errorf("the shared pool made %d buffers, the two pools of their own %d: nothing shared", made, sep)
	}
}

// TestSeatScratch: each seat's region is n floats inside the buffer, the
// regions seatGap apart on more than one seat and packed on one; with or
// without a pool, and none for no seats or no floats.
func TestSeatScratch(t *testing.T) {
	for _, ctx := range []*Context{nil, {Threads: 2, pool: newBufferPool()}} {
		for _, c := range []struct{ seats, n int }{{1, 100}, {2, 100}, {3, 5000}, {2, 1 << 20}} {
			r := ctx.seatScratch(c.seats, c.n)
			want := c.n
			if c.seats > 1 {
				want = c.n + seatGap
			}
			if r.stride != want {
				t.Errorf("%d seats of %d: stride %d, want %d", c.seats, c.n, r.stride, want)
			}
			if len(r.buf) != (c.seats-1)*r.stride+c.n {
				t.Errorf("%d seats of %d: %d floats, want %d", c.seats, c.n, len(r.buf), (c.seats-1)*r.stride+c.n)
			}
			for s := 0; s < c.seats; s++ {
				a := r.at(s)
				if len(a) != c.n || &a[0] != &r.buf[s*want] {
					t.Errorf("%d seats of %d: seat %d's region is %d floats at %d", c.seats, c.n, s, len(a), s*want)
				}
			}
			ctx.Release(r.buf)
		}
		for _, c := range [][2]int{{0, 10}, {2, 0}} {
			if r := ctx.seatScratch(c[0], c[1]); r.buf != nil || r.at(0) != nil || r.at(1) != nil {
				t.Errorf("%d seats of %d: %d floats", c[0], c[1], len(r.buf))
			}
		}
	}
}
