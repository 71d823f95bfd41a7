package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/onnxq/onnxq/converter"
	"github.com/onnxq/onnxq/converter/calib"
	"github.com/onnxq/onnxq/converter/dataset"
	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/atomicfile"
	"github.com/onnxq/onnxq/internal/rss"
	"github.com/onnxq/onnxq/overrides"
	"github.com/onnxq/onnxq/wround"
	"github.com/urfave/cli/v3"
	"golang.org/x/term"
)

// convertFlag ties a flag to the run-config key it overrides.
type convertFlag struct {
	flag cli.Flag
	key  string // TOML key in the run config
	set  func(c *overrides.Config, cmd *cli.Command) error
}

func convertFlags() []convertFlag {
	d := overrides.DefaultConfig()
	str := func(name, key, usage, def string, dst func(*overrides.Config) *string) convertFlag {
		return convertFlag{&cli.StringFlag{Name: name, Value: def, Usage: usage}, key, func(c *overrides.Config, cmd *cli.Command) error {
			*dst(c) = cmd.String(name)
			return nil
		}}
	}
	num := func(name, key, usage string, def int, dst func(*overrides.Config) *int) convertFlag {
		return convertFlag{&cli.IntFlag{Name: name, Value: def, Usage: usage}, key, func(c *overrides.Config, cmd *cli.Command) error {
			*dst(c) = int(cmd.Int(name))
			return nil
		}}
	}
	flt := func(name, key, usage string, def float64, dst func(*overrides.Config) *float64) convertFlag {
		return convertFlag{&cli.FloatFlag{Name: name, Value: def, Usage: usage}, key, func(c *overrides.Config, cmd *cli.Command) error {
			*dst(c) = cmd.Float(name)
			return nil
		}}
	}
	boolean := func(name, key, usage string, dst func(*overrides.Config) *bool) convertFlag {
		return convertFlag{&cli.BoolFlag{Name: name, Usage: usage}, key, func(c *overrides.Config, cmd *cli.Command) error {
			*dst(c) = cmd.Bool(name)
			return nil
		}}
	}
	floats := func(name, key, usage string, dst func(*overrides.Config) *[]float64) convertFlag {
		return convertFlag{&cli.StringFlag{Name: name, Usage: usage}, key, func(c *overrides.Config, cmd *cli.Command) error {
			var out []float64
			for _, p := range strings.Split(cmd.String(name), ",") {
				f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
				if err != nil {
					return usageError("convert: --%s: %q is not a number", name, p)
				}
				out = append(out, f)
			}
			*dst(c) = out
			return nil
		}}
	}
	return []convertFlag{
		{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output QDQ model (required, here or in the config)"}, "output", func(c *overrides.Config, cmd *cli.Command) error {
			c.Output = cmd.String("output")
			return nil
		}},
		str("calib", "calib.path", "calibration data: a folder of .npy/.pb/.bin/.png/.jpg, per-input or per-sample subfolders (an ONNX model folder's test_data_set_N), or a list file", "", func(c *overrides.Config) *string { return &c.Calib.Path }),
		num("calib-size", "calib.size", "use at most N samples (sorted order)", 0, func(c *overrides.Config) *int { return &c.Calib.Size }),
		str("observer", "observer.kind", "minmax, percentile, entropy or mse", d.Observer.Kind, func(c *overrides.Config) *string { return &c.Observer.Kind }),
		flt("percentile", "observer.percentile", "for --observer percentile", d.Observer.Percentile, func(c *overrides.Config) *float64 { return &c.Observer.Percentile }),
		num("bins", "observer.bins", "percentile, entropy, mse: at least N histogram bins over the wider side of the data", d.Observer.Bins, func(c *overrides.Config) *int { return &c.Observer.Bins }),
		flt("moving-average", "observer.moving_average", "minmax: momentum of a moving average of per-sample ranges (0: global min/max)", 0, func(c *overrides.Config) *float64 { return &c.Observer.MovingAverage }),
		str("activation-type", "quantization.activation_type", "uint8, int8, uint16 or int16", d.Quant.ActivationType, func(c *overrides.Config) *string { return &c.Quant.ActivationType }),
		boolean("activation-symmetric", "quantization.activation_symmetric", "symmetric activation ranges (zero point 0 for signed types)", func(c *overrides.Config) *bool { return &c.Quant.ActivationSymmetric }),
		str("weight-type", "quantization.weight_type", "int8, uint8, int16, int4 or uint4 (symmetric)", d.Quant.WeightType, func(c *overrides.Config) *string { return &c.Quant.WeightType }),
		{&cli.BoolFlag{Name: "per-tensor-weights", Usage: "one weight scale per tensor instead of per output channel"}, "quantization.weight_granularity", func(c *overrides.Config, cmd *cli.Command) error {
			if cmd.Bool("per-tensor-weights") {
				c.Quant.WeightGranularity, c.Quant.WeightBlockSize = overrides.PerTensor, 0
			}
			return nil
		}},
		{&cli.IntFlag{Name: "weight-block-size", Usage: "quantize MatMul/Gemm weights in blocks of N along the reduction axis (opset 21)"}, "quantization.weight_block_size", func(c *overrides.Config, cmd *cli.Command) error {
			c.Quant.WeightBlockSize = int(cmd.Int("weight-block-size"))
			if c.Quant.WeightBlockSize > 0 {
				if cmd.IsSet("per-tensor-weights") {
					return usageError("convert: --weight-block-size does not go with --per-tensor-weights")
				}
				c.Quant.WeightGranularity = overrides.PerBlock
			}
			return nil
		}},
		str("bias-type", "quantization.bias_type", "int32 (scale = input scale x weight scale) or float", d.Quant.BiasType, func(c *overrides.Config) *string { return &c.Quant.BiasType }),
		boolean("weight-only", "quantization.weight_only", "quantize weights only; activations and biases stay float (no calibration data needed)", func(c *overrides.Config) *bool { return &c.Quant.WeightOnly }),
		str("weight-format", "quantization.weight_format", "onnx (DequantizeLinear), matmulnbits (ONNX Runtime's packed MatMulNBits for MatMul weights) or, with --dynamic, ort (DynamicQuantizeMatMul)", d.Quant.WeightFormat, func(c *overrides.Config) *string { return &c.Quant.WeightFormat }),
		num("accuracy-level", "quantization.accuracy_level", "MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 (ONNX Runtime's compute type)", 0, func(c *overrides.Config) *int { return &c.Quant.AccuracyLevel }),
		boolean("dynamic", "quantization.dynamic", "dynamic W8A8: int8 MatMul/Gemm weights, inputs quantized at run time (no calibration data needed)", func(c *overrides.Config) *bool { return &c.Quant.Dynamic }),
		str("dynamic-granularity", "quantization.dynamic_granularity", "with --dynamic: tensor (one activation scale per tensor) or token (one per row, symmetric int8, msModelSlim's w8a8_dynamic)", d.Quant.DynamicGranularity, func(c *overrides.Config) *string { return &c.Quant.DynamicGranularity }),
		convertFlag{&cli.FloatFlag{Name: "smooth-quant", Usage: "SmoothQuant alpha in [0, 1] for every MatMul/Gemm (0: off): move activation outlier channels into the weights, scales from the calibration data (default: per tensor, the strength that lowers the estimated W8A8 noise, for MatMuls with 8-bit activations where it folds upstream, when --calib is given)"}, "quantization.smooth_quant", func(c *overrides.Config, cmd *cli.Command) error {
			a := cmd.Float("smooth-quant")
			c.Quant.SmoothQuant = &a
			return nil
		}},
		boolean("reduce-range", "quantization.reduce_range", "int8 weights that meet uint8 activations get 7 bits of range, for ONNX Runtime on x86 CPUs without AVX-VNNI (its u8 x s8 kernels saturate pair sums in int16)", func(c *overrides.Config) *bool { return &c.Quant.ReduceRange }),
		str("runtime", "quantization.runtime", "the runtime to place Q/DQ for: generic (every op with an integer form), ort (ONNX Runtime's CPU provider: only where its integer kernels beat float, 7-bit weights against x86 int16 saturation) or ort-vnni (the same placement, 8-bit weights)", d.Quant.Runtime, func(c *overrides.Config) *string { return &c.Quant.Runtime }),
		boolean("bias-correction", "quantization.bias_correction", "correct biases for weight quantization error with input means measured on the calibration data", func(c *overrides.Config) *bool { return &c.Quant.BiasCorrection }),
		str("weight-rounding", "rounding.method", "how weight codes are chosen: nearest, gptq, awq, adaround or hqq (all but nearest and hqq need --calib)", d.Rounding.Method, func(c *overrides.Config) *string { return &c.Rounding.Method }),
		str("weight-range", "rounding.range", "weight ranges: minmax, or mse (per channel/block clipping that minimises the layer's output error); unset: mse for gptq, minmax otherwise", d.Rounding.Range, func(c *overrides.Config) *string { return &c.Rounding.Range }),
		num("weight-bits", "rounding.bits", "narrow weight codes to N bits (2..7) inside the weight type, e.g. 3-bit codes in int4 (0: the type's)", 0, func(c *overrides.Config) *int { return &c.Rounding.Bits }),
		boolean("sequential", "rounding.sequential", "weight rounding: collect each layer's inputs from the model with the earlier layers already rounded, and reconstruct the float model's outputs from them", func(c *overrides.Config) *bool { return &c.Rounding.Sequential }),
		boolean("quantized-targets", "rounding.quantized_targets", "weight rounding, with --sequential: each layer reconstructs its own output on the rounded layers' outputs, instead of the float model's output (which compensates their error)", func(c *overrides.Config) *bool { return &c.Rounding.QuantizedTargets }),
		flt("gptq-damp", "rounding.gptq_damp", "GPTQ: Hessian dampening as a fraction of its mean diagonal", d.Rounding.GPTQDamp, func(c *overrides.Config) *float64 { return &c.Rounding.GPTQDamp }),
		boolean("gptq-act-order", "rounding.gptq_act_order", "GPTQ: quantize columns by descending Hessian diagonal", func(c *overrides.Config) *bool { return &c.Rounding.GPTQActOrder }),
		num("gptq-block", "rounding.gptq_block", "GPTQ: columns per lazy-update block", d.Rounding.GPTQBlock, func(c *overrides.Config) *int { return &c.Rounding.GPTQBlock }),
		num("adaround-iters", "rounding.adaround_iters", "AdaRound: optimisation steps per layer", d.Rounding.AdaRoundIter, func(c *overrides.Config) *int { return &c.Rounding.AdaRoundIter }),
		flt("adaround-lr", "rounding.adaround_lr", "AdaRound: Adam's learning rate (AIMET's 1e-3; fewer iterations may want more)", d.Rounding.AdaRoundLR, func(c *overrides.Config) *float64 { return &c.Rounding.AdaRoundLR }),
		num("hqq-iters", "rounding.hqq_iters", "HQQ: half-quadratic iterations per group", d.Rounding.HQQIters, func(c *overrides.Config) *int { return &c.Rounding.HQQIters }),
		{&cli.IntFlag{Name: "seed", Usage: "weight rounding: seed of every random choice (row sampling, initialisation); the same seed gives the same model"}, "rounding.seed", func(c *overrides.Config, cmd *cli.Command) error {
			c.Rounding.Seed = int64(cmd.Int("seed"))
			return nil
		}},
		str("passes", "passes.list", "float passes before calibration (see onnxq passes)", d.Passes.List, func(c *overrides.Config) *string { return &c.Passes.List }),
		boolean("cle", "passes.cle", "add cross-layer equalization to the passes", func(c *overrides.Config) *bool { return &c.Passes.CLE }),
		boolean("keep-initializer-inputs", "passes.keep_initializer_inputs", "keep graph inputs that repeat an initializer (IR < 4 models) as inputs; their float values then stay in the file beside the quantized copies", func(c *overrides.Config) *bool { return &c.Passes.KeepInitializerInputs }),
		str("report", "report.json", "write the report as JSON", "", func(c *overrides.Config) *string { return &c.Report.JSON }),
		str("encodings-out", "report.encodings", "write the final encodings as overrides JSON (feed back with --overrides to reproduce the model)", "", func(c *overrides.Config) *string { return &c.Report.Encodings }),
		str("overrides", "overrides_file", "overrides: onnxq JSON, AIMET/QNN encodings 0.6.1/1.0.0 or ORT tensor overrides (detected)", "", func(c *overrides.Config) *string { return &c.OverridesFile }),
		boolean("allow-missing", "allow_missing", "overrides naming nodes or tensors the model lacks are warnings, not errors", func(c *overrides.Config) *bool { return &c.AllowMissing }),
		str("image-resize", "calib.image.resize", "images: nearest, bilinear or bicubic", d.Calib.Image.Resize, func(c *overrides.Config) *string { return &c.Calib.Image.Resize }),
		num("image-short-side", "calib.image.short_side", "images: resize the short side to N, then center-crop to the input size", 0, func(c *overrides.Config) *int { return &c.Calib.Image.ShortSide }),
		str("image-size", "calib.image.size", "images: HxW when the model input has no static size", "", func(c *overrides.Config) *string { return &c.Calib.Image.Size }),
		str("image-channels", "calib.image.channels", "images: RGB, BGR or GRAY", d.Calib.Image.Channels, func(c *overrides.Config) *string { return &c.Calib.Image.Channels }),
		str("image-layout", "calib.image.layout", "images: NCHW or NHWC", d.Calib.Image.Layout, func(c *overrides.Config) *string { return &c.Calib.Image.Layout }),
		floats("image-mean", "calib.image.mean", "images: per-channel mean after scaling, e.g. 0.485,0.456,0.406", func(c *overrides.Config) *[]float64 { return &c.Calib.Image.Mean }),
		floats("image-std", "calib.image.std", "images: per-channel std after scaling, e.g. 0.229,0.224,0.225", func(c *overrides.Config) *[]float64 { return &c.Calib.Image.Std }),
		flt("image-scale", "calib.image.scale", "images: pixel (0..255) multiplier before mean/std", d.Calib.Image.Scale, func(c *overrides.Config) *float64 { return &c.Calib.Image.Scale }),
		{&cli.StringFlag{Name: "raw-shape", Usage: ".bin/.raw samples: their shape, e.g. 1,3,224,224"}, "calib.raw_shape", func(c *overrides.Config, cmd *cli.Command) error {
			rs := cmd.String("raw-shape")
			c.Calib.RawShape = nil
			for _, p := range strings.Split(rs, ",") {
				d, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil || d < 0 {
					return usageError("convert: --raw-shape %q: %q is not a dimension", rs, p)
				}
				c.Calib.RawShape = append(c.Calib.RawShape, d)
			}
			return nil
		}},
		str("raw-type", "calib.raw_type", ".bin/.raw samples: their element type", d.Calib.RawType, func(c *overrides.Config) *string { return &c.Calib.RawType }),
		num("threads", "threads", "threads for calibration (0: all cores)", 0, func(c *overrides.Config) *int { return &c.Threads }),
	}
}

