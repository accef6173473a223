#!/bin/sh
# make bench [B=NAME]: runs every bench/*.sh (B: the one of that name, else those whose name
# contains it), each of which measures a cap tool and the PyTorch equivalent side by side on this
# machine and prints medians and the ratio. Benchmarks are not tests: they assert nothing about time.
set -u
here=$(cd "$(dirname "$0")" && pwd)
pattern=${1:-}
: "${CAP_BIN:?}" "${PYTHON:=/usr/bin/python3}"
export CAP_BIN PYTHON
export CAP_DATA=${CAP_DATA:-$(cd "$here/../.." && pwd)/shared/data}
# Debian's torch does its Linear/LSTM products with whatever libblas.so.3 is selected, which on a
# machine with only libblas3 is netlib's slow reference BLAS. So that PyTorch is also measured at
# its best, the benches add a PyTorch column on OpenBLAS, unpacked (not installed) from Debian's
# libopenblas0-pthread into build/bench-openblas. OPENBLAS_CORETYPE=Haswell: the OpenBLAS of
# Debian 12 misdetects these processors without it.
if [ -z "${TORCH_OPENBLAS:-}" ]; then
	ob="$here/../build/bench-openblas"
	lib="$ob/usr/lib/x86_64-linux-gnu/openblas-pthread"
	if [ ! -f "$lib/libblas.so.3" ]; then
		mkdir -p "$ob" && (cd "$ob" && apt-get download -q libopenblas0-pthread >/dev/null 2>&1 &&
			dpkg -x libopenblas0-pthread_*.deb .) || echo "# (could not fetch OpenBLAS: PyTorch runs on the system BLAS only)"
	fi
	[ -f "$lib/libblas.so.3" ] && TORCH_OPENBLAS=$(cd "$lib" && pwd)
fi
if [ -n "${TORCH_OPENBLAS:-}" ]; then
	export TORCH_OPENBLAS BENCH_TORCH_BLAS="$TORCH_OPENBLAS" OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
fi
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
     "$(free -g | awk '/Mem:/{print $2}') GiB; torch $($PYTHON -c 'import torch; print(torch.__version__)' 2>/dev/null)"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ); cap $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null);" \
     "load $(cut -d' ' -f1-3 /proc/loadavg); PyTorch on OpenBLAS: ${TORCH_OPENBLAS:-no}"
# The machine's limits, for the "share of peak" lines: the best large GEMMs here (bench/peak.c),
# measured again before each bench and once after it. On the shared virtual machines these
# benches ran on the same product's sustained rate moved by up to 8% within half an hour, so a
# share holds for the peak printed beside it; the peak after the bench says how far it moved.
# PEAK_GFLOPS / PEAK_BF16_GFLOPS given in the environment are used as they are.
given32=${PEAK_GFLOPS:-} given16=${PEAK_BF16_GFLOPS:-}
peaks() { # when: sets PEAK_GFLOPS, PEAK_BF16_GFLOPS and prints them
	if [ -z "$given32" ] && [ -x "${CAP_PEAK:-}" ]; then
		PEAK_GFLOPS=$("$CAP_PEAK" "${THREADS:-2}" 2048 2>/dev/null)
	fi
	if [ -z "$given16" ] && [ -x "${CAP_PEAK:-}" ]; then
		PEAK_BF16_GFLOPS=$("$CAP_PEAK" "${THREADS:-2}" 2048 bf16 2>/dev/null)
	fi
	export PEAK_GFLOPS PEAK_BF16_GFLOPS
	echo "# peaks measured $1: fp32 ${PEAK_GFLOPS:-?} GFLOP/s, bf16 ${PEAK_BF16_GFLOPS:-none (no AVX512-BF16)}"
}
echo "# fp32 peak: the best of four large oneDNN products, each on sgemm and on the matmul primitive with a packed weight, each at its median call over 0.25 s of calls, ${THREADS:-2} threads"
echo "# bf16 peak: the same on oneDNN's bf16 matmul, plain bf16 operands or a packed weight, conversions of the activations included in the latter"
for b in "$here"/*.sh; do
	n=$(basename "$b" .sh)
	[ "$n" = run ] && continue
	if [ -f "$here/$pattern.sh" ]; then   # a bench's whole name: that one alone
		[ "$n" = "$pattern" ] || continue
	else
		case "$n" in *"$pattern"*) ;; *) continue ;; esac
	fi
	echo "## $n"
	peaks "before $n (the shares below are of these)"
	sh "$b" || echo "(bench $n failed with status $?)"
	peaks "after $n"
done
