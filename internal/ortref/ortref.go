//go:build ort

// Package ortref runs models in ONNX Runtime (the C library shipped in npm
// onnxruntime-node) as the reference for onnxq's tests and benchmarks. It needs
// cgo and the build tag "ort".
package ortref

import (
	"fmt"
	"slices"
	"sync"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/testdata"
	ort "github.com/yalue/onnxruntime_go"
)

var (
	initOnce sync.Once
	initErr  error
)

// InitBundled is Init with the library `make testdata` puts in the cache
// (testdata.ORTLibraryPath), for the command-line examples: its error says
// where the library was looked for and how to get it.
func InitBundled() error {
	lib := testdata.ORTLibraryPath()
	if err := Init(lib); err != nil {
		return fmt.Errorf("ONNX Runtime at %s: %v (run make testdata)", lib, err)
	}
	return nil
}

// Init loads libonnxruntime from path once per process.
func Init(libPath string) error {
	initOnce.Do(func() {
		ort.SetSharedLibraryPath(libPath)
		initErr = ort.InitializeEnvironment()
	})
	return initErr
}

// Session is an ONNX Runtime session on one model.
type Session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

// Optimization is an ONNX Runtime graph optimization level.
type Optimization = ort.GraphOptimizationLevel

// The levels: none, basic (constant folding, redundant-node removal), extended
// (fusions), all (plus layout transformations such as NCHWc).
const (
	OptNone     = ort.GraphOptimizationLevelDisableAll
	OptBasic    = ort.GraphOptimizationLevelEnableBasic
	OptExtended = ort.GraphOptimizationLevelEnableExtended
	OptAll      = ort.GraphOptimizationLevelEnableAll
)

// NewSession opens a model with a fixed intra-op thread count and all graph
// optimizations on, as a deployment would run it.
func NewSession(modelPath string, threads int) (*Session, error) {
	return NewSessionWith(modelPath, threads, OptAll)
}

// NewSessionWith opens a model at a chosen graph optimization level.
func NewSessionWith(modelPath string, threads int, level Optimization) (*Session, error) {
	return NewSessionOpts(modelPath, Options{Threads: threads, Level: level})
}

// Options are the session settings NewSessionOpts takes. The zero Level is
// OptNone; Threads below 1 means 1.
type Options struct {
	Threads int
	Level   Optimization
	// NoSpinning stops the intra-op pool's threads from spinning while
	// they wait for work (session.intra_op.allow_spinning=0). With spinning
	// on, ORT's default, they keep a core busy for a while after each run.
	NoSpinning bool
	// OptimizedModel, when set, is where ORT writes the graph as it will run
	// it (after its fusions), to see which Q/DQ pairs became integer kernels.
	OptimizedModel string
	// ProfilePrefix, when set, turns on ORT's per-node profiling; the JSON
	// trace is written when the session closes, named from this prefix.
	ProfilePrefix string
}

// NewSessionOpts opens a model with the given options.
func NewSessionOpts(modelPath string, o Options) (*Session, error) {
	ins, outs, err := ort.GetInputOutputInfo(modelPath)
	if err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	threads := max(o.Threads, 1)
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, err
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	if err := opts.SetGraphOptimizationLevel(o.Level); err != nil {
		return nil, err
	}
	if o.NoSpinning {
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, err
		}
	}
	if o.OptimizedModel != "" {
		if err := opts.SetOptimizedModelFilePath(o.OptimizedModel); err != nil {
			return nil, err
		}
	}
	if o.ProfilePrefix != "" {
		if err := opts.EnableProfiling(o.ProfilePrefix); err != nil {
			return nil, err
		}
	}
	s := &Session{}
	for _, i := range ins {
		s.inputs = append(s.inputs, i.Name)
	}
	for _, o := range outs {
		s.outputs = append(s.outputs, o.Name)
	}
	s.s, err = ort.NewDynamicAdvancedSession(modelPath, s.inputs, s.outputs, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Close frees the session.
func (s *Session) Close() { s.s.Destroy() }

// Run feeds float32, int64 or int32 inputs and returns the outputs (float32,
// int32 or int64) by name.
func (s *Session) Run(inputs map[string]*graph.Tensor) (map[string]*graph.Tensor, error) {
	var vals []ort.Value
	defer func() {
		for _, v := range vals {
			v.Destroy()
		}
	}()
	for _, name := range s.inputs {
		t, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("ortref: input %q missing", name)
		}
		v, err := newValue(t, false)
		if err != nil {
			return nil, fmt.Errorf("ortref: input %q: %v", name, err)
		}
		vals = append(vals, v)
	}
	outs := make([]ort.Value, len(s.outputs))
	if err := s.s.Run(vals, outs); err != nil {
		return nil, err
	}
	res := map[string]*graph.Tensor{}
	for i, o := range outs {
		t, err := toTensor(o)
		o.Destroy()
		if err != nil {
			return nil, fmt.Errorf("ortref: output %q: %v", s.outputs[i], err)
		}
		res[s.outputs[i]] = t
	}
	return res, nil
}

