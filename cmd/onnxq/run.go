package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/rss"
	"github.com/onnxq/onnxq/kernels"
	"github.com/onnxq/onnxq/kernels/parallel"
	"github.com/onnxq/onnxq/npy"
	"github.com/onnxq/onnxq/passes"
	"github.com/urfave/cli/v3"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a model with onnxq's CPU kernels on .npy (or TensorProto .pb) inputs",
		ArgsUsage: "MODEL",
		Description: "Runs the forward pass and writes each output as DIR/<output name>.npy.\n\n" +
			"   onnxq run model.onnx --input x=img.npy --output-dir out/\n" +
			"   onnxq run model.onnx --input img.npy --output-dir out/ --repeat 20 --timing --threads 1\n" +
			"   onnxq run model.onnx --input img.npy --repeat 10 --profile trace.json",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "input", Aliases: []string{"i"}, Usage: "an input as NAME=FILE.npy or NAME=FILE.pb (just the file for a one-input model); repeat for more"},
			&cli.StringFlag{Name: "output-dir", Aliases: []string{"o"}, Usage: "folder for the outputs (created if missing)"},
			&cli.IntFlag{Name: "threads", Usage: "threads for the kernels (0: all cores)"},
			&cli.IntFlag{Name: "repeat", Value: 1, Usage: "run the forward pass N times (after warm-up when N > 1: one run, and at 2+ threads the session's trials of branch lanes)"},
			&cli.BoolFlag{Name: "timing", Usage: "print median and minimum ms per forward pass and the peak RSS to stderr"},
			&cli.GenericFlag{Name: "profile", Value: &profileFlag{}, Usage: "print the time per op type and the 10 slowest nodes to stderr; with --profile=FILE.json (or --profile FILE.json after MODEL) also write a Chrome trace (Perfetto, chrome://tracing) with one event per node per run"},
			&cli.BoolFlag{Name: "keep-subnormals", Usage: "compute subnormal floats (magnitudes below 2^-126) as IEEE 754 does instead of flushing them to zero, the default (as TensorFlow's): on x86 each operation that meets one takes a microcode assist"},
			&cli.BoolFlag{Name: "integer", Usage: "QDQ models: run DequantizeLinear -> Conv -> QuantizeLinear groups as the integer QLinearConv runtimes fuse them into (what ONNX Runtime computes), not as written"},
		},
		Action: func(_ context.Context, cmd *cli.Command) error {
			prof := cmd.Generic("profile").(*profileFlag)
			path, err := prof.modelArg(cmd)
			if err != nil {
				return err
			}
			if cmd.Int("repeat") < 1 {
				return usageError("run: --repeat must be at least 1")
			}
			if cmd.Int("threads") < 0 {
				return usageError("run: --threads must not be negative")
			}
			m, err := graph.Load(path)
			if err != nil {
				return failed(err)
			}
			if cmd.Bool("integer") {
				ps, err := passes.Parse("qlinear", passes.Options{})
				if err != nil {
					return failed(err)
				}
				res, err := (&passes.Pipeline{Passes: ps}).Run(m)
				if err != nil {
					return failed(err)
				}
				fmt.Fprintf(cmd.Root().ErrWriter, "integer: %d Conv groups run as QLinearConv\n", res.Changes[0].Count)
			}
			s, err := kernels.NewSession(m, kernels.Options{Threads: int(cmd.Int("threads")), Profile: prof.on, KeepSubnormals: cmd.Bool("keep-subnormals")})
			if err != nil {
				return failed(err)
			}
			inputs, err := readInputs(s, cmd.StringSlice("input"))
			if err != nil {
				return failed(err)
			}
			outDir := cmd.String("output-dir")
			if outDir == "" && !cmd.Bool("timing") && !prof.on {
				return usageError("run: --output-dir is required (or --timing or --profile to only measure)")
			}
			n := int(cmd.Int("repeat"))
			var outs map[string]*graph.Tensor
			if n > 1 {
				// Warm-up: one run, and above 1 thread the runs in which
				// the session tries its branches in lanes and not.
				for k := 0; k < 1 || s.Settling() > 0; k++ {
					s.Recycle(outs)
					if outs, err = s.Run(inputs); err != nil {
						return failed(err)
					}
				}
				s.ResetProfile()
			}
			times := make([]time.Duration, n)
			offered0, helped0 := parallel.Regions()
			for i := range times {
				s.Recycle(outs) // only the last run's outputs are written
				if n > 1 && i%gcEvery == 0 {
					runtime.GC()
				}
				start := time.Now()
				if outs, err = s.Run(inputs); err != nil {
					return failed(err)
				}
				times[i] = time.Since(start)
			}
			if cmd.Bool("timing") {
				sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
				fmt.Fprintf(cmd.Root().ErrWriter, "forward pass: median %.2f ms, min %.2f ms over %d runs; peak RSS %.1f MiB",
					ms(times[len(times)/2]), ms(times[0]), n, float64(rss.Peak())/(1<<20))
				// Above one thread, whether the workers were there: a
				// loop none joined ran at its 1-thread speed.
				if offered, helped := parallel.Regions(); offered > offered0 {
					fmt.Fprintf(cmd.Root().ErrWriter, "; a worker took part in %.0f%% of the parallel loops",
						100*float64(helped-helped0)/float64(offered-offered0))
				}
				fmt.Fprintln(cmd.Root().ErrWriter)
			}
			if prof.on {
				if err := prof.report(cmd.Root().ErrWriter, s.Profile(), times); err != nil {
					return failed(err)
				}
			}
			if outDir == "" {
				return nil
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return failed(err)
			}
			for _, name := range s.OutputNames() {
				if err := writeOutput(outDir, fileName(name), outs[name]); err != nil {
					return failed(fmt.Errorf("output %q: %w", name, err))
				}
			}
			return nil
		},
	}
}

