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
#   REBUILD=1 BUILD_ONLY=1 tests/cuda/run.sh   the build alone (tests/cuda/prepare.sh runs it)
# Tools built here beforehand (tests/cuda/prepare.sh builds them into build/gpu with the same
# nvcc and the carried libraries) are used as they are when they start there; otherwise, or with
# REBUILD=1, the script builds on the GPU machine. Every tool runs under a time limit, so that a
# hang costs minutes, not the lease. Logs go to $OUT when it is set (the device tool's folder).
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
row() { printf '%s\n' "$*" >>"$LOGS/table.txt"; }   # "stage|cap|PyTorch|ratio"; kept if the run is cut
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 ))s"; }
LIM=${LIM:-150}                            # seconds any one tool may run
tmo() { timeout -k 5 "$LIM" "$@"; }
LOGS=${OUT:-$W/logs}; mkdir -p "$LOGS"; : >"$LOGS/table.txt"

echo "## what this machine has"
uname -srm
(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || echo "nvidia-smi: none") 2>&1
NVCC=${NVCC:-}
[ -n "$NVCC" ] || for n in /usr/local/cuda/bin/nvcc $(command -v nvcc 2>/dev/null); do [ -x "$n" ] && { NVCC=$n; break; }; done
if [ -z "$NVCC" ]; then echo "no nvcc: cannot build the CUDA module"; exit 1; fi
"$NVCC" --version | tail -n 2
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$NVCC")")}
grep -h '#define CUBLAS_VER_\(MAJOR\|MINOR\|PATCH\)' "$CUDA_HOME"/include/cublas_api.h 2>/dev/null | awk '{ printf "%s=%s ", $2, $3 } END { print "" }'
# cuDNN and cuBLAS: beside the toolkit, else from the nvidia-* wheels PyTorch brings (their lib/
# folders go on LD_LIBRARY_PATH; headers: the wheel's, else the ones prepare.sh carried)
SITE=$("$PY" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
find_so() { # soname: the folder that holds it: the toolkit's, else the one PyTorch loads (its
	# wheel's: a system cuDNN of another version beside it on LD_LIBRARY_PATH breaks torch), else
	# nothing to add (the loader's own search finds a system one)
	for d in "$CUDA_HOME/lib64" "$CUDA_HOME/targets/x86_64-linux/lib"; do
		[ -e "$d/$1" ] && { echo "$d"; return; }; done
	for s in $SITE; do f=$(find "$s/nvidia" -name "$1" 2>/dev/null | head -n 1); [ -n "$f" ] && { dirname "$f"; return; }; done
}
ORIG_LDP=${LD_LIBRARY_PATH:-}   # PyTorch runs with the environment it came with
pyt() { LD_LIBRARY_PATH=$ORIG_LDP "$PY" "$@"; }
CUDNN_INC=${CUDNN_INC:-} CUDNN_LIB=${CUDNN_LIB:-} EXTRA_LIBS=""
for so in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libcudart.so.13; do
	d=$(find_so $so)
	echo "# $so: ${d:-the loader's default search}"
	[ -n "$d" ] && case ":$EXTRA_LIBS:" in *":$d:"*) ;; *) EXTRA_LIBS=${EXTRA_LIBS:+$EXTRA_LIBS:}$d ;; esac
	[ $so = libcudnn.so.9 ] && [ -n "$d" ] && [ "$d" != "$CUDA_HOME/lib64" ] && CUDNN_LIB=$d
done
if [ -z "$CUDNN_INC" ] && [ ! -f "$CUDA_HOME/include/cudnn.h" ]; then
	for s in $SITE; do f=$(find "$s/nvidia" -name cudnn.h 2>/dev/null | head -n 1); [ -n "$f" ] && { CUDNN_INC=$(dirname "$f"); break; }; done
	[ -z "$CUDNN_INC" ] && [ -f "$C/cudnn/include/cudnn.h" ] && CUDNN_INC=$C/cudnn/include
fi
h=${CUDNN_INC:-$CUDA_HOME/include}/cudnn_version.h
[ -f "$h" ] && grep -h '#define CUDNN_\(MAJOR\|MINOR\|PATCHLEVEL\) ' "$h" | awk '{ printf "%s=%s (headers) ", $2, $3 } END { print "" }' ||
	echo "no cudnn.h found (CUDNN_INC=DIR to name it)"
