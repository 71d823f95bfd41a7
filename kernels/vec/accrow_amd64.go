//go:build amd64 && !purego

package vec

//go:noescape
func accRowAVX2(acc *float64, x, dst *float32, n int, exclusive bool)

func accRowAsm(acc *float64, x, dst *float32, n int, exclusive bool) {
	accRowAVX2(acc, x, dst, n, exclusive)
}

//go:noescape
func widenAddAVX2(acc *float64, x *float32, n int)

func widenAddAsm(acc *float64, x *float32, n int) { widenAddAVX2(acc, x, n) }
