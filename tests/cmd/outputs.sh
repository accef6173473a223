# Outputs of every tool that writes a file (-o): a new file gets 0666 & ~umask and an existing
# one keeps its mode; a symlink stays a symlink and the file it names is written; a FIFO and a
# device are written through, never replaced; a directory is refused; a write error (disk full,
# file size limit) is reported once, exits 1 and leaves neither the output nor a temporary file.
. "$(dirname "$0")/lib.sh"
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import msgpack' 2>/dev/null; then skip "outputs: python3-msgpack missing"; exit 0; fi

# A tiny corpus: 8 images, 2 captions each; 8-d features; a 1-epoch model on them.
for i in 0 1 2 3 4 5 6 7; do
	printf 'im%d.jpg#0\ta red thing number %d\nim%d.jpg#1\ta blue thing %d\n' $i $i $i $i
done >"$T/caps.txt"
cap-tokenize vocab --min-count 1 -o "$T/tok.json" "$T/caps.txt"
cap-tokenize encode --tokenizer "$T/tok.json" -o "$T/caps.mp" "$T/caps.txt"
"$PY" - "$T/feats.mp" <<'PYEOF'
import msgpack, struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(msgpack.packb({"format": "cap", "version": 1, "kind": "features", "dim": 8}))
    for i in range(8):
        f.write(msgpack.packb({"image": "im%d.jpg" % i, "feature": struct.pack("<8f", *[(i * 7 + j) % 5 / 5 for j in range(8)]),
                               "shape": [8]}, use_bin_type=True))
PYEOF
TR="--features $T/feats.mp --captions $T/caps.mp --embed 8 --hidden 8 --epochs 1 --batch 4 --threads 1 --seed 1"
cap-train $TR -o "$T/model.st" 2>/dev/null
[ -s "$T/model.st" ] && ok "fixture: a small model" || notok "fixture: a small model"

# The writers: w_NAME OUT writes one output to OUT.
w_vocab()  { cap-tokenize vocab --min-count 1 -o "$1" "$T/caps.txt"; }
w_encode() { cap-tokenize encode --tokenizer "$T/tok.json" -o "$1" "$T/caps.txt"; }
w_train()  { cap-train $TR -o "$1"; }
w_gen()    { cap-generate --model "$T/model.st" --threads 1 -o "$1" "$T/feats.mp"; }
w_text()   { cap-generate --model "$T/model.st" --threads 1 --text -o "$1" "$T/feats.mp"; }
WRITERS="vocab encode train gen text"
mode() { stat -c %a "$1"; }
# As root a broken -o would replace the device node itself: try devices only on copies in $T.
FULL=/dev/full
[ "$(id -u)" -eq 0 ] && mknod "$T/full" c 1 7 && FULL=$T/full
# no temporary file beside $1
no_tmp() { ! ls "$1".tmp.* >/dev/null 2>&1; }

for w in $WRITERS; do
	d=$T/$w; mkdir -p "$d"
	(umask 022; "w_$w" "$d/ref") 2>/dev/null
	[ -s "$d/ref" ] || notok "$w: writes a reference output"
	check_eq "$w: umask 022 gives 0644" "$(mode "$d/ref")" 644
	(umask 077; "w_$w" "$d/u077") 2>/dev/null
	check_eq "$w: umask 077 gives 0600" "$(mode "$d/u077")" 600
	(umask 002; "w_$w" "$d/u002") 2>/dev/null
	check_eq "$w: umask 002 gives 0664" "$(mode "$d/u002")" 664
	echo old >"$d/kept"; chmod 640 "$d/kept"
	(umask 022; "w_$w" "$d/kept") 2>/dev/null
	check_eq "$w: an existing file keeps its mode 0640" "$(mode "$d/kept")" 640
	[ "$w" = train ] && continue   # the model differs between runs only by nothing; compared below

	echo old >"$d/target"; ln -s target "$d/link"
	"w_$w" "$d/link" 2>/dev/null
	[ -L "$d/link" ] && [ "$(readlink "$d/link")" = target ] && ok "$w: -o a symlink keeps the link" \
		|| notok "$w: -o a symlink keeps the link"
	check_same "$w: -o a symlink writes the file it names" "$d/target" "$d/ref"
	mkdir "$d/sub"; ln -s sub/new "$d/dangling"
	"w_$w" "$d/dangling" 2>/dev/null
	[ -L "$d/dangling" ] && cmp -s "$d/sub/new" "$d/ref" && ok "$w: a dangling symlink: its target created, the link kept" \
		|| notok "$w: a dangling symlink: its target created, the link kept"
	no_tmp "$d/sub/new" && no_tmp "$d/dangling" && ok "$w: no temporary file beside the link or its target" \
		|| notok "$w: no temporary file beside the link or its target"

	mkfifo "$d/fifo"
	timeout 30 cat "$d/fifo" >"$d/from-fifo" & pid=$!
	"w_$w" "$d/fifo" 2>/dev/null; rc=$?
	wait $pid
	[ -p "$d/fifo" ] && [ $rc -eq 0 ] && ok "$w: -o a FIFO writes through it, the FIFO stays" \
		|| notok "$w: -o a FIFO writes through it, the FIFO stays (exit $rc)"
	check_same "$w: what came through the FIFO equals the file output" "$d/from-fifo" "$d/ref"

	if [ "$(id -u)" -eq 0 ]; then
		mknod "$d/null" c 1 3
		check "$w: -o a character device (a copy of /dev/null) succeeds" "w_$w" "$d/null"
		[ -c "$d/null" ] && ok "$w: the device stays a character device" || notok "$w: the device stays a character device"
	else
		skip "$w: -o a device node: mknod needs root"
	fi

	check_fails "$w: -o a directory refused" 1 "Is a directory" "w_$w" "$d/sub"

	check_fails "$w: -o /dev/full exits 1 naming the device" 1 "$FULL: .*No space left" "w_$w" "$FULL"
	check_eq "$w: disk full: one error line" "$(grep -c 'No space' "$T/.err")" 1
	[ -c "$FULL" ] && ok "$w: /dev/full stays a character device" || notok "$w: /dev/full stays a character device"

	# A file size limit makes the writes fail half-way (EFBIG): nothing is left behind.
	(trap '' XFSZ; ulimit -f 0; "w_$w" "$d/big") >/dev/null 2>"$d/big.err"; rc=$?
	[ $rc -eq 1 ] && [ ! -e "$d/big" ] && no_tmp "$d/big" && ok "$w: write error half-way: exit 1, no output, no temporary file" \
		|| notok "$w: write error half-way: exit 1, no output, no temporary file (exit $rc; $(ls "$d" | tr '\n' ' '); $(head -c 200 "$d/big.err"))"
