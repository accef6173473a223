# cap-generate and cap-eval as commands, on the real pipeline at toy size: six Flickr8k images
# encoded with random weights, a small decoder trained on their captions, captions generated
# and scored. (Parity with PyTorch: tests/py/test_generate_parity.py; metric values against
# nltk and a re-implementation: tests/py/test_eval_oracle.py.)
. "$(dirname "$0")/lib.sh"
if ! have_data; then skip "cap-generate/cap-eval commands: no \$CAP_DATA/flickr8k"; exit 0; fi
F=$DATA/flickr8k
TOK=$F/Flickr8k.token.txt
ls "$F/images" | head -n 6 >"$T/split.txt"
cap-tokenize vocab --min-count 1 --split "$T/split.txt" -o "$T/tok.json" "$TOK" 2>/dev/null
cap-tokenize encode --tokenizer "$T/tok.json" --split "$T/split.txt" -o "$T/caps.mp" "$TOK" 2>/dev/null
sed "s|^|$F/images/|" "$T/split.txt" | cap-encode --weights random:1 --basename --threads 2 -o "$T/feats.mp" 2>/dev/null
check "cap-train makes a small model" cap-train --features "$T/feats.mp" --captions "$T/caps.mp" \
	-o "$T/model.st" --embed 32 --hidden 64 --epochs 40 --batch 10 --threads 2 --seed 1
M=$T/model.st
dump() { cap-dump --no-header "$@"; }

# ---- cap-generate ----
check "greedy to a stream" sh -c "cap-generate --model '$M' '$T/feats.mp' >'$T/gen.mp'"
check_eq "one record per image" "$(dump "$T/gen.mp" | wc -l)" 6
check_eq "header: a generated stream naming model, tokenizer and decoding" \
	"$(cap-dump "$T/gen.mp" | head -n 1 | grep -c '"kind":"generated".*"model":"[0-9a-f]\{64\}".*"tokenizer":"[0-9a-f]\{64\}".*"decoding":{"method":"greedy"')" 1
check_eq "records hold image, caption, ids, logprob" \
	"$(dump "$T/gen.mp" | grep -c '^{"image":"[^"]*","caption":"[^"]*","ids":\[[0-9,]*\],"logprob":-[0-9.e-]*}$')" 6
check_eq "no <start>/<end> in captions" "$(dump "$T/gen.mp" | grep -c '<start>\|<end>')" 0
check "-o writes atomically the same stream" cap-generate --model "$M" -o "$T/gen-o.mp" "$T/feats.mp"
check_same "-o equals stdout" "$T/gen-o.mp" "$T/gen.mp"
cap-generate --model "$M" <"$T/feats.mp" >"$T/gen-stdin.mp"
check_same "features from stdin" "$T/gen-stdin.mp" "$T/gen.mp"
cap-generate --model "$M" --beam 3 --nbest 2 "$T/feats.mp" >"$T/beam.mp"
check_eq "beam 3 with --nbest 2: two ranked hypotheses per image" \
	"$(dump "$T/beam.mp" | grep -c '"nbest":\[{"caption":[^}]*},{"caption":[^}]*}\]}$')" 6
# the search over each row's best words (row_topk, what --device cuda takes) writes the same
# streams as the search over whole rows
CAP_SEARCH_TOPK=1 cap-generate --model "$M" "$T/feats.mp" >"$T/gen-topk.mp"
check_same "greedy over row_topk = greedy over whole rows" "$T/gen-topk.mp" "$T/gen.mp"
CAP_SEARCH_TOPK=1 cap-generate --model "$M" --beam 3 --nbest 2 "$T/feats.mp" >"$T/beam-topk.mp"
check_same "beam 3 over row_topk = beam 3 over whole rows" "$T/beam-topk.mp" "$T/beam.mp"
# bf16 on cpu (AVX512-BF16 only) follows ref's bf16 definition: the same ids, log-probabilities
# within 1e-5 relative, and not those of fp32 (else bf16 was not in effect). A near tie can
# make bf16 and fp32 captions differ, so those are not compared.
if cap-generate --model "$M" --precision bf16 "$T/feats.mp" >"$T/gen16.mp" 2>"$T/gen16.err"; then
	cap-generate --model "$M" --precision bf16 --device ref "$T/feats.mp" >"$T/gen16ref.mp"
	"${PYTHON:-/usr/bin/python3}" - "$T/gen16.mp" "$T/gen16ref.mp" "$T/gen.mp" <<'PYEOF'
import msgpack, sys
def recs(p): return [r for r in msgpack.Unpacker(open(p, "rb"), raw=False) if "ids" in r]
c, r, f = (recs(p) for p in sys.argv[1:4])
same = len(c) == len(r) == 6 and all(a["ids"] == b["ids"] for a, b in zip(c, r))
near = same and max(abs(a["logprob"] - b["logprob"]) / abs(b["logprob"]) for a, b in zip(c, r)) < 1e-5
sys.exit(0 if near and [a["logprob"] for a in c] != [b["logprob"] for b in f] else 1)
PYEOF
	[ $? -eq 0 ] && ok "bf16 greedy on cpu: ref's bf16 ids and log-probabilities, not fp32's" ||
		notok "bf16 greedy on cpu: ref's bf16 ids and log-probabilities, not fp32's"
else
	grep -q "AVX512-BF16" "$T/gen16.err" && skip "cap-generate bf16: this processor has no AVX512-BF16" ||
		notok "cap-generate --precision bf16 ($(cat "$T/gen16.err"))"
fi
check_fails "bf16 refused without AVX512-BF16" 1 "AVX512-BF16" env CAP_CPU_OFF=avx512bf16 \
	cap-generate --model "$M" --precision bf16 "$T/feats.mp"
