# tripletd - build, test, run, bench. `make help` lists the targets.
.DEFAULT_GOAL := all

SANITIZE ?= 0
# 1: a test suite that cannot run here (SKIP) fails `make test`; 0 for a partial machine.
REQUIRE_ALL ?= 1
ifeq ($(SANITIZE),1)
B      := build-san
LIBA   := $(B)/libtriplet.a
BIN    := $(B)/bin
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B      := build
LIBA   := lib/libtriplet.a
BIN    := bin
SANFLAGS :=
endif

# The ONNX reader is generated at build time from the onnx.proto that Debian's
# libonnx-dev installs (onnx/onnx.proto under ONNX_PROTO_DIR); never copied here.
GEN      := $(B)/gen
ONNX_PROTO_DIR ?= /usr/include
ONNX_PB  := $(GEN)/onnx/onnx.pb-c

CC      ?= cc
OPT     ?= -O2
WERROR  ?= -Werror
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Wpedantic -Wshadow $(WERROR) -MMD -MP \
           -Ilib -Iserver -I$(GEN) $(SANFLAGS) $(shell pkg-config --cflags openblas 2>/dev/null) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS) $(shell pkg-config --libs-only-L openblas 2>/dev/null) $(EXTRA_LDFLAGS)
# SHA-256 comes from nettle, which GnuTLS loads anyway; the tests check it against
# OpenSSL's (TEST_CRYPTO), which the daemon does not link (3.4 MiB of RSS at start).
LIBS    := -lcjson -lopenblas -lprotobuf-c -lpng -ljpeg -lnettle -lz -lm -lpthread
SRV_LIBS:= -lmicrohttpd -lgnutls
# tripletd links OpenBLAS (and the Fortran runtime its LAPACK needs) statically, with packed
# relative relocations: the shared library's 1.2 MiB of symbol tables and relocations, read at
# every start, and libgfortran's pages would be 1.6 MiB of the daemon's start-up RSS
# (BENCHMARKS.md, start-up). Tests and tools link the shared library.
STATIC_BLAS := -Wl,-Bstatic -lopenblas -lgfortran -lquadmath -Wl,-Bdynamic
TRIPLETD_LIBS := $(patsubst -lopenblas,$(STATIC_BLAS),$(LIBS))
TRIPLETD_LDFLAGS := -Wl,-z,pack-relative-relocs
CURL_LIBS := -lcurl
TEST_LIBS := -lcmocka
TEST_CRYPTO := -lcrypto

# Debian packages the build and `make test` need (bench and docker add their own).
DEPS := build-essential pkg-config libmicrohttpd-dev libcjson-dev libopenblas-dev \
        libcurl4-openssl-dev libcmocka-dev zlib1g-dev nettle-dev libgfortran-12-dev libssl-dev nginx-light curl \
        yamllint python3-yaml dataset-fashion-mnist python3-jsonschema python3-prometheus-client \
        protobuf-c-compiler libprotobuf-c-dev libonnx-dev python3-onnx python3-torch python3-torchvision python3-numpy \
        chromium libpng-dev libjpeg-dev python3-pil libgnutls28-dev gnutls-bin clang-format strace
# Commands the tests need, each with the Debian package that provides it;
# installed only when the command is missing (it may come from elsewhere).
DEP_CMDS := kubectl:kubernetes-client promtool:prometheus node:nodejs npm:npm
# (node and npm come from DEP_CMDS: a Node.js from elsewhere carries its own npm, which Debian's npm conflicts with)
BENCH_DEPS := python3-torch python3-torchvision python3-numpy python3-faiss python3-fastapi python3-uvicorn wrk openssl
ZOO_DEPS := python3-torch python3-torchvision python3-onnx
DOCKER_DEPS := podman runc debootstrap podman-compose golang-github-containernetworking-plugin-dnsname

