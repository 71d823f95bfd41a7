package passes

import (
	"fmt"
	"math/bits"

	"github.com/onnxq/onnxq/graph"
	"github.com/onnxq/onnxq/graph/onnxpb"
	"github.com/onnxq/onnxq/kernels"
)

// MatMulNBitsDomain is the domain of ONNX Runtime's contrib operators.
const MatMulNBitsDomain = "com.microsoft"

// ToMatMulNBits rewrites each MatMul whose weight B is a 2-D [K, N] constant
// read through a DequantizeLinear of a 4- or 8-bit integer tensor into ONNX
// Runtime's com.microsoft::MatMulNBits, which keeps the weight packed and
// never materializes it in float. Blocked encodings (block_size along K) keep
// their blocks; per-channel and per-tensor ones become one block per column,
// the next power of two at or above K (at least 16), padded. Signed values are
// stored offset by 2^(bits-1), so that symmetric weights need no zero-point
// input (MatMulNBits' default zero point is 2^(bits-1)).
//
// A MatMul of two activations stays as it is. One whose constant weight
// cannot be packed (a 16-bit type, a block below 16) stays too, named in the
// change's notes; strict makes that an error instead (the user asked for
// MatMulNBits on every quantized MatMul weight).
func ToMatMulNBits(m *graph.Model, accuracyLevel int, strict bool) (*Change, error) {
	if accuracyLevel < 0 || accuracyLevel > 4 {
		return nil, fmt.Errorf("accuracy level %d: MatMulNBits takes 0 (unset), 1 (fp32), 2 (fp16), 3 (bf16) or 4 (int8)", accuracyLevel)
	}
	g := m.Graph
	ch := &Change{Pass: "matmulnbits", MaxRelDiff: -1}
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		if n.OpType != "MatMul" || !graph.IsStandardDomain(n.Domain) {
			continue
		}
		dq := n.Input(1)
		if dq == nil || dq.Producer == nil || dq.Producer.OpType != "DequantizeLinear" {
			continue // a float weight: not quantized, nothing to pack
		}
		if x := dq.Producer.Input(0); x == nil || x.Const == nil {
			ch.Notes = append(ch.Notes, fmt.Sprintf("%s stays MatMul: its second input is an activation", n.Name))
			continue
		}
		nb, why := nbitsWeight(dq.Producer)
		if why != "" {
			if strict {
				return nil, fmt.Errorf("MatMul %q: no MatMulNBits: %s", n.Name, why)
			}
			ch.Notes = append(ch.Notes, fmt.Sprintf("%s stays MatMul: %s", n.Name, why))
			continue
		}
		ins := []*graph.Value{
			n.Input(0),
			g.AddInitializer(g.UniqueName(dq.Name+"_nbits_B"), nb.b),
			g.AddInitializer(g.UniqueName(dq.Name+"_nbits_scales"), nb.scales),
		}
		if nb.zp != nil {
			ins = append(ins, g.AddInitializer(g.UniqueName(dq.Name+"_nbits_zero_points"), nb.zp))
		}
		attrs := []*onnxpb.AttributeProto{
			graph.AttrIntOf("K", int64(nb.k)), graph.AttrIntOf("N", int64(nb.n)),
			graph.AttrIntOf("bits", int64(nb.bits)), graph.AttrIntOf("block_size", int64(nb.block)),
		}
		if accuracyLevel > 0 {
			attrs = append(attrs, graph.AttrIntOf("accuracy_level", int64(accuracyLevel)))
		}
		out := n.Output()
		name := n.Name
		g.RemoveNode(n)
		nd := g.AddNode("MatMulNBits", name, ins, nil, attrs...)
		nd.Domain = MatMulNBitsDomain
		nd.Outputs = []*graph.Value{out}
		out.Producer = nd
		if len(dq.Consumers) == 0 && !g.IsOutput(dq) {
			g.RemoveNode(dq.Producer)
		}
		ch.Count++
		ch.Nodes = append(ch.Nodes, name)
	}
	if ch.Count > 0 && m.OpsetVersion(MatMulNBitsDomain) < 1 {
		m.SetOpset(MatMulNBitsDomain, 1)
	}
	return ch, g.TopoSort()
}

// nbits is a MatMul weight in MatMulNBits' layout.
type nbits struct {
	k, n, bits, block int
	b, scales, zp     *graph.Tensor
}

