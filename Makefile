# cap: image captioning as small Unix tools.
#   make              build every tool into build/bin
#   make check        build and run the whole test suite (ends with "N passed, N failed")
#   make check SANITIZE=1   the same, built with AddressSanitizer and UBSan (in build/san)
#   make fuzz [FUZZ_SECONDS=60]   each libFuzzer harness of tests/fuzz for N seconds (build/fuzz)
#   make bench        benchmarks against PyTorch on this machine (not tests); B=train: that one
#   make install PREFIX=/usr/local DESTDIR=   (make uninstall with the same settings)
#   make deps         install the Debian packages (and npm oracle) the build and tests need
#
# Layout: lib/ is laid out by stage (core, io, image, text, encoder, decoder, train, search,
# eval) with the backends' ops under lib/ops (ref, cpu; cuda is a loadable module). Every
# lib/**/*.c outside lib/ops/cuda, lib/train/mpi and lib/train/nccl goes into one static
# library; every tools/cap-*.c is one program linked against it; every tests/unit/test_*.c is
# one test program; the CUDA backend (lib/ops/cuda/*.cu, where nvcc is found) and the MPI and
# NCCL tables of data-parallel training are modules loaded at run time (see below).

VERSION  = 0.1.0
.DEFAULT_GOAL := all
PREFIX  ?= /usr/local
MANDIR  ?= $(PREFIX)/share/man
PYTHON  ?= /usr/bin/python3
CC      ?= gcc

ifeq ($(FUZZ),1)
# The libFuzzer build (make fuzz): lib/ compiled by clang with coverage, ASan and UBSan.
BUILD   ?= build/fuzz
CC       = clang
SANFLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      = -O1 -g
else ifeq ($(SANITIZE),1)
BUILD   ?= build/san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      = -O1 -g
else
BUILD   ?= build
SANFLAGS =
OPT      = -O2 -g
endif

PKGS      = msgpack libpng libjpeg
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# oneDNN ships no .pc file in Debian 12; it is a plain -ldnnl.
DNNL_LIBS  = -ldnnl

