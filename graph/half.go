package graph

import "math"

// Float16Bits is an IEEE 754 binary16 value kept as its bit pattern.
type Float16Bits uint16

// BFloat16Bits is a bfloat16 value (the top half of a float32) kept as its bit pattern.
type BFloat16Bits uint16

// Float32 widens h exactly.
func (h Float16Bits) Float32() float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN; keep the payload
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: value = man * 2^-24
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// ToFloat16 rounds f to the nearest binary16, ties to even, overflowing to infinity.
func ToFloat16(f float32) Float16Bits {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return Float16Bits(sign | 0x7e00 | uint16(man>>13)) // quiet NaN
		}
		return Float16Bits(sign | 0x7c00)
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return Float16Bits(sign | 0x7c00)
	}
	if e <= 0 {
		if e < -10 {
			return Float16Bits(sign) // underflows to zero even after rounding
		}
		man |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		rem := man & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return Float16Bits(sign | uint16(r))
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the right answer (up to inf)
	}
	return Float16Bits(uint32(sign) | r)
}

// Float32 widens b exactly.
func (b BFloat16Bits) Float32() float32 { return math.Float32frombits(uint32(b) << 16) }

// ToBFloat16 rounds f to the nearest bfloat16, ties to even.
func ToBFloat16(f float32) BFloat16Bits {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return BFloat16Bits(b>>16 | 0x40) // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return BFloat16Bits(b >> 16)
}

// NarrowFloat32 converts a float32 tensor to float16 or bfloat16 (dt),
// rounding to nearest even; the name carries over.
func NarrowFloat32(t *Tensor, dt DataType) *Tensor {
	out := NewTensor(dt, t.Shape)
	out.Name = t.Name
	src := t.Float32s()
	if dt == BFloat16 {
		d := out.Data().([]BFloat16Bits)
		for i, v := range src {
			d[i] = ToBFloat16(v)
		}
		return out
	}
	d := out.Data().([]Float16Bits)
	for i, v := range src {
		d[i] = ToFloat16(v)
	}
	return out
}
