package kernels

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onnxq/onnxq/graph"
)

// Einsum evaluates the equation directly: one loop over every combination of
// the letters' indices, multiplying the inputs' elements and summing into the
// output (in float64). Simple and exact rather than fast; models that need speed
// use MatMul.

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
	return KernelFunc(func(_ *Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
		if len(in) == 0 {
			return nil, fmt.Errorf("Einsum needs inputs")
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

func init() { Register("", "Einsum", 12, newEinsum) }
