//go:build unix

package wround

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// clsLayers are the weight layers of PaddleOCR's direction classifier
// (ch_ppocr_mobile_v2.0_cls) as N x K: the dense convs and the MatMul, and
// the depthwise convs as channels x taps (each channel its own 1 x taps layer
// with its own input rows).
var clsLayers = struct {
	dense     [][2]int
	depthwise [][2]int // channels, taps
}{
	dense: [][2]int{
		{8, 27}, {8, 8}, {2, 8}, {8, 2}, {8, 8}, {24, 8}, {8, 24}, {32, 8}, {8, 32}, {32, 8}, {8, 32},
		{32, 8}, {16, 32}, {88, 16}, {22, 88}, {88, 22}, {16, 88}, {88, 16}, {22, 88}, {88, 22},
		{16, 88}, {40, 16}, {10, 40}, {40, 10}, {16, 40}, {48, 16}, {12, 48}, {48, 12}, {16, 48},
		{104, 16}, {26, 104}, {104, 26}, {32, 104}, {200, 32}, {50, 200}, {200, 50}, {32, 200},
		{200, 32}, {50, 200}, {200, 50}, {32, 200}, {200, 32}, {2, 200},
	},
	depthwise: [][2]int{{8, 9}, {24, 9}, {32, 9}, {32, 25}, {88, 25}, {88, 25}, {40, 25}, {48, 25}, {104, 25}, {200, 25}, {200, 25}},
}

type benchCase struct {
	l  *Layer
	in *Inputs
}

func newBenchCase(n, k int) benchCase {
	r := rand.New(rand.NewPCG(1, 2))
	const m = 4096
	return benchCase{testLayer(r, n, k, k, 4), &Inputs{X: correlatedRows(r, m, k), M: m}}
}

func (c benchCase) run(b *testing.B, steps int) {
	if _, err := Run("adaround", c.l, c.in, adaroundOptions(steps)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAdaRound is one layer at 2000 steps (the time check) on
// cls's largest shapes, a larger one, and a depthwise channel.
func BenchmarkAdaRound(b *testing.B) {
	for _, s := range [][2]int{{200, 32}, {50, 200}, {200, 50}, {200, 200}, {1, 25}} {
		b.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(b *testing.B) {
			c := newBenchCase(s[0], s[1])
			cpu := cpuTime()
			for b.Loop() {
				c.run(b, 2000)
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkAdaRoundCls is every cls layer at 2000 steps: the issue asks for
// under 5 minutes on 2 cores. A depthwise conv's channels are layers of 1 x
// taps with their own rows; here they share one set (the time is the same).
func BenchmarkAdaRoundCls(b *testing.B) {
	const steps = 2000
	var dense, dw []benchCase
	var channels []int
	for _, s := range clsLayers.dense {
		dense = append(dense, newBenchCase(s[0], s[1]))
	}
	for _, s := range clsLayers.depthwise {
		dw = append(dw, newBenchCase(1, s[1]))
		channels = append(channels, s[0])
	}
	cpu := cpuTime()
	for b.Loop() {
		for _, c := range dense {
			c.run(b, steps)
		}
		for i, c := range dw {
			for range channels[i] {
				c.run(b, steps)
			}
		}
	}
	reportCPU(b, cpu)
}

// cpuTime is the process's user and system time: on the shared machine the
// wall time of a benchmark says more about the other jobs than about it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU seconds per op since start (setup excluded only
// if it ran before start).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkAWQ is one layer's alpha search (20 points) and clipping search
// on 4096 sampled rows, at an LLM-like and a larger shape.
func BenchmarkAWQ(b *testing.B) {
	for _, s := range [][3]int{{768, 288, 32}, {1024, 1024, 128}} {
		b.Run(fmt.Sprintf("%dx%d_g%d", s[0], s[1], s[2]), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			const m = 4096
			x := salientRows(r, m, s[1], []int{1, 50, 200})
			base := testLayer(r, s[0], s[1], s[2], 4)
			in := &Inputs{X: x, M: m, AbsMean: absMean(x, m, s[1])}
			o := awqOptions(20, true)
			cpu := cpuTime()
			for b.Loop() {
				l := *base
				l.W, l.Scale, l.Zero = append([]float32(nil), base.W...), append([]float32(nil), base.Scale...), append([]int32(nil), base.Zero...)
				if _, err := Run("awq", &l, in, o); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
