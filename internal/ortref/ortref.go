//go:build ort

// Package ortref runs models in ONNX Runtime (the C library shipped in npm
// onnxruntime-node) as the reference for onnxq's tests and benchmarks. It needs
// cgo and the build tag "ort".
package ortref

import (
	"fmt"
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
		shape := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = int64(d)
		}
		var v ort.Value
		var err error
		switch t.DType {
		case graph.Float:
			v, err = ort.NewTensor(ort.NewShape(shape...), t.Float32s())
		case graph.Int64: // token ids
			v, err = ort.NewTensor(ort.NewShape(shape...), t.Int64s())
		case graph.Int32: // token ids and masks of ONNX Runtime's contrib ops
			v, err = ort.NewTensor(ort.NewShape(shape...), t.Data().([]int32))
		default:
			return nil, fmt.Errorf("ortref: input %q: only float32, int64 and int32 inputs are supported", name)
		}
		if err != nil {
			return nil, err
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
	}
	return nil, fmt.Errorf("not a float32, int32 or int64 tensor")
}
