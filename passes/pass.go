// Package passes rewrites ONNX graphs before quantization: cleanup, opset
// upgrade, BatchNorm folding and the data-free quantization toolkit (cross-layer
// equalization, high-bias absorption, bias correction). Each pass is a small
// value with a name; a Pipeline runs a list of them and can verify numerically
// that every float pass kept the model's outputs.
package passes

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Pass is one graph rewrite.
type Pass interface {
	Name() string
	// Description is one line for `onnxq passes`.
	Description() string
	// Apply rewrites the model in place and says what it changed. State carries
	// facts between passes (BatchNorm statistics captured before folding).
	Apply(m *graph.Model, st *State) (*Change, error)
	// Tolerance is the largest relative output change verification accepts
	// (max abs difference / max abs value); a negative value means the pass is
	// not exact and its change is reported, not enforced.
	Tolerance() float64
}

// Change is what one pass did, for the report.
type Change struct {
	Pass  string   `json:"pass"`
	Count int      `json:"count"`
	Nodes []string `json:"nodes,omitempty"`
	Notes []string `json:"notes,omitempty"`
	// MaxRelDiff is the output change measured by verification (-1: not verified).
	MaxRelDiff float64 `json:"max_rel_diff"`
}

func (c *Change) add(node string) {
	c.Count++
	c.Nodes = append(c.Nodes, node)
}

// ChannelStats is the per-channel distribution of a layer's output before the
// activation, as a BatchNormalization describes it: mean beta, spread gamma.
type ChannelStats struct {
	Mean []float32
	Std  []float32
}

// State is shared by the passes of one pipeline run.
type State struct {
	// BNStats maps the name of a layer's output value (after folding, the Conv or
	// Gemm that absorbed the BatchNormalization) to the statistics that BN held.
	BNStats map[string]*ChannelStats
	// Renamed maps a tensor of the input model to the tensor that carries its
	// values now (BN folding: the BatchNormalization's output lives on as the
	// Conv's); Changed lists tensors whose values differ from the input
	// model's by design (the channels between two equalized layers); the
	// targets of renames are not listed. A layerwise compare against the
	// original model needs both.
	Renamed map[string]string
	Changed map[string]bool
}

// NewState returns an empty state.
func NewState() *State {
	return &State{BNStats: map[string]*ChannelStats{}, Renamed: map[string]string{}, Changed: map[string]bool{}}
}

// rename records that from's values are now carried by to (to's own former
// values, if it had any, are then gone: a reader skips rename targets).
func (st *State) rename(from, to string) {
	if st.Renamed == nil {
		st.Renamed, st.Changed = map[string]string{}, map[string]bool{}
	}
	for k, v := range st.Renamed {
		switch {
		case v == from: // a chain of renames ends at the last name
			st.Renamed[k] = to
		case v == to && k != from: // what to carried before is gone
			delete(st.Renamed, k)
		}
	}
	st.Renamed[from] = to
}

// changed records tensors whose values a pass changed on purpose.
func (st *State) changed(names ...string) {
	if st.Changed == nil {
		st.Renamed, st.Changed = map[string]string{}, map[string]bool{}
	}
	for _, n := range names {
		st.Changed[n] = true
	}
}

// Options configure passes that take parameters.
type Options struct {
	// Opset is the target of upgrade-opset (default 21).
	Opset int64
	// FoldBNSkip names BatchNormalization nodes fold-bn leaves alone.
	FoldBNSkip []string
	// StandaloneBN says what fold-bn does with a BN it cannot fold: "muladd"
	// (default: a per-channel Mul and Add) or "keep".
	StandaloneBN string
	// WeightBits is the weight bit width bias correction models (default 8).
	WeightBits int
	// KeepInitializerInputs leaves initializers-not-inputs out of "default":
	// graph inputs that repeat an initializer stay overridable.
	KeepInitializerInputs bool
}

type factory struct {
	desc string
	make func(o Options, arg string) (Pass, error)
}

var registry = map[string]factory{}

func register(name, desc string, make func(o Options, arg string) (Pass, error)) {
	registry[name] = factory{desc, make}
}

// Names lists the registered passes, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Describe returns a pass's one-line description.
func Describe(name string) string { return registry[name].desc }

// DefaultList is the cleanup passes and fold-bn, in the order they run.
// initializers-not-inputs comes first: the passes after it leave weights that
// are also graph inputs alone, since a runtime may replace those.
var DefaultList = []string{"initializers-not-inputs", "constants-to-initializers", "eliminate-identity", "fold-constants", "eliminate-dead", "infer-shapes", "fold-bn", "fold-affine", "eliminate-dead"}

// Parse turns a comma-separated list ("default", "none", names, "upgrade-opset:17")
// into passes.
func Parse(list string, o Options) ([]Pass, error) {
	var out []Pass
	list = strings.TrimSpace(list)
	if list == "none" || list == "" {
		return nil, nil
	}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "default" {
			for _, n := range DefaultList {
				if n == "initializers-not-inputs" && o.KeepInitializerInputs {
					continue
				}
				p, err := registry[n].make(o, "")
				if err != nil {
					return nil, fmt.Errorf("pass %q: %v", n, err)
				}
				out = append(out, p)
			}
			continue
		}
		name, arg, _ := strings.Cut(item, ":")
		f, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("unknown pass %q (known: default, none, %s)", item, strings.Join(Names(), ", "))
		}
		p, err := f.make(o, arg)
		if err != nil {
			return nil, fmt.Errorf("pass %q: %v", item, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// intArg parses a pass argument such as the 17 of "upgrade-opset:17".
func intArg(arg string, def int64) (int64, error) {
	if arg == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("argument %q is not a number", arg)
	}
	return v, nil
}

// simple is a pass defined by functions.
type simple struct {
	name, desc string
	tol        float64
	apply      func(m *graph.Model, st *State, c *Change) error
}

func (p *simple) Name() string        { return p.name }
func (p *simple) Description() string { return p.desc }
func (p *simple) Tolerance() float64  { return p.tol }
func (p *simple) Apply(m *graph.Model, st *State) (*Change, error) {
	c := &Change{Pass: p.name, MaxRelDiff: -1}
	if err := p.apply(m, st, c); err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	return c, nil
}

// exact is the verification tolerance of rewrites that keep outputs the same.
const exact = 1e-4

func registerSimple(name, desc string, tol float64, apply func(m *graph.Model, st *State, c *Change) error) {
	register(name, desc, func(Options, string) (Pass, error) {
		return &simple{name: name, desc: desc, tol: tol, apply: apply}, nil
	})
}
