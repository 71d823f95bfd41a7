package converter

import "fmt"

// prepareDynamic checks the options and sets what dynamic quantization
// implies: weights quantized, activations left float for the run-time
// quantizers, so no calibration; MatMul/Gemm weights are then rewritten by
// passes.ToDynamic. Other layers' weights stay weight-only (DequantizeLinear).
func prepareDynamic(opt *Options) error {
	if err := checkWeightFormat(*opt); err != nil {
		return err
	}
	if !opt.Dynamic {
		if opt.DynamicPerToken {
			return fmt.Errorf("per-token activation scales are for dynamic quantization (--dynamic)")
		}
		return nil
	}
	switch {
	case opt.WeightType.BitWidth() != 8:
		return fmt.Errorf("dynamic quantization takes int8 or uint8 weights (MatMulInteger), not %s", opt.WeightType.Short())
	case opt.WeightBlockSize > 0:
		return fmt.Errorf("dynamic quantization has one scale per weight column: --weight-block-size does not go with it")
	case opt.BiasCorrection:
		return fmt.Errorf("bias correction needs a static activation encoding; it does not go with dynamic quantization")
	}
	opt.WeightOnly = true
	return nil
}