cap-generate --model "$M" --text "$T/feats.mp" >"$T/gen.txt"
dump "$T/gen.mp" | sed 's/^{"image":"\([^"]*\)","caption":"\([^"]*\)".*/\1	\2/' >"$T/gen-from-mp.txt"
check_same "--text prints IMAGE<TAB>caption lines of the same captions" "$T/gen.txt" "$T/gen-from-mp.txt"
cap-generate --model "$M" --sample --seed 4 --temperature 0.7 --top-k 20 "$T/feats.mp" >"$T/s1.mp"
cap-generate --model "$M" --sample --seed 4 --temperature 0.7 --top-k 20 --batch 2 "$T/feats.mp" >"$T/s2.mp"
check_eq "sampling reproducible with a seed" "$(dump "$T/s1.mp" | cut -d, -f1-2)" "$(dump "$T/s2.mp" | cut -d, -f1-2)"
cat "$T/feats.mp" "$T/feats.mp" | cap-generate --model "$M" >"$T/twice.mp"
check_eq "concatenated feature streams" "$(dump "$T/twice.mp" | wc -l)" 12

check_fails "no --model: usage error" 2 "model" cap-generate "$T/feats.mp"
check_fails "--beam 0 refused" 2 "beam" cap-generate --model "$M" --beam 0 "$T/feats.mp"
check_fails "--sample with --beam refused" 2 "beam" cap-generate --model "$M" --sample --beam 3 "$T/feats.mp"
check_fails "--temperature without --sample refused" 2 "sample" cap-generate --model "$M" --temperature 2 "$T/feats.mp"
check_fails "--nbest above --beam refused" 2 "nbest" cap-generate --model "$M" --beam 2 --nbest 3 "$T/feats.mp"
check_fails "absent model file" 1 "nosuch" cap-generate --model "$T/nosuch.st" "$T/feats.mp"
check_fails "a captions stream is not features" 1 "expected a 'features' stream" cap-generate --model "$M" "$T/caps.mp"
head -c 5000 "$T/feats.mp" >"$T/cut.mp"
check_fails "truncated features: an error with the offset" 1 "offset\|byte" cap-generate --model "$M" -o "$T/cut-out.mp" "$T/cut.mp"
[ ! -e "$T/cut-out.mp" ] && ok "no output file left after an error" || notok "no output file left after an error"

# ---- cap-eval ----
check "generate | eval on the Flickr8k token file" sh -c \
	"cap-generate --model '$M' '$T/feats.mp' | cap-eval --references '$TOK' --split '$T/split.txt' >'$T/score.txt'"
check_eq "six scores, said on which scale" \
	"$(grep -c '^BLEU-[1-4]	[01]\.[0-9]\{4\}$\|^CIDEr-D	[0-9]*\.[0-9]\{4\}$\|^ROUGE-L	[01]\.[0-9]\{4\}$' "$T/score.txt") $(grep -c 'scale' "$T/score.txt")" "6 1"
cap-eval --references "$TOK" --split "$T/split.txt" "$T/gen.txt" >"$T/score-text.txt" 2>/dev/null
check_same "IMAGE<TAB>caption lines score as the stream" "$T/score-text.txt" "$T/score.txt"
cap-eval --references "$T/caps.mp" "$T/gen.mp" >"$T/score-caps.txt" 2>/dev/null
check_same "references from a captions stream score as from the token file" "$T/score-caps.txt" "$T/score.txt"
grep -F -f "$T/split.txt" "$TOK" | sed 's/#[0-9]*	/	/' >"$T/refs.tsv"
cap-eval --references "$T/refs.tsv" --format tsv "$T/gen.mp" >"$T/score-tsv.txt" 2>/dev/null
check_same "references as IMAGE<TAB>caption lines score as the token file" "$T/score-tsv.txt" "$T/score.txt"
cap-eval --references "$TOK" --split "$T/split.txt" --json --per-image "$T/gen.mp" >"$T/score.json" 2>/dev/null
check_eq "--json --per-image" "$(grep -c '^{"images":6,"references":30,.*"bleu":\[.*"cider_d":.*"per_image":\[{"image":"' "$T/score.json")" 1
cap-eval --references "$TOK" --split "$T/split.txt" --per-image "$T/gen.mp" >"$T/per.txt" 2>/dev/null
check_eq "--per-image table: a line per image" "$(grep -c '\.jpg	' "$T/per.txt")" 6
head -n 3 "$T/split.txt" >"$T/split3.txt"
check_fails "references of 3 of 6 images: the other captions are counted" 0 "3 generated captions have no reference" \
	cap-eval --references "$TOK" --split "$T/split3.txt" "$T/gen.mp"
check_fails "images with references but no caption are counted" 0 "have no generated caption" \
	cap-eval --references "$TOK" "$T/gen.mp"
tail -n +100 "$F/Flickr_8k.testImages.txt" | head -n 5 >"$T/other.txt"
check_fails "no image in common: an error, not a score of 0" 1 "nothing to score" \
	cap-eval --references "$TOK" --split "$T/other.txt" "$T/gen.mp"
check_fails "two captions for one image refused" 1 "more than one" cap-eval --references "$TOK" "$T/twice.mp"
check_fails "no --references: usage error" 2 "references" cap-eval "$T/gen.mp"
check_fails "a features stream is not generated captions" 1 "expected a 'generated' stream" \
	cap-eval --references "$TOK" "$T/feats.mp"
printf 'no tab here\n' >"$T/bad.txt"
check_fails "malformed caption line named" 1 "line 1" cap-eval --references "$TOK" "$T/bad.txt"
check_fails "unknown --format" 2 "format" cap-eval --references "$TOK" --format nope "$T/gen.mp"
