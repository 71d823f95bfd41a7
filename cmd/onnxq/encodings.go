package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/onnxq/onnxq/overrides"
	"github.com/urfave/cli/v3"
)

// encodingsCommand converts encodings files between dialects: the file
// `convert --encodings-out` writes, or any file --overrides reads.
func encodingsCommand() *cli.Command {
	var names []string
	for _, d := range overrides.Dialects {
		names = append(names, string(d))
	}
	return &cli.Command{
		Name:  "encodings",
		Usage: "convert encodings files between onnxq and AIMET/QNN formats; export quantized weights for NPU toolchains",
		Commands: []*cli.Command{{
			Name:      "export",
			Usage:     "write an encodings file (any dialect, detected) in another format, or a quantized model's weights (--format safetensors|npy)",
			ArgsUsage: "ENCODINGS.json | MODEL.qdq.onnx",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "format", Value: string(overrides.AIMET10), Usage: "output format: " + strings.Join(names, ", ") + "; or, for a quantized model, " + weightFormats()},
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output path (required); for safetensors and npy a folder, or FILE.safetensors"},
			},
			Action: func(_ context.Context, cmd *cli.Command) error {
				if cmd.Args().Len() != 1 {
					return usageError("encodings export: give one encodings file")
				}
				out := cmd.String("output")
				if out == "" {
					return usageError("encodings export: -o/--output is required")
				}
				if isWeightFormat(cmd.String("format")) {
					return exportWeights(cmd, out)
				}
				d := overrides.Dialect(cmd.String("format"))
				known := false
				for _, k := range overrides.Dialects {
					known = known || k == d
				}
				if !known {
					return usageError("encodings export: --format %q is not one of %s, %s", d, strings.Join(names, ", "), weightFormats())
				}
				in := cmd.Args().First()
				if a, b := abs(in), abs(out); a == b {
					return usageError("encodings export: the output would overwrite the input %s", in)
				}
				if strings.HasSuffix(strings.ToLower(in), ".onnx") {
					return usageError("encodings export: %s is a model: --format %s reads an encodings file; a quantized model's weights are exported with --format %s", in, d, weightFormats())
				}
				f, from, err := overrides.LoadAny(in)
				if err != nil {
					return failed(err)
				}
				if err := f.WriteAs(out, d); err != nil {
					return failed(fmt.Errorf("encodings export: %v", err))
				}
				fmt.Fprintf(cmd.Root().Writer, "wrote %s (%s, from %s): %d tensors\n", out, d, from, len(f.Tensors))
				return nil
			},
		}},
	}
}
