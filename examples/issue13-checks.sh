#!/usr/bin/env bash
# The real-model checks of issue 13 (FastestDet mAP, PaddleOCR rec line
# accuracy, PaddleOCR det cosine in ONNX Runtime, latency), as commands to
# re-run. Long: on a loaded 2-core machine expect an hour or more. Run from
# the repository root after `make testdata`; the FastestDet data must be at
# ../shared/models/fastestdet. Results go to $OUT (default out/issue13).
set -euo pipefail
OUT=${OUT:-out/issue13}
F=${FASTESTDET:-../shared/models/fastestdet}
A=.cache/ocr-models/package/assets
REC=$A/ch_PP-OCRv4_rec_infer.onnx
DET=$A/ch_PP-OCRv4_det_infer.onnx
mkdir -p "$OUT" bin
go build -o bin/onnxq ./cmd/onnxq
go build -tags ort -o bin/fastestdet-map ./examples/fastestdet-map
go build -o bin/ocr-accuracy ./examples/ocr-accuracy
go build -tags ort -o bin/ort-latency ./examples/ort-latency
go build -tags ort -o bin/ort-cosine ./examples/ort-cosine
go build -tags ort -o bin/ort-profile ./examples/ort-profile

echo "== FastestDet: float and default conversion, mAP50:95 in onnxq's executor and in ONNX Runtime"
./bin/onnxq convert "$F/FastestDet.onnx" --calib "$F/calib" --image-channels BGR --eval "$F/eval" -o "$OUT/fd.qdq.onnx"
# Placed for ONNX Runtime's CPU provider: 7-bit weights, float where ORT's
# integer kernels do not gain, Convs chosen by the latency model.
./bin/onnxq convert "$F/FastestDet.onnx" --calib "$F/calib" --image-channels BGR --eval "$F/eval" --runtime ort -o "$OUT/fd.ort.onnx" --report "$OUT/fd.ort.report.json"
for m in "$F/FastestDet.onnx" "$OUT/fd.qdq.onnx" "$OUT/fd.ort.onnx"; do
	for rt in onnxq ort; do echo "$rt $m: $(./bin/fastestdet-map -runtime $rt -threads 1 -data "$F" "$m")"; done
done
# Target: float (13.73 with this loader) - 0.3. The ORT tune with --prefer
# float is the issue's check (within 0.3 points and faster than float in ORT).
for rt in onnxq ort; do
	for p in int16 float; do
		time ./bin/onnxq tune "$F/FastestDet.onnx" --calib "$F/calib" --image-channels BGR --runtime $([ $rt = ort ] && echo ort || echo generic) \
			--eval-cmd "$PWD/bin/fastestdet-map -runtime $rt -threads 1 -data $F {model}" --target 13.43 --prefer $p \
			--overrides-out "$OUT/fd.$rt.$p.json" -o "$OUT/fd.$rt.$p.onnx" --report "$OUT/fd.$rt.$p.report.json" || true
	done
done
# Latency in ORT: rounds alternate the models; ratios to float per round, in
# thread CPU time and wall time at 1 thread, wall time at 2. Three passes, as
# the machine's load moves between them.
X="$F/reference/000000000009_input.npy"
for i in 1 2 3; do
	./bin/ort-latency -input "$X" -runs 300 -threads 1 "$F/FastestDet.onnx" "$OUT/fd.qdq.onnx" "$OUT/fd.ort.onnx" "$OUT/fd.ort.float.onnx"
	./bin/ort-latency -input "$X" -runs 200 -threads 2 "$F/FastestDet.onnx" "$OUT/fd.ort.onnx" "$OUT/fd.ort.float.onnx"
done
# Where the time goes: ORT's per-node medians, float and tuned interleaved.
./bin/ort-profile -input "$X" -runs 200 -tsv "$OUT/fd.nodes.tsv" "$F/FastestDet.onnx" "$OUT/fd.ort.float.onnx"

echo "== PaddleOCR rec: line accuracy on labelled lines; tune on 100 of them (seeds 5000..) to float - 1, check on 200 others (7000..)"
go run ./examples/ocr-samples -kind rec -labelled -n 32 -seed 100 -o "$OUT/rec-calib"
./bin/onnxq convert "$REC" --calib "$OUT/rec-calib" -o "$OUT/rec.qdq.onnx" --no-measure
FLOAT=$(./bin/ocr-accuracy -n 100 "$REC" | awk '{print $NF}')
for m in "$REC" "$OUT/rec.qdq.onnx"; do echo "$m: $(./bin/ocr-accuracy -n 200 "$m")"; done
for p in int16 float; do
	rm -f "$OUT/rec.$p.onnx"
	./bin/onnxq tune "$REC" --calib "$OUT/rec-calib" --eval-cmd "$PWD/bin/ocr-accuracy -n 100 {model}" \
		--target "$(awk -v f="$FLOAT" 'BEGIN{print f - 1}')" --prefer $p \
		--overrides-out "$OUT/rec.$p.json" -o "$OUT/rec.$p.onnx" --report "$OUT/rec.$p.report.json" || true
	if [ -f "$OUT/rec.$p.onnx" ]; then echo "held-out $p: $(./bin/ocr-accuracy -seed 7000 -n 200 "$OUT/rec.$p.onnx")"; fi
done

echo "== PaddleOCR det: tune to cosine 0.99 on held-back pages; check in ONNX Runtime"
go run ./examples/ocr-samples -kind det -n 16 -seed 100 -o "$OUT/det-calib"
go run ./examples/ocr-samples -kind det -n 8 -seed 1000 -o "$OUT/det-eval"
./bin/onnxq convert "$DET" --calib "$OUT/det-calib" --eval "$OUT/det-eval" -o "$OUT/det.qdq.onnx"
for p in int16 float; do
	./bin/onnxq tune "$DET" --calib "$OUT/det-calib" --eval "$OUT/det-eval" --target-cos 0.99 --prefer $p \
		--overrides-out "$OUT/det.$p.json" -o "$OUT/det.$p.onnx" --report "$OUT/det.$p.report.json" || true
	./bin/ort-cosine "$DET" "$OUT/det.$p.onnx" "$OUT/det-eval"
done
./bin/ort-cosine "$DET" "$OUT/det.qdq.onnx" "$OUT/det-eval"
./bin/ort-latency -input "$OUT/det-eval/det-001000.npy" -runs 30 "$DET" "$OUT/det.qdq.onnx" "$OUT/det.int16.onnx" "$OUT/det.float.onnx"

echo "== speed of compare --layerwise (32 pages) and sensitivity (16 pages) on det"
go run ./examples/ocr-samples -kind det -n 32 -seed 2000 -o "$OUT/det-32"
time ./bin/onnxq compare "$DET" "$OUT/det.qdq.onnx" --data "$OUT/det-32" --layerwise
time ./bin/onnxq run "$DET" --input "$OUT/det-32/det-002000.npy" --repeat 32 --timing --threads 1
time ./bin/onnxq run "$OUT/det.qdq.onnx" --input "$OUT/det-32/det-002000.npy" --repeat 32 --timing --threads 1
time ./bin/onnxq sensitivity "$DET" --calib "$OUT/det-calib" --threads 1
time ./bin/onnxq sensitivity "$DET" --calib "$OUT/det-calib" --threads 1 --no-split
