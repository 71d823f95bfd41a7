// MAXV: Y(m) = max(Y(x), Y(y)) as Max defines it (a NaN wins, the later
// one; of equal values the first is kept). VMAXPS gives its second source
// (x) when either is NaN or both are zeros; y is then blended in where it
// is NaN. Clobbers x; m differs from x and y.
#define MAXV(x, y, m) \
	VMAXPS x, y, m \
	VCMPPS $3, y, y, x \
	VBLENDVPS x, y, m, m
