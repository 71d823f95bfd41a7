// Command mkmodel writes one of the testmodels to a file, and seeded sample
// inputs for it, for the demo, benchmarks and observer comparisons:
//
//	go run ./testmodels/mkmodel -o out/resnet50.onnx resnet50
//	go run ./testmodels/mkmodel -samples out/yolo-calib -n 16 yolo-silu
//	go run ./testmodels/mkmodel -o /tmp/llama.onnx -llama-mb 3072
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

func main() {
	out := flag.String("o", "", "output path of the model")
	seed := flag.Uint64("seed", 1, "weight seed (also the sample seed)")
	samples := flag.String("samples", "", "write seeded sample inputs (.npy) into this folder: image-like for the zoo's image models, N(0,1) otherwise")
	count := flag.Int("n", 16, "how many samples")
	llamaMB := flag.Int64("llama-mb", 0, "write a Llama-shaped decoder (TinyLlama's widths) with random weights of about this many MB, as external data, streaming")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: mkmodel [-o OUT.onnx] [-samples DIR [-n N]] [-seed N] MODEL\n       mkmodel -o OUT.onnx -llama-mb MB [-seed N]\nmodels: %v\n", testmodels.Names())
	}
	flag.Parse()
	if *llamaMB > 0 {
		if *out == "" || flag.NArg() != 0 {
			flag.Usage()
			os.Exit(2)
		}
		c := testmodels.LlamaForSize(testmodels.TinyLlamaWidths, *llamaMB<<20)
		c.Seed = *seed
		if err := testmodels.WriteLlama(*out, c); err != nil {
			fmt.Fprintln(os.Stderr, "mkmodel:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %s: %d layers, %d MB of weights\n", *out, c.Layers, c.WeightBytes()>>20)
		return
	}
	if flag.NArg() != 1 || (*out == "" && *samples == "") {
		flag.Usage()
		os.Exit(2)
	}
	if *count < 1 {
		fmt.Fprintf(os.Stderr, "mkmodel: -n %d: need at least one sample\n", *count)
		os.Exit(2)
	}
	name := flag.Arg(0)
	m, err := testmodels.Build(name, *seed)
	if err == nil && *out != "" {
		err = graph.Save(m, *out)
	}
	if err == nil && *samples != "" {
		err = writeSamples(name, m, *samples, *count, *seed)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkmodel:", err)
		os.Exit(1)
	}
}

// writeSamples writes n seeded inputs (see testmodels.WriteSamples).
func writeSamples(name string, m *graph.Model, dir string, n int, seed uint64) error {
	sets, err := testmodels.Samples(name, m, n, seed)
	if err != nil {
		return err
	}
	return testmodels.WriteSamples(dir, sets)
}
