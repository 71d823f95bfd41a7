//go:build ort

package kernels

import "math"

func pow(x, y float64) float64 { return math.Pow(x, y) }
func cosf(x float64) float64   { return math.Cos(x) }
func sinf(x float64) float64   { return math.Sin(x) }
