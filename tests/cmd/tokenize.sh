# cap-tokenize as a command: vocab determinism and the 30,000 training records of Flickr8k,
# every input format giving the same ids, decode, and bad input (messages naming file and line,
# exit codes, no complete-looking output left). Ids against Hugging Face: tests/py/test_tokenize_hf.py.
. "$(dirname "$0")/lib.sh"
dumpr() { cap-dump --no-header "$@"; }
ids_of() { dumpr "$1" | sed 's/.*"ids":\(\[[^]]*\]\).*/\1/'; }

# ---- small inputs, one per format, holding the same captions
printf '1000_a.jpg#0\tA dog runs on the grass .\n1000_a.jpg#1\tA brown dog , running\n2000_b.jpg#0\tTwo dogs play .\n2000_b.jpg#1\tThe dog and a cat\n' >"$T/tok.txt"
printf 'image,caption\n1000_a.jpg,A dog runs on the grass .\n1000_a.jpg,"A brown dog , running"\n2000_b.jpg,Two dogs play .\n2000_b.jpg,The dog and a cat\n' >"$T/captions.csv"
printf '1000_a.jpg\tA dog runs on the grass .\n1000_a.jpg\tA brown dog , running\n2000_b.jpg\tTwo dogs play .\n2000_b.jpg\tThe dog and a cat\n' >"$T/plain.tsv"
cat >"$T/coco.json" <<'EOF'
{"images": [{"id": 1, "file_name": "1000_a.jpg"}, {"id": 2, "file_name": "2000_b.jpg"}],
 "annotations": [{"image_id": 1, "id": 10, "caption": "A dog runs on the grass ."},
  {"image_id": 1, "id": 11, "caption": "A brown dog , running"},
  {"image_id": 2, "id": 12, "caption": "Two dogs play ."}, {"image_id": 2, "id": 13, "caption": "The dog and a cat"}]}
EOF
cat >"$T/dataset_x.json" <<'EOF'
{"dataset": "x", "images": [
 {"filename": "1000_a.jpg", "split": "train", "sentences": [{"raw": "A dog runs on the grass .", "tokens": []}, {"raw": "A brown dog , running", "tokens": []}]},
 {"filename": "2000_b.jpg", "split": "test", "sentences": [{"raw": "Two dogs play .", "tokens": []}, {"raw": "The dog and a cat", "tokens": []}]}]}
EOF
check "vocab --min-count 1 on a token file" cap-tokenize vocab --min-count 1 -o "$T/small.json" "$T/tok.txt"
check_eq "vocab: specials then words by count, ties bytewise" \
	"$("$PYTHON" -c 'import json,sys; v=json.load(open(sys.argv[1]))["model"]["vocab"]; print(" ".join(sorted(v, key=v.get)))' "$T/small.json")" \
	"<pad> <start> <end> <unk> a dog the and brown cat dogs grass on play running runs two"
cap-tokenize encode --tokenizer "$T/small.json" "$T/tok.txt" >"$T/ref.mp"
ids_of "$T/ref.mp" >"$T/ref.ids"
for f in captions.csv plain.tsv coco.json dataset_x.json; do
	cap-tokenize encode --tokenizer "$T/small.json" "$T/$f" >"$T/$f.mp" 2>"$T/$f.err"
	ids_of "$T/$f.mp" >"$T/$f.ids"
	check_same "format of $f detected, same ids as the token file" "$T/$f.ids" "$T/ref.ids"
	dumpr "$T/$f.mp" | sed 's/"ids".*//' >"$T/$f.meta"
	dumpr "$T/ref.mp" | sed 's/"ids".*//' >"$T/ref.meta"
	check_same "format of $f: same images, n and text" "$T/$f.meta" "$T/ref.meta"
done
check_eq "first record" "$(dumpr "$T/ref.mp" | head -n 1)" \
	'{"image":"1000_a.jpg","n":0,"text":"A dog runs on the grass .","ids":[1,4,5,15,12,6,11,2]}'
check_eq "header: kind, vocab size, tokenizer digest = sha256 of tokenizer_json, source" \
	"$("$PYTHON" -c '
