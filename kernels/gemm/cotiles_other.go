//go:build !amd64 || purego

package gemm

// haveCoTiles: no CoTile kernels here (HasCoTiles is false).
const haveCoTiles = false

func coTile(p int, k int, w, x *float32, offs *int, tile, bias *float32, first, last bool, out *float32, plane, masks int) {
	panic("gemm: no CoTile kernels in this build")
}

// regBroadcast: the register-broadcast kernels are amd64's (kernel_amd64.go).
const regBroadcast = false

func coTileBR(p int, k int, w, x *float32, offs *int, tile, bias *float32, first, last bool, out *float32, plane, masks int) {
	panic("gemm: no CoTile kernels in this build")
}

func coTileH(p int, k int, w, x *float32, offs *int, tile, bias *float32, first, last bool, out *float32, plane, masks int) {
	panic("gemm: no CoTile kernels in this build")
}

func coTileHBR(p int, k int, w, x *float32, offs *int, tile, bias *float32, first, last bool, out *float32, plane, masks int) {
	panic("gemm: no CoTile kernels in this build")
}
