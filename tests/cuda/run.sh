#!/bin/sh
# The CUDA backend on a GPU machine, in one go (about 6 minutes on an H200): what the machine has,
# a build of cap there, the op test on every backend (cuda against ref), end-to-end parity of
# --device cuda with --device cpu, and the benchmark against PyTorch on the same card; a short
# table last. The machine is expected to have nvcc, cuBLAS, cuDNN (beside the toolkit or from the
# nvidia-cudnn wheel), python3 with torch, torchvision and msgpack, but none of our
# Debian libraries: tests/cuda/prepare.sh, run beforehand on a machine with them, collects those
# (and the data) into build/carry, which travels with the tree.
#   tests/cuda/run.sh            everything
#   RUN_BENCH=0 tests/cuda/run.sh   the checks only
#   DRY=1 tests/cuda/run.sh      on a machine without a GPU: build with the carried libraries and
#                                run the parts that need no GPU (the cpu side, the comparisons)
# Prints "ok - ", "not ok - ", "skip - " lines as the test suite does; exits 1 when a check fails.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
C=$ROOT/${CARRY:-build/carry}
PY=${PYTHON:-python3}
W=$(mktemp -d "${TMPDIR:-/tmp}/cap-cuda.XXXXXX")
trap 'rm -rf "$W"' EXIT
DRY=${DRY:-0}
RUN_BENCH=${RUN_BENCH:-1}
JOBS=$(nproc 2>/dev/null || echo 4)
fails=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }
skip() { echo "skip - $*"; }
row() { printf '%s\n' "$*" >>"$W/table"; }   # "stage|cap|PyTorch|ratio"
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 ))s"; }

echo "## what this machine has"
uname -srm
(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || echo "nvidia-smi: none") 2>&1
NVCC=${NVCC:-}
[ -n "$NVCC" ] || for n in /usr/local/cuda/bin/nvcc $(command -v nvcc 2>/dev/null); do [ -x "$n" ] && { NVCC=$n; break; }; done
if [ -z "$NVCC" ]; then echo "no nvcc: cannot build the CUDA module"; exit 1; fi
"$NVCC" --version | tail -n 2
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$NVCC")")}
grep -h '#define CUBLAS_VER_\(MAJOR\|MINOR\|PATCH\)' "$CUDA_HOME"/include/cublas_api.h 2>/dev/null | awk '{ printf "%s=%s ", $2, $3 } END { print "" }'
# cuDNN: beside the toolkit, else the nvidia-cudnn wheel PyTorch brings
CUDNN_INC=${CUDNN_INC:-} CUDNN_LIB=${CUDNN_LIB:-}
if [ -z "$CUDNN_INC" ] && [ ! -f "$CUDA_HOME/include/cudnn.h" ]; then
	d=$("$PY" -c 'import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null)
	[ -n "$d" ] && [ -f "$d/include/cudnn.h" ] && { CUDNN_INC=$d/include; CUDNN_LIB=$d/lib; }
fi
h=${CUDNN_INC:-$CUDA_HOME/include}/cudnn_version.h
[ -f "$h" ] && grep -h '#define CUDNN_\(MAJOR\|MINOR\|PATCHLEVEL\) ' "$h" | awk '{ printf "%s=%s ", $2, $3 } END { print "" }' ||
	echo "no cudnn.h found (CUDNN_INC=DIR to name it)"
[ -n "$CUDNN_LIB" ] && [ ! -e "$CUDNN_LIB/libcudnn.so" ] && [ -e "$CUDNN_LIB/libcudnn.so.9" ] && {
	mkdir -p "$W/cudnn" && ln -s "$CUDNN_LIB/libcudnn.so.9" "$W/cudnn/libcudnn.so" && CUDNN_LINK=$W/cudnn; }
"$PY" --version 2>&1
"$PY" tests/cuda/torch_side.py versions 2>&1 || echo "torch_side versions failed"
echo "# carried: $(ls "$C/lib" 2>/dev/null | tr '\n' ' ')"

echo "## build ($(elapsed))"
[ -f "$C/lib/libmsgpackc.a" ] || { echo "no $C/lib: run tests/cuda/prepare.sh where the Debian libraries are"; exit 1; }
[ -f "$C/lib/libdnnl.so.2" ] || "$PY" -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1] + ".xz") as f, open(sys.argv[1], "wb") as g: shutil.copyfileobj(f, g)' "$C/lib/libdnnl.so.2"
[ -e "$C/lib/libdnnl.so" ] || ln -s libdnnl.so.2 "$C/lib/libdnnl.so"
export LD_LIBRARY_PATH="$C/lib${CUDNN_LIB:+:$CUDNN_LIB}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
B=build/gpu
mk() { # make with the carried libraries: msgpack-c, libpng, zlib, libjpeg static; oneDNN carried
	make -j"$JOBS" BUILD="$B" NVCC="$NVCC" CUDA_HOME="$CUDA_HOME" PKG_CFLAGS="-I$C/include" \
		PKG_LIBS="-L$C/lib -Wl,-Bstatic -lmsgpackc -lpng16 -lz -ljpeg -Wl,-Bdynamic" \
		DNNL_LIBS="-L$C/lib -ldnnl -Wl,-rpath,$C/lib" \
		${CUDNN_INC:+CUDNN_INC="$CUDNN_INC"} ${CUDNN_INC:+CUDNN_LIB="${CUDNN_LINK:-$CUDNN_LIB}"} "$@"
}
if mk NVCC_EXTRA="-Xptxas -v" all tests >"$W/build.log" 2>&1; then
	ok "build: tools, tests and $B/lib/cap/libcap-cuda.so"