// gcEvery: every gcEvery-th timed run of run --repeat starts from a
// collected heap, so that peak RSS shows what a run needs, not how far the
// collector let garbage of earlier runs pile up (it lets the heap grow to
// twice the live data; a run leaves 7-60 KB). A collection before every run
// made the median 5-20% slower than back-to-back passes (ResNet-56 on the
// 2-vCPU VM: 1.72-2.00 ms against 1.51-1.76 at 1 thread, 1.21-1.75 against
// 1.10-1.65 at 2): caches emptied and the pool's workers parked, which a
// deployed model's passes do not see.
const gcEvery = 16

// writeOutput writes a tensor as base.npy; a sequence as base.0.npy,
// base.1.npy, ... (no file for an empty one); an
// optional as its value, or nothing when it has none.
func writeOutput(dir, base string, t *graph.Tensor) error {
	if o, ok := t.Optional(); ok {
		if o.Value == nil {
			return nil
		}
		return writeOutput(dir, base, o.Value)
	}
	if sq, ok := t.Sequence(); ok {
		for i, it := range sq.Items {
			if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("%s.%d.npy", base, i)), it); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		return nil
	}
	return npy.WriteFile(filepath.Join(dir, base+".npy"), t)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// readInputs parses NAME=FILE.npy flags, reads the files and checks them against
// the model's inputs before anything runs.
func readInputs(s *kernels.Session, specs []string) (map[string]*graph.Tensor, error) {
	needed := map[string]bool{}
	var required []string
	for _, in := range s.Inputs() {
		needed[in.Name] = true // optional inputs (with an initializer default) may be given too
		if !in.Optional {
			required = append(required, in.Name)
		}
	}
	inputs := map[string]*graph.Tensor{}
	for _, spec := range specs {
		name, file, ok := strings.Cut(spec, "=")
		if !ok {
			if len(required) != 1 {
				return nil, fmt.Errorf("--input %q: name the input (NAME=FILE.npy); the model has inputs %s", spec, strings.Join(required, ", "))
			}
			name, file = required[0], spec
		}
		if !needed[name] {
			return nil, fmt.Errorf("--input %q: the model has no input %q (inputs: %s)", spec, name, strings.Join(required, ", "))
		}
		if _, dup := inputs[name]; dup {
			return nil, fmt.Errorf("--input %q: input %q given twice", spec, name)
		}
		t, err := readTensorFile(file)
		if err != nil {
			return nil, fmt.Errorf("--input %s: %w", name, err)
		}
		inputs[name] = t
	}
	for _, name := range required {
		if _, ok := inputs[name]; !ok {
			return nil, fmt.Errorf("input %q is missing: give --input %s=FILE.npy", name, name)
		}
	}
	return inputs, nil
}

// fileName makes an output name safe as a file name.
func fileName(name string) string {
	r := strings.NewReplacer("/", "_", `\`, "_", ":", "_", "..", "_")
	if n := r.Replace(name); n != "" {
		return n
	}
	return "output"
}

// readTensorFile reads a tensor from a .npy file or, by its extension, from
// a .pb file holding a serialized TensorProto (the ONNX test data's
// input_0.pb).
func readTensorFile(path string) (*graph.Tensor, error) {
	if strings.EqualFold(filepath.Ext(path), ".pb") {
		return graph.ReadTensorFile(path)
	}
	return npy.ReadFile(path)
}
