// Package kernels runs ONNX graphs on the CPU: float32 (and integer where the op
// is integer) kernels for the ONNX operators, one registry keyed by domain and op,
// and a Session that compiles a graph once and runs it many times.
package kernels

import (
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/onnxq/onnxq/graph"
)

// Kernel runs one compiled node on its inputs (nil for an omitted optional input)
// and returns its outputs (nil for an output it does not produce).
type Kernel interface {
	Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error)
}

// KernelFunc adapts a function to Kernel.
type KernelFunc func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error)

// Run calls f.
func (f KernelFunc) Run(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) { return f(ctx, in) }

// Context is what a kernel may use while it runs.
type Context struct {
	// Threads is how many goroutines a kernel may use.
	Threads int
	pool    *bufferPool
	// place, when set, is where the step that runs next should put its
	// output of that shape: the first Empty or New of it returns a tensor
	// there (concat_place.go).
	place atomic.Pointer[placement]
	// views marks the outputs of the step that runs next that may be views
	// of its input, and viewed collects the views it made (split_view.go).
	views  []bool
	viewed []viewOf
	// lane is set on a branch lane's context (lanes.go): its buffers come
	// from their own size class, as the buffers of sessions with taps do.
	// Two lanes take and give back buffers in an order that changes from
	// run to run, and taking the most recently freed of larger classes
	// then grew the pool run after run (YOLO's SPP: 17.5 -> 20.5 MB in 30
	// runs).
	lane bool
}

// reach is how many size classes above a request's the context's buffers
// may come from (-1: the pool's own reach).
func (c *Context) reach() int {
	if c.lane {
		return 0
	}
	return -1
}

// NodeInfo is what a factory sees when it compiles a node.
type NodeInfo struct {
	Node *graph.Node
	// Opset is the version of the node's domain the model imports.
	Opset int64
	// Consts holds the value of each input known at compile time (initializers and
	// Constant outputs), nil for inputs computed at run time.
	Consts []*graph.Tensor
	// Dir is the model's folder, for tensors with external data.
	Dir string

	// model is the model being compiled and threads the session's thread
	// count: control-flow kernels compile their subgraphs with them.
	model   *graph.Model
	threads int
	// packs is the session's weight-pack cache (Options.Packs), or nil.
	packs *PackCache
}

// Const returns the compile-time value of input i, or nil.
func (ni *NodeInfo) Const(i int) *graph.Tensor {
	if i < len(ni.Consts) {
		return ni.Consts[i]
	}
	return nil
}

// Factory compiles a node into a kernel, reading its attributes and preparing
// per-node constants such as packed weights.
type Factory func(ni *NodeInfo) (Kernel, error)

type entry struct {
	since   int64 // first opset version the factory handles
	factory Factory
}

var registry = map[string][]entry{}

func regKey(domain, op string) string {
	if domain == "ai.onnx" {
		domain = ""
	}
	return domain + "/" + op
}

// Register adds a factory for domain/op from opset version since on. Several
// registrations of one op cover successive version ranges.
func Register(domain, op string, since int64, f Factory) {
	k := regKey(domain, op)
	registry[k] = append(registry[k], entry{since, f})
	sort.Slice(registry[k], func(i, j int) bool { return registry[k][i].since < registry[k][j].since })
}

// lookup finds the factory for a node at an opset version.
func lookup(domain, op string, opset int64) (Factory, error) {
	es := registry[regKey(domain, op)]
	if len(es) == 0 {
		return nil, fmt.Errorf("unsupported op %s at opset %d", opName(domain, op), opset)
	}
	var f Factory
	for _, e := range es {
		if e.since <= opset {
			f = e.factory
		}
	}
	if f == nil {
		return nil, fmt.Errorf("op %s is supported from opset %d, the model imports %d", opName(domain, op), es[0].since, opset)
	}
	return f, nil
}

func opName(domain, op string) string {
	if domain == "" || domain == "ai.onnx" {
		return op + " (domain ai.onnx)"
	}
	return op + " (domain " + domain + ")"
}

// Supported reports whether an op has a kernel at an opset version.
func Supported(domain, op string, opset int64) bool {
	_, err := lookup(domain, op, opset)
	return err == nil
}

// Ops lists the registered ops as "domain/op".
func Ops() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EvalNode runs one node of model m on the given inputs (nil for omitted ones),
// for passes that compute values at compile time (constant folding).
func EvalNode(m *graph.Model, n *graph.Node, in []*graph.Tensor) ([]*graph.Tensor, error) {
	opset := m.OpsetVersion(n.Domain)
	f, err := lookup(n.Domain, n.OpType, opset)
	if err != nil {
		return nil, fmt.Errorf("node %s: %v", n, err)
	}
	k, err := f(&NodeInfo{Node: n, Opset: opset, Consts: in, Dir: m.Dir, model: m, threads: 1})
	if err != nil {
		return nil, fmt.Errorf("node %s: %v", n, err)
	}
	outs, err := k.Run(&Context{Threads: 1}, in)
	if err != nil {
		return nil, fmt.Errorf("node %s: %v", n, err)
	}
	return outs, nil
}