func convertCommand() *cli.Command {
	table := convertFlags()
	table = append(table, measureFlags(false)...)
	table = append(table,
		convertFlag{&cli.StringFlag{Name: "eval", Usage: "after writing, measure the model against the float model on these samples (default: the calibration data)"}, "compare.eval", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.Eval = cmd.String("eval")
			return nil
		}},
		convertFlag{&cli.BoolFlag{Name: "no-measure", Usage: "do not measure the written model against the float model"}, "compare.skip", func(c *overrides.Config, cmd *cli.Command) error {
			c.Compare.Skip = cmd.Bool("no-measure")
			return nil
		}},
		convertFlag{&cli.StringFlag{Name: "external-data-chunk", Usage: "write the weights as external data in files of at most SIZE (bytes, or with KB, MB, GB, KiB, MiB, GiB) instead of one file"}, "external_data_chunk", func(c *overrides.Config, cmd *cli.Command) error {
			c.ExternalDataChunk = overrides.ByteSize(cmd.String("external-data-chunk"))
			return nil
		}})
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "TOML run config with any of these options and an [overrides] table; flags override it"},
		&cli.BoolFlag{Name: "print-config", Usage: "print the effective run config as TOML and exit"},
	}
	for _, f := range table {
		flags = append(flags, f.flag)
	}
	return &cli.Command{
		Name:      "convert",
		Usage:     "quantize a model: float passes, calibration, QDQ insertion",
		ArgsUsage: "MODEL",
		Description: "Runs the float passes, calibrates activation ranges on --calib data, and writes a QDQ model\n" +
			"with int8 weights, int32 biases and uint8 activations by default.\n\n" +
			"   onnxq convert model.onnx -o model.qdq.onnx --calib calib/\n" +
			"   onnxq convert model.onnx -o model.qdq.onnx --calib list.txt --observer entropy --report report.json\n" +
			"   onnxq convert --config run.toml --observer percentile      (flags override the file)\n" +
			"   onnxq convert model.onnx --config run.toml --print-config  (the effective config as TOML)",
		Flags: flags,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := runConfig(cmd, table)
			if err != nil {
				return err
			}
			if cmd.Bool("print-config") {
				b, err := cfg.TOML()
				if err != nil {
					return failed(err)
				}
				_, err = cmd.Root().Writer.Write(b)
				return err
			}
			opt, err := convertOptions(cmd, cfg)
			if err != nil {
				return err
			}
			if err := checkOutput(cfg); err != nil {
				return err
			}
			rep, err := converter.Convert(ctx, opt)
			if err != nil {
				return failed(err)
			}
			if p := cfg.Report.JSON; p != "" {
				b, _ := json.MarshalIndent(rep, "", "  ")
				if err := atomicfile.WriteBytes(p, append(b, '\n')); err != nil {
					return failed(err)
				}
			}
			printConvertSummary(cmd.Root().ErrWriter, rep)
			return nil
		},
	}
}