// newValue makes an ORT tensor of t (float32, int64 or int32: token ids and
// masks), over t's data or, with own, over a copy of it.
func newValue(t *graph.Tensor, own bool) (ort.Value, error) {
	shape := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = int64(d)
	}
	s := ort.NewShape(shape...)
	switch t.DType {
	case graph.Float:
		d := t.Float32s()
		if own {
			d = slices.Clone(d)
		}
		return ort.NewTensor(s, d)
	case graph.Int64:
		d := t.Int64s()
		if own {
			d = slices.Clone(d)
		}
		return ort.NewTensor(s, d)
	case graph.Int32:
		d := t.Data().([]int32)
		if own {
			d = slices.Clone(d)
		}
		return ort.NewTensor(s, d)
	case graph.Double:
		d := t.Data().([]float64)
		if own {
			d = slices.Clone(d)
		}
		return ort.NewTensor(s, d)
	}
	return nil, fmt.Errorf("only float32, float64, int64 and int32 tensors are supported, got %s", t.DType.Short())
}

// Bound is a session whose inputs and outputs are ORT tensors made once, so
// that Run is the session's run alone: no input wrapped, no output copied
// into Go memory (Session.Run's copies add 0.3-1.2 ms on outputs of a few
// MB). That is how a deployment calls ORT, and the footing of onnxq's Run
// handing out pooled buffers, for timing sub-millisecond ops.
type Bound struct {
	s         *Session
	ins, outs []ort.Value
}

// Bind binds copies of inputs and output tensors shaped and typed as like
// (the outputs of one Run on the same inputs).
func (s *Session) Bind(inputs, like map[string]*graph.Tensor) (*Bound, error) {
	b := &Bound{s: s}
	for _, group := range []struct {
		names []string
		from  map[string]*graph.Tensor
		dst   *[]ort.Value
	}{{s.inputs, inputs, &b.ins}, {s.outputs, like, &b.outs}} {
		for _, name := range group.names {
			t, ok := group.from[name]
			if !ok {
				b.Close()
				return nil, fmt.Errorf("ortref: %q missing", name)
			}
			v, err := newValue(t, true)
			if err != nil {
				b.Close()
				return nil, fmt.Errorf("ortref: %q: %v", name, err)
			}
			*group.dst = append(*group.dst, v)
		}
	}
	return b, nil
}

// Run runs the session on the bound tensors.
func (b *Bound) Run() error { return b.s.s.Run(b.ins, b.outs) }

// Close frees the bound tensors (not the session).
func (b *Bound) Close() {
	for _, v := range append(b.ins, b.outs...) {
		v.Destroy()
	}
	b.ins, b.outs = nil, nil
}

// RunFile opens a model, runs it once on the inputs, and closes it.
func RunFile(path string, threads int, inputs map[string]*graph.Tensor) (map[string]*graph.Tensor, error) {
	return RunFileWith(path, threads, OptAll, inputs)
}

// RunFileWith is RunFile at a chosen graph optimization level.
func RunFileWith(path string, threads int, level Optimization, inputs map[string]*graph.Tensor) (map[string]*graph.Tensor, error) {
	s, err := NewSessionWith(path, threads, level)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(inputs)
}

// toTensor copies a float32, int32 or int64 ORT output into a tensor.
func toTensor(o ort.Value) (*graph.Tensor, error) {
	dims := func(s ort.Shape) []int {
		out := make([]int, len(s))
		for j, d := range s {
			out[j] = int(d)
		}
		return out
	}
	switch t := o.(type) {
	case *ort.Tensor[float32]:
		return graph.Float32Tensor(dims(t.GetShape()), append([]float32(nil), t.GetData()...)), nil
	case *ort.Tensor[int64]:
		return graph.Int64Tensor(dims(t.GetShape()), append([]int64(nil), t.GetData()...)), nil
	case *ort.Tensor[int32]:
		out := graph.NewTensor(graph.Int32, dims(t.GetShape()))
		copy(out.Data().([]int32), t.GetData())
		return out, nil
	case *ort.Tensor[float64]:
		out := graph.NewTensor(graph.Double, dims(t.GetShape()))
		copy(out.Data().([]float64), t.GetData())
		return out, nil
	}
	return nil, fmt.Errorf("not a float32, float64, int32 or int64 tensor")
}
