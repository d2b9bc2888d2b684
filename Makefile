# rotabench build: one static library (kernels, datasets, methods, harness), the rotabench binary
# and the Criterion test binary that both link it. `make help` lists the targets.

SHELL := /bin/bash
BUILD   ?= build
# Parallel by default (one job per core); deps always finishes before the first compile.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
  MAKEFLAGS += -j$(shell nproc)
endif
MAKEFLAGS += --no-print-directory
CC      ?= cc
CXX     ?= c++
CUDA    ?= auto
NVCC    ?= nvcc
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Every Debian package the project uses; `make deps` installs the missing ones.
DEB_PACKAGES := build-essential clang pkg-config git nettle-dev libyaml-dev libhwloc-dev libbenchmark-dev gnuplot-nox \
                libopenblas-serial-dev liblapacke-dev libgsl-dev librandom123-dev libjansson-dev \
                libcriterion-dev clang-format cppcheck

OPT      ?= -O2
CSTD     := -std=c11
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
# fp-contract=off: no silent FMA contraction, so reference kernels give the same bits on every
# compiler and optimized kernels only fuse where they say so with intrinsics.
# SAN is set by check-asan; CFLAGS/CXXFLAGS/LDFLAGS stay free for the user.
SAN      ?=
# OpenBLAS: the serial build, chosen explicitly whatever the system's BLAS alternative is. Our
# pool owns the cores, results must not depend on a second library's thread count, and the
# pthreads build's idle workers poll for work and burn CPU. DT_RPATH (not RUNPATH) so that
# liblapacke's own liblapack.so.3 also resolves to the serial build.
BLAS_DIR := /usr/lib/x86_64-linux-gnu/openblas-serial
CPPFLAGS += -D_GNU_SOURCE -I. -I$(BUILD)/gen -I/usr/include/x86_64-linux-gnu/openblas-serial
RB_CFLAGS   = $(CSTD) $(OPT) -g -fno-strict-aliasing -ffp-contract=off -pthread $(WARN) -MMD -MP $(SAN) $(CFLAGS)
RB_CXXFLAGS = -std=c++17 $(OPT) -g -pthread -Wall -Wextra -Werror -MMD -MP $(SAN) $(CXXFLAGS)
RB_LDFLAGS  = $(SAN) $(LDFLAGS)
LDLIBS   += -lbenchmark -lnettle -lyaml -lhwloc -ljansson -lgsl -llapacke -L$(BLAS_DIR) -Wl,--disable-new-dtags,-rpath,$(BLAS_DIR) -lopenblas -lstdc++ -lpthread -lm

# Per-file instruction sets: a file named *_avx2.c or *_avx512.c may use those instructions; the
# dispatcher only calls into it after cpuid says the machine has them.
ISA_AVX2   := -mavx2 -mfma
ISA_AVX512 := -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx2 -mbmi2

# CUDA: compiled and linked whenever nvcc is on the PATH, unless CUDA=0.
ifeq ($(CUDA),auto)
  CUDA := $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
