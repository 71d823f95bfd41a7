package kernels

import (
	"fmt"
	"math"

	"github.com/onnxq/onnxq/graph"
)

// newMaxRoiPool is MaxRoiPool (opset 1, Fast R-CNN's RoI pooling): each
// region (batch index, x1, y1, x2, y2 in input coordinates times
// spatial_scale, rounded to whole pixels, corners included) is split into
// pooled_shape bins, each the max of the pixels it covers (0 when it covers
// none).
func newMaxRoiPool(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	pooled := a.Ints("pooled_shape", nil)
	scale := float64(a.Float("spatial_scale", 1))
	if a.err != nil {
		return nil, a.err
	}
	if len(pooled) != 2 || pooled[0] < 1 || pooled[1] < 1 {
		return nil, fmt.Errorf("MaxRoiPool pooled_shape must be two positive sizes, got %v", pooled)
	}
	ph, pw := int(pooled[0]), int(pooled[1])
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if err := need(in, 2); err != nil {
			return nil, err
		}
		x, rois := in[0], in[1]
		if err := firstErr(wantFloat(x, "MaxRoiPool X"), wantFloat(rois, "MaxRoiPool rois")); err != nil {
			return nil, err
		}
		if x.Rank() != 4 || rois.Rank() != 2 || rois.Shape[1] != 5 {
			return nil, fmt.Errorf("MaxRoiPool needs X (N, C, H, W) and rois (num_rois, 5), got %v and %v", x.Shape, rois.Shape)
		}
		n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
		nr := rois.Shape[0]
		rd := rois.Float32s()
		for r := 0; r < nr; r++ {
			if b := rd[r*5]; b < 0 || int(b) >= n || b != float32(int(b)) {
				return nil, fmt.Errorf("MaxRoiPool roi %d has batch index %g, outside [0, %d)", r, b, n)
			}
		}
		out := ctx.Float32([]int{nr, c, ph, pw})
		xd, od := x.Float32s(), out.Float32s()
		parallelFor(threadsFor(ctx, nr*c*h*w/max(1, n), 1<<14), nr*c, func(lo, hi int) {
			for rc := lo; rc < hi; rc++ {
				r, ch := rc/c, rc%c
				roi := rd[r*5 : r*5+5]
				x1, y1 := int(math.Round(float64(roi[1])*scale)), int(math.Round(float64(roi[2])*scale))
				x2, y2 := int(math.Round(float64(roi[3])*scale)), int(math.Round(float64(roi[4])*scale))
				binH := float64(max(y2-y1+1, 1)) / float64(ph)
				binW := float64(max(x2-x1+1, 1)) / float64(pw)
				plane := xd[(int(roi[0])*c+ch)*h*w:][:h*w]
				dst := od[rc*ph*pw : (rc+1)*ph*pw]
				for i := 0; i < ph; i++ {
					hs := min(max(int(math.Floor(float64(i)*binH))+y1, 0), h)
					he := min(max(int(math.Ceil(float64(i+1)*binH))+y1, 0), h)
					for j := 0; j < pw; j++ {
						ws := min(max(int(math.Floor(float64(j)*binW))+x1, 0), w)
						we := min(max(int(math.Ceil(float64(j+1)*binW))+x1, 0), w)
						if he <= hs || we <= ws {
							dst[i*pw+j] = 0
							continue
						}
						best := float32(math.Inf(-1))
						for yy := hs; yy < he; yy++ {
							for xx := ws; xx < we; xx++ {
								best = max(best, plane[yy*w+xx])
							}
						}
						dst[i*pw+j] = best
					}
				}
			}
		})
		return one(out), nil
	}), nil
}

func init() { Register("", "MaxRoiPool", 1, newMaxRoiPool) }