[ -n "$CUDNN_LIB" ] && [ ! -e "$CUDNN_LIB/libcudnn.so" ] && [ -e "$CUDNN_LIB/libcudnn.so.9" ] && {
	mkdir -p "$W/cudnn" && ln -s "$CUDNN_LIB/libcudnn.so.9" "$W/cudnn/libcudnn.so" && CUDNN_LINK=$W/cudnn; }
CUDNN_LINK=${CUDNN_LINK:-$CUDNN_LIB}   # the folder to link with (a wheel's may hold libcudnn.so itself)
"$PY" --version 2>&1
pyt tests/cuda/torch_side.py versions 2>&1 || echo "torch_side versions failed"
echo "# carried: $(ls "$C/lib" 2>/dev/null | tr '\n' ' ')"

echo "## build ($(elapsed))"
[ -f "$C/lib/libmsgpackc.a" ] || { echo "no $C/lib: run tests/cuda/prepare.sh where the Debian libraries are"; exit 1; }
DL=$ROOT/build/dnnl   # oneDNN unpacked here, outside the carried folder (it travels compressed)
mkdir -p "$DL"
[ -f "$DL/libdnnl.so.2" ] || "$PY" -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1], "rb") as f, open(sys.argv[2], "wb") as g: shutil.copyfileobj(f, g)' "$C/lib/libdnnl.so.2.xz" "$DL/libdnnl.so.2"
[ -e "$DL/libdnnl.so" ] || ln -s libdnnl.so.2 "$DL/libdnnl.so"
export LD_LIBRARY_PATH="$DL:$C/lib${EXTRA_LIBS:+:$EXTRA_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
B=build/gpu
mk() { # make with the carried libraries: msgpack-c, libpng, zlib, libjpeg static; oneDNN carried
	make -j"$JOBS" BUILD="$B" NVCC="$NVCC" CUDA_HOME="$CUDA_HOME" PKG_CFLAGS="-I$C/include" \
		PKG_LIBS="-L$C/lib -Wl,-Bstatic -lmsgpackc -lpng16 -lz -ljpeg -Wl,-Bdynamic" \
		DNNL_LIBS="-L$DL -ldnnl" \
		${CUDNN_INC:+CUDNN_INC="$CUDNN_INC"} ${CUDNN_LINK:+CUDNN_LIB="$CUDNN_LINK"} "$@"
}
prebuilt_ok() { [ -x "$B/bin/cap-train" ] && [ -f "$B/lib/cap/libcap-cuda.so" ] && [ -x "$B/tests/test_ops" ] &&
	"$B/bin/cap-train" --version >/dev/null 2>&1; }
if [ "${REBUILD:-0}" != 1 ] && prebuilt_ok; then
	ok "build: the tools and $B/lib/cap/libcap-cuda.so built beforehand start here ($("$B/bin/cap-train" --version 2>&1 | head -n 1))"
	[ -f "$B/build.log" ] && { grep -i 'warning' "$B/build.log" | head -n 10
		[ "$(grep -ci 'warning' "$B/build.log")" = 0 ] && ok "that build without warnings" || notok "that build printed warnings"; }
elif ! command -v make >/dev/null; then
	notok "no usable prebuilt tools and no make here"; exit 1
elif mk NVCC_EXTRA="-Xptxas -v" all tests >"$W/build.log" 2>&1; then
	ok "build here: tools, tests and $B/lib/cap/libcap-cuda.so"
	grep -i 'warning' "$W/build.log" | head -n 10
	[ "$(grep -ci 'warning' "$W/build.log")" = 0 ] && ok "build without warnings" || notok "build printed warnings"
	cp "$W/build.log" "$B/build.log"
else
	notok "build failed"; tail -n 40 "$W/build.log"; exit 1
fi
[ "${BUILD_ONLY:-0}" = 1 ] && exit $((fails > 0))
BIN=$ROOT/$B/bin
export CAP_CUDA_MODULE="$ROOT/$B/lib/cap/libcap-cuda.so"
echo "# ldd of the module:"; ldd "$CAP_CUDA_MODULE" | grep -E 'cu(dnn|blas|dart)|not found' | sed 's/^/#   /'
DEV=cuda
[ "$DRY" = 1 ] && DEV=cpu   # the dry run compares cpu with cpu: the scripts' plumbing, not the GPU