// runConfig is the run config file (or the defaults) with the flags the user
// set on top, validated; errors name the flag or the file's key and line.
func runConfig(cmd *cli.Command, table []convertFlag) (*overrides.Config, error) {
	return runConfigArgs(cmd, table, true)
}

// runConfigArgs is runConfig for commands whose positional arguments are not
// the one MODEL (oneModel false: the caller reads them).
func runConfigArgs(cmd *cli.Command, table []convertFlag, oneModel bool) (*overrides.Config, error) {
	cfg := overrides.DefaultConfig()
	if p := cmd.String("config"); p != "" {
		var err error
		if cfg, err = overrides.LoadConfig(p); err != nil {
			return nil, failed(err)
		}
	}
	flagOf := map[string]string{}
	for _, f := range table {
		name := f.flag.Names()[0]
		if cmd.IsSet(name) {
			if err := f.set(cfg, cmd); err != nil {
				return nil, err
			}
			flagOf[f.key] = name
		}
	}
	switch n := cmd.Args().Len(); {
	case !oneModel || n == 0:
	case n == 1:
		cfg.Model = cmd.Args().First()
	default:
		return nil, usageError("%s: expected one MODEL, got %d arguments", cmd.Name, cmd.Args().Len())
	}
	if err := cfg.Validate(); err != nil {
		var ce *overrides.ConfigError
		if errors.As(err, &ce) && flagOf[ce.Key] != "" {
			return nil, usageError("%s: --%s: %s", cmd.Name, flagOf[ce.Key], ce.Msg)
		}
		return nil, failed(err)
	}
	return cfg, nil
}