CFLAGS  ?= $(OPT)
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -pthread -march=x86-64-v2 \
           -DCAP_VERSION='"$(VERSION)"' -Ilib $(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
LDLIBS  += $(PKG_LIBS) $(DNNL_LIBS) -lm

# The cpu backend's own loops (lib/ops/cpu) run on the OpenMP threads oneDNN already has
# (Debian's libdnnl is built on libgomp): gcc's -fopenmp there and at the link. The fuzz build's
# clang would bring another OpenMP runtime, so there those loops stay serial.
ifeq ($(FUZZ),1)
OPENMP  =
else
OPENMP ?= -fopenmp
endif
$(BUILD)/lib/ops/cpu/%.o: CFLAGS += $(OPENMP)
LDFLAGS += $(OPENMP)

# The tools export the few lib/ functions the CUDA module calls back (cap_fail and the checked
# allocators), so that its error messages land where the tool's cap_errmsg() reads them.
LDFLAGS += -Wl,--dynamic-list=lib/ops/cuda/exports.list

LIB_SRC   := $(sort $(shell find lib -name '*.c' -not -path 'lib/ops/cuda/*' \
                 -not -path 'lib/train/mpi/*' -not -path 'lib/train/nccl/*'))
LIB_HDR   := $(shell find lib -name '*.h')
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC  := $(sort $(wildcard tools/cap-*.c))
TOOLS     := $(TOOL_SRC:tools/%.c=$(BUILD)/bin/%)
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNITS     := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Small programs that expose lib/ functions to the Python oracle tests (not installed).
TT_SRC    := $(sort $(wildcard tests/tools/*.c))
TESTTOOLS := $(TT_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)
MANPAGES  := $(sort $(wildcard man/*.[0-9]))
# libFuzzer harnesses, one program each (tests/fuzz/fuzz_NAME.c).
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZERS   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60

# Data parallelism (lib/train/dist.h): the MPI table is a module the tools load with dlopen only
# when a launcher (mpirun, srun) started several ranks, so that the tools never link MPI and run
# without it: built from lib/train/mpi/mpi.c when mpicc is found (`make MPICC=` builds without
# it). The NCCL table for --device cuda is another module, built where nccl.h and the CUDA
# runtime are found (`make NCCL_HOME=` builds without it); plain C, no nvcc needed.
MPICC     ?= $(shell command -v mpicc 2>/dev/null)
MPI_MODULE := $(if $(MPICC),$(BUILD)/lib/cap/libcap-mpi.so)
NCCL_HOME ?= $(firstword $(foreach d,/usr/local/cuda /usr,$(if $(wildcard $(d)/include/nccl.h),$(d))))
ifeq ($(SANITIZE),1)
NCCL_HOME :=
endif
NCCL_LIBDIR ?= $(firstword $(wildcard $(NCCL_HOME)/lib64/libnccl.so $(NCCL_HOME)/lib/x86_64-linux-gnu/libnccl.so))
NCCL_MODULE := $(if $(and $(NCCL_HOME),$(NCCL_LIBDIR),$(wildcard $(NCCL_HOME)/include/cuda_runtime.h)),$(BUILD)/lib/cap/libcap-nccl.so)
MODULE_CFLAGS = $(CFLAGS) -fPIC -fvisibility=hidden -shared


$(BUILD)/lib/cap/libcap-mpi.so: lib/train/mpi/mpi.c lib/train/dist.h lib/ops/ops.h Makefile
	@mkdir -p $(dir $@)
	$(MPICC) $(MODULE_CFLAGS) -o $@ $<

$(BUILD)/lib/cap/libcap-nccl.so: lib/train/nccl/nccl.c lib/train/dist.h lib/ops/ops.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -I$(NCCL_HOME)/include -o $@ $< -L$(dir $(NCCL_LIBDIR)) \
	  -Wl,-rpath,$(dir $(NCCL_LIBDIR)) -lnccl -lcudart

# The CUDA backend, a module the tools load with dlopen for --device cuda only (lib/ops/ops.c):
# built from lib/ops/cuda/*.cu when nvcc is found (/usr/local/cuda/bin/nvcc, else on PATH);
# `make NVCC=` builds without it. Never built under SANITIZE (the tools then report that this
# build has no CUDA backend). cuDNN is looked for beside the toolkit unless CUDNN_INC/CUDNN_LIB
# say where (e.g. the nvidia-cudnn wheel's include/ and lib/). NVCC_EXTRA adds flags (e.g.
# NVCC_EXTRA="-Xptxas -v" for the registers and spills of every kernel in the build log).
NVCC ?= $(shell if [ -x /usr/local/cuda/bin/nvcc ]; then echo /usr/local/cuda/bin/nvcc; else command -v nvcc 2>/dev/null; fi)
ifeq ($(SANITIZE),1)
NVCC :=
endif
CUDA_HOME   ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_LIBDIR ?= $(CUDA_HOME)/lib64
CUDNN_INC   ?=
CUDNN_LIB   ?=
CUDA_ARCH   ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS   ?= -O2 -g
NVCCFLAGS   += -std=c++17 $(CUDA_ARCH) -Xcompiler -fPIC,-fvisibility=hidden \
               --compiler-options -Wall,-Wextra -DCAP_VERSION='"$(VERSION)"' -Ilib \
               $(if $(CUDNN_INC),-I$(CUDNN_INC)) $(NVCC_EXTRA)
CUDA_LDLIBS  = -L$(CUDA_LIBDIR) -Xlinker -rpath,$(CUDA_LIBDIR) \
               $(if $(CUDNN_LIB),-L$(CUDNN_LIB) -Xlinker -rpath,$(CUDNN_LIB)) \
               -lcudnn -lcublas -lcublasLt -lcudart
CUDA_SRC    := $(sort $(wildcard lib/ops/cuda/*.cu))
CUDA_HDR    := $(wildcard lib/ops/cuda/*.h) lib/ops/ops.h lib/core/error.h lib/encoder/resnet.h \
               lib/io/tensors.h lib/ops/ref/conv.h
CUDA_OBJ    := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CUDA_MODULE := $(if $(NVCC),$(BUILD)/lib/cap/libcap-cuda.so)

all: $(TOOLS) $(CUDA_MODULE) $(MPI_MODULE) $(NCCL_MODULE)

$(BUILD)/lib/ops/cuda/%.o: lib/ops/cuda/%.cu $(CUDA_HDR) Makefile
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

$(BUILD)/lib/cap/libcap-cuda.so: $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	$(NVCC) -shared --cudart shared -o $@ $^ $(CUDA_LDLIBS)

# Registers, shared memory and spills of every kernel (ptxas), for review.
cuda-ptxas:
	@for f in $(CUDA_SRC); do $(NVCC) $(NVCCFLAGS) -Xptxas -v -c -o /dev/null $$f 2>&1 | \
	  sed -n "s/^ptxas info    : Compiling entry function '\([^']*\)'.*/\1/p; s/^ptxas info    : \(Used.*\)/    \1/p; /spill/p"; done

$(BUILD)/lib/%.o: lib/%.c $(LIB_HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libcap.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/%: tools/%.c $(BUILD)/libcap.a $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcap.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(BUILD)/libcap.a $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libcap.a $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libcap.a $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcap.a $(LDLIBS)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(wildcard tests/fuzz/*.inc) $(BUILD)/libcap.a $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/fuzz $(LDFLAGS) -o $@ $< $(BUILD)/libcap.a $(LDLIBS)

tests: $(TOOLS) $(UNITS) $(TESTTOOLS)

# check and demo first install what they need (idempotent, quick when present), then run in a
# sub-make so that pkg-config sees the freshly installed packages.
check:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory check-run

check-run: $(TOOLS) $(UNITS) $(TESTTOOLS) $(CUDA_MODULE) $(MPI_MODULE) $(NCCL_MODULE)
	@CAP_BIN=$(abspath $(BUILD)/bin) CAP_TESTBIN=$(abspath $(BUILD)/tests) \
	 CAP_MPI_BUILT=$(if $(MPI_MODULE),1,0) CAP_NCCL_BUILT=$(if $(NCCL_MODULE),1,0) \
	 CAP_TESTTOOLS=$(abspath $(BUILD)/tests/tools) \
	 CAP_SANITIZE=$(SANITIZE) PYTHON=$(PYTHON) MANPAGES="$(MANPAGES)" tests/run.sh $(T)

# Fuzzing: seeds made by the regular build's tools (tests/fuzz/seeds.sh), then every harness
# built with clang into build/fuzz and run for FUZZ_SECONDS each (tests/fuzz/run.sh).
fuzz:
	@scripts/install-deps.sh fuzz
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-run

fuzz-run: $(FUZZERS)
	@tests/fuzz/seeds.sh $(abspath build/bin) $(abspath $(BUILD)/seeds) $(PYTHON)
	@tests/fuzz/run.sh $(abspath $(BUILD)) $(FUZZ_SECONDS) $(notdir $(FUZZERS))

# The main job on the embedded default: the whole pipeline on examples/shapes, its output in
# build/demo/pipeline.log, then a short summary (again, without retraining, when up to date).
demo:
	@scripts/install-deps.sh build
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)/bin $(BUILD)/demo

$(BUILD)/bench/cap-peak: bench/peak.c $(BUILD)/libcap.a $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcap.a $(LDLIBS)

bench: $(TOOLS) $(MPI_MODULE) $(BUILD)/bench/cap-peak
	@CAP_BIN=$(abspath $(BUILD)/bin) CAP_PEAK=$(abspath $(BUILD)/bench/cap-peak) PYTHON=$(PYTHON) bench/run.sh $(B)

lint-man:
	mandoc -Tlint -W warning $(MANPAGES)

deps:
	scripts/install-deps.sh test

# The tools, the man pages (sections 1, 5, 7), and under $(DATADIR) the make graphs of
# pipelines/ (make -f $(DATADIR)/pipelines/flickr8k.mk BIN=$(PREFIX)/bin) and the scripts
# they mention. make uninstall removes exactly what install wrote.
DATADIR   ?= $(PREFIX)/share/cap
PIPELINES := $(sort $(shell find pipelines -type f 2>/dev/null))
SHARE_SCRIPTS := $(wildcard scripts/get-weights.sh)
TOOL_NAMES := $(TOOL_SRC:tools/%.c=%)

install: $(TOOLS) $(CUDA_MODULE) $(MPI_MODULE) $(NCCL_MODULE)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(CUDA_MODULE)$(MPI_MODULE)$(NCCL_MODULE),install -d $(DESTDIR)$(PREFIX)/lib/cap && install -m 755 $(CUDA_MODULE) $(MPI_MODULE) $(NCCL_MODULE) $(DESTDIR)$(PREFIX)/lib/cap/)
	for m in $(MANPAGES); do s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s && \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; done
	for f in $(PIPELINES) $(SHARE_SCRIPTS); do mode=644; [ -x $$f ] && mode=755; \
	    install -D -m $$mode $$f $(DESTDIR)$(DATADIR)/$$f || exit 1; done

uninstall:
	for t in $(TOOL_NAMES); do rm -f $(DESTDIR)$(PREFIX)/bin/$$t; done
	rm -f $(DESTDIR)$(PREFIX)/lib/cap/libcap-mpi.so $(DESTDIR)$(PREFIX)/lib/cap/libcap-nccl.so $(DESTDIR)$(PREFIX)/lib/cap/libcap-cuda.so
	for m in $(MANPAGES); do s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done
	for f in $(PIPELINES) $(SHARE_SCRIPTS); do rm -f $(DESTDIR)$(DATADIR)/$$f; done
	[ ! -d $(DESTDIR)$(DATADIR) ] || find $(DESTDIR)$(DATADIR) -depth -type d -empty -delete

clean:
	rm -rf build

.PHONY: all tests check check-run fuzz fuzz-run demo bench lint-man deps install uninstall clean cuda-ptxas
.SECONDARY:
