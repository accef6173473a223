# pipelines/flickr8k.mk on a small Flickr8k made of examples/shapes: a wrong IMAGES fails at
# the first step; every step reruns exactly when one of its settings (or inputs) changed; each
# image is encoded once; run folders hold their settings and scores and sit side by side.
. "$(dirname "$0")/lib.sh"
. "$HERE/helpers/pipeline.sh"
mini_flickr "$T"
mk() { make --no-print-directory -C "$ROOT" -f pipelines/flickr8k.mk BIN="$CAP_BIN" FLICKR="$T/f8k" \
	IMAGES="$T/jpg" MIN_COUNT=1 EPOCHS=2 EMBED=16 HIDDEN=32 BATCH=16 SHARDS=2 THREADS=2 \
	PREPROCESS="--squash 32 --batch 16" "$@"; }
A=$T/runs/a

# A wrong IMAGES: the first step fails, naming it; nothing is encoded.
check_fails "IMAGES not a folder: fails naming it" 2 "IMAGES=$T/nope is not a folder" mk OUT="$A" IMAGES="$T/nope"
check_eq "IMAGES not a folder: nothing encoded" "$(grep -c cap-encode "$T/.out")" 0
mkdir "$T/empty"
check_fails "IMAGES without the split's images: fails naming it" 2 \
	"no image of Flickr_8k.trainImages.txt Flickr_8k.devImages.txt under IMAGES=$T/empty" mk OUT="$A" IMAGES="$T/empty"
check_eq "no image list left behind" "$(ls "$A"/images.txt 2>/dev/null | wc -l)" 0

# IMAGES fixed: the run goes through without make clean.
mk OUT="$A" >"$T/a.log" 2>&1
check_eq "the run after fixing IMAGES succeeds" "$?" 0
for f in settings.txt scores.txt scores.json report.html model.safetensors features.1.mp features.2.mp test-features.mp; do
	[ -s "$A/$f" ] || notok "run folder holds $f"
done
ok "run folder holds settings.txt, scores.txt, report.html, the model and the features"
grep -q "flickr8k.mk: report: $A/report.html" "$T/a.log" && ok "the report's path is printed" || notok "the report's path is printed"
check_eq "settings.txt records the settings" "$(grep -c -e '^train.EPOCHS=2$' -e '^generate.BEAM=3$' -e '^encoder.WEIGHTS=random:1$' -e '^shards.SHARDS=2$' "$A/settings.txt")" 4
grep -q '^CIDEr-D	[0-9]' "$A/scores.txt" && ok "scores.txt holds the scores" || notok "scores.txt holds the scores"
check_eq "each image encoded once: 3 cap-encode runs (2 shards, the test images)" "$(grep -c '/cap-encode ' "$T/a.log")" 3
n=$( (cap-dump --no-header "$A/features.mp"; cap-dump --no-header "$A/test-features.mp") | sed 's/.*"image":"\([^"]*\)".*/\1/' | sort -u | wc -l)
r=$( (cap-dump --no-header "$A/features.mp"; cap-dump --no-header "$A/test-features.mp") | wc -l)
check_eq "each image encoded once: 48 records of 48 images" "$r $n" "48 48"
check_eq "test features from the test split only" "$(cap-dump --no-header "$A/test-features.mp" | wc -l)" 12
grep -q -- "--threads 2 --shard 1/2" "$T/a.log" && ok "THREADS passed to the tools" || notok "THREADS passed to the tools"
check_eq "THREADS defaults to the core count" "$(make --no-print-directory -C "$ROOT" -f pipelines/flickr8k.mk OUT="$T/fresh" FLICKR="$T/f8k" IMAGES="$T/jpg" -n "$T/fresh/test-features.mp" 2>/dev/null | grep -o -- '--threads [0-9]*' | head -n 1)" "--threads $(nproc)"

# Nothing changed: nothing to do.
mk OUT="$A" -n >"$T/n0.log" 2>&1
check_eq "same settings: make -n runs no tool" "$(tools_in "$T/n0.log")" ""