// checkOutput refuses a run without an output or one that would overwrite its input.
func checkOutput(cfg *overrides.Config) error {
	if cfg.Output == "" {
		return usageError("convert: --output is required (or output in the config)")
	}
	if abs(cfg.Output) == abs(cfg.Model) {
		return usageError("convert: the output would overwrite the input model")
	}
	return nil
}

// convertOptions turns the effective run config into converter options.
func convertOptions(cmd *cli.Command, cfg *overrides.Config) (converter.Options, error) {
	var opt converter.Options
	if cfg.Model == "" {
		return opt, usageError("convert: missing MODEL (an argument, or model in the config)")
	}
	act, _ := graph.ParseDataType(cfg.Quant.ActivationType) // validated
	wt, _ := graph.ParseDataType(cfg.Quant.WeightType)
	o, q := cfg.Observer, cfg.Quant
	opt = converter.Options{
		Model: cfg.Model, Output: cfg.Output, Calib: cfg.Calib.Path,
		Observer: calib.Config{Kind: o.Kind, Percentile: o.Percentile, Bins: o.Bins, Momentum: o.MovingAverage},
		ActType:  act, ActSymmetric: q.ActivationSymmetric, WeightType: wt,
		WeightPerTensor: q.WeightGranularity == overrides.PerTensor, WeightBlockSize: q.WeightBlockSize,
		BiasFloat: q.BiasType == "float", BiasCorrection: q.BiasCorrection, WeightOnly: q.WeightOnly, ReduceRange: q.ReduceRange,
		WeightFormat: q.WeightFormat, AccuracyLevel: q.AccuracyLevel, Dynamic: q.Dynamic,
		DynamicPerToken: q.DynamicGranularity == "token", SmoothQuant: smoothAlpha(q.SmoothQuant), SmoothQuantDefault: q.SmoothQuant == nil,
		Passes: cfg.Passes.List, CLE: cfg.Passes.CLE, KeepInitializerInputs: cfg.Passes.KeepInitializerInputs, Threads: cfg.Threads,
		EncodingsOut: cfg.Report.Encodings, AllowMissing: cfg.AllowMissing,
		Eval: cfg.Compare.Eval, NoMeasure: cfg.Compare.Skip,
		CosThreshold: cfg.Compare.CosThreshold, SQNRThreshold: cfg.Compare.SQNRThreshold,
	}
	opt.ExternalDataChunk, _ = cfg.ExternalDataChunk.Bytes() // validated
	opt.Runtime, _ = converter.ParseRuntime(q.Runtime)       // validated
	r := cfg.Rounding
	opt.WeightRounding, opt.WeightRange, opt.WeightBits, opt.Sequential, opt.QuantizedTargets = r.Method, r.Range, r.Bits, r.Sequential, r.QuantizedTargets
	opt.Rounding = wround.DefaultOptions()
	opt.Rounding.Seed = uint64(r.Seed)
	opt.Rounding.GPTQDamp, opt.Rounding.ActOrder, opt.Rounding.GPTQBlock = r.GPTQDamp, r.GPTQActOrder, r.GPTQBlock
	opt.Rounding.AdaRoundIters, opt.Rounding.AdaRoundLR, opt.Rounding.HQQIters = r.AdaRoundIter, r.AdaRoundLR, r.HQQIters
	if _, err := calib.New(opt.Observer); err != nil {
		return opt, usageError("convert: %v", err)
	}
	if p := cfg.OverridesFile; p != "" {
		f, _, err := overrides.LoadAny(p)
		if err != nil {
			return opt, failed(err)
		}
		opt.Overrides = f
	}
	emb, err := cfg.Embedded()
	if err != nil {
		return opt, failed(err)
	}
	if emb != nil {
		opt.Overrides = emb
	}
	opt.Dataset = datasetOptions(cfg)
	opt.Progress = progress(cmd, "calibration")
	return opt, nil
}

