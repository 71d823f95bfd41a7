package vec

// AddRows sets dst[i] = a[i] + row[i % len(row)] for a made of whole rows
// of len(row) values (a bias on a product's columns); MulRows the same
// with a product (a per-column scale). Each is Add's or Mul's bits. On
// AVX-512 all the rows go in one call: row by row, a call each cost a
// product's bias as much as the adds on rows of 48-96 (Swin's, a small
// ViT's). dst may be a.
func AddRows(dst, a, row []float32) { rowsOp(dst, a, row, false) }

// MulRows sets dst[i] = a[i] * row[i % len(row)] (see AddRows).
func MulRows(dst, a, row []float32) { rowsOp(dst, a, row, true) }

func rowsOp(dst, a, row []float32, mul bool) {
	n := len(row)
	if n == 0 || len(a) == 0 {
		return
	}
	if len(a)%n != 0 {
		panic("vec: AddRows/MulRows of a partial row")
	}
	dst = dst[:len(a)]
	if rowsOpAsm(&dst[0], &a[0], &row[0], len(a)/n, n, mul) {
		return
	}
	for i := 0; i < len(a); i += n {
		if mul {
			Mul(dst[i:i+n], a[i:i+n], row)
		} else {
			Add(dst[i:i+n], a[i:i+n], row)
		}
	}
}
