# Helpers for the pipeline tests (sourced after lib.sh): a small Flickr8k made of
# examples/shapes (JPEG copies, the Flickr8k file names), and checks on what make reruns.
S=$ROOT/examples/shapes
# mini_flickr DIR: DIR/f8k (token file and split lists: 24 train, 12 dev, 12 test images) and
# DIR/jpg (the 48 images as JPEGs).
mini_flickr() {
	mkdir -p "$1/f8k" "$1/jpg"
	sed 's/\.png#/.jpg#/' "$S/captions.token.txt" >"$1/f8k/Flickr8k.token.txt"
	sed 's/\.png$/.jpg/' "$S/train.txt" | head -n 24 >"$1/f8k/Flickr_8k.trainImages.txt"
	sed 's/\.png$/.jpg/' "$S/train.txt" | tail -n +25 >"$1/f8k/Flickr_8k.devImages.txt"
	sed 's/\.png$/.jpg/' "$S/test.txt" >"$1/f8k/Flickr_8k.testImages.txt"
	"$PYTHON" - "$S" "$1/jpg" <<'PY'
import sys, glob, os
from PIL import Image
for p in glob.glob(os.path.join(sys.argv[1], "*.png")):
    Image.open(p).convert("RGB").save(os.path.join(sys.argv[2], os.path.basename(p)[:-4] + ".jpg"), quality=95)
PY
}
# mtimes FILE...: "name mtime" lines (nanoseconds), to tell what a make run rewrote.
mtimes() { for f in "$@"; do printf '%s %s\n' "$(basename "$f")" "$(stat -c %.9Y "$f" 2>/dev/null || echo absent)"; done; }
# tools_in FILE: the cap tools a make -n output would run, in order, one per line, deduplicated.
tools_in() { grep -o "$CAP_BIN/cap-[a-z]*" "$1" | sed 's|.*/||' | awk '!seen[$0]++' | tr '\n' ' ' | sed 's/ $//'; }
# save_stamps RUN / restore_stamps RUN: the settings stamps as they were (mtimes kept), so that
# each make -n is compared with the built state and not with the previous make -n.
save_stamps() { rm -rf "$T/stamps.saved"; cp -rp "$1/settings" "$T/stamps.saved"; }
restore_stamps() { rm -rf "$1/settings"; cp -rp "$T/stamps.saved" "$1/settings"; }
