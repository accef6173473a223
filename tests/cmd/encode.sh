# cap-encode as a command: shards join to one run's records, paths on stdin, -o, bad images
# skipped with exit 1, usage errors. (Feature values against torchvision: tests/py/test_encode_parity.py.)
. "$(dirname "$0")/lib.sh"
if ! have_data; then skip "cap-encode commands: no \$CAP_DATA/flickr8k"; exit 0; fi
ls "$DATA"/flickr8k/images/*.jpg | head -n 7 >"$T/list"
set -- $(cat "$T/list")
W="--weights random:3 --threads 2 --batch 2"
dump() { cap-dump --full --no-header "$@"; }

check "encode 7 images" sh -c "cap-encode $W $* >'$T/all.mp' 2>/dev/null"
check_eq "7 records" "$(dump "$T/all.mp" | wc -l)" 7
check_eq "header names random weights" "$(cap-dump "$T/all.mp" | head -n 1 | grep -c '"weights":"random:3"')" 1
cap-encode $W "$@" 2>"$T/stderr.txt" >/dev/null
check_eq "random weights announced on stderr" "$(grep -c 'random weights' "$T/stderr.txt")" 1

for k in 1 2 3; do cap-encode $W --shard $k/3 "$@" >"$T/s$k.mp" 2>/dev/null; done
cat "$T/s1.mp" "$T/s2.mp" "$T/s3.mp" >"$T/joined.mp"
check "joined shards read as one stream" cap-dump "$T/joined.mp"
dump "$T/joined.mp" | sort >"$T/joined.txt"
dump "$T/all.mp" | sort >"$T/all.txt"
check_same "shards 1..3 joined hold the records of one run" "$T/joined.txt" "$T/all.txt"
check_eq "shard 2/3 takes inputs 1 and 4" "$(dump "$T/s2.mp" | sed 's/.*"image":"\([^"]*\)".*/\1/' | tr '\n' ' ')" "$2 $5 "

cap-encode $W --decoders 3 --batch 3 "$@" >"$T/dec3.mp" 2>/dev/null
dump "$T/dec3.mp" >"$T/dec3.txt"; dump "$T/all.mp" >"$T/all-order.txt"
check_same "3 decoder threads, batch 3: same records in the same order" "$T/dec3.txt" "$T/all-order.txt"
cap-encode $W <"$T/list" >"$T/stdin.mp" 2>/dev/null
check_same "paths on stdin give the same stream as arguments" "$T/stdin.mp" "$T/all.mp"
check "-o writes the same stream to a file" cap-encode $W -o "$T/o.mp" "$@"
check_same "-o output equals stdout output" "$T/o.mp" "$T/all.mp"
printf '' | cap-encode $W >"$T/empty.mp" 2>/dev/null
check_eq "no input: header only" "$(cap-dump "$T/empty.mp" | wc -l)" 1

# bad images among good ones: named, skipped, the rest encoded, exit 1 with a count
head -c 3000 "$1" >"$T/truncated.jpg"
echo "not an image" >"$T/text.jpg"
check_fails "bad images: exit 1 naming the truncated file" 1 "truncated.jpg" \
	cap-encode $W -o "$T/bad.mp" "$1" "$T/truncated.jpg" "$2" "$T/text.jpg" "$3" "$T/missing.jpg"
grep -q "text.jpg" "$T/.err" && grep -q "missing.jpg" "$T/.err" && grep -q "3 of 6 images failed" "$T/.err" \
	&& ok "bad images: each named, failures counted" || notok "bad images: each named, failures counted ($(cat "$T/.err"))"
dump "$T/all.mp" | head -n 3 >"$T/first3.txt"
dump "$T/bad.mp" >"$T/bad.txt"
check_same "bad images: the good ones encoded as in a clean run" "$T/bad.txt" "$T/first3.txt"

check_fails "no --weights: usage error" 2 "weights" cap-encode "$1"
check_fails "--shard 0/3 refused" 2 "shard" cap-encode $W --shard 0/3 "$1"
check_fails "--shard 4/3 refused" 2 "shard" cap-encode $W --shard 4/3 "$1"
check_fails "--shard x refused" 2 "shard" cap-encode $W --shard x "$1"
check_fails "--squash with --crop refused" 2 "squash" cap-encode $W --squash 224 --crop 224 "$1"
check_fails "--batch 0 refused" 2 "batch" cap-encode $W --batch 0 "$1"
check_fails "--weights random:-1 refused" 2 "seed" cap-encode --weights random:-1 "$1"
check_fails "weights file absent" 1 "nosuch.safetensors" cap-encode --weights "$T/nosuch.safetensors" "$1"
