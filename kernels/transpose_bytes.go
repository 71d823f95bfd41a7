package kernels

import "encoding/binary"

// transposeBytes sets dst[j*ldd+i] = src[i*lds+j] ^ flip for i < rows and
// j < cols: a byte matrix transposed, with each byte's bits xored by flip
// (0x80 reads int8 codes as uint8 ones less 128... plus 128). Quantized
// images go channels last this way (rows the channels, cols a line's
// pixels). Blocks of 8 x 8 bytes go through eight 64-bit words, transposed
// in three rounds of swaps (bytes, then pairs, then quads), a few
// instructions a byte where a byte loop strides through memory once a
// byte; the edges go byte by byte.
func transposeBytes(dst []byte, ldd int, src []byte, lds, rows, cols int, flip byte) {
	f := uint64(flip) * 0x0101010101010101
	i := 0
	for ; i+8 <= rows; i += 8 {
		j := 0
		for ; j+8 <= cols; j += 8 {
			// Eight named words, so that they stay in registers.
			le := binary.LittleEndian
			s := src[i*lds+j:]
			w0 := le.Uint64(s) ^ f
			w1 := le.Uint64(s[lds:]) ^ f
			w2 := le.Uint64(s[2*lds:]) ^ f
			w3 := le.Uint64(s[3*lds:]) ^ f
			w4 := le.Uint64(s[4*lds:]) ^ f
			w5 := le.Uint64(s[5*lds:]) ^ f
			w6 := le.Uint64(s[6*lds:]) ^ f
			w7 := le.Uint64(s[7*lds:]) ^ f
			w0, w1 = swapBytes(w0, w1, 8, 0x00ff00ff00ff00ff)
			w2, w3 = swapBytes(w2, w3, 8, 0x00ff00ff00ff00ff)
			w4, w5 = swapBytes(w4, w5, 8, 0x00ff00ff00ff00ff)
			w6, w7 = swapBytes(w6, w7, 8, 0x00ff00ff00ff00ff)
			w0, w2 = swapBytes(w0, w2, 16, 0x0000ffff0000ffff)
			w1, w3 = swapBytes(w1, w3, 16, 0x0000ffff0000ffff)
			w4, w6 = swapBytes(w4, w6, 16, 0x0000ffff0000ffff)
			w5, w7 = swapBytes(w5, w7, 16, 0x0000ffff0000ffff)
			w0, w4 = swapBytes(w0, w4, 32, 0x00000000ffffffff)
			w1, w5 = swapBytes(w1, w5, 32, 0x00000000ffffffff)
			w2, w6 = swapBytes(w2, w6, 32, 0x00000000ffffffff)
			w3, w7 = swapBytes(w3, w7, 32, 0x00000000ffffffff)
			d := dst[j*ldd+i:]
			le.PutUint64(d, w0)
			le.PutUint64(d[ldd:], w1)
			le.PutUint64(d[2*ldd:], w2)
			le.PutUint64(d[3*ldd:], w3)
			le.PutUint64(d[4*ldd:], w4)
			le.PutUint64(d[5*ldd:], w5)
			le.PutUint64(d[6*ldd:], w6)
			le.PutUint64(d[7*ldd:], w7)
		}
		for ; j < cols; j++ {
			for r := range 8 {
				dst[j*ldd+i+r] = src[(i+r)*lds+j] ^ flip
			}
		}
	}
	for ; i < rows; i++ {
		for j := range cols {
			dst[j*ldd+i] = src[i*lds+j] ^ flip
		}
	}
}

// swapBytes swaps the high part of each 2*sh-bit field of a with the low
// part of b's (mask: the low parts), one round of an 8 x 8 byte transpose.
func swapBytes(a, b uint64, sh uint, mask uint64) (uint64, uint64) {
	t := ((a >> sh) ^ b) & mask
	return a ^ t<<sh, b ^ t
}