echo "## op test: every op on every backend against ref ($(elapsed))"
tmo "$B/tests/test_ops" >"$W/ops.txt" 2>&1; rc=$?
cp "$W/ops.txt" "$LOGS/ops.txt"
grep -E '^(not ok|skip)' "$W/ops.txt"
grep -E '^ok - cuda .*(bf16|tf32)' "$W/ops.txt" | head -n 4
[ "$rc" != 0 ] && tail -n 5 "$W/ops.txt"
n_cuda=$(grep -c '^ok - cuda ' "$W/ops.txt"); n_bad=$(grep -c '^not ok' "$W/ops.txt")
[ "$rc" = 0 ] && [ "$n_bad" = 0 ] && ok "test_ops: $(grep -c '^ok' "$W/ops.txt") checks passed, $n_cuda of them on cuda" ||
	notok "test_ops: $n_bad failed (exit $rc)"
[ "$DRY" = 1 ] || [ "$n_cuda" -gt 0 ] || notok "test_ops ran nothing on cuda"
if [ "$DRY" != 1 ] && { [ "$rc" != 0 ] || [ "$n_bad" != 0 ]; }; then
	# name the failing op: every op synchronised, then the memory checker where the machine has it
	CAP_CUDA_SYNC=1 LIM=60 tmo "$B/tests/test_ops" 2>&1 | grep -E '^not ok|CUDA' | head -n 10
	CS=$(command -v compute-sanitizer || ls "$CUDA_HOME"/bin/compute-sanitizer 2>/dev/null)
	[ -n "$CS" ] && LIM=120 tmo "$CS" --tool memcheck --print-limit 5 "$B/tests/test_ops" >"$LOGS/memcheck.txt" 2>&1
	[ -n "$CS" ] && grep -E '^=+ (Invalid|ERROR|Program hit)|^=+ +at |^not ok' "$LOGS/memcheck.txt" | head -n 20
fi
tmo "$B/tests/test_cuda_math" >"$W/math.txt" 2>&1 && ok "test_cuda_math (host build of the kernels' element math)" ||
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
TRAIN_ENV=""   # e.g. CAP_CUDA_GRAPHS=1 for one call
train() { # device log model extra...
	dv=$1 lg=$2 md=$3; shift 3
	# shellcheck disable=SC2086
	tmo env $TRAIN_ENV "$BIN/cap-train" --device "$dv" --features "$W/features.mp" --captions "$W/captions.mp" -o "$md" --log "$lg" "$@" 2>"$W/train.err" ||
		{ notok "cap-train --device $dv $*: $(tail -n 3 "$W/train.err")"; return 1; }
}
r="" losses=""
for opts in "--max-steps 20" "--max-steps 20 --dropout 0.3 --clip-norm 1"; do
	# shellcheck disable=SC2086
	train cpu "$W/cpu.log" "$W/cpu.st" $opts && train "$DEV" "$W/dev.log" "$W/dev.st" $opts || continue
	if r=$(pyt tests/cuda/torch_side.py compare-losses "$W/dev.log" "$W/cpu.log" 1e-5); then
		ok "cap-train $opts: $DEV losses = cpu's within 1e-5 relative ($r)"
	else
		notok "cap-train $opts: $DEV losses vs cpu: $r"
	fi
	losses="$losses $(echo "$r" | sed -n 's/.*max relative difference \([^ ]*\).*/\1/p')"
	if r=$(pyt tests/cuda/torch_side.py load-model "$W/dev.st" "$W/cpu.st" 2>&1); then
		ok "the $DEV model loads into PyTorch (strict): $(echo "$r" | tail -n 1)"
	else
		notok "the $DEV model into PyTorch: $(echo "$r" | tail -n 3)"
	fi
