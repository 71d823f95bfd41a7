package kernels

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/onnxq/onnxq/graph"
)

// BenchmarkStories is one forward pass of the tiny Llama on a 256-token
// window (the shape make bench times), at 1 and 2 threads. Besides wall time
// it reports the process's CPU time per pass (cpu-ms/op), which a loaded
// machine distorts less at 1 thread.
func BenchmarkStories(b *testing.B) {
	dir := storiesDir(b)
	m, err := graph.Load(filepath.Join(dir, "stories260K.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	in := map[string]*graph.Tensor{"input_ids": storiesWindow(b, dir, 0)}
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "1T", 2: "2T"}[threads], func(b *testing.B) {
			s, err := NewSession(m, Options{Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			run := func() {
				out, err := s.Run(in)
				if err != nil {
					b.Fatal(err)
				}
				s.Recycle(out)
			}
			run() // warm the pool
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
