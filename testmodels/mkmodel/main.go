// Command mkmodel writes one of the testmodels to a file, for the demo and benchmarks:
//
//	go run ./testmodels/mkmodel -o out/resnet50.onnx resnet50
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/testmodels"
)

func main() {
	out := flag.String("o", "", "output path")
	seed := flag.Uint64("seed", 1, "weight seed")
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
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkmodel:", err)
		os.Exit(1)
	}
}
