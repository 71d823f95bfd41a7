//go:build ort

package kernels

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/internal/ortref"
	"github.com/onnxq/onnxq/internal/testdata"
)

// TestMatMulNBitsMatchesORT: MatMulNBits models (4 and 8 bits, default,
// packed and float zero points, 1-D and 2-D scales, a padded last block,
// bias, a rank-3 A) give ONNX Runtime's outputs to 1e-6 (bit for bit but for summation order).
func TestMatMulNBitsMatchesORT(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct {
		nbitsCase
		lead []int
	}{
		{nbitsCase{k: 64, n: 16, bits: 4, block: 32}, []int{5}},
		{nbitsCase{k: 72, n: 24, bits: 4, block: 32, zp: "packed", scales2D: true}, []int{2, 7}},
		{nbitsCase{k: 100, n: 9, bits: 4, block: 16, zp: "packed", bias: true}, []int{4}},
		{nbitsCase{k: 96, n: 12, bits: 4, block: 64, zp: "float"}, []int{3}},
		{nbitsCase{k: 40, n: 8, bits: 8, block: 16, zp: "packed"}, []int{6}},
		{nbitsCase{k: 128, n: 32, bits: 8, block: 128, bias: true}, []int{1, 3}},
	} {
		t.Run(fmt.Sprintf("%d_k%d_b%d_bits%d_%s", i, c.k, c.block, c.bits, c.zp), func(t *testing.T) {
			m, _ := nbitsModel(c.nbitsCase, c.lead, uint64(20+i))
			path := filepath.Join(dir, fmt.Sprintf("mmnb%d.onnx", i))
			if err := graph.Save(m, path); err != nil {
				t.Fatal(err)
			}
			shape := append(append([]int(nil), c.lead...), c.k)
			a := graph.Float32Tensor(shape, seededFloats(graph.Numel(shape), uint64(i)))
			got, err := NewSession(m, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ours, err := got.Run(map[string]*graph.Tensor{"A": a})
			if err != nil {
				t.Fatal(err)
			}
			if err := ortref.Init(testdata.ORTLibrary(t)); err != nil {
				t.Fatal(err)
			}
			theirs, err := ortref.RunFile(path, 1, map[string]*graph.Tensor{"A": a})
			if err != nil {
				t.Fatal(err)
			}
			e := relErr(t, ours["Y"], theirs["Y"])
			t.Logf("Y %v: max abs err / max abs = %.2e", theirs["Y"].Shape, e)
			if e > 1e-6 {
				t.Errorf("differs from ONNX Runtime: %.3e > 1e-6", e)
			}
		})
	}
}
