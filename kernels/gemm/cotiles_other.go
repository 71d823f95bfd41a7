//go:build !amd64 || purego

package gemm

// coTileFns: no CoTile kernels here (HasCoTiles is false).
var coTileFns [coTileMax]coTileFn
