# cap-report: the page of a run of pipelines/shapes.mk (as make demo writes it), checked as text
# and rendered by a real browser (Debian's chromium, headless): images decoded and laid out,
# captions, the loss plot drawn, a screenshot that is not blank. Also --link, --max-images,
# --thumb, the history of the model without --log, escaping, missing and broken images, errors.
. "$(dirname "$0")/lib.sh"
R=$T/run
make --no-print-directory -C "$ROOT" -f pipelines/shapes.mk BIN="$CAP_BIN" OUT="$R" EPOCHS=4 \
	PREPROCESS="--squash 32 --batch 16" THREADS=2 >"$T/run.log" 2>&1
check_eq "shapes pipeline with the report" "$?" 0
grep -q "^shapes.mk: report: $R/report.html$" "$T/run.log" && ok "the pipeline prints the report's path" \
	|| notok "the pipeline prints the report's path"
P=$R/report.html
check_eq "12 cards" "$(grep -c '<div class="card">' "$P")" 12
check_eq "12 embedded JPEG thumbnails" "$(grep -o 'src="data:image/jpeg;base64,' "$P" | wc -l)" 12
check_eq "no external resource" "$(grep -c -E 'src="(https?:|//)|href=' "$P")" 0
first=$(head -n 1 "$R/test-captions.txt" | cut -f2)
grep -q "<div class=\"caption\">$first</div>" "$P" && ok "the generated caption of the first image" || notok "the generated caption of the first image ($first)"
check_eq "the references (5 an image)" "$(grep -o '<li>' "$P" | wc -l)" 60
grep -q "A big blue circle on a black background \." "$P" && ok "a reference's text" || notok "a reference's text"
cider=$(sed -n 's/^CIDEr-D	//p' "$R/scores.txt")
grep -q "<td class=\"num\">$cider</td>" "$P" && ok "the corpus CIDEr-D of scores.txt" || notok "the corpus CIDEr-D of scores.txt ($cider)"
check_eq "per-image scores on every card" "$(grep -c 'BLEU-4 [0-9.]* &middot; CIDEr-D' "$P")" 12
check_eq "two curves: steps and epochs" "$(grep -c '<path class="series"' "$P")" 2
grep -q '<td>EPOCHS</td><td><code>4</code>' "$P" && grep -q '<td>beam</td><td><code>3</code>' "$P" \
	&& ok "the settings and the decoding" || notok "the settings and the decoding"
"$PYTHON" - "$P" >"$T/thumb.txt" <<'PY'
import sys, re, base64, io
from PIL import Image
b = re.search(r'src="data:image/jpeg;base64,([^"]*)"', open(sys.argv[1]).read()).group(1)
im = Image.open(io.BytesIO(base64.b64decode(b)))
print(im.format, im.size[0], im.size[1])
PY
check_eq "a thumbnail is a JPEG of the image's size (64 px, not enlarged)" "$(cat "$T/thumb.txt")" "JPEG 64 64"

# In a browser.
if ! command -v chromium >/dev/null; then
	skip "report in a browser: chromium not installed (scripts/install-deps.sh test installs it)"
else
	browse() { # PAGE: PROBE {...} of report_probe.html
		sed 's|</body>||; s|</html>||' "$1" >"$1.probe.html"
		cat "$HERE/helpers/report_probe.html" >>"$1.probe.html"
		echo '</body></html>' >>"$1.probe.html"
		timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$T/chromium" \
			--virtual-time-budget=10000 --dump-dom "file://$1.probe.html" 2>"$T/chromium.err" | grep -o 'PROBE {.*}'
	}
	check_eq "chromium: 12 images decoded and laid out, 12 captions, 2 curves" \
		"$(browse "$P" | sed 's/,"pathlength":[0-9]*//')" 'PROBE {"images":12,"decoded":12,"shown":12,"captions":12,"paths":2}'
	len=$(browse "$P" | sed 's/.*"pathlength":\([0-9]*\).*/\1/')
	[ "${len:-0}" -gt 500 ] && ok "chromium: the curves have length ($len px)" || notok "chromium: the curves have length ($len px)"
	timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$T/chromium" --hide-scrollbars \
		--screenshot="$T/shot.png" --window-size=1200,1400 "file://$P" 2>>"$T/chromium.err" >/dev/null
	"$PYTHON" - "$T/shot.png" >"$T/shot.txt" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
from collections import Counter
px = list(im.getdata())
counts = Counter(px)
bg = counts.most_common(1)[0][0]
other = 1 - counts[bg] / len(px)
# the thumbnails' saturated blue, green, red or yellow, and the plot's blue line
coloured = sum(1 for r, g, b in px if max(r, g, b) - min(r, g, b) > 120)
print(im.size[0], im.size[1], "colours>50" if len(counts) > 50 else "few-colours",
      "content" if other > 0.05 else "blank", "pictures" if coloured > 5000 else "no-pictures")
PY
	check_eq "chromium screenshot: not blank, with the pictures" "$(cat "$T/shot.txt")" "1200 1400 colours>50 content pictures"
	[ -n "${CAP_REPORT_SHOT:-}" ] && cp "$T/shot.png" "$CAP_REPORT_SHOT"
	# linked instead of embedded: relative to the page, decoded by the browser too
	mkdir -p "$T/pages"
	cap-report --generated "$R/generated.mp" --references "$R/test.captions.mp" --images "$ROOT/examples/shapes" \
		--link -o "$T/pages/linked.html"
	check_eq "--link: relative links" "$(grep -o 'src="\.\./[^"]*examples/shapes/[a-z_]*\.png"' "$T/pages/linked.html" | wc -l)" 12
	check_eq "--link: chromium decodes the linked images" \
		"$(browse "$T/pages/linked.html" | sed 's/.*"decoded":\([0-9]*\).*/\1/')" 12
fi

# The model's history when there is no --log; --max-images; --thumb.
cap-report --generated "$R/generated.mp" --model "$R/model.safetensors" --images "$ROOT/examples/shapes" \
	--max-images 5 --thumb 32 -o "$T/small.html"
check_eq "history of the model: the epochs' curve" "$(grep -c '<path class="series"' "$T/small.html")" 1
check_eq "--max-images 5: 5 cards" "$(grep -c '<div class="card">' "$T/small.html")" 5
grep -q "12 images, the first 5 shown" "$T/small.html" && ok "--max-images: says how many there were" || notok "--max-images: says how many there were"
grep -q 'width="32" height="32"' "$T/small.html" && ok "--thumb 32" || notok "--thumb 32"
check_eq "without --scores: says so" "$(grep -c 'No scores' "$T/small.html")" 1

# Escaping, missing and broken images.
"$PYTHON" - "$T/odd.mp" <<'PY'
import sys, msgpack
with open(sys.argv[1], "wb") as f:
    f.write(msgpack.packb({"format": "cap", "version": 1, "kind": "generated"}))
    f.write(msgpack.packb({"image": "x<y>.png", "caption": 'a <b>bold</b> & "quoted" dog', "ids": [], "logprob": 0.0}))
    f.write(msgpack.packb({"image": "broken.png", "caption": "a cat", "ids": [], "logprob": 0.0}))
    f.write(msgpack.packb({"image": "absent.png", "caption": "a cow", "ids": [], "logprob": 0.0}))
PY
echo "not a png" >"$T/broken.png"
check_fails "a broken image: exit 1, named" 1 "broken.png" cap-report --generated "$T/odd.mp" --images "$T" -o "$T/odd.html"
grep -q "2 of 3 images not found (the first: x<y>.png" "$T/.err" && ok "missing images counted in one warning" \
	|| notok "missing images counted in one warning ($(cat "$T/.err"))"
grep -q 'a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; dog' "$T/odd.html" && ! grep -q '<b>bold' "$T/odd.html" \
	&& ok "captions escaped" || notok "captions escaped"
check_eq "broken and missing images shown as missing" "$(grep -c 'image not found' "$T/odd.html")" 3
check_fails "--generated required" 2 "generated" cap-report -o "$T/x.html"
check_fails "--generated of another kind" 1 "expected a 'generated' stream" cap-report --generated "$R/test-features.mp"
check_fails "--scores not cap-eval's" 1 "expected the output of cap-eval --json" \
	cap-report --generated "$R/generated.mp" --scores "$R/settings.txt"
check_fails "--settings without KEY=VALUE" 1 "scores.txt: line 2: expected KEY=VALUE" \
	cap-report --generated "$R/generated.mp" --settings "$R/scores.txt"