done
row "train 20 steps (plain; dropout+clip), max rel. loss diff vs cpu|$losses||"
# CUDA graphs (CAP_CUDA_GRAPHS=1, on request until checked here): padded passes recorded once per
# (captions, steps) and replayed; 60 steps, so that the batches' lengths repeat
if train cpu "$W/cpu.log" "$W/cpu.st" --max-steps 60 && TRAIN_ENV=CAP_CUDA_GRAPHS=1 &&
	train "$DEV" "$W/dev.log" "$W/dev.st" --max-steps 60; then
	g=$(sed -n 's/.*CUDA graphs: //p' "$W/train.err" | tail -n 1)
	if r=$(pyt tests/cuda/torch_side.py compare-losses "$W/dev.log" "$W/cpu.log" 1e-5); then
		ok "cap-train --max-steps 60 with CUDA graphs: $DEV losses = cpu's within 1e-5 relative ($r; graphs: ${g:-none})"
	else
		notok "cap-train --max-steps 60 with CUDA graphs: $DEV losses vs cpu: $r (graphs: ${g:-none})"
	fi
	row "train 60 steps, CUDA graphs (${g:-none}), max rel. loss diff vs cpu|$(echo "$r" | sed -n 's/.*max relative difference \([^ ]*\).*/\1/p')||"
fi
TRAIN_ENV=""

echo "## generation parity: greedy and beam 3 on $DEV vs cpu ($(elapsed))"
# a model that has learnt something: one epoch on the device (timed below as the benchmark)
if [ "$DRY" = 1 ]; then train cpu "$W/epoch.log" "$W/model.st" --max-steps 30
else train "$DEV" "$W/epoch.log" "$W/model.st" --epochs 1 || train cpu "$W/epoch.log" "$W/model.st" --max-steps 60; fi
cp "$W/epoch.log" "$LOGS/epoch-fp32.log" 2>/dev/null
if [ "$DRY" != 1 ]; then   # where a training step's time goes: every op timed after a sync
	CAP_PROFILE=1 tmo "$BIN/cap-train" --device cuda --features "$W/features.mp" --captions "$W/captions.mp" \
		-o "$W/prof.st" --max-steps 100 2>"$LOGS/profile-train.txt" >/dev/null
	echo "# CAP_PROFILE=1 cap-train --device cuda, 100 steps (op totals, synchronised):"
	grep -v '^$' "$LOGS/profile-train.txt" | head -n 24 | sed 's/^/#   /'
fi
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
	tmo "$BIN/cap-generate" --device cpu --model "$W/model.st" --beam $k -o "$W/gen-cpu-$k.mp" "$W/f1000.mp" 2>"$W/gen.err" &&
	tmo "$BIN/cap-generate" --device "$DEV" --model "$W/model.st" --beam $k -o "$W/gen-dev-$k.mp" "$W/f1000.mp" 2>>"$W/gen.err" ||
		{ notok "cap-generate --beam $k: $(tail -n 3 "$W/gen.err")"; continue; }
	r=$(pyt tests/cuda/torch_side.py compare-ids "$W/gen-dev-$k.mp" "$W/gen-cpu-$k.mp") &&
		ok "cap-generate --beam $k: $DEV ids = cpu ids ($r)" || notok "cap-generate --beam $k: $r"
	row "generate --beam $k, ids vs cpu|$r||"
done

echo "## feature parity: images_224 on $DEV vs cpu ($(elapsed))"
pyt tests/cuda/torch_side.py make-weights "$W/r152.safetensors" || notok "make-weights"
ls "$D/images_224"/*.jpg >"$W/images.txt"
NIMG=$(wc -l <"$W/images.txt")
tmo "$BIN/cap-encode" --device cpu --weights "$W/r152.safetensors" --batch 8 -o "$W/feat-cpu.mp" <"$W/images.txt" 2>"$W/enc.err" ||
	notok "cap-encode --device cpu: $(tail -n 2 "$W/enc.err")"
for p in fp32 fp32-any tf32 bf16; do
	[ "$DRY" = 1 ] && [ $p != fp32 ] && continue
	# fp32-any: fp32 with CAP_CUDNN_ALGOS=any (cuDNN's Winograd and FFT allowed, as in PyTorch)
	algos=; [ $p = fp32-any ] && algos=any
	tmo env CAP_CUDNN_ALGOS=$algos "$BIN/cap-encode" --device "$DEV" --precision ${p%-any} --weights "$W/r152.safetensors" --batch 64 -o "$W/feat-$p.mp" <"$W/images.txt" 2>"$W/enc.err" ||
		{ notok "cap-encode --device $DEV --precision $p: $(tail -n 2 "$W/enc.err")"; continue; }
	tol=1e-4; [ $p = tf32 ] && tol=1e-2; [ $p = bf16 ] && tol=5e-2; [ $p = fp32-any ] && tol=1e-4
	r=$(pyt tests/cuda/torch_side.py compare-feats "$W/feat-$p.mp" "$W/feat-cpu.mp" $tol) &&
		ok "cap-encode --precision $p: $DEV features vs cpu: $r" || notok "cap-encode --precision $p vs cpu: $r"
	row "encode $NIMG images $p, vs cpu fp32|$(echo "$r" | sed -n 's/.*max relative error \([^ ]*\).*/\1/p')||"
