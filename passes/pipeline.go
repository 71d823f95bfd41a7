package passes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels"
)

// Verifier runs the model before and after each pass on fixed inputs.
type Verifier struct {
	// Inputs are used as given; inputs not listed get seeded values.
	Inputs map[string]*graph.Tensor
	// Shapes fix symbolic dimensions of seeded inputs (default: 1 for the first
	// dimension, 64 for the others).
	Shapes map[string][]int
	Seed   uint64
}

// Pipeline runs passes in order.
type Pipeline struct {
	Passes []Pass
	Verify *Verifier // nil: no verification
	State  *State    // nil: a fresh one
}

// Report is what a pipeline did.
type Report struct {
	Changes  []*Change `json:"passes"`
	Verified bool      `json:"verified"`
}

// Run applies the passes to m in place. With verification, a pass that moves an
// output by more than its tolerance fails the run, naming pass and output.
func (p *Pipeline) Run(m *graph.Model) (*Report, error) {
	st := p.State
	if st == nil {
		st = NewState()
	}
	rep := &Report{Verified: p.Verify != nil}
	list := p.Passes
	if m.OpsetVersion("") < 7 && len(list) > 0 && list[0].Name() != "upgrade-opset" {
		// Below opset 7 binary ops broadcast by attributes, and every
		// pass reads them by numpy's rules: the model goes to opset 7
		// first (a change of its own in the report). No passes (none):
		// the model stays as it is.
		up, err := Parse("upgrade-opset:7", Options{})
		if err != nil {
			return nil, err
		}
		list = append(up, list...)
	}
	var inputs, before map[string]*graph.Tensor
	if p.Verify != nil {
		var err error
		if inputs, err = p.Verify.inputsFor(m); err != nil {
			return nil, err
		}
		if before, err = runModel(m, inputs); err != nil {
			return nil, fmt.Errorf("verification: the input model does not run: %w", err)
		}
	}
	for _, pass := range list {
		c, err := applyHalf(pass, m, st) // half models: weights rewritten in float32 (half.go)
		if err != nil {
			return rep, err
		}
		rep.Changes = append(rep.Changes, c)
		if p.Verify == nil {
			continue
		}
		if c.Count == 0 {
			c.MaxRelDiff = 0
			continue
		}
		after, err := runModel(m, inputs)
		if err != nil {
			return rep, fmt.Errorf("verification: after %s the model does not run: %w", pass.Name(), err)
		}
		d, name := maxRelDiff(before, after)
		c.MaxRelDiff = d
		if tol := halfTolerance(m, pass, pass.Tolerance()); tol >= 0 && d > tol {
			return rep, fmt.Errorf("verification: %s changed output %q by %.3g relative (tolerance %g)", pass.Name(), name, d, tol)
		}
		before = after
	}
	return rep, nil
}

func runModel(m *graph.Model, inputs map[string]*graph.Tensor) (map[string]*graph.Tensor, error) {
	s, err := kernels.NewSession(m, kernels.Options{})
	if err != nil {
		return nil, err
	}
	return s.Run(inputs)
}

// maxRelDiff is the largest max|a-b| / max(max|b|, 1e-3) over the outputs: the
// error relative to each output's magnitude, where an output that is zero to
// within 1e-3 everywhere counts at 1e-3 so float noise on it is not magnified.
func maxRelDiff(before, after map[string]*graph.Tensor) (float64, string) {
	worst, at := 0.0, ""
	names := make([]string, 0, len(before))
	for n := range before {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		b, a := before[name], after[name]
		if a == nil || a.Len() != b.Len() {
			return math.Inf(1), name
		}
		bf, err1 := b.AsFloat64()
		af, err2 := a.AsFloat64()
		if err1 != nil || err2 != nil {
			continue
		}
		var diff, mag float64
		for i := range bf {
			if !math.IsInf(bf[i], 0) && !math.IsNaN(bf[i]) {
				mag = math.Max(mag, math.Abs(bf[i]))
			}
			if bf[i] == af[i] || math.IsNaN(bf[i]) && math.IsNaN(af[i]) {
				continue // the same number, infinity or NaN (a Sqrt of a negative input)
			}
			diff = math.Max(diff, math.Abs(af[i]-bf[i]))
		}
		if math.IsNaN(diff) {
			return math.Inf(1), name
		}
		if d := diff / math.Max(mag, 1e-3); d > worst {
			worst, at = d, name
		}
	}
	return worst, at
}

// inputsFor builds the verification inputs of a model.
func (v *Verifier) inputsFor(m *graph.Model) (map[string]*graph.Tensor, error) {
	out := map[string]*graph.Tensor{}
	r := rand.New(rand.NewPCG(v.Seed, 0x76657269))
	for _, in := range m.Graph.Inputs {
		if in.Const != nil {
			continue
		}
		if t, ok := v.Inputs[in.Name]; ok {
			out[in.Name] = t
			continue
		}
		shape := v.Shapes[in.Name]
		if shape == nil {
			dims, ok := in.Shape()
			if !ok {
				return nil, fmt.Errorf("verification: input %q has no declared shape; give its shape", in.Name)
			}
			for i, d := range dims {
				switch {
				case d.Known && d.Param == "":
					shape = append(shape, int(d.Value))
				case i == 0:
					shape = append(shape, 1)
				default:
					shape = append(shape, 64)
				}
			}
		}
		t := graph.NewTensor(in.ElemType(), shape)
		switch d := t.Data().(type) {
		case []float32:
			for i := range d {
				d[i] = float32(r.Float64()*2 - 1)
			}
		case []float64:
			for i := range d {
				d[i] = r.Float64()*2 - 1
			}
		case []int64:
			for i := range d {
				d[i] = int64(r.IntN(4))
			}
		case []int32:
			for i := range d {
				d[i] = int32(r.IntN(4))
			}
		case []graph.Float16Bits:
			for i := range d {
				d[i] = graph.ToFloat16(float32(r.Float64()*2 - 1))
			}
		case []graph.BFloat16Bits:
			for i := range d {
				d[i] = graph.ToBFloat16(float32(r.Float64()*2 - 1))
			}
		case []bool:
		default:
			return nil, fmt.Errorf("verification: cannot make %s values for input %q", t.DType.Short(), in.Name)
		}
		out[in.Name] = t
	}
	return out, nil
}
