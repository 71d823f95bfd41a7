package passes

import (
	"slices"

	"github.com/onnxq/onnxq/graph"
)

func init() {
	registerSimple("fold-affine", "fold Mul/Add/Sub/Div by per-output-channel or scalar constants after a Conv or Gemm into its weights and bias (BatchNorm exported as Mul+Add)", exact, foldAffine)
}

// affineConst returns one value per output channel for a constant operand of a
// layer output of rank r with m channels on axis 1 (scalar, [m], [m,1..], [1,m,1..]).
func affineConst(c *graph.Tensor, m, rank int) ([]float32, bool) {
	if c == nil || c.DType != graph.Float {
		return nil, false
	}
	v := c.Float32s()
	if c.Len() == 1 && c.Rank() <= rank {
		out := make([]float32, m)
		for i := range out {
			out[i] = v[0]
		}
		return out, true
	}
	if c.Len() != m || c.Rank() > rank {
		return nil, false
	}
	// Right-aligned against [N, m, spatial...]: m must sit on axis 1.
	axis := rank - c.Rank()
	for i, d := range c.Shape {
		if d == m && axis+i != 1 {
			return nil, false
		}
	}
	return slices.Clone(v), true
}

// foldAffine folds constant per-channel Mul/Div then Add/Sub chains into the
// preceding Conv or Gemm, one node at a time, while the pattern continues.
func foldAffine(m *graph.Model, st *State, c *Change) error {
	g := m.Graph
	for changed := true; changed; {
		changed = false
		for _, n := range append([]*graph.Node(nil), g.Nodes...) {
			if n.OpType != "Conv" && n.OpType != "Gemm" {
				continue
			}
			out := n.Output()
			if out == nil || len(out.Consumers) != 1 || g.IsOutput(out) {
				continue
			}
			next := out.Consumers[0]
			op := next.OpType
			if !graph.IsStandardDomain(next.Domain) || (op != "Mul" && op != "Add" && op != "Sub" && op != "Div") || len(next.Inputs) != 2 {
				continue
			}
			// The other operand must be the constant; Sub and Div only as x - c, x / c.
			k := 1
			if next.Input(0) != out {
				if op == "Sub" || op == "Div" || next.Input(1) != out {
					continue
				}
				k = 0
			}
			l := asLayer(g, n)
			if l == nil {
				continue
			}
			rank := 4
			if n.OpType == "Gemm" {
				rank = 2
			} else {
				rank = len(l.shape)
			}
			vals, ok := affineConst(next.Inputs[k].Const, l.outChannels(), rank)
			if !ok {
				continue
			}
			switch op {
			case "Mul", "Div":
				for o, s := range vals {
					if op == "Div" {
						if s == 0 {
							ok = false
							break
						}
						s = 1 / s
					}
					for i := 0; i < l.inChannels(); i++ {
						l.each(o, i, func(k int) { l.w[k] *= s })
					}
					if l.bias != nil {
						l.bias[o] *= s
					}
				}
			case "Add", "Sub":
				l.ensureBias(g)
				for o, s := range vals {
					if op == "Sub" {
						s = -s
					}
					l.bias[o] += s
				}
			}
			if !ok {
				continue
			}
			name := next.String()
			// The layer now computes the op's result: drop the op.
			nextOut := next.Output()
			st.rename(nextOut.Name, out.Name)
			if g.IsOutput(nextOut) {
				st.rename(nextOut.Name, nextOut.Name)
			}
			g.RemoveNode(next)
			if g.IsOutput(nextOut) {
				for i, o := range n.Outputs {
					if o == out {
						n.Outputs[i] = nextOut
					}
				}
				nextOut.Producer = n
				g.Forget(out)
			} else if err := g.ReplaceUses(nextOut, out); err != nil {
				return err
			}
			c.add(name)
			changed = true
		}
	}
	return nil
}