else
	notok "build failed"; tail -n 40 "$W/build.log"; exit 1
fi
grep -i 'warning' "$W/build.log" | head -n 10
[ "$(grep -ci 'warning' "$W/build.log")" = 0 ] && ok "build without warnings" || notok "build printed warnings"
BIN=$ROOT/$B/bin
export CAP_CUDA_MODULE="$ROOT/$B/lib/cap/libcap-cuda.so"
echo "# registers and spills of the kernels (ptxas, sm_90):"
sed -n "s/^ptxas info    : Compiling entry function '\([^']*\)' for 'sm_90'/\1/p; s/^ptxas info    : \(Used.*\)/    \1/p; /spill stores/p" "$W/build.log" | head -n 90
DEV=cuda
[ "$DRY" = 1 ] && DEV=cpu   # the dry run compares cpu with cpu: the scripts' plumbing, not the GPU

echo "## op test: every op on every backend against ref ($(elapsed))"
"$B/tests/test_ops" >"$W/ops.txt" 2>&1; rc=$?
grep -E '^(not ok|skip)' "$W/ops.txt"
n_cuda=$(grep -c '^ok - cuda ' "$W/ops.txt"); n_bad=$(grep -c '^not ok' "$W/ops.txt")
[ "$rc" = 0 ] && [ "$n_bad" = 0 ] && ok "test_ops: $(grep -c '^ok' "$W/ops.txt") checks passed, $n_cuda of them on cuda" ||
	notok "test_ops: $n_bad failed (exit $rc)"
[ "$DRY" = 1 ] || [ "$n_cuda" -gt 0 ] || notok "test_ops ran nothing on cuda"
"$B/tests/test_cuda_math" >"$W/math.txt" 2>&1 && ok "test_cuda_math (host build of the kernels' element math)" ||
	{ notok "test_cuda_math"; grep '^not ok' "$W/math.txt"; }
row "op test, cuda vs ref|$n_cuda checks passed, $n_bad failed||"

D=$C/data/flickr8k
if [ ! -f "$D/Flickr8k.token.txt" ]; then
	skip "no carried data ($D): parity and benchmark skipped"
	exit $((fails > 0))
fi

echo "## training parity: 20 steps, --device $DEV vs --device cpu ($(elapsed))"
"$BIN/cap-tokenize" vocab --split "$D/Flickr_8k.trainImages.txt" -o "$W/tok.json" "$D/Flickr8k.token.txt" 2>/dev/null &&
"$BIN/cap-tokenize" encode --tokenizer "$W/tok.json" --split "$D/Flickr_8k.trainImages.txt" -o "$W/captions.mp" "$D/Flickr8k.token.txt" 2>/dev/null ||
	notok "cap-tokenize"
