package main

import (
	"fmt"
	"strings"

	"github.com/onnxq/onnxq/export"
	"github.com/urfave/cli/v3"
)

// weightFormats names the formats of `encodings export` that read a model.
func weightFormats() string {
	var s []string
	for _, f := range export.Formats {
		s = append(s, string(f))
	}
	return strings.Join(s, ", ")
}

func isWeightFormat(s string) bool {
	_, err := export.ParseFormat(s)
	return err == nil
}

// exportWeights writes a quantized model's per-layer weights, scales,
// offsets, quant biases and dequant scales with their JSON description
// (msModelSlim's layout; docs/llm.md).
func exportWeights(cmd *cli.Command, out string) error {
	format, err := export.ParseFormat(cmd.String("format"))
	if err != nil {
		return usageError("encodings export: %v", err)
	}
	in := cmd.Args().First()
	if abs(in) == abs(out) {
		return usageError("encodings export: the output would overwrite the input %s", in)
	}
	e, err := export.ExportFile(in, format, out)
	if err != nil {
		return failed(fmt.Errorf("encodings export: %v", err))
	}
	_, weights, desc := export.Paths(format, out)
	where := weights
	if format == export.NPY {
		where = out + " (one .npy per tensor)"
	}
	count := map[export.Type]int{}
	for _, l := range e.Layers {
		count[l.Type]++
	}
	var types []string
	for _, t := range []export.Type{export.W8A8, export.W4A8, export.W8A8Dynamic, export.W8A16, export.W4A16} {
		if count[t] > 0 {
			types = append(types, fmt.Sprintf("%d %s", count[t], t))
		}
	}
	fmt.Fprintf(cmd.Root().Writer, "wrote %s and %s: %d layers (%s), %d tensors\n", where, desc, len(e.Layers), strings.Join(types, ", "), len(e.Tensors))
	return nil
}
