package kernels

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/kernels/gemm"
	"github.com/onnxq/onnxq/kernels/parallel"
)

// Einsum of two float32 operands whose letters are batch (in both and the
// output), rows (first operand and output), columns (second and output) and
// contracted (both, not the output) runs as batched GEMMs: each operand
// permuted to [batch, rows, k] and [batch, k, columns] where its layout is
// not already that or its transpose, the product permuted to the output's
// order (attention written as "bhqd,bhkd->bhqk": a GEMM per head, B read
// transposed). Every other equation (one operand, three, diagonals, a
// letter summed within one operand, broadcasting, other types) is
// evaluated directly: one loop over every combination of the letters'
// indices, multiplying the inputs' elements and summing into the output
// (in float64), simple and exact rather than fast.

type einsumTerm struct {
	letters []byte // one per dimension of the operand, after expanding "..."
}

// parseEinsum expands "..." into capital letters (numpy semantics: right-aligned
// broadcast dimensions) and returns each input's letters and the output's.
func parseEinsum(eq string, shapes [][]int) ([]einsumTerm, []byte, error) {
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	parts := strings.Split(lhs, ",")
	if len(parts) != len(shapes) {
		return nil, nil, fmt.Errorf("equation %q has %d operands, got %d inputs", eq, len(parts), len(shapes))
	}
	ellRank := 0
	for i, p := range parts {
		if strings.Contains(p, "...") {
			ellRank = max(ellRank, len(shapes[i])-(len(p)-3))
		}
	}
	if ellRank < 0 {
		return nil, nil, fmt.Errorf("equation %q does not fit the input ranks", eq)
	}
	ell := func(rank int) []byte { // the last `rank` of ellRank placeholder letters
		out := make([]byte, rank)
		for i := range out {
			out[i] = byte('A' + ellRank - rank + i)
		}
		return out
	}
	terms := make([]einsumTerm, len(parts))
	count := map[byte]int{}
	for i, p := range parts {
		var letters []byte
		if pre, post, ok := strings.Cut(p, "..."); ok {
			r := len(shapes[i]) - len(pre) - len(post)
			if r < 0 {
				return nil, nil, fmt.Errorf("operand %d (%q) does not fit shape %v", i, p, shapes[i])
			}
			letters = append(append(append(letters, pre...), ell(r)...), post...)
		} else {
			letters = []byte(p)
		}
		if len(letters) != len(shapes[i]) {
			return nil, nil, fmt.Errorf("operand %d (%q) has %d letters for shape %v", i, p, len(letters), shapes[i])
		}
		for _, l := range letters {
			if !(l >= 'a' && l <= 'z') && !(l >= 'A' && l < byte('A'+ellRank)) {
				return nil, nil, fmt.Errorf("equation %q: %q is not a letter", eq, l)
			}
			count[l]++
		}
		terms[i] = einsumTerm{letters}
	}
	var out []byte
	if explicit {
		if pre, post, ok := strings.Cut(rhs, "..."); ok {
			out = append(append(append(out, pre...), ell(ellRank)...), post...)
		} else {
			out = []byte(rhs)
		}
		for _, l := range out {
			if count[l] == 0 {
				return nil, nil, fmt.Errorf("equation %q: output letter %q is not in any input", eq, l)
			}
		}
	} else {
		// Implicit: broadcast dims, then letters used once, alphabetically.
		out = append(out, ell(ellRank)...)
		var once []byte
		for l, c := range count {
			if c == 1 && l >= 'a' {
				once = append(once, l)
			}
		}
		sort.Slice(once, func(i, j int) bool { return once[i] < once[j] })
		out = append(out, once...)
	}
	return terms, out, nil
}