// nbitsWeight packs the weight a DequantizeLinear reads, or says why it
// cannot.
func nbitsWeight(dq *graph.Node) (*nbits, string) {
	x, s := dq.Input(0), dq.Input(1)
	if x == nil || x.Const == nil || s == nil || s.Const == nil {
		return nil, "its weight is not a constant"
	}
	var zpc *graph.Tensor
	if z := dq.Input(2); z != nil {
		if z.Const == nil {
			return nil, "its weight's zero point is not a constant"
		}
		zpc = z.Const
	}
	q := x.Const
	if q.Rank() != 2 {
		return nil, fmt.Sprintf("its weight is %v, not 2-D [K, N]", q.Shape)
	}
	nb := &nbits{k: q.Shape[0], n: q.Shape[1]}
	signed := false
	switch q.DType {
	case graph.Int4:
		nb.bits, signed = 4, true
	case graph.Uint4:
		nb.bits = 4
	case graph.Int8:
		nb.bits, signed = 8, true
	case graph.Uint8:
		nb.bits = 8
	default:
		return nil, fmt.Sprintf("its weight is %s, not a 4- or 8-bit integer", q.DType.Short())
	}
	if s.Const.DType != graph.Float {
		return nil, fmt.Sprintf("its scale is %s, not float32", s.Const.DType.Short())
	}
	axis, _ := dq.AttrInt("axis", 1)
	if axis < 0 {
		axis += 2
	}
	block, _ := dq.AttrInt("block_size", 0)
	scale := s.Const.Float32s()
	// scaleAt(k, n) is the scale of weight (k, n) under the DequantizeLinear's
	// layout; zpAt likewise.
	var at func(k, n int) int
	switch {
	case block > 0:
		if axis != 0 {
			return nil, fmt.Sprintf("its blocks run along axis %d, not the reduction axis 0", axis)
		}
		if block < 16 || bits.OnesCount64(uint64(block)) != 1 {
			return nil, fmt.Sprintf("block size %d: MatMulNBits needs a power of two, at least 16", block)
		}
		nb.block = int(block)
		at = func(k, n int) int { return (k/nb.block)*nb.n + n }
	case len(scale) == 1:
		at = func(int, int) int { return 0 }
	case axis == 1 && len(scale) == nb.n:
		at = func(_, n int) int { return n }
	default:
		return nil, fmt.Sprintf("%d scales along axis %d do not make per-column scales", len(scale), axis)
	}
	if nb.block == 0 {
		nb.block = 16
		for nb.block < nb.k {
			nb.block *= 2
		}
	}
	zps := make([]int64, len(scale))
	if zpc != nil {
		if zpc.Len() != len(scale) {
			return nil, fmt.Sprintf("%d zero points for %d scales", zpc.Len(), len(scale))
		}
		zps = kernels.LoadInt64s(zpc)
	}
	qv := kernels.LoadInt64s(q)
	offset := int64(0)
	if signed {
		offset = 1 << (nb.bits - 1)
	}
	kBlocks := (nb.k + nb.block - 1) / nb.block
	blob := nb.block * nb.bits / 8
	packed := make([]uint8, nb.n*kBlocks*blob)
	sc := make([]float32, nb.n*kBlocks)
	zp := make([]int64, nb.n*kBlocks) // stored (offset) zero point per column block
	plain := true                     // every zero point is MatMulNBits' default
	for n := 0; n < nb.n; n++ {
		for b := 0; b < kBlocks; b++ {
			i := at(b*nb.block, n)
			sc[n*kBlocks+b] = scale[i]
			z := zps[i] + offset
			zp[n*kBlocks+b] = z
			plain = plain && z == 1<<(nb.bits-1)
			base := (n*kBlocks + b) * blob
			for j := 0; j < nb.block; j++ {
				v := z // padding past K dequantizes to 0
				if k := b*nb.block + j; k < nb.k {
					v = qv[k*nb.n+n] + offset
				}
				if nb.bits == 8 {
					packed[base+j] = uint8(v)
				} else {
					packed[base+j/2] |= uint8(v&0xF) << (4 * (j % 2))
				}
			}
		}
	}
	nb.b, _ = graph.TensorOf(graph.Uint8, []int{nb.n, kBlocks, blob}, packed)
	nb.scales = graph.Float32Tensor([]int{nb.n * kBlocks}, sc)
	if !plain {
		perCol := (kBlocks*nb.bits + 7) / 8
		zb := make([]uint8, nb.n*perCol)
		for n := 0; n < nb.n; n++ {
			for b := 0; b < kBlocks; b++ {
				v := zp[n*kBlocks+b]
				if nb.bits == 8 {
					zb[n*perCol+b] = uint8(v)
				} else {
					zb[n*perCol+b/2] |= uint8(v&0xF) << (4 * (b % 2))
				}
			}
		}
		nb.zp, _ = graph.TensorOf(graph.Uint8, []int{nb.n * perCol}, zb)
	}
	return nb, ""
}
