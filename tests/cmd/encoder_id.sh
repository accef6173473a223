# The encoder travels with the model (lib/decoder/encoder_id.h): the identity made of a features
# header, recorded as model metadata "encoder" (here by tests/tools/cap-setmeta, as cap-train
# records it), and cap-generate refusing features of another encoder unless
# --allow-encoder-mismatch.
. "$(dirname "$0")/lib.sh"
S=$ROOT/examples/shapes
SETMETA=$CAP_TESTTOOLS/cap-setmeta
TENSORS=$CAP_TESTTOOLS/cap-tensors
enc() { # WEIGHTS OUT [OPTIONS]: the 12 test images of examples/shapes
	w=$1 o=$2; shift 2
	sed "s|^|$S/|" "$S/test.txt" | cap-encode --weights "$w" --basename --batch 12 --threads 2 "$@" -o "$o" 2>/dev/null
}
enc random:1 "$T/f.mp" --squash 32
cap-tokenize vocab --min-count 1 -o "$T/tok.json" "$S/captions.token.txt" 2>/dev/null
cap-tokenize encode --tokenizer "$T/tok.json" --split "$S/test.txt" -o "$T/c.mp" "$S/captions.token.txt" 2>/dev/null
check "a small model" cap-train --features "$T/f.mp" --captions "$T/c.mp" --epochs 2 --embed 16 --hidden 16 \
	--batch 16 -o "$T/trained.safetensors"
check_eq "cap-train records the features' encoder" "$("$TENSORS" --meta "$T/trained.safetensors" | sed -n 's/^encoder\t//p' | grep -c 'random:1')" 1
# a model without the record (as older cap-train wrote them), and one with it set here
check "a model without the record" "$SETMETA" "$T/trained.safetensors" "$T/plain.safetensors" 'encoder='
check "model with the encoder's identity" "$SETMETA" "$T/plain.safetensors" "$T/m.safetensors" --encoder-from "$T/f.mp"
check_eq "metadata 'encoder' as documented" "$("$TENSORS" --meta "$T/m.safetensors" | sed -n 's/^encoder\t//p')" \
	'"{\"arch\":\"resnet152\",\"depth\":152,\"weights\":\"random:1\",\"precision\":\"fp32\",\"preprocess\":{\"mode\":\"squash\",\"size\":32}}"'
cap-generate --model "$T/plain.safetensors" --text "$T/f.mp" >"$T/plain.txt" 2>/dev/null
check "same encoder: captioned" sh -c "cap-generate --model '$T/m.safetensors' --text '$T/f.mp' >'$T/same.txt'"
check_same "same encoder: the captions of the model without the record" "$T/same.txt" "$T/plain.txt"
check_eq "12 captions" "$(wc -l <"$T/same.txt")" 12

enc random:1 "$T/sq40.mp" --squash 40
check_fails "other preprocessing refused, both named" 1 "sq40.mp: features of resnet152 random:1, squash 40, but .*m.safetensors was trained on features of resnet152 random:1, squash 32" \
	cap-generate --model "$T/m.safetensors" --text "$T/sq40.mp"
check_eq "refused: no output" "$(wc -c <"$T/.out")" 0
grep -q -- "--allow-encoder-mismatch" "$T/.err" && ok "refusal names --allow-encoder-mismatch" || notok "refusal names --allow-encoder-mismatch"
check_fails "other weights refused" 1 "random:2, squash 32, but .* random:1, squash 32" \
	sh -c "sed 's|^|$S/|' '$S/test.txt' | cap-encode --weights random:2 --squash 32 --batch 12 --basename 2>/dev/null | cap-generate --model '$T/m.safetensors'"
enc random:1 "$T/crop.mp" --resize 40 --crop 32
check_fails "resize+crop instead of squash refused" 1 "resize 40 crop 32, but" \
	cap-generate --model "$T/m.safetensors" --text "$T/crop.mp"
cap-generate --model "$T/m.safetensors" --text --allow-encoder-mismatch "$T/sq40.mp" >"$T/allowed.txt" 2>"$T/allowed.err"
check_eq "--allow-encoder-mismatch: captions written" "$?:$(wc -l <"$T/allowed.txt")" "0:12"
check_eq "--allow-encoder-mismatch: a warning naming both" "$(grep -c 'warning: .*squash 40, but .*squash 32' "$T/allowed.err")" 1
check "a model without the record is not checked" sh -c "cap-generate --model '$T/plain.safetensors' --text '$T/sq40.mp' >/dev/null"
enc random:1 "$T/bf16.mp" --squash 32 --bf16
check "bf16 features of the same encoder accepted" sh -c "cap-generate --model '$T/m.safetensors' --text '$T/bf16.mp' >/dev/null"

# A stream whose header names no encoder (another producer) is not checked.
"$PYTHON" - "$T/f.mp" "$T/noenc.mp" <<'PY'
import sys, msgpack
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
del objs[0]["encoder"]
with open(sys.argv[2], "wb") as f:
    for o in objs: f.write(msgpack.packb(o))
PY
check "features without an encoder in the header: not checked" sh -c "cap-generate --model '$T/m.safetensors' --text '$T/noenc.mp' >/dev/null"
"$PYTHON" - "$T/f.mp" "$T/strenc.mp" <<'PY'
import sys, msgpack
objs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False))
objs[0]["encoder"] = "test"
with open(sys.argv[2], "wb") as f:
    for o in objs: f.write(msgpack.packb(o))
PY
check "features whose header names the encoder otherwise (a string): not checked" sh -c "cap-generate --model '$T/m.safetensors' --text '$T/strenc.mp' >/dev/null"

"$SETMETA" "$T/plain.safetensors" "$T/bad.safetensors" 'encoder={"depth":152}'
check_fails "malformed 'encoder' metadata: error naming the model" 1 "bad.safetensors: metadata 'encoder'" \
	cap-generate --model "$T/bad.safetensors" --text "$T/f.mp"

# The check from files, as cap-train --init will run it (cap_encoder_id_check_files).
check_eq "files: same encoder" "$("$SETMETA" --check "$T/m.safetensors" "$T/f.mp")" same
check_eq "files: a model without the record" "$("$SETMETA" --check "$T/plain.safetensors" "$T/sq40.mp")" unknown
check_fails "files: another encoder, both named" 1 "sq40.mp: features of resnet152 random:1, squash 40, but .*m.safetensors was trained" \
	"$SETMETA" --check "$T/m.safetensors" "$T/sq40.mp"
check_fails "files: an unreadable features file named" 1 "nosuch.mp" "$SETMETA" --check "$T/m.safetensors" "$T/nosuch.mp"
