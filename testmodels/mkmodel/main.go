// Command mkmodel writes one of the testmodels to a file, for the demo and benchmarks:
//
//	go run ./testmodels/mkmodel -o out/resnet50.onnx resnet50
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/testmodels"
)

func main() {
	out := flag.String("o", "", "output path")
	seed := flag.Uint64("seed", 1, "weight seed")
	samples := flag.String("samples", "", "also write seeded N(0,1) calibration samples (.npy) for the model's input into this folder")
	count := flag.Int("n", 16, "how many samples")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: mkmodel -o OUT.onnx [-seed N] MODEL\nmodels: %v\n", testmodels.Names())
	}
	flag.Parse()
	if flag.NArg() != 1 || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	m, err := testmodels.Build(flag.Arg(0), *seed)
	if err == nil {
		err = graph.Save(m, *out)
	}
	if err == nil && *samples != "" {
		err = writeSamples(m, *samples, *count, *seed)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkmodel:", err)
		os.Exit(1)
	}
}

// writeSamples writes n seeded N(0,1) inputs for the model's first input.
func writeSamples(m *graph.Model, dir string, n int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	in := m.Graph.Inputs[0]
	shape, ok := in.StaticShape()
	if !ok {
		return fmt.Errorf("input %q has no static shape", in.Name)
	}
	r := rand.New(rand.NewPCG(seed, 42))
	for i := 0; i < n; i++ {
		x := graph.NewTensor(graph.Float, shape)
		for j, d := 0, x.Float32s(); j < len(d); j++ {
			d[j] = float32(r.NormFloat64())
		}
		if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("sample%03d.npy", i)), x); err != nil {
			return err
		}
	}
	return nil
}