done

if [ "$RUN_BENCH" = 1 ] && [ "$DRY" != 1 ]; then
	echo "## benchmark ($(elapsed))"
	epoch_s() { "$PY" -c 'import msgpack, sys
r = [x for x in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if x.get("type") == "epoch"]
print("%.3f" % r[0]["seconds"] if r else "?")' "$1"; }
	# train: a whole epoch (30,000 captions, batch 64, E=256 H=512); fp32's is the one above
	epoch_s "$W/epoch.log" >"$W/ep-fp32"
	for p in tf32 bf16; do
		train cuda "$W/e-$p.log" "$W/m-$p.st" --epochs 1 --precision $p && epoch_s "$W/e-$p.log" >"$W/ep-$p"
	done
	# the same with CUDA graphs (fp32, tf32)
	for p in fp32 tf32; do
		TRAIN_ENV=CAP_CUDA_GRAPHS=1
		train cuda "$W/eg-$p.log" "$W/mg-$p.st" --epochs 1 --precision $p && epoch_s "$W/eg-$p.log" >"$W/epg-$p" &&
			echo "# $p epoch with CUDA graphs: $(cat "$W/epg-$p") s ($(sed -n 's/.*CUDA graphs: //p' "$W/train.err" | tail -n 1))"
		TRAIN_ENV=""
	done
	# encode: the network alone (batch 256, input from host memory each batch) and end to end
	for p in fp32 tf32 bf16; do
		tmo "$B/tests/tools/cap-encbench" cuda $p 256 10 >"$W/eb-$p" 2>&1 || { tail -n 3 "$W/eb-$p"; : >"$W/eb-$p"; }
	done
	CAP_CUDNN_ALGOS=any tmo "$B/tests/tools/cap-encbench" cuda fp32 256 10 >"$W/eb-fp32-any" 2>&1 ||
		{ tail -n 3 "$W/eb-fp32-any"; : >"$W/eb-fp32-any"; }
	echo "# fp32 with CAP_CUDNN_ALGOS=any: $(tail -n 1 "$W/eb-fp32-any")"
	# the heuristics' choices against the timed ones
	echo "# bf16 by the heuristics: $(CAP_CUDNN_HEURISTIC=1 tmo "$B/tests/tools/cap-encbench" cuda bf16 256 10 2>&1 | tail -n 1)"
	# end to end: the JPEGs decoded and resized on the CPU's threads while the GPU runs, the loop
	# timed by cap-encode --stats; the whole process (start, weights, cuDNN's timing) apart
	for _ in 1 2 3 4 5 6 7 8; do cat "$W/images.txt"; done >"$W/images8.txt"
	NE2E=$((NIMG * 8))
	for p in fp32 tf32 bf16; do
		s0=$(date +%s.%N)
		if tmo "$BIN/cap-encode" --device cuda --precision $p --weights "$W/r152.safetensors" --batch 256 --decoders "$JOBS" \
			--stats -o "$W/e2e.mp" <"$W/images8.txt" 2>"$W/e2e.err"; then
			s1=$(date +%s.%N)
			l=$(sed -n 's/.* \([0-9.]*\) img\/s .*/\1/p' "$W/e2e.err")
			awk -v l="${l:-?}" -v n=$NE2E -v a="$s0" -v b="$s1" 'BEGIN { printf "%s (whole run %.0f)", l, n / (b - a) }' >"$W/e2e-$p"
			sed -n 's/.*(from the first image on, \(.*\))$/# encode '$p': \1/p' "$W/e2e.err"
		else
			tail -n 2 "$W/e2e.err"; echo "failed" >"$W/e2e-$p"
		fi
	done
	# generate: 5,000 features, greedy and beam 3; the loop timed by cap-generate --stats (as
	# PyTorch's figure is its loop alone), the whole process apart
	for k in 1 3; do
		s0=$(date +%s.%N)
		if tmo "$BIN/cap-generate" --device cuda --model "$W/model.st" --beam $k --batch 256 --stats -o "$W/g.mp" \
			"$W/f5000.mp" 2>"$W/g.err"; then
			s1=$(date +%s.%N)
			l=$(sed -n 's/.* \([0-9.]*\) captions\/s .*/\1/p' "$W/g.err")
			awk -v l="${l:-?}" -v a="$s0" -v b="$s1" 'BEGIN { printf "%s (whole run %.0f)", l, 5000 / (b - a) }' >"$W/gen-$k"
		else
			tail -n 2 "$W/g.err"; echo "failed" >"$W/gen-$k"
		fi
	done
	# PyTorch on the same card, every benchmark in one process
	LIM=300 tmo env LD_LIBRARY_PATH="$ORIG_LDP" "$PY" tests/cuda/torch_side.py multi \
		"train-bench $W/features.mp $W/captions.mp 100 fp32" "train-bench $W/features.mp $W/captions.mp 100 tf32" \
		"train-bench $W/features.mp $W/captions.mp 100 bf16" "train-bench $W/features.mp $W/captions.mp 100 bf16-autocast" \
		"encode-bench 256 10 fp32" "encode-bench 256 10 tf32" "encode-bench 256 10 bf16" \
		"generate-bench $W/model.st $W/f5000.mp 5000 1 256" "generate-bench $W/model.st $W/f5000.mp 5000 3 256" \
		>"$W/torch.txt" 2>&1
	cp "$W/torch.txt" "$LOGS/torch.txt"
	grep -i 'error\|failed' "$W/torch.txt" | head -n 6
	tt() { sed -n "s/^torch train $1: .* s\/step \([0-9.]*\) s\/epoch.*/\1/p" "$W/torch.txt"; }
	for p in fp32 tf32 bf16; do
		c=$(cat "$W/ep-$p" 2>/dev/null || echo "?") t=$(tt $p)
		[ $p = bf16 ] && { ta=$(tt bf16-autocast); t="${t:-?} (autocast ${ta:-?})"
			t1=$(printf '%s\n%s\n' "$(tt bf16)" "$ta" | grep . | sort -g | head -n 1); } || t1=$t
		row "train s/epoch $p (PyTorch: cuDNN LSTM)|$c|${t:-?}|$(awk -v a="$c" -v b="${t1:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", b / a }')"
	done
	for p in fp32 tf32; do
		c=$(cat "$W/epg-$p" 2>/dev/null || echo "?") t=$(tt $p)
		row "train s/epoch $p, CUDA graphs (CAP_CUDA_GRAPHS=1)|$c|${t:-?}|$(awk -v a="$c" -v b="${t:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", b / a }')"
	done
	for p in fp32 fp32-any tf32 bf16; do
		c=$(sed -n 's/.*: \([0-9.]*\) img\/s.*/\1/p' "$W/eb-$p")
		t=$(sed -n "s/^torch encode ${p%-any} batch 256: \([0-9.]*\) img\/s.*/\1/p" "$W/torch.txt")
		row "encode img/s network $p batch 256 (incl. copies)|${c:-?}|${t:-?}|$(awk -v a="${c:-0}" -v b="${t:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b }')"
	done
	for p in fp32 tf32 bf16; do
		c=$(cat "$W/e2e-$p") t=$(sed -n "s/^torch encode $p batch 256: \([0-9.]*\) img\/s.*/\1/p" "$W/torch.txt")
		row "encode img/s from JPEG $p ($NE2E files; vs PyTorch's network)|$c|${t:-?}|$(awk -v a="${c%% *}" -v b="${t:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b }')"
	done
	for k in 1 3; do
		c=$(cat "$W/gen-$k") n=greedy; [ $k = 3 ] && n="beam 3"
		t=$(sed -n "s/^torch generate $n: .*, \([0-9.]*\) captions\/s.*/\1/p" "$W/torch.txt")
		row "generate captions/s beam $k (5,000 features, batch 256)|$c|${t:-?}|$(awk -v a="${c%% *}" -v b="${t:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b }')"
	done
fi

echo "## summary ($(elapsed)): $fails failed"
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | sed 's/^/device: /'
awk -F'|' 'BEGIN { printf "%-58s %-22s %-12s %s\n", "stage", "cap", "PyTorch", "ratio" }
           { printf "%-58s %-22s %-12s %s\n", $1, $2, $3, $4 }' "$LOGS/table.txt"
[ "$fails" = 0 ]