"$PY" bench/train_torch.py make-data "$C/data" "$W" >/dev/null || notok "random features (bench/train_torch.py make-data)"
train() { # device log model extra...
	dv=$1 lg=$2 md=$3; shift 3
	"$BIN/cap-train" --device "$dv" --features "$W/features.mp" --captions "$W/captions.mp" -o "$md" --log "$lg" "$@" 2>"$W/train.err" ||
		{ notok "cap-train --device $dv $*: $(tail -n 3 "$W/train.err")"; return 1; }
}
r="" losses=""
for opts in "--max-steps 20" "--max-steps 20 --dropout 0.3 --clip-norm 1"; do
	# shellcheck disable=SC2086
	train cpu "$W/cpu.log" "$W/cpu.st" $opts && train "$DEV" "$W/dev.log" "$W/dev.st" $opts || continue
	if r=$("$PY" tests/cuda/torch_side.py compare-losses "$W/dev.log" "$W/cpu.log" 1e-5); then
		ok "cap-train $opts: $DEV losses = cpu's within 1e-5 relative ($r)"
	else
		notok "cap-train $opts: $DEV losses vs cpu: $r"
	fi
	losses="$losses $(echo "$r" | sed -n 's/.*max relative difference \([^ ]*\).*/\1/p')"
	if r=$("$PY" tests/cuda/torch_side.py load-model "$W/dev.st" "$W/cpu.st" 2>&1); then
		ok "the $DEV model loads into PyTorch (strict): $(echo "$r" | tail -n 1)"
	else
		notok "the $DEV model into PyTorch: $(echo "$r" | tail -n 3)"
	fi
done
row "train 20 steps (plain; dropout+clip), max rel. loss diff vs cpu|$losses||"

echo "## generation parity: greedy and beam 3 on $DEV vs cpu ($(elapsed))"
# a model that has learnt something: one epoch on the device (timed below as the benchmark)
if [ "$DRY" = 1 ]; then train cpu "$W/epoch.log" "$W/model.st" --max-steps 30
else train "$DEV" "$W/epoch.log" "$W/model.st" --epochs 1; fi
head_stream() { # in out n: the header and the first n records
	"$PY" -c 'import msgpack, sys
it = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False); h = next(it)
with open(sys.argv[2], "wb") as f:
    f.write(msgpack.packb(h))
    for i, r in zip(range(int(sys.argv[3])), it): f.write(msgpack.packb(r, use_bin_type=True))' "$@"
}
head_stream "$W/features.mp" "$W/f5000.mp" 5000   # the benchmark's
head_stream "$W/features.mp" "$W/f1000.mp" 1000   # parity: the cpu side of beam 3 is slow
for k in 1 3; do
	"$BIN/cap-generate" --device cpu --model "$W/model.st" --beam $k -o "$W/gen-cpu-$k.mp" "$W/f1000.mp" 2>"$W/gen.err" &&
	"$BIN/cap-generate" --device "$DEV" --model "$W/model.st" --beam $k -o "$W/gen-dev-$k.mp" "$W/f1000.mp" 2>>"$W/gen.err" ||
		{ notok "cap-generate --beam $k: $(tail -n 3 "$W/gen.err")"; continue; }
	r=$("$PY" tests/cuda/torch_side.py compare-ids "$W/gen-dev-$k.mp" "$W/gen-cpu-$k.mp") &&
		ok "cap-generate --beam $k: $DEV ids = cpu ids ($r)" || notok "cap-generate --beam $k: $r"
	row "generate --beam $k, ids vs cpu|$r||"
done

echo "## feature parity: images_224 on $DEV vs cpu ($(elapsed))"
"$PY" tests/cuda/torch_side.py make-weights "$W/r152.safetensors" || notok "make-weights"
ls "$D/images_224"/*.jpg >"$W/images.txt"
NIMG=$(wc -l <"$W/images.txt")
"$BIN/cap-encode" --device cpu --weights "$W/r152.safetensors" --batch 8 -o "$W/feat-cpu.mp" <"$W/images.txt" 2>"$W/enc.err" ||
	notok "cap-encode --device cpu: $(tail -n 2 "$W/enc.err")"
for p in fp32 tf32 bf16; do
	[ "$DRY" = 1 ] && [ $p != fp32 ] && continue
	"$BIN/cap-encode" --device "$DEV" --precision $p --weights "$W/r152.safetensors" --batch 64 -o "$W/feat-$p.mp" <"$W/images.txt" 2>"$W/enc.err" ||
		{ notok "cap-encode --device $DEV --precision $p: $(tail -n 2 "$W/enc.err")"; continue; }
	tol=1e-4; [ $p = tf32 ] && tol=1e-2; [ $p = bf16 ] && tol=5e-2
	r=$("$PY" tests/cuda/torch_side.py compare-feats "$W/feat-$p.mp" "$W/feat-cpu.mp" $tol) &&
		ok "cap-encode --precision $p: $DEV features vs cpu: $r" || notok "cap-encode --precision $p vs cpu: $r"
	row "encode $NIMG images $p, vs cpu fp32|$(echo "$r" | sed -n 's/.*max relative error \([^ ]*\).*/\1/p')||"
