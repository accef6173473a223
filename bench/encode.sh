# cap-encode vs PyTorch: full ResNet-152 (torchvision random init, the same weights file on both
# sides), the same real JPEGs, end to end from files, the same number of threads; PyTorch at its
# best batch size among 1, 2, 4, 8. Prints medians of REPS runs, peak RSS and the ratio.
# Environment: BENCH_IMAGES (default 64), BENCH_THREADS (2), BENCH_REPS (3), BENCH_BATCH (ours, 2).
set -u
: "${CAP_BIN:?}" "${PYTHON:=/usr/bin/python3}" "${CAP_DATA:?}"
here=$(cd "$(dirname "$0")" && pwd)
N=${BENCH_IMAGES:-64} THREADS=${BENCH_THREADS:-2} REPS=${BENCH_REPS:-3} OURB=${BENCH_BATCH:-2}
T=$(mktemp -d "${TMPDIR:-/tmp}/cap-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
if [ ! -d "$CAP_DATA/flickr8k/images" ]; then echo "skip: no $CAP_DATA/flickr8k/images"; exit 0; fi
ls "$CAP_DATA"/flickr8k/images/*.jpg | sort | head -n "$N" >"$T/list"
N=$(wc -l <"$T/list")
for i in 1 2 3 4; do cat "$T/list"; done >"$T/list4"
: >"$T/empty"
"$PYTHON" "$here/encode_torch.py" weights "$T/w.safetensors" "$T/w.pth" || exit 1

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
best() { sort -n | head -n 1; }   # the fastest run: on a shared machine the least disturbed

# ours: wall time and peak RSS of the whole process (weights load included); the load alone is
# measured with an empty list, so the steady rate is n / (wall - load).
ours() { # label, list, extra options...
	label=$1 list=$2; shift 2
	for r in $(seq "$REPS"); do
		/usr/bin/time -f "%e %M" -o "$T/time" "$CAP_BIN/cap-encode" --weights "$T/w.safetensors" \
			--threads "$THREADS" --stats "$@" <"$list" >"$T/out.mp" 2>"$T/err" || { cat "$T/err"; return 1; }
		sed -n 's/.* images in \([0-9.]*\) s,.*/\1/p' "$T/err" >>"$T/$label.loop"
		cat "$T/time"
	done >"$T/$label.times"
}
ours load "$T/empty" --batch "$OURB"
ours fp32 "$T/list" --batch "$OURB"
ours bf16 "$T/list" --batch "$OURB" --bf16
REPS=1 ours fp32x4 "$T/list4" --batch "$OURB"
load=$(cut -d' ' -f1 "$T/load.times" | median)

row() { printf '%-18s %5s %10s %10s %10s %8s\n' "$@"; }
echo "images: $N Flickr8k JPEGs, ResNet-152 at 224, threads: $THREADS, $REPS runs each"
echo "e2e: whole process from files (weights load included); enc: without the load; best = fastest run"
row "" batch "e2e median" "e2e best" "enc median" "RSS MB"
for m in fp32 bf16; do
	wall=$(cut -d' ' -f1 "$T/$m.times" | median)
	rss=$(cut -d' ' -f2 "$T/$m.times" | median)
	bwall=$(cut -d' ' -f1 "$T/$m.times" | best)
	row "cap-encode $m" "$OURB" "$(echo "$N $wall" | awk '{printf "%.2f", $1/$2}')" "$(echo "$N $bwall" | awk '{printf "%.2f", $1/$2}')" \
		"$(echo "$N $wall $load" | awk '{printf "%.2f", $1/($2-$3)}')" "$(echo "$rss" | awk '{printf "%.0f", $1/1024}')"
	eval "ours_$m=\$(echo \"$N $wall\" | awk '{printf \"%.4f\", \$1/\$2}')"
	eval "oursb_$m=\$(echo \"$N $bwall\" | awk '{printf \"%.4f\", \$1/\$2}')"
done

best=0 bestb=0
for b in 1 2 4 8; do
	for r in $(seq "$REPS"); do
		"$PYTHON" "$here/encode_torch.py" run "$T/w.pth" "$b" "$THREADS" "$T/list" || exit 1
	done >"$T/torch$b.json"
	tot=$("$PYTHON" -c "import json,sys,statistics as s; r=[json.loads(l) for l in open(sys.argv[1])]; print(s.median(x['total_s'] for x in r), s.median(x['encode_s'] for x in r), s.median(x['maxrss_mb'] for x in r), min(x['total_s'] for x in r))" "$T/torch$b.json")
	set -- $tot
	row "pytorch" "$b" "$(echo "$N $1" | awk '{printf "%.2f", $1/$2}')" "$(echo "$N $4" | awk '{printf "%.2f", $1/$2}')" "$(echo "$N $2" | awk '{printf "%.2f", $1/$2}')" "$(echo "$3" | awk '{printf "%.0f", $1}')"
	better=$(echo "$N $1 $best" | awk '{print ($1/$2 > $3) ? 1 : 0}')
	[ "$better" = 1 ] && { best=$(echo "$N $1" | awk '{printf "%.4f", $1/$2}'); bestb=$b; }
	better=$(echo "$N $4 ${bestbest:-0}" | awk '{print ($1/$2 > $3) ? 1 : 0}')
	[ "$better" = 1 ] && bestbest=$(echo "$N $4" | awk '{printf "%.4f", $1/$2}')
done
rss4=$(cut -d' ' -f2 "$T/fp32x4.times" | awk '{printf "%.0f", $1/1024}')
echo "peak RSS with $((4 * N)) images (fp32): $rss4 MB (flat: compare with $N above)"
echo "ratio end to end vs PyTorch at its best batch ($bestb), medians: fp32 $(echo "$ours_fp32 $best" | awk '{printf "%.2f", $1/$2}')x, bf16 $(echo "$ours_bf16 $best" | awk '{printf "%.2f", $1/$2}')x"
echo "ratio end to end, fastest runs (ours vs PyTorch's fastest at any batch): fp32 $(echo "$oursb_fp32 $bestbest" | awk '{printf "%.2f", $1/$2}')x, bf16 $(echo "$oursb_bf16 $bestbest" | awk '{printf "%.2f", $1/$2}')x"
# The share of the machine's limit: the network's FLOPs per image (convolutions, counted by
# PyTorch hooks) at cap's rate in its loop (--stats: from the first image on, decoding
# overlapped; the median of the runs), against the measured peak of each precision.
fl=$("$PYTHON" "$here/encode_torch.py" flops)
for m in fp32 bf16; do
	loop=$(median <"$T/$m.loop")
	peak=${PEAK_GFLOPS:-}; [ "$m" = bf16 ] && peak=${PEAK_BF16_GFLOPS:-}
	echo "$N $loop $fl ${peak:-0} $m" | awk '{r = $1 / $2; g = r * $3 / 1e9;
		printf "cap-encode %s: %.2f GFLOP an image, %.1f img/s in the loop, %.1f GFLOP/s", $5, $3 / 1e9, r, g;
		if ($4 > 0) printf ", %.0f%% of the measured %.0f GFLOP/s peak", 100 * g / $4, $4; printf "\n"}'
done
echo "load: $(uptime | sed 's/.*load/load/') (a busy machine disturbs both sides, OpenMP ones badly)"
