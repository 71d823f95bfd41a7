package kernels

import (
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
)

// TestDepthSpaceMatchesDefinition: DepthToSpace (DCR, CRD) and SpaceToDepth,
// done row by row, match the spec's element-by-element definition for
// blocksizes 2 and 3, batches of 2, float32 and int64.
func TestDepthSpaceMatchesDefinition(t *testing.T) {
	for _, bs := range []int{2, 3} {
		for _, mode := range []string{"DCR", "CRD"} {
			n, c, h, w := 2, 2*bs*bs, 3, 5
			xs := make([]int64, n*c*h*w)
			for i := range xs {
				xs[i] = int64(i)
			}
			x := graph.Int64Tensor([]int{n, c, h, w}, xs)
			attrs := []*onnxpb.AttributeProto{graph.AttrIntOf("blocksize", int64(bs)), graph.AttrStringOf("mode", mode)}
			got := runOp(t, "DepthToSpace", attrs, x)[0].Int64s()
			oc := c / (bs * bs)
			for b := 0; b < n; b++ {
				for ch := 0; ch < oc; ch++ {
					for y := 0; y < h*bs; y++ {
						for xx := 0; xx < w*bs; xx++ {
							by, bx := y%bs, xx%bs
							src := (by*bs+bx)*oc + ch
							if mode == "CRD" {
								src = ch*bs*bs + by*bs + bx
							}
							if g, want := got[((b*oc+ch)*h*bs+y)*w*bs+xx], xs[((b*c+src)*h+y/bs)*w+xx/bs]; g != want {
								t.Fatalf("DepthToSpace %s bs %d: [%d %d %d %d] = %d, want %d", mode, bs, b, ch, y, xx, g, want)
							}
						}
					}
				}
			}
		}
		// widths of 4 and 21 blocks: the blocksize-2 float32 path's vector
		// loop and its tail
		for _, wb := range []int{4, 21} {
			testSpaceToDepth(t, bs, 2, 3, 2*bs, wb*bs)
		}
	}
}

func testSpaceToDepth(t *testing.T, bs, n, c, h, w int) {
	{
		xf := make([]float32, n*c*h*w)
		for i := range xf {
			xf[i] = float32(i)
		}
		got := runOp(t, "SpaceToDepth", []*onnxpb.AttributeProto{graph.AttrIntOf("blocksize", int64(bs))}, graph.Float32Tensor([]int{n, c, h, w}, xf))[0].Float32s()
		oc, oh, ow := c*bs*bs, h/bs, w/bs
		for b := 0; b < n; b++ {
			for ch := 0; ch < c; ch++ {
				for y := 0; y < h; y++ {
					for xx := 0; xx < w; xx++ {
						dst := (y%bs*bs+xx%bs)*c + ch
						if g, want := got[((b*oc+dst)*oh+y/bs)*ow+xx/bs], xf[((b*c+ch)*h+y)*w+xx]; g != want {
							t.Fatalf("SpaceToDepth bs %d: out for x[%d %d %d %d] = %v, want %v", bs, b, ch, y, xx, g, want)
						}
					}
				}
			}
		}
	}
}