# BEAM: generation, evaluation and the report only (a real run, by mtimes).
up="features.1.mp features.2.mp features.mp test-features.mp tokenizer.json train.captions.mp model.safetensors"
down="generated.mp scores.txt scores.json report.html"
before_up=$(cd "$A" && mtimes $up); before_down=$(cd "$A" && mtimes $down)
sleep 0.05
mk OUT="$A" BEAM=2 >"$T/beam.log" 2>&1
check_eq "BEAM=2: the run succeeds" "$?" 0
check_eq "BEAM=2: features, captions and model untouched" "$(cd "$A" && mtimes $up)" "$before_up"
changed=0
for f in $down; do [ "$(cd "$A" && mtimes "$f")" != "$(echo "$before_down" | grep "^$f ")" ] && changed=$((changed + 1)); done
check_eq "BEAM=2: generated, scores and report rewritten" "$changed" 4
check_eq "BEAM=2: tools run" "$(tools_in "$T/beam.log")" "cap-generate cap-eval cap-report"
grep -q '^generate.BEAM=2$' "$A/settings.txt" && ok "BEAM=2 in settings.txt" || notok "BEAM=2 in settings.txt"
mk OUT="$A" BEAM=2 -n >"$T/n1.log" 2>&1
check_eq "BEAM=2 again: nothing to do" "$(tools_in "$T/n1.log")" ""

# What each setting reruns (make -n, each from the built state).
save_stamps "$A"
dry() { restore_stamps "$A"; mk OUT="$A" BEAM=2 -n "$@" >"$T/n.log" 2>&1; }
dry EPOCHS=3
check_eq "EPOCHS: training and what follows" "$(tools_in "$T/n.log")" "cap-train cap-generate cap-eval cap-report"
dry HIDDEN=24
check_eq "HIDDEN: training and what follows" "$(tools_in "$T/n.log")" "cap-train cap-generate cap-eval cap-report"
dry TRAIN_PRECISION=bf16
check_eq "TRAIN_PRECISION: training (in bf16) and what follows" "$(tools_in "$T/n.log") $(grep -c -- '--precision bf16' "$T/n.log")" \
	"cap-train cap-generate cap-eval cap-report 1"
dry PREPROCESS="--squash 40 --batch 16"
check_eq "PREPROCESS: the features too" "$(tools_in "$T/n.log")" "cap-encode cap-train cap-generate cap-eval cap-report"
check_eq "PREPROCESS: both shards and the test images" "$(grep -c '/cap-encode ' "$T/n.log")" 3
dry WEIGHTS=random:2
check_eq "WEIGHTS: the features too" "$(grep -c '/cap-encode --weights random:2 ' "$T/n.log")" 3
dry SHARDS=3
check_eq "SHARDS: the train shards, not the test images" "$(grep -c '/cap-encode ' "$T/n.log") $(grep -c -- '--shard [123]/3 ' "$T/n.log")" "3 3"
dry MIN_COUNT=2
check_eq "MIN_COUNT: the vocabulary, captions and what follows, not the features" "$(tools_in "$T/n.log")" \
	"cap-tokenize cap-train cap-generate cap-eval cap-report"
dry IMAGES="$T/jpg/"
check_eq "IMAGES spelled the same (trailing /): nothing to do" "$(tools_in "$T/n.log")" ""
mkdir -p "$T/jpg2" && cp "$T"/jpg/*.jpg "$T/jpg2/"
dry IMAGES="$T/jpg2"
grep -q "find \"$T/jpg2\"" "$T/n.log" && ok "IMAGES: the image lists are made again" || notok "IMAGES: the image lists are made again"
dry
check_eq "the settings of the built run again: nothing to do" "$(tools_in "$T/n.log")" ""

# A second run side by side with other settings; the summary.
mk OUT="$T/runs/b" BEAM=1 EPOCHS=3 >"$T/b.log" 2>&1
check_eq "a second run in another folder" "$?" 0
check_eq "the first run's scores are still there" "$(ls "$A/scores.txt" "$T/runs/b/scores.txt" | wc -l)" 2
mk OUT="$A" summary RUNS="$T/runs" >"$T/sum.txt" 2>"$T/sum.err"
check_eq "summary: header with the differing settings and the scores" "$(head -n 1 "$T/sum.txt")" \
	"run	EPOCHS	BEAM	BLEU-1	BLEU-4	CIDEr-D	ROUGE-L"
check_eq "summary: one line a run" "$(sed -n '2p;3p' "$T/sum.txt" | cut -f1-3 | tr '\t\n' ' ')" "$A 2 2 $T/runs/b 3 1 "
check_eq "summary: the scores of scores.txt" "$(sed -n 2p "$T/sum.txt" | cut -f6)" "$(sed -n 's/^CIDEr-D	//p' "$A/scores.txt")"
check_fails "summary of a folder without runs" 1 "no run under" "$ROOT/pipelines/summary.sh" "$T/jpg"