done

if [ "$RUN_BENCH" = 1 ] && [ "$DRY" != 1 ]; then
	echo "## benchmark ($(elapsed))"
	# train: the epoch above (30,000 captions, batch 64, E=256 H=512), and PyTorch's cuDNN LSTM
	ep=$("$PY" -c 'import msgpack, sys
r = [x for x in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if x.get("type") == "epoch"]
print("%.3f" % r[0]["seconds"] if r else "?")' "$W/epoch.log")
	for p in tf32 bf16; do
		train cuda "$W/e-$p.log" "$W/m-$p.st" --epochs 1 --precision $p && "$PY" -c 'import msgpack, sys
r = [x for x in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if x.get("type") == "epoch"]
print("%.3f" % r[0]["seconds"])' "$W/e-$p.log" >"$W/ep-$p"
	done
	for p in fp32 tf32 bf16; do
		"$PY" tests/cuda/torch_side.py train-bench "$W/features.mp" "$W/captions.mp" 100 $p >"$W/tt-$p" 2>&1 || tail -n 3 "$W/tt-$p"
		t=$(sed -n 's/.* s\/step \([0-9.]*\) s\/epoch.*/\1/p' "$W/tt-$p")
		c=$ep; [ $p != fp32 ] && c=$(cat "$W/ep-$p" 2>/dev/null || echo "?")
		row "train s/epoch $p|$c|${t:-?}|$(awk -v a="$c" -v b="${t:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.1fx", b / a }')"
	done
	# encode: the network alone (batch 256, input from host memory each batch) and end to end
	for p in fp32 tf32 bf16; do
		o=$("$B/tests/tools/cap-encbench" cuda $p 256 10 2>&1) || echo "$o"
		c=$(echo "$o" | sed -n 's/.*: \([0-9.]*\) img\/s.*/\1/p')
		t=$("$PY" tests/cuda/torch_side.py encode-bench 256 10 $p 2>&1 | sed -n 's/.*: \([0-9.]*\) img\/s.*/\1/p')
		row "encode img/s network $p batch 256|${c:-?}|${t:-?}|$(awk -v a="${c:-0}" -v b="${t:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b }')"
	done
	for _ in 1 2 3 4; do cat "$W/images.txt"; done >"$W/images4.txt"
	for p in fp32 bf16; do
		s0=$(date +%s.%N)
		"$BIN/cap-encode" --device cuda --precision $p --weights "$W/r152.safetensors" --batch 256 --decoders "$JOBS" \
			-o "$W/e2e.mp" <"$W/images4.txt" 2>/dev/null
		s1=$(date +%s.%N)
		row "encode img/s end to end from JPEG $p ($((NIMG * 4)) files, incl. start)|$(awk -v n=$((NIMG * 4)) -v a="$s0" -v b="$s1" 'BEGIN { printf "%.0f", n / (b - a) }')||"
	done
	# generate: 5,000 features, greedy and beam 3
	for k in 1 3; do
		s0=$(date +%s.%N)
		"$BIN/cap-generate" --device cuda --model "$W/model.st" --beam $k --batch 256 -o "$W/g.mp" "$W/f5000.mp" 2>/dev/null
		s1=$(date +%s.%N)
		c=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.0f", 5000 / (b - a) }')
		t=$("$PY" tests/cuda/torch_side.py generate-bench "$W/model.st" "$W/f5000.mp" 5000 $k 256 2>&1 | sed -n 's/.*, \([0-9.]*\) captions\/s.*/\1/p')
		row "generate captions/s beam $k (5,000, batch 256, incl. start)|$c|${t:-?}|$(awk -v a="$c" -v b="${t:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b }')"
	done
fi

echo "## summary ($(elapsed)): $fails failed"
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | sed 's/^/device: /'
awk -F'|' 'BEGIN { printf "%-58s %-22s %-12s %s\n", "stage", "cap", "PyTorch", "ratio" }
           { printf "%-58s %-22s %-12s %s\n", $1, $2, $3, $4 }' "$W/table"
[ "$fails" = 0 ]
