//go:build ort

package main

import (
	"os"
	"testing"

	"github.com/onnxq/onnxq/kernels"
)

// BenchmarkCase runs onnxq alone (1 thread) on the case named in OPSURVEY_CASE,
// for profiling:
//
//	OPSURVEY_CASE='SpaceToDepth b2' go test -tags ort -run X -bench Case -cpuprofile cpu.prof ./internal/opsurvey
func BenchmarkCase(b *testing.B) {
	name := os.Getenv("OPSURVEY_CASE")
	var c *tcase
	for i := range cases {
		if cases[i].name == name {
			c = &cases[i]
		}
	}
	if c == nil {
		b.Skip("set OPSURVEY_CASE to a case name (go run -tags ort ./internal/opsurvey -list)")
	}
	m := c.build()
	s, err := kernels.NewSession(m.m, kernels.Options{Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := s.Run(m.feeds)
		if err != nil {
			b.Fatal(err)
		}
		s.Recycle(out)
	}
}