// progress counts samples on stderr when it is a terminal (nil otherwise).
func progress(cmd *cli.Command, what string) func(done, total int) {
	errw := cmd.Root().ErrWriter
	if f, ok := errw.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(done, total int) {
		fmt.Fprintf(errw, "\r%s: %d/%d samples", what, done, total)
		if done == total {
			fmt.Fprintln(errw)
		}
	}
}

// datasetOptions is how the config reads samples (validated before).
func datasetOptions(cfg *overrides.Config) dataset.Options {
	var ds dataset.Options
	ds.Limit = cfg.Calib.Size
	// Threads 1 keeps everything on one goroutine; otherwise the next
	// sample is read while the model runs on this one.
	ds.ReadAhead = cfg.Threads != 1 && runtime.GOMAXPROCS(0) > 1
	im := cfg.Calib.Image
	ds.Image.Resize, ds.Image.Channels, ds.Image.Layout = im.Resize, im.Channels, im.Layout
	ds.Image.ShortSide, ds.Image.Scale = im.ShortSide, float32(im.Scale)
	for _, m := range im.Mean {
		ds.Image.Mean = append(ds.Image.Mean, float32(m))
	}
	for _, s := range im.Std {
		ds.Image.Std = append(ds.Image.Std, float32(s))
	}
	ds.Image.Height, ds.Image.Width, _ = cfg.ImageSize()
	if len(cfg.Calib.RawShape) > 0 {
		ds.RawShape = cfg.Calib.RawShape
		ds.RawType, _ = graph.ParseDataType(cfg.Calib.RawType)
	}
	return ds
}

