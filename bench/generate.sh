# cap-generate vs PyTorch: captions per second for greedy and beam 3 on 1,000 features with the
# same decoder (E=256, H=512, V from Flickr8k's train split at min-count 5) and the same loop
# (image step, <start>, argmax or beam search up to 20 words), the same threads; each side at
# its best batch size of BENCH_BATCHES (default: 64 and all N features at once, the loop a user
# writes), so that the ratio is against PyTorch at its best.
# The decoder is trained briefly by cap-train (BENCH_TRAIN_STEPS steps on real train captions
# with random features), so that captions end after about ten words as a trained model's do;
# without cap-train a randomly initialised one is used. Features: random (cap-generate's speed
# does not depend on their values), or BENCH_FEATURES=FILE (e.g. cap-encode output).
# Ours: the loop as cap-generate --stats times it (from the first feature read to the last caption
# written), against PyTorch's loop alone; the wall time of the whole process (model load and
# hash, stream I/O) beside it.
# Debian's torch 1.13 does its Linear and LSTM products with the system BLAS, which is the
# netlib reference libblas3 unless another is installed (about 3 GFLOP/s here): the PyTorch
# column is "as installed". BENCH_TORCH_BLAS=DIR (a directory holding another libblas.so.3, e.g.
# OpenBLAS unpacked from libopenblas0-pthread) adds a column with PyTorch on that BLAS.
# Environment: BENCH_N (1000), BENCH_THREADS (2), BENCH_BATCH (64), BENCH_REPS (3),
# BENCH_BEAMS ("1 3"), BENCH_SYSTEM_BLAS (1; 0 skips PyTorch on the system BLAS),
# BENCH_TRAIN_STEPS (150), BENCH_MODEL=FILE to skip training, BENCH_TORCH_BLAS=DIR.
set -u
: "${CAP_BIN:?}" "${PYTHON:=/usr/bin/python3}" "${CAP_DATA:?}"
here=$(cd "$(dirname "$0")" && pwd)
N=${BENCH_N:-1000} THREADS=${BENCH_THREADS:-2} BATCH=${BENCH_BATCH:-64} REPS=${BENCH_REPS:-3}
STEPS=${BENCH_TRAIN_STEPS:-150}
T=$(mktemp -d "${TMPDIR:-/tmp}/cap-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
F=$CAP_DATA/flickr8k
if [ ! -f "$F/Flickr8k.token.txt" ]; then echo "skip: no $F/Flickr8k.token.txt"; exit 0; fi
"$CAP_BIN/cap-tokenize" vocab --min-count 5 --split "$F/Flickr_8k.trainImages.txt" -o "$T/tok.json" \
	"$F/Flickr8k.token.txt" 2>/dev/null || exit 1
"$PYTHON" "$here/generate_torch.py" model "$T/tok.json" "$T/random.st" "$T/feats.mp" "$N" || exit 1
[ -n "${BENCH_FEATURES:-}" ] && cp "$BENCH_FEATURES" "$T/feats.mp"
M=${BENCH_MODEL:-}
if [ -z "$M" ]; then
	"$CAP_BIN/cap-tokenize" encode --tokenizer "$T/tok.json" --split "$F/Flickr_8k.trainImages.txt" \
		-o "$T/train.mp" "$F/Flickr8k.token.txt" 2>/dev/null
	"$PYTHON" "$here/generate_torch.py" features "$F/Flickr_8k.trainImages.txt" "$T/train-feats.mp"
	if "$CAP_BIN/cap-train" --features "$T/train-feats.mp" --captions "$T/train.mp" -o "$T/trained.st" \
		--max-steps "$STEPS" --epochs 1 --threads "$THREADS" >/dev/null 2>"$T/train.err"; then
		M=$T/trained.st; what="cap-train, $STEPS steps"
	else
		M=$T/random.st; what="random init (cap-train failed: $(tail -n 1 "$T/train.err"))"
	fi
else
	what=$M
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
row() { printf '%-10s %14s %14s %14s %8s %10s %16s %8s\n' "$@"; }
BATCHES=${BENCH_BATCHES:-$BATCH $N}   # each side at its best of these batch sizes
torch_run() { # K, [LD_LIBRARY_PATH]: the best over BATCHES of the median loop seconds of REPS runs
	for bt in $BATCHES; do
		for r in $(seq "$REPS"); do
			LD_LIBRARY_PATH=${2:-${LD_LIBRARY_PATH:-}} "$PYTHON" "$here/generate_torch.py" run "$M" "$T/feats.mp" "$1" "$THREADS" "$bt" || exit 1
		done | "$PYTHON" -c "import json, sys, statistics as s; print(s.median(json.loads(l)['loop_s'] for l in sys.stdin))"
	done | sort -n | head -n 1
}
echo "decoder: $what; $N features; threads $THREADS, each side at its best batch of: $BATCHES; max-len 20; median of $REPS runs"
row "" "cap loop capt/s" "whole process" "torch capt/s" "ratio" "avg words" "torch+BLAS capt/s" "ratio"
for K in ${BENCH_BEAMS:-1 3}; do
	for bt in $BATCHES; do   # "loop seconds whole seconds": the medians of REPS runs at this batch
		for r in $(seq "$REPS"); do
			/usr/bin/time -f "%e" -o "$T/time" "$CAP_BIN/cap-generate" --model "$M" --beam "$K" \
				--threads "$THREADS" --batch "$bt" --stats "$T/feats.mp" >"$T/gen.mp" 2>"$T/stats" || exit 1
			echo "$(sed -n 's/.* captions in \([0-9.]*\) s,.*/\1/p' "$T/stats") $(tail -n 1 "$T/time")"
		done >"$T/runs"
		echo "$(cut -d' ' -f1 "$T/runs" | median) $(cut -d' ' -f2 "$T/runs" | median)"
	done | sort -n | head -n 1 >"$T/both"
	cut -d' ' -f1 "$T/both" >"$T/ours"
	whole=$(awk -v n="$N" '{printf "%.1f", n / $2}' "$T/both")
	words=$("$PYTHON" -c "
import msgpack, sys
it = msgpack.Unpacker(open(sys.argv[1], 'rb'), raw=False); next(it)
L = [len(r['ids']) for r in it]; print('%.1f' % (sum(L) / len(L)))" "$T/gen.mp")
	ours=$(awk -v n="$N" '{printf "%.1f", n / $1}' "$T/ours")
	torch=-
	if [ "${BENCH_SYSTEM_BLAS:-1}" = 1 ]; then   # 0: skip PyTorch on the system BLAS (slow)
		torch_run "$K" >"$T/torch"
		torch=$(awk -v n="$N" '{printf "%.1f", n / $1}' "$T/torch")
	fi
	tb=- rb=-
	if [ -n "${BENCH_TORCH_BLAS:-}" ]; then
		torch_run "$K" "$BENCH_TORCH_BLAS" >"$T/torchb"
		tb=$(awk -v n="$N" '{printf "%.1f", n / $1}' "$T/torchb")
		rb=$(echo "$ours $tb" | awk '{printf "%.2fx", $1 / $2}')
	fi
	name=greedy; [ "$K" -gt 1 ] && name="beam $K"
	row "$name" "$ours" "$whole" "$torch" "$(echo "$ours $torch" | awk '$2 != "-" {printf "%.2fx", $1 / $2}')" "$words" "$tb" "$rb"
	# FLOPs of the words scored: each step of each live hypothesis is an LSTM step and the output
	# layer, 2 (4HE + 4HH + HV); the image step adds the projection 2 DE (E 256, H 512, D 2048).
	"$PYTHON" -c "
import msgpack, os, sys
h = next(msgpack.Unpacker(open(sys.argv[1], 'rb'), raw=False))
V, K, N, w, s = h['vocab_size'], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(open(sys.argv[5]).read())
E, H, D = 256, 512, 2048
step = 2 * (4 * H * E + 4 * H * H + H * V)
fl = N * (2 * D * E + step + K * (w + 1) * step)
peak = float(os.environ.get('PEAK_GFLOPS') or 0)
print('%-10s %.1f GFLOP (words + 1 steps of %d hypotheses), %.1f GFLOP/s in the loop%s' % ('', fl / 1e9, K, fl / s / 1e9,
      ', %.0f%% of the measured %.0f GFLOP/s peak' % (100 * fl / s / 1e9 / peak, peak) if peak else ''))
# What cap executes is less: once a state has stepped V rows it gathers layer 0's input products
# from its gate table (decoder.h), made once by a product over the vocabulary. About (R word
# rows stepped): the model's FLOPs less 2 * 4HE for the rows past the first V, plus the table.
R = N * K * w
if R > V:
    ex = fl - (R - V) * 2 * 4 * H * E + V * 2 * 4 * H * E
    print('%-10s about %.1f GFLOP executed (gate table), %.1f GFLOP/s%s' % ('', ex / 1e9, ex / s / 1e9,
          ', %.0f%% of peak' % (100 * ex / s / 1e9 / peak) if peak else ''))" \
		"$T/gen.mp" "$K" "$N" "$words" "$T/ours"
done