import msgpack, hashlib, sys
h = next(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
print(h["kind"], h["vocab_size"], h["tokenizer"] == hashlib.sha256(h["tokenizer_json"].encode()).hexdigest(),
      h["tokenizer_json"] == open(sys.argv[2]).read(), h["source"])' "$T/ref.mp" "$T/small.json")" \
	"captions 17 True True tok.txt"
cap-tokenize encode --tokenizer "$T/small.json" --format tsv - <"$T/plain.tsv" >"$T/stdin.mp"
check_eq "stdin with --format" "$(ids_of "$T/stdin.mp" | tr -d '\n')" "$(tr -d '\n' <"$T/ref.ids")"
cap-tokenize vocab --min-count 1 --keep-punct "$T/tok.txt" >"$T/punct.json"
check_eq "--keep-punct keeps '.' and ','" "$(grep -c '^      "[.,]": ' "$T/punct.json")" 2

# decode: streams (tokenizer from the header or --tokenizer) and id lines
cap-tokenize decode "$T/ref.mp" >"$T/dec.txt"
check_eq "decode a captions stream: image<TAB>text" "$(head -n 2 "$T/dec.txt")" "$(printf '1000_a.jpg\ta dog runs on the grass\n1000_a.jpg\ta brown dog running')"
check_eq "decode with --tokenizer from stdin" "$(cap-tokenize decode --tokenizer "$T/small.json" <"$T/ref.mp" | wc -l)" 4
check_eq "decode id lines" "$(printf '1 5 4 999999999999 2\n' | cap-tokenize decode --tokenizer "$T/small.json" 2>&1)" \
	"cap-tokenize: <stdin>: line 1: expected ids (unsigned integers separated by spaces)"
check_eq "decode id lines: words, <unk>, stop at <end>" "$(printf '1 4 5 3 2 9\n\n4\n' | cap-tokenize decode --tokenizer "$T/small.json")" "$(printf 'a dog <unk>\n\na')"
check_fails "decode: an id outside the vocabulary" 1 "<stdin>: line 1: id 17 at position 1 is outside the vocabulary" \
	sh -c "echo '1 17 2' | cap-tokenize decode --tokenizer '$T/small.json'"
check_fails "decode: a stream made with another tokenizer" 1 "the stream was made with tokenizer" \
	cap-tokenize decode --tokenizer "$T/punct.json" "$T/ref.mp"

# ---- bad input: messages name file and line; exit 1 for data, 2 for usage
printf '1000_a.jpg#0\tok\n1000_a.jpg#1 no tab\n' >"$T/notab.txt"
check_fails "malformed line" 1 "notab.txt: line 2: expected IMAGE#N<TAB>caption, found no tab" cap-tokenize vocab "$T/notab.txt"
printf '1000_a.jpg#0\tok\n\n1000_a.jpg#1\tcaf\351\n' >"$T/latin1.txt"
check_fails "invalid UTF-8" 1 "latin1.txt: line 3: invalid UTF-8 at byte 17 of the line" cap-tokenize vocab "$T/latin1.txt"
printf 'hello world\n' >"$T/prose.txt"
check_fails "unknown format" 1 "prose.txt: line 1: unknown format" cap-tokenize vocab "$T/prose.txt"
: >"$T/empty.txt"
check_fails "empty input" 1 "empty.txt: empty input" cap-tokenize vocab "$T/empty.txt"
printf 'image,caption\n' >"$T/header-only.csv"
check_fails "a CSV with only its header" 1 "header-only.csv: empty input (no captions)" cap-tokenize vocab "$T/header-only.csv"
printf 'image,caption\na.jpg,"open quote\n' >"$T/open.csv"
check_fails "CSV: unterminated quote" 1 "open.csv: line 2: quoted field not closed" cap-tokenize vocab "$T/open.csv"
printf '9999_z.jpg\nnope.jpg\n' >"$T/split.txt"
check_fails "a split file naming no known image" 1 "split.txt: split file names no image of the input" \
	cap-tokenize vocab --split "$T/split.txt" "$T/tok.txt"
printf '\n\n' >"$T/blank-split.txt"
check_fails "an empty split file" 1 "blank-split.txt: split file names no image" cap-tokenize vocab --split "$T/blank-split.txt" "$T/tok.txt"
check_fails "a missing input file" 1 "nonexistent.txt: No such file or directory" cap-tokenize vocab "$T/nonexistent.txt"
check_fails "a missing tokenizer.json" 1 "missing.json: No such file or directory" cap-tokenize encode --tokenizer "$T/missing.json" "$T/tok.txt"
printf '{"model": {"type": "BPE"}' >"$T/bad.json"
check_fails "a corrupt tokenizer.json" 1 "bad.json: line 1, column" cap-tokenize encode --tokenizer "$T/bad.json" "$T/tok.txt"
sed 's/"Lowercase"/"NFKC"/' "$T/small.json" >"$T/nfkc.json"
check_fails "a tokenizer.json with a normalizer cap lacks" 1 "nfkc.json: normalizer: NFKC is not supported" \
	cap-tokenize encode --tokenizer "$T/nfkc.json" "$T/tok.txt"
check_fails "unknown --format" 2 "unknown format 'xml'" cap-tokenize vocab --format xml "$T/tok.txt"
check_fails "--min-count 0" 2 "--min-count" cap-tokenize vocab --min-count 0 "$T/tok.txt"
check_fails "encode without --tokenizer" 2 "encode needs --tokenizer" cap-tokenize encode "$T/tok.txt"
check_fails "an option of another command" 2 "--min-count does not apply" cap-tokenize encode --min-count 3 --tokenizer "$T/small.json"
check_fails "an unknown command" 2 "unknown command 'tokenise'" cap-tokenize tokenise
check_fails "no command" 2 "missing command" cap-tokenize

# an error after some records: nothing at -o, no temporary file left
{ cat "$T/tok.txt"; printf '3000_c.jpg#0\tbad \377 byte\n'; } >"$T/late.txt"
mkdir -p "$T/out"
check_fails "encode -o: error in the last line" 1 "late.txt: line 5: invalid UTF-8" \
	cap-tokenize encode --tokenizer "$T/small.json" -o "$T/out/late.mp" "$T/late.txt"
check_eq "encode -o: no output file after an error" "$(ls -A "$T/out")" ""
cap-tokenize vocab -o "$T/out/tok.json" "$T/late.txt" 2>/dev/null
check_eq "vocab -o: no output file after an error" "$(ls -A "$T/out")" ""

# ---- the real Flickr8k token file
if ! have_data; then skip "cap-tokenize on Flickr8k: no \$CAP_DATA/flickr8k"; exit 0; fi
F=$DATA/flickr8k
check "vocab --split train" cap-tokenize vocab --split "$F/Flickr_8k.trainImages.txt" -o "$T/v1.json" "$F/Flickr8k.token.txt"
grep -q "skipped 5 lines of image '2258277193_586949ec62.jpg.1'" "$T/.err" && ok "the 5 lines of '2258277193_586949ec62.jpg.1' skipped with one warning" \
	|| notok "the 5 lines of '2258277193_586949ec62.jpg.1' skipped with one warning ($(cat "$T/.err"))"
cap-tokenize vocab --split "$F/Flickr_8k.trainImages.txt" "$F/Flickr8k.token.txt" >"$T/v2.json" 2>/dev/null
check_same "vocab twice: byte-identical tokenizer.json" "$T/v1.json" "$T/v2.json"
echo "# vocabulary size at --min-count 5, train split: $("$PYTHON" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["model"]["vocab"]))' "$T/v1.json")"
check "encode --split train" sh -c "cap-tokenize encode --tokenizer '$T/v1.json' --split '$F/Flickr_8k.trainImages.txt' '$F/Flickr8k.token.txt' 2>/dev/null | cap-dump >'$T/train.jsonl'"
check_eq "encode --split train | cap-dump: header and 30000 records" "$(wc -l <"$T/train.jsonl")" 30001
check_eq "30000 records are 6000 images x n 0..4" \
	"$(tail -n +2 "$T/train.jsonl" | sed 's/.*"n":\([0-9]*\).*/\1/' | sort | uniq -c | awk '{print $1}' | sort -u)" 6000
start=$(date +%s.%N)
cap-tokenize encode --tokenizer "$T/v1.json" -o "$T/full.mp" "$F/Flickr8k.token.txt" 2>/dev/null
end=$(date +%s.%N)
n=$(cap-dump --no-header "$T/full.mp" | wc -l)
check_eq "the full token file: 40460 lines less the 5 skipped" "$n" 40455
echo "# encode speed on the full token file: $(awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN{printf "%.0f captions/s (%.3f s)", n/(b-a), b-a}')"
# A split file matching by name only: names with a CR (a file from Windows) still match.
sed 's/$/\r/' "$F/Flickr_8k.devImages.txt" >"$T/dev-crlf.txt"
check_eq "a CRLF split file selects the 5000 dev captions" \
	"$(cap-tokenize encode --tokenizer "$T/v1.json" --split "$T/dev-crlf.txt" "$F/Flickr8k.token.txt" 2>/dev/null | cap-dump --no-header | wc -l)" 5000

# ---- the man page's EXAMPLES run as written (with the data directory of this checkout)
awk '/^\.Sh EXAMPLES/{on=1; next} /^\.Sh/{on=0} on && /^\.Ed/{inb=0; print "#--"; next} on && /^\.Bd/{inb=1; next} on && inb' \
	"$ROOT/man/cap-tokenize.1" | sed 's/\\e/\\/g' >"$T/examples.sh"
mkdir -p "$T/ex"
awk '/^#--/{n++; next} n<2' "$T/examples.sh" | sed "s|^d=.*|d='$F'|" >"$T/ex/run.sh"
(cd "$T/ex" && sh run.sh >out.txt 2>err.txt); rc=$?
check_eq "man page examples (vocab, encode, dump, decode) run" "$rc $(wc -l <"$T/ex/out.txt")" "0 7"
check_eq "man page example: decode of typed ids" "$(tail -n 1 "$T/ex/out.txt")" "a dog"
if [ -d "$ROOT/tests/node_modules/tokenizers" ] && command -v node >/dev/null; then
	awk '/^#--/{n++; next} n==2' "$T/examples.sh" >"$T/ex/node.sh"
	(cd "$T/ex" && NODE_PATH="$ROOT/tests/node_modules" sh node.sh >node.txt 2>&1)
	want=$(cap-tokenize encode --tokenizer "$T/ex/tokenizer.json" --format tsv - <<'X' | cap-dump --no-header | sed 's/.*"ids":\[\([^]]*\)\].*/\1/'
x.jpg	A dog runs.
X
)
	check_eq "man page example: node gives cap's ids" "$(tr -d ' \n[]' <"$T/ex/node.txt")" "$want"
else
	skip "man page node example: tests/node_modules/tokenizers absent"
fi
