package kernels

import (
	"slices"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/vec"
)

// Residual fusion: a Conv whose only reader is an Add of a same-shaped
// tensor (a ResNet block's shortcut), and the Relu after the Add when it is
// the Add's only reader, run as the Conv's last epilogue: each band of
// output rows adds the shortcut (and clips) while it is in cache, split over
// threads with the Conv, instead of two serial passes over the whole output.
// The sums and clips are the unfused ones, element by element (a + b is b + a
// in IEEE arithmetic; only which NaN payload survives two NaNs may differ),
// so the bits are the same.

// residual is the fused Add (and Relu) of a Conv.
type residual struct {
	relu     sliceFn // the Relu's function, or nil
	add, act Kernel  // the unfused steps, for a shortcut of another shape
	convIn   int     // the Add's input the Conv feeds (0 or 1)
}

// apply adds the shortcut to out in place and runs the Relu.
func (r *residual) apply(out, skip []float32) {
	vec.Add(out, out, skip)
	if r.relu != nil {
		r.relu(out, out)
	}
}

// unfused runs the Add and Relu as their own steps, on a shortcut that
// broadcasts to the Conv's output.
func (r *residual) unfused(ctx *Context, out, skip *graph.Tensor) (*graph.Tensor, error) {
	in := []*graph.Tensor{out, skip}
	if r.convIn == 1 {
		in = []*graph.Tensor{skip, out}
	}
	res, err := r.add.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	if r.act == nil {
		return res[0], nil
	}
	act, err := r.act.Run(ctx, res)
	if err != nil {
		return nil, err
	}
	return act[0], nil
}

// stepLinks maps each slot to the step that produces it and to the steps
// that read it (a step once per input that reads it).
func (s *Session) stepLinks() (producer map[int]int, readers map[int][]int) {
	producer, readers = map[int]int{}, map[int][]int{}
	for i, st := range s.steps {
		for _, o := range st.out {
			if o >= 0 {
				producer[o] = i
			}
		}
		for _, in := range st.in {
			if in >= 0 {
				readers[in] = append(readers[in], i)
			}
		}
	}
	return producer, readers
}

// fuseResiduals folds Add (+ Relu) steps into the Conv that feeds them;
// outputs holds the slots the caller sees (graph outputs and taps).
func (s *Session) fuseResiduals(outputs map[int]bool) {
	producer, readers := s.stepLinks()
	drop := map[int]bool{}
	for ai, st := range s.steps {
		n := st.node
		if drop[ai] || n.OpType != "Add" || !graph.IsStandardDomain(n.Domain) || len(st.in) != 2 || len(st.out) != 1 || st.out[0] < 0 || legacyAligned(&st) {
			continue
		}
		for side := 0; side < 2; side++ {
			a, b := st.in[side], st.in[1-side]
			if a < 0 || b < 0 || a == b || outputs[a] || len(readers[a]) != 1 || s.base[b] != nil {
				continue
			}
			pi, ok := producer[a]
			if !ok || drop[pi] {
				continue
			}
			ck, ok := s.steps[pi].k.(*convKernel)
			// The shortcut must be computed before the Conv runs.
			if bp, made := producer[b]; !ok || ck.res != nil || len(s.steps[pi].out) != 1 || len(s.steps[pi].in) > 3 || made && bp >= pi {
				continue
			}
			r := &residual{add: st.k, convIn: side}
			out, last := st.out[0], ai
			if rd := readers[out]; len(rd) == 1 && !outputs[out] {
				rs := s.steps[rd[0]]
				if rs.node.OpType == "Relu" && graph.IsStandardDomain(rs.node.Domain) && len(rs.out) == 1 && rs.out[0] >= 0 {
					if fn, err := activations["Relu"](rs.ni); err == nil && fn != nil {
						r.relu, r.act = fn, rs.k
						out, last = rs.out[0], rd[0]
					}
				}
			}
			c := *ck
			c.res = r
			cs := &s.steps[pi]
			in := slices.Clone(cs.in)
			for len(in) < 3 {
				in = append(in, -1)
			}
			cs.in = append(in, b)
			cs.k = &c
			cs.out = []int{out}
			cs.node = s.steps[last].node
			drop[ai] = true
			drop[last] = true
			break
		}
	}
	if len(drop) == 0 {
		return
	}
	kept := s.steps[:0]
	for i, st := range s.steps {
		if !drop[i] {
			kept = append(kept, st)
		}
	}
	s.steps = kept
}
