package kernels

import (
	"runtime"
	"sort"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

// zooSession is a one-thread session of a zoo model and its first sample.
func zooSession(b *testing.B, name string) (*Session, map[string]*graph.Tensor) {
	return zooSessionWith(b, name, Options{Threads: 1})
}

// zooSessionOn is zooSession on threads threads.
func zooSessionOn(b *testing.B, name string, threads int) (*Session, map[string]*graph.Tensor) {
	return zooSessionWith(b, name, Options{Threads: threads})
}

// zooSessionWith is a session of a zoo model made with opts, and its first
// sample.
func zooSessionWith(tb testing.TB, name string, opts Options) (*Session, map[string]*graph.Tensor) {
	tb.Helper()
	m, in := zooModel(tb, name)
	s, err := NewSession(m, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s, in
}

// zooModel is a zoo model (seed 1) and its first sample.
func zooModel(tb testing.TB, name string) (*graph.Model, map[string]*graph.Tensor) {
	tb.Helper()
	m, err := testmodels.Build(name, 1)
	if err != nil {
		tb.Fatal(err)
	}
	in, err := testmodels.Samples(name, m, 1, 1)
	if err != nil {
		tb.Fatal(err)
	}
	return m, in[0]
}

// BenchmarkBandEpilogueOnStrip times the zoo's ResNets at 2 threads with
// each band's per-channel epilogue (BatchNormalization's affine, the Relu,
// the shortcut Add) on the thread's own scratch strip (epiWide) and on the
// output's planes, alternating run by run; it reports each's median ms
// (the calling thread's CPU time, which its spin-waits for the other
// thread keep close to wall time) and their ratio.
func BenchmarkBandEpilogueOnStrip(b *testing.B) {
	for _, name := range []string{"resnet20", "resnet-cifar"} {
		b.Run(name, func(b *testing.B) {
			s, in := zooSessionOn(b, name, 2)
			defer func() { noEpiWide = false }()
			strip, planes := cpuPerPath(b, s, in, 3, func(path int) { noEpiWide = path == 1 })
			b.ReportMetric(strip, "strip-ms")
			b.ReportMetric(planes, "planes-ms")
			b.ReportMetric(strip/planes, "strip/planes")
		})
	}
}

// BenchmarkDepthwiseBlockedVsRows times MobileNetV2 at one thread with its
// depthwise convolutions as shipped (8 channels at a time where blockedFits,
// depthwiseC8) and all on padded rows (vec.TapRows), alternating run by run;
// it reports each's median thread CPU ms and their ratio.
func BenchmarkDepthwiseBlockedVsRows(b *testing.B) {
	b.Run("mobilenetv2", func(b *testing.B) {
		s, in := zooSession(b, "mobilenetv2")
		defer func() { depthwisePath = dwAuto }()
		auto, r := cpuPerPath(b, s, in, 1, func(path int) { depthwisePath = []int{dwAuto, dwRows}[path] })
		b.ReportMetric(auto, "auto-ms")
		b.ReportMetric(r, "rows-ms")
		b.ReportMetric(auto/r, "auto/rows")
	})
}

// BenchmarkZoo is one forward pass of each zoo convolution model at one
// thread; it reports the median thread CPU ms per pass (cpu-ms), which a
// loaded machine distorts far less than wall time.
func BenchmarkZoo(b *testing.B) {
	for _, name := range []string{"mobilenetv2", "squeezenet", "resnet-cifar", "yolo-silu"} {
		b.Run(name, func(b *testing.B) {
			s, in := zooSession(b, name)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var times []float64
			for i := 0; i < b.N+1; i++ {
				t0 := threadCPU()
				out, err := s.Run(in)
				if err != nil {
					b.Fatal(err)
				}
				if i > 0 {
					times = append(times, threadCPU()-t0)
				}
				s.Recycle(out)
			}
			sort.Float64s(times)
			b.ReportMetric(times[len(times)/2], "cpu-ms")
		})
	}
}

// cpuPerPath runs s on in along two code paths in turn (setPath(0) or
// setPath(1) before each pass), warm untimed rounds then b.N timed ones, on
// one locked thread, and returns each path's median thread CPU ms per pass:
// alternating run by run lets a loaded machine reach both paths alike.
func cpuPerPath(b *testing.B, s *Session, in map[string]*graph.Tensor, warm int, setPath func(path int)) (first, second float64) {
	return alternate(b, in, warm, func(path int) *Session { setPath(path); return s })
}

// alternate runs session(0) and session(1) in turn on in, warm untimed
// rounds then b.N timed ones, on one locked thread, and returns their median
// thread CPU ms per pass.
func alternate(b *testing.B, in map[string]*graph.Tensor, warm int, session func(path int) *Session) (first, second float64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var times [2][]float64
	for i := 0; i < b.N+warm; i++ {
		for path := 0; path < 2; path++ {
			s := session(path)
			t0 := threadCPU()
			out, err := s.Run(in)
			if err != nil {
				b.Fatal(err)
			}
			if i >= warm {
				times[path] = append(times[path], threadCPU()-t0)
			}
			s.Recycle(out)
		}
	}
	med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
	return med(times[0]), med(times[1])
}

// BenchmarkZooPointwiseKBlocks times zoo models at one thread with their
// pointwise convolutions reading the input in k blocks of 32 where they
// take them (gemm.PackAStreamed) and in whole k blocks, alternating run by
// run: median thread CPU ms of each and the ratio.
func BenchmarkZooPointwiseKBlocks(b *testing.B) {
	compareZoo(b, []string{"mobilenetv2", "resnet50-bnfolded", "yolo-silu", "squeezenet"}, &pointwiseWholeK, "streamed", "whole")
}

// compareZoo runs each zoo model at one thread alternately with *flag
// false (first) and true (second) and reports each one's median thread CPU
// ms and their ratio.
func compareZoo(b *testing.B, names []string, flag *bool, first, second string) {
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			s, in := zooSession(b, name)
			defer func() { *flag = false }()
			a, c := cpuPerPath(b, s, in, 2, func(path int) { *flag = path == 1 })
			b.ReportMetric(a, first+"-ms")
			b.ReportMetric(c, second+"-ms")
			b.ReportMetric(a/c, first+"/"+second)
		})
	}
}