endif
CU_SRCS := $(if $(filter 1,$(CUDA)),$(wildcard kernels/cuda/*.cu))
ifeq ($(CUDA),1)
  CUDA_HOME  ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC))))
  CUDA_ARCH  ?= -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_80,code=sm_80 \
                -gencode arch=compute_90,code=compute_90
  # --fmad=false: no contraction into FMA, as -ffp-contract=off on the CPU side, so that every
  # op reproduces its CPU reference bit for bit; a kernel that wants an FMA writes __fmaf_rn.
  NVCCFLAGS  += -std=c++17 -O3 -g -lineinfo --fmad=false $(CUDA_ARCH) -Xcompiler -Wall,-Werror,-fPIC -I. \
                -Werror all-warnings
  CPPFLAGS   += -DRB_HAVE_CUDA=1 -I$(CUDA_HOME)/include
  LDLIBS     += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart
endif

LIB_C   := $(filter-out harness/main.c,$(wildcard kernels/*.c kernels/x86/*.c datasets/*.c methods/*.c harness/*.c))
LIB_CXX := $(wildcard harness/*.cc)
LIB_OBJ := $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CXX:%.cc=$(BUILD)/%.o) $(CU_SRCS:%.cu=$(BUILD)/%.o)
TEST_C  := $(wildcard tests/*.c)
TEST_CU := $(if $(filter 1,$(CUDA)),$(wildcard tests/*.cu))
TEST_OBJ:= $(TEST_C:%.c=$(BUILD)/%.o) $(TEST_CU:%.cu=$(BUILD)/%.o)

LIB   := $(BUILD)/librotabench.a
BIN   := $(BUILD)/rotabench
TESTS := $(BUILD)/rbtest

# Quiet by default; `make V=1` prints the full commands.
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
say = $(if $(filter 1,$(V)),,@printf '  %-6s %s\n' $(1) $(2))

.PHONY: all deps run test bench bundle check-asan check-clang format lint clean help version-stamp
all: deps $(BIN)

help:
	@echo "make run         install deps, build, run configs/default.yaml, write results and a report"
	@echo "make test        install deps, build, run the whole test suite"
	@echo "make bench       kernel benchmarks (Google Benchmark) with the machine's measured limits"
	@echo "make bundle      $(BUILD)/rotabench-bundle.tar.xz: binaries + libraries for a machine"
	@echo "                 without the build packages (tools/bundle.sh says how to run it)"
	@echo "make check-asan  the test suite under AddressSanitizer + UBSan"
	@echo "make check-clang the test suite built with clang"
	@echo "make format      reformat sources with clang-format; make lint checks format + cppcheck"
	@echo "make deps        apt-get install the Debian packages that are missing (idempotent)"
	@echo "options: CUDA=0 (skip nvcc), BUILD=dir, CC=clang, RB_KERNELS=ref|avx2|avx512 at run time"

# One dpkg-query call decides; apt-get runs only when something is missing.
deps:
	@missing=$$(dpkg-query -W -f='$${Package} $${db:Status-Abbrev}\n' $(DEB_PACKAGES) 2>/dev/null \
	    | awk '$$2 == "ii" { ok[$$1] = 1 } END { n = split("$(DEB_PACKAGES)", p, " "); \
	      for (i = 1; i <= n; i++) if (!(p[i] in ok)) printf "%s ", p[i] }'); \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing $$missing"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The git revision is baked into one generated header, rewritten only when it changes.
$(BUILD)/gen/rb_version.h: version-stamp | deps
	@mkdir -p $(dir $@)
	@sha=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	 dirty=$$(git diff --quiet HEAD -- 2>/dev/null && echo 0 || echo 1); \
	 printf '#define RB_GIT_SHA "%s"\n#define RB_GIT_DIRTY %s\n#define RB_BUILD_FLAGS "%s"\n#define RB_CUDA_ARCH "%s"\n' \
	   "$$sha" "$$dirty" "$(CC) $(OPT) CUDA=$(CUDA)" "$(if $(filter 1,$(CUDA)),$(strip $(CUDA_ARCH)))" > $@.tmp; \
	 cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(BUILD)/%_avx2.o: %_avx2.c | $(BUILD)/gen/rb_version.h
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(RB_CFLAGS) $(ISA_AVX2) -c $< -o $@
$(BUILD)/%_avx512.o: %_avx512.c | $(BUILD)/gen/rb_version.h
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(RB_CFLAGS) $(ISA_AVX512) -c $< -o $@
$(BUILD)/%.o: %.c | $(BUILD)/gen/rb_version.h
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(RB_CFLAGS) -c $< -o $@
$(BUILD)/%.o: %.cc | $(BUILD)/gen/rb_version.h
	@mkdir -p $(dir $@)
	$(call say,CXX,$<)
	$(Q)$(CXX) $(CPPFLAGS) $(RB_CXXFLAGS) -c $< -o $@
$(BUILD)/%.o: %.cu | $(BUILD)/gen/rb_version.h
	@mkdir -p $(dir $@)
	$(call say,NVCC,$<)
	$(Q)$(NVCC) $(NVCCFLAGS) -DRB_HAVE_CUDA=1 -c $< -o $@

$(BUILD)/harness/version.o: $(BUILD)/gen/rb_version.h

# The object lists, rewritten only when they change, so that deleting a source file relinks.
$(BUILD)/gen/objects.txt: version-stamp | deps
	@mkdir -p $(dir $@)
	@echo "$(LIB_OBJ) | $(TEST_OBJ)" > $@.tmp; cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(LIB): $(LIB_OBJ) $(BUILD)/gen/objects.txt
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $(LIB_OBJ)

$(BIN): $(BUILD)/harness/main.o $(LIB)
	$(call say,LINK,$@)
	$(Q)$(CXX) $(RB_LDFLAGS) -o $@ $^ $(LDLIBS)

$(TESTS): $(TEST_OBJ) $(LIB) $(BUILD)/gen/objects.txt
	$(call say,LINK,$@)
	$(Q)$(CXX) $(RB_LDFLAGS) -o $@ $(TEST_OBJ) $(LIB) -lcriterion $(LDLIBS)

# Criterion runs every test in its own process; -j2 matches the CI machine.
TEST_ARGS ?= -j2
test: deps $(BIN) $(TESTS)
	RB_TEST_BIN=$(abspath $(BIN)) $(TESTS) $(TEST_ARGS)

run: deps $(BIN)
	$(BIN) run configs/default.yaml

bench: deps $(BIN)
	$(BIN) bench $(BENCH_FILTER)

bundle: deps $(BIN) $(TESTS)
	tools/bundle.sh $(BUILD) $(BUILD)/rotabench-bundle.tar.xz

# Criterion reports a test that LeakSanitizer or UBSan complained about as passed (the report
# goes to stderr of the forked test), so the log is searched for sanitizer reports as well: the
# tests' part of it, up to the summary line. After it comes Criterion's own runner exiting,
# which leaks a little of its own state (not our code; no test code runs in that process), so
# leaks do not set the exit status (LSAN_OPTIONS=exitcode=0): the log decides.
check-asan: deps
	$(MAKE) BUILD=build-asan OPT="-O2" CUDA=0 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DRB_SANITIZE" \
	    build-asan/rotabench build-asan/rbtest
	@set -o pipefail; LSAN_OPTIONS=exitcode=0 RB_TEST_BIN=$(abspath build-asan/rotabench) \
	    build-asan/rbtest -j2 2>&1 \
	    | tee build-asan/test.log
	@if sed '/^\[====\] Synthesis/q' build-asan/test.log \
	    | grep -qE "ERROR: (Leak|Address)Sanitizer|runtime error:"; then \
	    echo "check-asan: sanitizer reports in build-asan/test.log:"; \
	    grep -E "ERROR: (Leak|Address)Sanitizer|runtime error:" build-asan/test.log | head; \
	    exit 1; fi

# The same tree with clang 14 (-Werror), tests included: both compilers must stay clean.
check-clang: deps
	$(MAKE) BUILD=build-clang CC=clang CXX=clang++ test

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' '*.cc' '*.cu')
format:
	clang-format -i $(FORMAT_SRCS)

lint: deps
	@echo "  LINT   clang-format ($(words $(FORMAT_SRCS)) files)"
	@clang-format --dry-run -Werror $(FORMAT_SRCS)
	@echo "  LINT   cppcheck"
	@cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	    --inline-suppr --suppress=missingIncludeSystem --library=.ci/jansson.cfg -D__x86_64__ -I. \
	    kernels datasets methods harness

clean:
	rm -rf $(BUILD) build-asan build-clang

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