LIB_SRC  := $(wildcard lib/*.c)
SRV_SRC  := $(filter-out server/main.c,$(wildcard server/*.c))
CLI_SRC  := $(filter-out cli/main.c,$(wildcard cli/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
E2E_SRC  := $(wildcard tests/e2e/e2e_*.c)
E2E_SUP  := $(filter-out $(E2E_SRC),$(wildcard tests/e2e/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o) $(ONNX_PB).o
SRV_OBJ  := $(SRV_SRC:%.c=$(B)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(B)/%.o)
E2E_SUP_OBJ := $(E2E_SUP:%.c=$(B)/%.o)
SRVA     := $(B)/libtripletd.a
CLIA     := $(B)/libtripletctl.a

TARGETS  := $(LIBA)
ifneq ($(wildcard server/main.c),)
TARGETS  += $(BIN)/tripletd
endif
ifneq ($(wildcard cli/main.c),)
TARGETS  += $(BIN)/tripletctl
endif
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/unit/%)
E2E_BIN  := $(E2E_SRC:tests/e2e/%.c=$(B)/tests/e2e/%)

# The model `make run` serves: the CNN of models/README.md (`make model`).
MODEL   ?= models/fashion-mnist-cnn.onnx
GALLERY ?= models/fashion-mnist-cnn.gallery.safetensors
PORT    ?= 8080
# The shipped CNN recipe (models/README.md): semi-hard triplet hinge on an
# L2-normalised six-conv network with BatchNorm, inputs x/255, PK batches 10 x 16,
# Adam with a cosine schedule. bench/bench_train_cnn.sh times the same recipe.
CNN_MODEL ?= models/fashion-mnist-cnn.onnx
CNN_ARCH  := conv32k3p1,bn,relu,conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,conv64k3p1,bn,relu,conv64k3p1,bn,relu,maxpool2,conv128k3p1,bn,relu,maxpool2,flatten,fc256,relu,fc128
CNN_TRAIN_FLAGS ?= --arch $(CNN_ARCH) --input 1x28x28 --normalize --metric sqeuclidean --margin 0.2 \
               --loss triplet --mining semi-hard --classes-per-batch 10 --samples-per-class 16 \
               --epochs 10 --lr 1e-3 --lr-schedule cosine --seed 1 --threads 2
# The MLP (models/fashion-mnist-mlp.md, `make model-mlp`): the same loss on an
# L2-normalised 784-256-128 ReLU MLP, constant lr.
MLP_MODEL ?= models/fashion-mnist.safetensors
TRAIN_FLAGS ?= --arch 784-256-128 --activation relu --normalize --metric sqeuclidean --margin 0.2 \
               --loss triplet --mining semi-hard --classes-per-batch 10 --samples-per-class 16 \
               --epochs 10 --lr 1e-3 --seed 1 --threads 1
EVAL_THREADS ?= 2
OPEN_SET_MODEL ?= $(B)/models/fashion-mnist-open-set.safetensors
CNN_OPEN_SET_MODEL ?= $(B)/models/fashion-mnist-cnn-open-set.onnx
OPEN_SET_FLAGS := --classes 0,1,2,3,4,5,6,7 --classes-per-batch 8 --samples-per-class 20
CNN_OPEN_SET_EPOCHS ?= 3

.SECONDARY:
.PHONY: all deps bench-deps docker-deps zoo-deps test-zoo test test-unit test-e2e test-docker run bench model model-open-set model-seeds model-mlp clean format format-check help fuzz soak tests

all: $(TARGETS)

help:
	@echo "make            build lib/libtriplet.a, bin/tripletd, bin/tripletctl"
	@echo "make deps       install the Debian packages the build and tests need"
	@echo "make test       deps + build + every test (SANITIZE=1 for ASan+UBSan; REQUIRE_ALL=0 lets a suite skip)"
	@echo "make run        deps + build + start tripletd on the shipped model"
	@echo "make model      train the shipped CNN (Fashion-MNIST) and write its card (models/README.md)"
	@echo "make model-open-set  the CNN recipe on classes 0-7, scored on 8 and 9 (the card's open-set row)"
	@echo "make model-seeds  seeds 2 and 3 of the CNN recipe (models/cnn-seeds.json)"
	@echo "make model-mlp  train the MLP (models/fashion-mnist-mlp.md)"
	@echo "make bench      benchmarks against PyTorch, FastAPI, nginx, faiss -> BENCHMARKS.md"
	@echo "make test-docker  build and run the container image with podman"
	@echo "make soak       SOAK_SECONDS (600) of mixed traffic, reloads, hostile requests; then 2x load (429) and 5,000 idle connections -> build/soak/"
	@echo "make test-zoo   torchvision architectures exported to ONNX against PyTorch"
	@echo "make format     clang-format every C file (not the generated ones)"
	@echo "make format-check  fail on a file clang-format would change or a line over the column limit"
	@echo "make clean"

$(B)/%.o: %.c | $(ONNX_PB).h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Any object may include the generated header (order-only prerequisite of
# $(B)/%.o): it exists before the first compile; -MMD tracks real users after.
$(ONNX_PB).c $(ONNX_PB).h &: $(ONNX_PROTO_DIR)/onnx/onnx.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I$(ONNX_PROTO_DIR) onnx/onnx.proto

$(ONNX_PB).o: $(ONNX_PB).c $(ONNX_PB).h
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SRVA): $(SRV_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CLIA): $(CLI_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/tripletd: $(B)/server/main.o $(SRVA) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(TRIPLETD_LDFLAGS) -o $@ $^ $(SRV_LIBS) $(TRIPLETD_LIBS)

$(BIN)/tripletctl: $(B)/cli/main.o $(CLIA) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CURL_LIBS) $(LIBS)

# Unit tests link the library and the server's handler objects (not main.c).
$(B)/tests/unit/%: $(B)/tests/unit/%.o $(SRVA) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(SRV_LIBS) $(LIBS) $(TEST_CRYPTO)

$(B)/tests/e2e/%: $(B)/tests/e2e/%.o $(E2E_SUP_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CURL_LIBS) $(LIBS) $(TEST_CRYPTO)

# Load generator of tests/lb (links the library for its expected answers).
LB_BIN   := $(B)/tests/lb/loadgen
$(LB_BIN): $(B)/tests/lb/loadgen.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CURL_LIBS) $(LIBS)

tests: $(TARGETS) $(UNIT_BIN) $(E2E_BIN) $(LB_BIN)

deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done; \
	  for c in $(DEP_CMDS); do command -v $${c%%:*} >/dev/null 2>&1 || echo $${c#*:}; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "missing Debian packages; run: sudo apt-get install -y" $$missing; exit 1; fi; \
	fi

bench-deps docker-deps zoo-deps: deps
	@pkgs="$(if $(filter bench-deps,$@),$(BENCH_DEPS),$(if $(filter zoo-deps,$@),$(ZOO_DEPS),$(DOCKER_DEPS)))"; \
	missing=$$(for p in $$pkgs; do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages; run: sudo apt-get install -y" $$missing; exit 1; fi; \
	fi

test: deps tests/node_modules/.installed
	$(MAKE) tests
	B=$(B) BIN=$(BIN) SANITIZE=$(SANITIZE) REQUIRE_ALL=$(REQUIRE_ALL) tests/run.sh

run: deps all
	@if [ -x $(BIN)/tripletd ]; then B=$(B) BIN=$(BIN) MODEL=$(MODEL) GALLERY=$(GALLERY) PORT=$(PORT) server/run.sh; \
	else $(BIN)/tripletctl inspect $(MODEL); fi

# The shipped CNN, its evaluation and the card's figures, within 15 minutes on 2 cores (the build runs on both).
model: deps
	$(MAKE) -j2 all
	bin/tripletctl train --out $(CNN_MODEL) --svg models/cnn-learning-curve.svg --csv models/cnn-training.csv \
	    --name fashion-mnist-cnn $(CNN_TRAIN_FLAGS)
	bin/tripletctl eval --model $(CNN_MODEL) --threads $(EVAL_THREADS) --json > models/cnn-eval.json
	python3 models/card.py cnn

# The card's open-set row: the CNN recipe on classes 0-7, retrieval on the
# unseen 8 and 9 (models/cnn-eval-open-set.json). A separate experiment from
# the shipped model, so `make model` stays within its time budget.
model-open-set: deps all
	@mkdir -p $(dir $(CNN_OPEN_SET_MODEL))
	bin/tripletctl train --out $(CNN_OPEN_SET_MODEL) --name fashion-mnist-cnn-open-set --quiet $(CNN_TRAIN_FLAGS) \
	    $(OPEN_SET_FLAGS) --epochs $(CNN_OPEN_SET_EPOCHS)
	bin/tripletctl eval --model $(CNN_OPEN_SET_MODEL) --classes 8,9 --threads $(EVAL_THREADS) --json \
	    > models/cnn-eval-open-set.json
	python3 models/card.py cnn

# Seeds 2 and 3 of the CNN recipe next to the shipped seed 1 (models/cnn-seeds.json).
model-seeds: deps all
	@mkdir -p $(B)/models
	for s in 2 3; do \
	    bin/tripletctl train --out $(B)/models/cnn-seed$$s.onnx --quiet $(CNN_TRAIN_FLAGS) --seed $$s && \
	    bin/tripletctl eval --model $(B)/models/cnn-seed$$s.onnx --no-baselines --threads $(EVAL_THREADS) --json \
	        > models/cnn-eval-seed$$s.json || exit 1; \
	done
	python3 models/seeds.py models/cnn-seeds.json "the shipped CNN recipe with three seeds (seed 1 is the shipped \
	model); test -> train exact kNN by tripletctl eval" "tripletctl train --out M --seed S (other options: the \
	Makefile's CNN_TRAIN_FLAGS); tripletctl eval --model M --no-baselines --json" 1=models/cnn-eval.json \
	    2=models/cnn-eval-seed2.json 3=models/cnn-eval-seed3.json
	python3 models/card.py cnn

# The MLP of models/fashion-mnist-mlp.md.
model-mlp: deps all
	bin/tripletctl train --out $(MLP_MODEL) --svg models/learning-curve.svg --csv models/training.csv --name fashion-mnist $(TRAIN_FLAGS)
	bin/tripletctl eval --model $(MLP_MODEL) --threads $(EVAL_THREADS) --json > models/eval.json
	@mkdir -p $(dir $(OPEN_SET_MODEL))
	bin/tripletctl train --out $(OPEN_SET_MODEL) --name fashion-mnist-open-set --quiet $(TRAIN_FLAGS) $(OPEN_SET_FLAGS)
	bin/tripletctl eval --model $(OPEN_SET_MODEL) --classes 8,9 --threads $(EVAL_THREADS) --json > models/eval-open-set.json
	python3 models/card.py mlp

bench: deps bench-deps all
	B=$(B) BIN=$(BIN) bench/run.sh

# torchvision architectures (random weights) exported to ONNX and run against
# PyTorch; the files are too large to commit, so they are made here.
ZOO_DIR    ?= $(B)/zoo
ZOO_MODELS ?= resnet18 mobilenet_v2 squeezenet1_1 shufflenet_v2_x0_5 efficientnet_b0 densenet121
test-zoo: zoo-deps $(B)/tests/unit/test_onnx
	/usr/bin/python3 tests/golden/gen_zoo.py $(ZOO_DIR) $(ZOO_MODELS)
	TRIPLET_ROOT=$(CURDIR) ONNX_ZOO=$(ZOO_DIR) ONNX_ZOO_MODELS="$(ZOO_MODELS)" $(B)/tests/unit/test_onnx

test-docker: docker-deps all
	docker/test.sh

# /openapi.json serves proto/openapi.yaml, embedded by a generated (committed) C file.
server/openapi_doc.c: proto/openapi.yaml server/gen_openapi.py
	python3 server/gen_openapi.py $< $@

# npm packages of the test suites: puppeteer-core drives Debian's chromium (no browser download);
# onnxruntime-node runs written ONNX files. --ignore-scripts: its install script would fetch a GPU build.
tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch node_modules/.installed \
	    || echo "npm ci in tests/ failed: the browser test and the ONNX Runtime check cannot run (a failure of make test; REQUIRE_ALL=0 makes it a SKIP)"

# GET / serves server/console/*, embedded by a generated (committed) C file.
CONSOLE_FILES := $(wildcard server/console/*)
server/console_assets.c: $(CONSOLE_FILES) server/gen_console.py
	python3 server/gen_console.py $@ $(CONSOLE_FILES)

fuzz:
	$(MAKE) -C tests/fuzz

# SOAK_SECONDS (600) of mixed traffic at 64 connections with reloads and ~1%
# hostile requests, RSS/fds/threads sampled to build/soak/soak.{csv,svg}; then twice
# the sustainable load (429s) and 5,000 idle connections on fresh instances. Not in make test.
SOAK_SECONDS ?= 600
soak: all
	SOAK_SECONDS=$(SOAK_SECONDS) TRIPLETD=$(CURDIR)/$(BIN)/tripletd TRIPLETCTL=$(CURDIR)/$(BIN)/tripletctl bash tests/soak/soak.sh

# Every C file but the generated ones (first line "... generated ... do not edit").
FORMAT_FILES = $(shell for f in $(wildcard lib/*.[ch] server/*.[ch] cli/*.[ch] bench/*.[ch] tests/*.h tests/*/*.[ch]); do \
                 head -n 1 $$f | grep -qi 'generated.*do not edit' || echo $$f; done)

format:
	clang-format -i $(FORMAT_FILES)

# The style of .clang-format, and no line over its ColumnLimit (clang-format
# cannot break a long string or word).
format-check:
	@files="$(FORMAT_FILES)"; width=$$(sed -n 's/^ColumnLimit: *//p' .clang-format); rc=0; \
	clang-format --dry-run --Werror $$files || rc=1; \
	if LC_ALL=C.UTF-8 grep -nE ".{$$((width + 1))}" $$files; then echo "format-check: lines over $$width columns above"; rc=1; fi; \
	[ $$rc = 0 ] && echo "format-check: $$(echo $$files | wc -w) files formatted, no line over $$width columns"; exit $$rc

clean:
	rm -rf build build-san bin lib/libtriplet.a

-include $(shell find $(B) -name '*.d' 2>/dev/null)