func newEinsum(ni *NodeInfo) (Kernel, error) {
	a := attrsOf(ni.Node)
	eq := a.String("equation", "")
	if a.err != nil {
		return nil, a.err
	}
	if eq == "" {
		return nil, fmt.Errorf("Einsum needs an equation")
	}
	return KernelFunc(func(ctx *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if len(in) == 0 {
			return nil, fmt.Errorf("Einsum needs inputs")
		}
		if out, ok, err := einsumGEMM(ctx, eq, in); ok || err != nil {
			return one(out), err
		}
		shapes := make([][]int, len(in))
		vals := make([][]float64, len(in))
		for i, t := range in {
			if t == nil {
				return nil, fmt.Errorf("input %d is required", i)
			}
			if t.DType != in[0].DType {
				return nil, fmt.Errorf("Einsum inputs differ in type")
			}
			shapes[i] = t.Shape
			v, err := asFloat64s(t)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		terms, outLetters, err := parseEinsum(eq, shapes)
		if err != nil {
			return nil, err
		}
		// Sizes per letter; size-1 dims broadcast.
		size := map[byte]int{}
		for i, t := range terms {
			for k, l := range t.letters {
				d := shapes[i][k]
				switch s, ok := size[l]; {
				case !ok || s == 1:
					size[l] = d
				case d != s && d != 1:
					return nil, fmt.Errorf("letter %q is %d in one operand and %d in another", l, s, d)
				}
			}
		}
		// All letters: output first, then the summed ones.
		letters := append([]byte(nil), outLetters...)
		inOut := map[byte]bool{}
		for _, l := range outLetters {
			inOut[l] = true
		}
		var summed []byte
		for l := range size {
			if !inOut[l] {
				summed = append(summed, l)
			}
		}
		sort.Slice(summed, func(i, j int) bool { return summed[i] < summed[j] })
		letters = append(letters, summed...)
		pos := map[byte]int{}
		dims := make([]int, len(letters))
		for i, l := range letters {
			pos[l], dims[i] = i, size[l]
		}
		// Stride of each letter within each operand (repeated letters add up:
		// a diagonal); broadcast (size-1) dims get stride 0.
		strides := make([][]int, len(in))
		for i, t := range terms {
			st := stridesOf(shapes[i])
			strides[i] = make([]int, len(letters))
			for k, l := range t.letters {
				if shapes[i][k] != 1 {
					strides[i][pos[l]] += st[k]
				}
			}
		}
		outShape := make([]int, len(outLetters))
		for i, l := range outLetters {
			outShape[i] = size[l]
		}
		nOut := graph.Numel(outShape)
		nSum := graph.Numel(dims[len(outLetters):])
		acc := make([]float64, nOut)
		idx := make([]int, len(letters))
		offs := make([]int, len(in))
		total := nOut * nSum
		for it := 0; it < total; it++ {
			p := 1.0
			for i := range in {
				p *= vals[i][offs[i]]
			}
			acc[it/max(1, nSum)] += p
			// advance the combined index (summed letters fastest)
			for d := len(letters) - 1; d >= 0; d-- {
				idx[d]++
				for i := range in {
					offs[i] += strides[i][d]
				}
				if idx[d] < dims[d] {
					break
				}
				for i := range in {
					offs[i] -= strides[i][d] * dims[d]
				}
				idx[d] = 0
			}
		}
		out := graph.NewTensor(in[0].DType, outShape)
		if err := storeFloat64s(out, acc); err != nil {
			return nil, err
		}
		return one(out), nil
	}), nil
}

// einsumGEMM computes a two-operand float32 Einsum as batched GEMMs (see
// above); ok is false for an equation it does not take.
func einsumGEMM(ctx *Context, eq string, in []*graph.Tensor) (out *graph.Tensor, ok bool, err error) {
	if len(in) != 2 || in[0] == nil || in[1] == nil || in[0].DType != graph.Float || in[1].DType != graph.Float || noEinsumGEMM {
		return nil, false, nil
	}
	terms, outL, err := parseEinsum(eq, [][]int{in[0].Shape, in[1].Shape})
	if err != nil {
		return nil, false, err
	}
	la, lb := terms[0].letters, terms[1].letters
	size := map[byte]int{}
	where := map[byte]int{} // bit 0: in A, bit 1: in B, bit 2: in the output
	for t, ls := range [][]byte{la, lb, outL} {
		seen := map[byte]bool{}
		for i, l := range ls {
			if seen[l] {
				return nil, false, nil // a diagonal, or a letter twice in the output
			}
			seen[l] = true
			where[l] |= 1 << t
			if t < 2 {
				d := in[t].Shape[i]
				if s, ok := size[l]; ok && s != d {
					return nil, false, nil // broadcasting
				}
				size[l] = d
			}
		}
	}
	var batch, rows, cols, ks []byte
	for _, l := range la {
		switch where[l] {
		case 7:
			batch = append(batch, l)
		case 5:
			rows = append(rows, l)
		case 3:
			ks = append(ks, l)
		default:
			return nil, false, nil // summed within A alone
		}
	}
	for _, l := range lb {
		switch where[l] {
		case 6:
			cols = append(cols, l)
		case 7, 3:
		default:
			return nil, false, nil
		}
	}
	prod := func(ls []byte) int {
		n := 1
		for _, l := range ls {
			n *= size[l]
		}
		return n
	}
	nb, m, k, n := prod(batch), prod(rows), prod(ks), prod(cols)
	a, transA := einsumOperand(ctx, in[0], la, batch, rows, ks)
	b, transB := einsumOperand(ctx, in[1], lb, batch, ks, cols)
	for _, t := range []*graph.Tensor{a, b} {
		if t != in[0] && t != in[1] {
			defer ctx.Release(t.Float32s())
		}
	}
	prodL := slices.Concat(batch, rows, cols)
	shape := make([]int, len(prodL))
	for i, l := range prodL {
		shape[i] = size[l]
	}
	// The product goes straight to the output when it is in the output's
	// order, else to scratch and is permuted into it.
	direct := slices.Equal(prodL, outL)
	var res *graph.Tensor
	if direct {
		res = ctx.Float32(shape)
	} else {
		res = graph.Float32Tensor(shape, ctx.Scratch(nb*m*n))
		defer ctx.Release(res.Float32s())
	}
	ad, bd, rd := a.Float32s(), b.Float32s(), res.Float32s()
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	mul := func(i, threads int) {
		gemm.Sgemm(m, n, k, 1, gemm.Matrix{Data: ad[i*m*k:], Stride: lda, Trans: transA}, gemm.Matrix{Data: bd[i*k*n:], Stride: ldb, Trans: transB}, 0, rd[i*m*n:], n, threads)
	}
	if workers := threadsFor(ctx, nb*m*n*k, minBatchMACs); nb >= 2*workers && workers > 1 {
		parallel.For(workers, nb, func(i int) { mul(i, 1) })
	} else {
		for i := 0; i < nb; i++ {
			mul(i, ctx.Threads)
		}
	}
	if direct {
		return res, true, nil
	}
	perm := make([]int, len(outL))
	for i, l := range outL {
		perm[i] = slices.Index(prodL, l)
	}
	return permuteTensor(ctx, res, perm), true, nil
}

// einsumOperand returns x (letters ls) laid out as [batch, first, second]
// letters, or as [batch, second, first] with trans set: x itself where its
// letters already run so, else a permuted copy in scratch (the caller
// releases it).
func einsumOperand(ctx *Context, x *graph.Tensor, ls, batch, first, second []byte) (*graph.Tensor, bool) {
	want := slices.Concat(batch, first, second)
	if slices.Equal(ls, want) {
		return x, false
	}
	if slices.Equal(ls, slices.Concat(batch, second, first)) {
		return x, true
	}
	perm := make([]int, len(want))
	for i, l := range want {
		perm[i] = slices.Index(ls, l)
	}
	tmp := graph.Float32Tensor(permutedShape(x.Shape, perm), ctx.Scratch(x.Len()))
	return permuteInto(ctx, x, perm, tmp), false
}

// noEinsumGEMM evaluates every Einsum directly, for the tests that compare.
var noEinsumGEMM = false

func init() { Register("", "Einsum", 12, newEinsum) }
