package kernels

import (
	"reflect"
	"unsafe"

	"github.com/onnxq/onnxq/graph"
)

// Split without copies. A Split along an axis with only size-1 dimensions
// before it (the channels of one image: ShuffleNetV2's units, the C2f and
// CSP blocks of YOLO detectors) makes outputs that are contiguous ranges of
// its input, so they can be views of it rather than copies. The session
// marks the outputs that may be (planViews): not graph outputs (the caller
// owns those, and Recycle hands their buffers back to the pool), not seen
// by a tap that holds them (Release keys a hold by the tensor's own data),
// and not the one a Concat offered its slot to (concat_place.go), which is
// written there instead. A view counts against its input's buffer
// (concatRun.alias), which goes back to the pool when the input and every
// view of it are done with. No kernel writes into its inputs, so a view
// cannot change under its readers.

// viewOf is a view a kernel made in a step: the view's data and its
// input's.
type viewOf struct{ out, of unsafe.Pointer }

// planViews marks, for each Split step, the outputs that may be views.
func (s *Session) planViews() {
	if noSplitViews {
		return
	}
	outputs := map[int]bool{}
	for _, o := range s.outputs {
		outputs[o.slot] = true
	}
	for i := range s.steps {
		st := &s.steps[i]
		if st.node.OpType != "Split" || st.node.Domain != "" {
			continue
		}
		views := make([]bool, len(st.out))
		some := false
		for j, slot := range st.out {
			placed := st.placeInto != nil && st.placeOut == j
			views[j] = slot >= 0 && !outputs[slot] && !s.tapHolds(st.node.Outputs[j].Name) && !placed
			some = some || views[j]
		}
		if some {
			st.views = views
		}
	}
}

// tapHolds reports whether a tap that holds what it sees (Options.TapHolds)
// sees the value name.
func (s *Session) tapHolds(name string) bool {
	return s.opts.TapHolds && s.opts.Tap != nil && (s.opts.TapOnly == nil || s.opts.TapOnly[name])
}

// view returns output i of the running step as the n elements of x from
// at, in shape, when the session allows a view there; nil when it does not.
func (c *Context) view(i int, x *graph.Tensor, at, n int, shape []int) *graph.Tensor {
	if c == nil || i >= len(c.views) || !c.views[i] || n == 0 || !x.Loaded() {
		return nil
	}
	d := reflect.ValueOf(x.Data())
	if d.Kind() != reflect.Slice || at+n > d.Len() {
		return nil
	}
	t, err := graph.TensorOf(x.DType, shape, d.Slice3(at, at+n, at+n).Interface())
	if err != nil {
		return nil
	}
	out, ok1 := bufKey(t)
	of, ok2 := bufKey(x)
	if !ok1 || !ok2 {
		return nil
	}
	c.viewed = append(c.viewed, viewOf{out, of})
	return t
}

// aliasViews counts the views the step just made against their inputs'
// buffers.
func (r *concatRun) aliasViews(views []viewOf) {
	for _, v := range views {
		if r.alias == nil {
			r.alias = map[unsafe.Pointer]unsafe.Pointer{}
		}
		r.alias[v.out] = r.key(v.of)
		r.views++
	}
}

// noSplitViews makes every Split copy, for the tests and benchmarks that
// compare.
var noSplitViews = false