done

# cap-train: the model through a symlink (the checkpoint goes to MODEL.ckpt, so devices are not
# tried here: -o /dev/full would create /dev/full.ckpt).
d=$T/train
echo old >"$d/target"; ln -s target "$d/link"
cap-train $TR -o "$d/link" 2>/dev/null
[ -L "$d/link" ] && cmp -s "$d/target" "$d/ref" && ok "train: -o a symlink keeps the link and writes the model it names" \
	|| notok "train: -o a symlink keeps the link and writes the model it names"
(trap '' XFSZ; ulimit -f 0; cap-train $TR -o "$d/big") >/dev/null 2>"$d/big.err"; rc=$?
[ $rc -eq 1 ] && [ ! -e "$d/big" ] && no_tmp "$d/big" && ok "train: write error: exit 1, no model, no temporary file" \
	|| notok "train: write error: exit 1, no model, no temporary file (exit $rc; $(ls "$d" | tr '\n' ' '))"

# cap-train --log: its metrics stream is not left as a temporary file when the model cannot be
# written (the errors of the training loop exit through errx: an atexit handler removes it).
(trap '' XFSZ; ulimit -f 0; cap-train $TR --log "$d/log.mp" -o "$d/big2") >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] && [ ! -e "$d/log.mp" ] && no_tmp "$d/log.mp" && ok "train: write error: no --log stream, no temporary file" \
	|| notok "train: write error: no --log stream, no temporary file (exit $rc; $(ls "$d" | tr '\n' ' '))"

# An error after the output is open that exits at once (errx): no temporary file either.
echo nosuch.jpg >"$T/split.txt"
mkdir -p "$T/errx"
cap-tokenize encode --tokenizer "$T/tok.json" --split "$T/split.txt" -o "$T/errx/out.mp" "$T/caps.txt" 2>/dev/null; rc=$?
[ $rc -eq 1 ] && [ -z "$(ls "$T/errx")" ] && ok "cap-tokenize encode: a split naming no image: exit 1, nothing left" \
	|| notok "cap-tokenize encode: a split naming no image: exit 1, nothing left (exit $rc; $(ls "$T/errx"))"

# Standard output on a full disk: one message, exit 1.
for c in "cap-tokenize vocab --min-count 1 $T/caps.txt" "cap-tokenize encode --tokenizer $T/tok.json $T/caps.txt" \
         "cap-tokenize decode $T/caps.mp" "cap-generate --model $T/model.st --threads 1 $T/feats.mp" \
         "cap-dump $T/caps.mp"; do
	$c >/dev/full 2>"$T/full.err"; rc=$?
	[ $rc -eq 1 ] && [ "$(grep -c 'No space' "$T/full.err")" -eq 1 ] && ok "${c%% $T*} >/dev/full: exit 1, one error line" \
		|| notok "${c%% $T*} >/dev/full: exit 1, one error line (exit $rc: $(cat "$T/full.err"))"
done

# cap-encode: a write error after the header (file size limit) leaves no temporary file.
IMG=$ROOT/examples/shapes/big_red_circle_white.png
d=$T/enc; mkdir -p "$d"
sh -c "trap '' XFSZ; ulimit -f 2; exec cap-encode --weights random:1 --threads 2 --squash 32 -o \"\$1\" \"\$2\"" sh "$d/f.mp" "$IMG" \
	>/dev/null 2>"$d/err"; rc=$?
[ $rc -eq 1 ] && [ ! -e "$d/f.mp" ] && no_tmp "$d/f.mp" && grep -q "f.mp: write error" "$d/err" \
	&& ok "cap-encode: write error mid-run: exit 1, named, no output, no temporary file" \
	|| notok "cap-encode: write error mid-run: exit 1, named, no output, no temporary file (exit $rc; $(ls "$d" | tr '\n' ' '); $(tail -n 2 "$d/err"))"
