#!/bin/sh
# make demo: runs pipelines/shapes.mk with its output in a log file, then prints a short
# summary: the test captions, the scores, and where the outputs are. A second run finds the
# graph up to date and shows the same results again without retraining.
#   scripts/demo.sh BIN OUT
set -u
bin=${1:-build/bin}
out=${2:-build/demo}
mk="pipelines/shapes.mk"
log="$out/pipeline.log"
graph() { make --no-print-directory -f "$mk" BIN="$bin" OUT="$out" "$@"; }

mkdir -p "$out"
# (the outputs themselves: the graph's `all` prints where they are, so it is never "up to date")
if graph -q "$out/scores.txt" "$out/test-captions.txt" "$out/report.html" >/dev/null 2>&1; then
	echo "demo: $out is up to date; the results of the last run (rm -r $out to run it again):"
else
	echo "demo: tokenize, encode 48 images, train the decoder (150 epochs, about two minutes"
	echo "      on 2 cores), caption and score the 12 test images; log: $log"
	start=$(date +%s)
	if ! graph >"$log" 2>&1; then
		echo "demo: the pipeline failed; the end of $log:" >&2
		tail -n 15 "$log" >&2
		exit 1
	fi
	echo "demo: done in $(( $(date +%s) - start )) s"
fi

echo
echo "Captions of the test images (image, generated caption; the file name says what it shows):"
awk -F '\t' '{ printf "  %-30s %s\n", $1, $2 }' "$out/test-captions.txt"
echo
echo "Scores against the five reference captions of each test image (cap-eval):"
grep -v '^#' "$out/scores.txt" | tr '\t' ' ' | paste -s -d ' ' - | sed 's/ \([A-Z]\)/,  \1/g; s/^/  /'
last=$(grep '^epoch [0-9]*/[0-9]*:' "$log" 2>/dev/null | tail -n 1)
[ -n "$last" ] && echo "  training, last epoch: $last"
echo
echo "Where things are ($out):"
echo "  model.safetensors    the trained decoder (cap-dump $out/model.safetensors shows its history)"
echo "  features.mp          ResNet-152 features of the images (cap-dump $out/features.mp | head -2)"
echo "  generated.mp         the generated captions as a stream; test-captions.txt as text"
echo "  scores.txt           BLEU-1..4, CIDEr-D, ROUGE-L"
[ -f "$log" ] && echo "  pipeline.log         every command the graph ran, and cap-train's epochs"
for r in "$out"/report.html "$out"/*/report.html; do
	[ -f "$r" ] && echo "  $(printf '%-20s' "${r#"$out"/}") the run's report: open it in a browser"
done
echo
echo "Next: put the tools on your PATH (export PATH=\"$(cd "$bin" && pwd):\$PATH\"), read"
echo "man -l man/cap.7, and see the README's \"What just happened\" for Flickr8k and real weights."