// BenchmarkZooConcatInPlace times the zoo's Concat nets at one thread with
// the Concats' inputs written in place (concat_place.go) and copied,
// alternating run by run between two sessions: median thread CPU ms of each
// and the ratio.
func BenchmarkZooConcatInPlace(b *testing.B) {
	for _, name := range []string{"squeezenet", "yolo-silu"} {
		b.Run(name, func(b *testing.B) {
			placed, in := zooSession(b, name)
			noConcatPlace = true
			copied, _ := zooSession(b, name)
			noConcatPlace = false
			p, c := alternate(b, in, 2, func(path int) *Session { return []*Session{placed, copied}[path] })
			b.ReportMetric(p, "placed-ms")
			b.ReportMetric(c, "copied-ms")
			b.ReportMetric(p/c, "placed/copied")
		})
	}
}

// BenchmarkZooCoTiles times zoo models at one thread with their
// convolutions on the co-tile path where coFits takes them and on the path
// each took before, alternating run by run: median thread CPU ms and ratio.
func BenchmarkZooCoTiles(b *testing.B) {
	compareZoo(b, []string{"resnet50-bnfolded", "squeezenet", "resnet-cifar", "resnet20", "yolo-silu", "mobilenetv2"}, &noCoTiles, "co", "other")
}

// BenchmarkZooFlushSubnormals times zoo models at one thread with
// subnormals flushed (the default: the run holds its OS thread and sets
// the flush mode) and kept (Options.KeepSubnormals), alternating run by
// run between two sessions: median thread CPU ms of each and the ratio.
// The zoo has no subnormals, so this is what the mode costs where it buys
// nothing.
func BenchmarkZooFlushSubnormals(b *testing.B) {
	for _, name := range []string{"lstm", "transformer", "resnet20", "efficientnet"} {
		b.Run(name, func(b *testing.B) {
			flushed, in := zooSession(b, name)
			m, err := testmodels.Build(name, 1)
			if err != nil {
				b.Fatal(err)
			}
			kept, err := NewSession(m, Options{Threads: 1, KeepSubnormals: true})
			if err != nil {
				b.Fatal(err)
			}
			f, k := alternate(b, in, 2, func(path int) *Session { return []*Session{flushed, kept}[path] })
			b.ReportMetric(f, "flushed-ms")
			b.ReportMetric(k, "kept-ms")
			b.ReportMetric(f/k, "flushed/kept")
		})
	}
}
