package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/onnxq/onnxq/graph"
)

// flowWarpData is the survey's flow warp's map (64 channels of 64x64) and
// grid (64x64 points, some outside the map).
func flowWarpData() (x, g []float32) {
	rng := rand.New(rand.NewPCG(3, 4))
	x = make([]float32, 64*64*64)
	for i := range x {
		x[i] = rng.Float32()
	}
	g = make([]float32, 64*64*2)
	for i := range g {
		g[i] = rng.Float32()*2.2 - 1.1
	}
	return x, g
}

// BenchmarkGridSampleFlowWarp is the survey's flow warp: a 64-channel 64x64
// map sampled bilinearly at a random 64x64 grid.
func BenchmarkGridSampleFlowWarp(b *testing.B) {
	x, g := flowWarpData()
	xt, gt := graph.Float32Tensor([]int{1, 64, 64, 64}, x), graph.Float32Tensor([]int{1, 64, 64, 2}, g)
	k, err := newGridSample(&NodeInfo{Node: &graph.Node{OpType: "GridSample"}, Opset: 16})
	if err != nil {
		b.Fatal(err)
	}
	benchThreads(b, k, xt, gt)
}

// BenchmarkRoiAlign is the survey's Faster R-CNN box head: 100 rois of 20 to
// 120 pixels pooled 7x7 with 2x2 samples a bin from a 256-channel stride-8 map.
func BenchmarkRoiAlign(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 256*50*50)
	for i := range x {
		x[i] = rng.Float32()
	}
	rois := make([]float32, 100*4)
	for i := range 100 {
		x0, y0 := float32(rng.IntN(300)), float32(rng.IntN(300))
		copy(rois[4*i:], []float32{x0, y0, x0 + 20 + float32(rng.IntN(100)), y0 + 20 + float32(rng.IntN(100))})
	}
	xt, rt, bt := graph.Float32Tensor([]int{1, 256, 50, 50}, x), graph.Float32Tensor([]int{100, 4}, rois), graph.Int64Tensor([]int{100}, make([]int64, 100))
	for _, mode := range []string{"avg", "max"} {
		k, err := newRoiAlign(&NodeInfo{Node: &graph.Node{OpType: "RoiAlign", Attrs: roiAttrs(mode, 7, 7, 2, graph.AttrFloatOf("spatial_scale", 0.125))}, Opset: 16})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(mode, func(b *testing.B) { benchThreads(b, k, xt, rt, bt) })
	}
}

func benchThreads(b *testing.B, k Kernel, in ...*graph.Tensor) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			ctx := &Context{Threads: threads}
			for range b.N {
				if _, err := k.Run(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGridSampleFlowWarpCore times the sampling alone (no output
// allocation), the current path against the reference.
func BenchmarkGridSampleFlowWarpCore(b *testing.B) {
	x, g := flowWarpData()
	y := make([]float32, len(x))
	xs := []int{1, 64, 64, 64}
	gs := &gridSampler{mode: gsLinear}
	b.Run("new", func(b *testing.B) {
		for range b.N {
			gridSample(nil, gs, x, g, y, xs, xs)
		}
	})
	b.Run("ref", func(b *testing.B) {
		for range b.N {
			gsRefSample(gs, x, g, y, xs, xs)
		}
	})
}
