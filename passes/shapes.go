package passes

import (
	"fmt"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels"
)

// inferShapes runs the model (with onnxq's kernels) and records each value's
// element type and shape. A symbolic input dimension is run at two sizes: an
// output dimension that follows it in both runs keeps its name, one that stays
// the same is a number, and any other stays unknown.
func inferShapes(m *graph.Model, _ *State, c *Change) error {
	g := m.Graph
	symbols := map[string]bool{}
	for _, in := range g.Inputs {
		dims, _ := in.Shape()
		for _, d := range dims {
			if d.Param != "" {
				symbols[d.Param] = true
			}
		}
	}
	// Sizes: the first dimension 1 then 2, others 64 then 96 (multiples of 32, which
	// detection networks need); a symbol reused across inputs gets one size.
	observe := func(first bool) (map[string]*graph.Tensor, map[string]int, error) {
		sizes := map[string]int{}
		shapes := map[string][]int{}
		for _, in := range g.Inputs {
			if in.Const != nil {
				continue
			}
			dims, ok := in.Shape()
			if !ok {
				return nil, nil, fmt.Errorf("input %q has no declared shape", in.Name)
			}
			var shape []int
			for i, d := range dims {
				switch {
				case d.Known && d.Param == "":
					shape = append(shape, int(d.Value))
				default:
					size := map[bool]int{true: 64, false: 96}[first]
					if i == 0 {
						size = map[bool]int{true: 1, false: 2}[first]
					}
					if d.Param != "" {
						if s, ok := sizes[d.Param]; ok {
							size = s
						}
						sizes[d.Param] = size
					}
					shape = append(shape, size)
				}
			}
			shapes[in.Name] = shape
		}
		seen := map[string]*graph.Tensor{}
		s, err := kernels.NewSession(m, kernels.Options{Tap: func(name string, t *graph.Tensor) {
			seen[name] = graph.NewTensor(t.DType, t.Shape) // keep type and shape only (values are not needed)
		}})
		if err != nil {
			return nil, nil, err
		}
		v := &Verifier{Shapes: shapes, Seed: 1}
		inputs, err := v.inputsFor(m)
		if err != nil {
			return nil, nil, err
		}
		if _, err := s.Run(inputs); err != nil {
			return nil, nil, err
		}
		return seen, sizes, nil
	}
	// A model onnxq cannot run keeps its declared shapes: the pass says so in the
	// report instead of stopping the pipeline.
	a, sizesA, err := observe(true)
	if err != nil {
		c.Notes = append(c.Notes, fmt.Sprintf("shapes not inferred: running the model failed: %v", err))
		return nil
	}
	b, sizesB := a, sizesA
	if len(symbols) > 0 {
		if b, sizesB, err = observe(false); err != nil {
			c.Notes = append(c.Notes, fmt.Sprintf("shapes not inferred: running the model at a second size failed: %v", err))
			return nil
		}
	}
	// The executor computes half-precision values in float32: record the model's type.
	half := kernels.HalfTypes(m)
	for _, n := range g.Nodes {
		for _, v := range n.Outputs {
			if v == nil || a[v.Name] == nil || b[v.Name] == nil {
				continue
			}
			ta, tb := a[v.Name], b[v.Name]
			dims := make([]int64, len(ta.Shape))
			named := map[int]string{}
			for i := range dims {
				dims[i] = -1
				if i >= len(tb.Shape) {
					continue
				}
				if ta.Shape[i] == tb.Shape[i] {
					dims[i] = int64(ta.Shape[i])
					continue
				}
				for sym := range symbols {
					if sizesA[sym] == ta.Shape[i] && sizesB[sym] == tb.Shape[i] {
						named[i] = sym
					}
				}
			}
			if len(ta.Shape) != len(tb.Shape) {
				continue // rank depends on the input size: leave undeclared
			}
			hadInfo := v.Info != nil
			if hadInfo && v.Info.GetType().GetTensorType().GetShape() != nil {
				continue // keep what the model declares
			}
			dt := ta.DType
			if h, ok := half[v.Name]; ok && dt == graph.Float {
				dt = h
			}
			v.SetTensorType(dt, dims)
			for i, sym := range named {
				d := v.Info.Type.GetTensorType().Shape.Dim[i]
				d.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: sym}
			}
			if !hadInfo && !g.IsOutput(v) {
				g.ValueInfo = append(g.ValueInfo, v)
			}
			c.Count++
		}
	}
	return nil
}
