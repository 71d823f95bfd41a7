//go:build amd64 && !purego

package vec

//go:noescape
func argBestAVX2(best *float32, ids *int32, row *float32, n int, j int32, pred int)

func argBestAsm(best *float32, ids *int32, row *float32, n int, j int32, pred int) {
	argBestAVX2(best, ids, row, n, j, pred)
}
