# pipelines/shapes.mk (the graph of make demo): outputs and report path, a second make does
# nothing, BEAM reruns only generation, evaluation and the report, EPOCHS the training too,
# PREPROCESS the features; each image encoded once.
. "$(dirname "$0")/lib.sh"
. "$HERE/helpers/pipeline.sh"
R=$T/demo
mk() { make --no-print-directory -C "$ROOT" -f pipelines/shapes.mk BIN="$CAP_BIN" OUT="$R" EPOCHS=3 \
	PREPROCESS="--squash 32 --batch 16" THREADS=2 "$@"; }
mk >"$T/run.log" 2>&1
check_eq "shapes graph runs" "$?" 0
grep -q "^shapes.mk: report: $R/report.html$" "$T/run.log" && ok "prints the report's path" || notok "prints the report's path"
for f in settings.txt scores.txt test-captions.txt report.html; do [ -s "$R/$f" ] || notok "run folder holds $f"; done
ok "run folder holds settings.txt, scores.txt, test-captions.txt, report.html"
check_eq "each image encoded once: 36 + 12 records, 2 cap-encode runs" \
	"$(cap-dump --no-header "$R/features.mp" | wc -l) $(cap-dump --no-header "$R/test-features.mp" | wc -l) $(grep -c '/cap-encode ' "$T/run.log")" "36 12 2"
mk >"$T/again.log" 2>&1
check_eq "a second make runs no tool" "$(tools_in "$T/again.log")" ""
up="features.mp test-features.mp model.safetensors tokenizer.json"
before=$(cd "$R" && mtimes $up)
mk BEAM=1 >"$T/beam.log" 2>&1
check_eq "BEAM=1: generation, evaluation and the report" "$(tools_in "$T/beam.log")" "cap-generate cap-eval cap-report"
check_eq "BEAM=1: features and model untouched" "$(cd "$R" && mtimes $up)" "$before"
mk BEAM=1 EPOCHS=4 -n >"$T/n.log" 2>&1
check_eq "EPOCHS: training and what follows" "$(tools_in "$T/n.log")" "cap-train cap-generate cap-eval cap-report"
mk BEAM=1 -n >"$T/n0.log" 2>&1
check_eq "make -n wrote no stamp: the settings of the last real run still need nothing" "$(tools_in "$T/n0.log")" ""
mk BEAM=1 EPOCHS=4 PREPROCESS="--squash 40" -n >"$T/n.log" 2>&1
check_eq "PREPROCESS: the features too" "$(tools_in "$T/n.log")" "cap-encode cap-train cap-generate cap-eval cap-report"