func printConvertSummary(w io.Writer, rep *converter.Report) {
	counts := map[string]int{}
	for _, t := range rep.Tensors {
		counts[t.Kind]++
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "wrote\t%s\n", rep.Output)
	fmt.Fprintf(tw, "calibration\t%d samples\n", rep.Samples)
	for _, ch := range rep.Passes {
		if ch.Pass != "smooth-quant" {
			continue
		}
		folded := 0
		for _, n := range ch.Notes {
			if strings.Contains(n, "; folded into ") {
				folded++
			}
		}
		fmt.Fprintf(tw, "smooth quant\t%d tensors into %d layers: 1/s folded upstream for %d, a Mul inserted for %d (see --report)\n", ch.Count, len(ch.Nodes), folded, ch.Count-folded)
	}
	switch {
	case rep.Dynamic:
		fmt.Fprintf(tw, "activations\tquantized at run time (dynamic W8A8) where MatMul/Gemm read them, else float\n")
	case rep.WeightOnly:
		fmt.Fprintf(tw, "activations\tfloat (weight-only quantization)\n")
	}
	fmt.Fprintf(tw, "quantized\t%d activations, %d weights, %d biases\n", counts["activation"], counts["weight"], counts["bias"])
	if r := converter.RoundingSummary(rep); r != "" {
		fmt.Fprintf(tw, "weight rounding\t%s\n", r)
	}
	reasons := map[string]int{}
	for _, f := range rep.FloatNodes {
		reasons[f.OpType+": "+f.Reason]++
	}
	var lines []string
	for r, n := range reasons {
		lines = append(lines, fmt.Sprintf("%d x %s", n, r))
	}
	sort.Strings(lines)
	fmt.Fprintf(tw, "left in float\t%d nodes\n", len(rep.FloatNodes))
	for _, l := range lines {
		fmt.Fprintf(tw, "\t  %s\n", l)
	}
	if len(rep.FloatTensors) > 0 {
		// One line per reason: the masks of a 24-layer model share theirs.
		byReason := map[string][]string{}
		var order []string
		for _, f := range rep.FloatTensors {
			if byReason[f.Reason] == nil {
				order = append(order, f.Reason)
			}
			byReason[f.Reason] = append(byReason[f.Reason], f.Name)
		}
		fmt.Fprintf(tw, "float tensors\t%d\n", len(rep.FloatTensors))
		for _, r := range order {
			names := byReason[r]
			if len(names) == 1 {
				fmt.Fprintf(tw, "\t  %s: %s\n", names[0], r)
				continue
			}
			shown := strings.Join(names[:min(3, len(names))], ", ")
			if len(names) > 3 {
				shown += ", ..."
			}
			fmt.Fprintf(tw, "\t  %d x %s (%s)\n", len(names), r, shown)
		}
	}
	var touched []string
	for _, t := range rep.Tensors {
		switch {
		case t.Observer == "overrides":
			touched = append(touched, fmt.Sprintf("%s: %s, explicit encoding", t.Name, t.Encoding.DType.Short()))
		case t.Override != "":
			what := t.Encoding.DType.Short()
			if t.Observer == "pinned range" {
				what += ", pinned range"
			}
			touched = append(touched, fmt.Sprintf("%s: %s by %s", t.Name, what, t.Override))
		}
	}
	if len(touched) > 0 {
		fmt.Fprintf(tw, "overridden\t%d tensors\n", len(touched))
		for i, l := range touched {
			if i == 8 {
				fmt.Fprintf(tw, "\t  ... %d more (see --report)\n", len(touched)-i)
				break
			}
			fmt.Fprintf(tw, "\t  %s\n", l)
		}
	}
	for _, c := range rep.Passes {
		if c.Pass == "cle" { // what it equalized, and why it left layers alone
			fmt.Fprintf(tw, "cle\t%d layer pairs equalized\n", c.Count)
			for _, n := range c.Notes {
				fmt.Fprintf(tw, "\t  %s\n", n)
			}
		}
	}
	if m := rep.Measured; m != nil {
		for _, o := range m.Outputs {
			if o.Values == 0 && o.Note != "" { // a sequence output, an integer one: nothing to measure
				fmt.Fprintf(tw, "vs float\t%s: not measured (%s)\n", o.Name, o.Note)
				continue
			}
			verdict := "ok"
			if o.Bad(m.Thresholds.Cos, m.Thresholds.SQNR) {
				verdict = fmt.Sprintf("BELOW thresholds (%.4g, %.4g dB)", m.Thresholds.Cos, m.Thresholds.SQNR)
			}
			top1 := ""
			if o.Top1 != nil {
				top1 = fmt.Sprintf(", top-1 agreement %.2f%%", 100**o.Top1)
			}
			fmt.Fprintf(tw, "vs float\t%s: cosine %.5f, SQNR %.2f dB, MSE %.3g, max abs %.3g%s on %d samples: %s\n", o.Name, o.Cosine, o.SQNR, o.MSE, o.MaxAbs, top1, m.Samples, verdict)
		}
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(tw, "warning\t%s\n", w)
	}
	if rep.U8S8 {
		fmt.Fprintf(tw, "note\tuint8 activations into int8 weights: ONNX Runtime on x86 CPUs without AVX-VNNI adds product pairs in saturating int16 and can lose much accuracy; for such targets add --reduce-range (7-bit weights) or use --weight-type uint8\n")
	}
	phases := []string{"load", "passes", "calibration", "quantize", "save"}
	at := 2 // after load and passes, in the order they run
	for _, p := range []string{"smooth-quant", "weights", "weight rounding"} {
		if _, ok := rep.PhaseSeconds[p]; ok {
			phases = slices.Insert(phases, at, p)
			at++
		}
	}
	if rep.Measured != nil {
		phases = append(phases, "measure")
	}
	var ps []string
	for _, p := range phases {
		ps = append(ps, fmt.Sprintf("%s %.2fs", p, rep.PhaseSeconds[p]))
	}
	fmt.Fprintf(tw, "time\t%s\n", strings.Join(ps, ", "))
	// The report's peak: the process mark is reset for calibration's own.
	fmt.Fprintf(tw, "peak RSS\t%.1f MiB\n", float64(max(rep.PeakRSSBytes, rss.Peak()))/(1<<20))
	tw.Flush()
}

// smoothAlpha is the run config's explicit alpha (0 when unset: the
// converter's default rule applies).
func smoothAlpha(a *float64) float64 {
	if a == nil {
		return 0
	}
	return *a
}
