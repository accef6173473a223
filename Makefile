# cap: image captioning as small Unix tools.
#   make              build every tool into build/bin
#   make check        build and run the whole test suite (ends with "N passed, N failed")
#   make check SANITIZE=1   the same, built with AddressSanitizer and UBSan (in build/san)
#   make bench        benchmarks against PyTorch on this machine (not tests)
#   make install PREFIX=/usr/local DESTDIR=
#   make deps         install the Debian packages (and npm oracle) the build and tests need
#
# Layout: lib/ is laid out by stage (core, io, image, text, encoder, decoder, train, search,
# eval) with the backends' ops under lib/ops (ref, cpu; cuda is a loadable module). Every
# lib/**/*.c outside lib/ops/cuda goes into one static library; every tools/cap-*.c is one
# program linked against it; every tests/unit/test_*.c is one test program; lib/ops/cuda/*.cu
# make build/lib/cap/libcap-cuda.so where nvcc is found.

VERSION  = 0.1.0
PREFIX  ?= /usr/local
MANDIR  ?= $(PREFIX)/share/man
PYTHON  ?= /usr/bin/python3
CC      ?= gcc

ifeq ($(SANITIZE),1)
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

# The tools export the few lib/ functions the CUDA module calls back (cap_fail and the checked
# allocators), so that its error messages land where the tool's cap_errmsg() reads them.
LDFLAGS += -Wl,--dynamic-list=lib/ops/cuda/exports.list

LIB_SRC   := $(sort $(shell find lib -name '*.c' -not -path 'lib/ops/cuda/*'))
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

all: $(TOOLS) $(CUDA_MODULE)

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

tests: $(TOOLS) $(UNITS) $(TESTTOOLS)

# check and demo first install what they need (idempotent, quick when present), then run in a
# sub-make so that pkg-config sees the freshly installed packages.
check:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory check-run

check-run: $(TOOLS) $(UNITS) $(TESTTOOLS) $(CUDA_MODULE)
	@CAP_BIN=$(abspath $(BUILD)/bin) CAP_TESTBIN=$(abspath $(BUILD)/tests) \
	 CAP_TESTTOOLS=$(abspath $(BUILD)/tests/tools) \
	 PYTHON=$(PYTHON) MANPAGES="$(MANPAGES)" tests/run.sh $(T)

# The main job on the embedded default: the whole pipeline on examples/shapes.
demo:
	@scripts/install-deps.sh build
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -f pipelines/shapes.mk BIN=$(BUILD)/bin OUT=$(BUILD)/demo

bench: $(TOOLS)
	@CAP_BIN=$(abspath $(BUILD)/bin) PYTHON=$(PYTHON) bench/run.sh $(B)

lint-man:
	mandoc -Tlint -W warning $(MANPAGES)

deps:
	scripts/install-deps.sh test

install: $(TOOLS) $(CUDA_MODULE)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(CUDA_MODULE),install -d $(DESTDIR)$(PREFIX)/lib/cap && install -m 755 $(CUDA_MODULE) $(DESTDIR)$(PREFIX)/lib/cap/)
	for m in $(MANPAGES); do s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done

clean:
	rm -rf build

.PHONY: all tests check check-run demo bench lint-man deps install clean cuda-ptxas
.SECONDARY:
