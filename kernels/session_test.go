package kernels

import (
	"strings"
	"sync"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

func TestTapSeesEveryTensor(t *testing.T) {
	m := testmodels.ConvBNReLU(2)
	seen := map[string][]int{}
	s, err := NewSession(m, Options{Threads: 1, Tap: func(name string, x *graph.Tensor) {
		seen[name] = append([]int(nil), x.Shape...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(map[string]*graph.Tensor{"input": graph.NewTensor(graph.Float, []int{1, 3, 32, 32})}); err != nil {
		t.Fatal(err)
	}
	// The graph input and every node output, including pre-activation values
	// (with a tap nothing is fused away).
	want := 1
	for _, n := range m.Graph.Nodes {
		want += len(n.Outputs)
		for _, o := range n.Outputs {
			if _, ok := seen[o.Name]; !ok {
				t.Errorf("tap did not see %q (%s)", o.Name, n.OpType)
			}
		}
	}
	if len(seen) != want || seen["input"] == nil {
		t.Errorf("tap saw %d tensors, want %d", len(seen), want)
	}
	if got := seen["logits"]; len(got) != 2 || got[1] != 10 {
		t.Errorf("logits shape %v", got)
	}
}

func TestInputErrors(t *testing.T) {
	s, err := NewSession(testmodels.ConvBNReLU(2), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   map[string]*graph.Tensor
		want string
	}{
		{map[string]*graph.Tensor{}, `input "input" is missing`},
		{map[string]*graph.Tensor{"input": graph.NewTensor(graph.Float, []int{1, 4, 32, 32})}, `input "input": expected shape [1 3 32 32], got [1 4 32 32]`},
		{map[string]*graph.Tensor{"input": graph.NewTensor(graph.Int64, []int{1, 3, 32, 32})}, `input "input": expected float32, got int64`},
		{map[string]*graph.Tensor{"input": graph.NewTensor(graph.Float, []int{1, 3, 32, 32}), "extra": graph.NewTensor(graph.Float, nil)}, `the model has no input "extra"`},
	}
	for _, c := range cases {
		if _, err := s.Run(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

func TestUnsupportedOpNamesOpDomainOpsetNode(t *testing.T) {
	m := graph.NewModel(graph.Opset{Domain: "", Version: 17}, graph.Opset{Domain: "com.example", Version: 2})
	x := m.Graph.AddInput("x", graph.Float, []int64{2})
	n := m.Graph.AddNode("Frobnicate", "frob1", []*graph.Value{x}, []string{"y"})
	n.Domain = "com.example"
	m.Graph.AddOutput(n.Output())
	_, err := NewSession(m, Options{})
	if err == nil || !strings.Contains(err.Error(), `node "frob1" (Frobnicate): unsupported op Frobnicate (domain com.example) at opset 2`) {
		t.Errorf("error: %v", err)
	}
}

// TestParallelSessions runs separate sessions of one model at once and one
// session from several goroutines (serialized by the session); run with -race.
func TestParallelSessions(t *testing.T) {
	m := testmodels.ConvBNReLU(3)
	in := map[string]*graph.Tensor{"input": graph.Float32Tensor([]int{1, 3, 32, 32}, make([]float32, 3*32*32))}
	ref, err := NewSession(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ref.Run(in)
	shared, _ := NewSession(m, Options{Threads: 2})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own, err := NewSession(m, Options{Threads: 2})
			if err != nil {
				t.Error(err)
				return
			}
			for _, s := range []*Session{own, shared} {
				for r := 0; r < 3; r++ {
					got, err := s.Run(in)
					if err != nil {
						t.Error(err)
						return
					}
					g, w := got["logits"].Float32s(), want["logits"].Float32s()
					for j := range w {
						if g[j] != w[j] {
							t.Errorf("run differs at %d: %v vs %v", j, g[j], w[j])
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestTapHolds: a tensor the tap holds keeps its contents through later steps
// and runs (its buffer is not recycled) until released on another goroutine,
// and every buffer is accounted for once all are released.
func TestTapHolds(t *testing.T) {
	m := testmodels.ConvBNReLU(4)
	type held struct {
		x    *graph.Tensor
		snap []float32
	}
	heldc := make(chan held, 1000)
	var s *Session
	s, err := NewSession(m, Options{Threads: 2, TapHolds: true, Tap: func(name string, x *graph.Tensor) {
		if x.DType != graph.Float {
			s.Release(x)
			return
		}
		heldc <- held{x, append([]float32(nil), x.Float32s()...)}
	}})
	if err != nil {
		t.Fatal(err)
	}
	in := graph.Float32Tensor([]int{1, 3, 32, 32}, make([]float32, 3*32*32))
	for i := range in.Float32s() {
		in.Float32s()[i] = float32(i%17) - 8
	}
	var all []held
	for run := 0; run < 3; run++ {
		if _, err := s.Run(map[string]*graph.Tensor{"input": in}); err != nil {
			t.Fatal(err)
		}
		for len(heldc) > 0 {
			all = append(all, <-heldc)
		}
	}
	if len(all) < 10 {
		t.Fatalf("tap saw %d tensors", len(all))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, h := range all {
			for j, v := range h.x.Float32s() {
				if v != h.snap[j] {
					t.Errorf("held tensor %d changed at %d after later runs", i, j)
					break
				}
			}
			s.Release(h.x)
		}
	}()
	wg.Wait()
	if len(s.holds) != 0 || len(s.dropped) != 0 {
		t.Errorf("after every release: %d holds, %d dropped buffers left", len(s.holds), len(s.dropped))
	}
	// Without holds the same run recycles: a held-then-released session
	// still computes what a plain one does.
	plain, _ := NewSession(m, Options{Threads: 2})
	want, _ := plain.Run(map[string]*graph.Tensor{"input": in})
	got, err := s.Run(map[string]*graph.Tensor{"input": in})
	for len(heldc) > 0 {
		s.Release((<-heldc).x)
	}
	if err != nil {
		t.Fatal(err)
	}
	for j, w := range want["logits"].Float32s() {
		if got["logits"].Float32s()[j] != w {
			t.Fatalf("logits differ at %d after holds", j)
		}
	}
}
