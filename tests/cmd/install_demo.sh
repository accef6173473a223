# make install / make uninstall into a DESTDIR, and the demo's summary (scripts/demo.sh, what
# make demo runs) at 5 epochs: a short summary instead of the epoch lines, and a second run
# that shows the same results without retraining.
. "$(dirname "$0")/lib.sh"
B=$(dirname "$CAP_BIN")
mk() { (unset MAKEFLAGS MAKELEVEL MFLAGS; make -s -C "$ROOT" BUILD="$B" "$@"); }

D=$T/dest
check "make install into a DESTDIR" mk install DESTDIR="$D" PREFIX=/usr
n=0
for t in "$CAP_BIN"/cap-*; do [ -x "$D/usr/bin/$(basename "$t")" ] && n=$((n + 1)); done
check_eq "every tool installed" "$n" "$(ls "$CAP_BIN"/cap-* | wc -l)"
check "the installed cap-dump runs" "$D/usr/bin/cap-dump" --version
[ -f "$D/usr/share/man/man7/cap.7" ] && [ -f "$D/usr/share/man/man5/cap-stream.5" ] &&
	[ -f "$D/usr/share/man/man1/cap-train.1" ] && ok "man pages installed in man1, man5 and man7" ||
	notok "man pages installed in man1, man5 and man7 ($(find "$D/usr/share/man" -type f | tr '\n' ' '))"
[ -f "$D/usr/share/cap/pipelines/flickr8k.mk" ] && [ -f "$D/usr/share/cap/pipelines/shapes.mk" ] &&
	ok "pipelines installed under share/cap" || notok "pipelines installed under share/cap"
touch "$D/usr/bin/not-ours"
check "make uninstall" mk uninstall DESTDIR="$D" PREFIX=/usr
check_eq "uninstall removes what install wrote, nothing else" "$(cd "$D" && find . -type f)" "./usr/bin/not-ours"
[ ! -e "$D/usr/share/cap" ] && ok "share/cap removed" || notok "share/cap removed"

# The demo at 5 epochs on 8 of the shapes (6 to train on, 2 to caption), for time: shapes.mk
# takes EPOCHS and DATA from the environment.
S=$T/shapes
mkdir -p "$S"
head -n 6 "$ROOT/examples/shapes/train.txt" >"$S/train.txt"
head -n 2 "$ROOT/examples/shapes/test.txt" >"$S/test.txt"
for f in $(cat "$S/train.txt" "$S/test.txt"); do cp "$ROOT/examples/shapes/$f" "$S/"; done
grep -F -f "$S/train.txt" "$ROOT/examples/shapes/captions.token.txt" >"$S/captions.token.txt"
grep -F -f "$S/test.txt" "$ROOT/examples/shapes/captions.token.txt" >>"$S/captions.token.txt"
export EPOCHS=5 DATA="$S"
O=$T/demo
(cd "$ROOT" && sh scripts/demo.sh "$CAP_BIN" "$O") >"$T/demo1.txt" 2>"$T/demo1.err"
rc=$?
check_eq "the demo exits 0" "$rc" 0
grep -q '^demo: done in' "$T/demo1.txt" && ok "the demo says it ran" || notok "the demo says it ran ($(head -c 300 "$T/demo1.err"))"
check_eq "it prints the test captions" "$(grep -c '^  [a-z_]*\.png  *[a-z]' "$T/demo1.txt")" 2
grep -q 'BLEU-1 [0-9.]*,  BLEU-2' "$T/demo1.txt" && grep -q 'CIDEr-D' "$T/demo1.txt" && ok "it prints the scores" ||
	notok "it prints the scores"
grep -q "model.safetensors" "$T/demo1.txt" && grep -q "pipeline.log" "$T/demo1.txt" && ok "it says where things are" ||
	notok "it says where things are"
check_eq "no epoch lines on the terminal" "$(grep -c '^epoch [0-9]*/5:' "$T/demo1.txt")" 0
check_eq "cap-train's epochs are in the log" "$(grep -c '^epoch [0-9]*/5:' "$O/pipeline.log")" 5
[ "$(wc -l <"$T/demo1.txt")" -le 40 ] && ok "the summary is short" || notok "the summary is short ($(wc -l <"$T/demo1.txt") lines)"
m1=$(stat -c %Y.%s "$O/model.safetensors")
(cd "$ROOT" && sh scripts/demo.sh "$CAP_BIN" "$O") >"$T/demo2.txt" 2>&1
grep -q 'up to date' "$T/demo2.txt" && ok "a second run says the results are up to date" ||
	notok "a second run says the results are up to date ($(head -n 3 "$T/demo2.txt"))"
check_eq "and shows the same captions and scores" "$(grep '^  [a-zB]' "$T/demo2.txt" | grep -v '^  training')" \
	"$(grep '^  [a-zB]' "$T/demo1.txt" | grep -v '^  training')"
check_eq "without retraining" "$(stat -c %Y.%s "$O/model.safetensors")" "$m1"
