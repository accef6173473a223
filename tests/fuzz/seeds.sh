#!/bin/sh
# Seed corpora for the libFuzzer harnesses, made fresh by the tools themselves (so they follow
# the formats as they change): tests/fuzz/seeds.sh BIN OUT [PYTHON] writes OUT/NAME/ for each
# harness fuzz_NAME. BIN holds the regular build's tools. Python (msgpack, PIL, torch) makes the
# features stream, images and .pth files; what it cannot make is left out, saying so. A few small
# third-party images are added when $CAP_DATA/conformance is present. Every seed is small
# (under 20 kB) so that a run of a few seconds gets past them.
set -eu
BIN=$1 OUT=$2 PY=${3:-python3}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$OUT"
for n in stream captions_flickr8k captions_csv captions_coco captions_karpathy captions_tsv \
         tokenizer safetensors pth jpeg png model; do
	mkdir -p "$OUT/$n"
done
T=$(mktemp -d "${TMPDIR:-/tmp}/cap-seeds.XXXXXX")
trap 'rm -rf "$T"' EXIT

# ---- caption files, one of each format
c=$OUT/captions_flickr8k
printf 'a.jpg#0\tA dog runs on the grass .\na.jpg#1\tA dog .\nb.png#0\tTwo cats sit .\r\n' >"$c/basic"
printf 'x.jpg.1#0\tskipped\n\nc.jpeg#4\tcaf\303\251\n' >"$c/skipped"
c=$OUT/captions_csv
printf 'image,caption\na.jpg,A dog runs .\nb.jpg,"Two, cats ""sit"" here"\r\nc.jpg,"on\ntwo lines"\n' >"$c/basic"
c=$OUT/captions_coco
printf '{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],\n "annotations": [{"image_id": 1, "id": 9, "caption": "A dog runs."}, {"image_id": 2, "caption": "Cats \\u00e9"}]}\n' >"$c/basic"
c=$OUT/captions_karpathy
printf '{"images": [{"filename": "a.jpg", "split": "train", "sentences": [{"raw": "A dog runs.", "tokens": ["a", "dog", "runs"]}, {"raw": "Dog."}]}], "dataset": "flickr8k"}\n' >"$c/basic"
c=$OUT/captions_tsv
printf 'a.jpg\tA dog runs .\nb.jpg\tTwo\tcats\n\nc.jpg\t\n' >"$c/basic"

# ---- tokenizer.json, both punctuation rules; captions and generated streams
cat "$OUT/captions_flickr8k/basic" >"$T/caps.txt"
for i in 0 1 2 3 4 5; do printf 'im%d.jpg#0\ta red thing number %d\nim%d.jpg#1\ta blue thing %d\n' $i $i $i $i; done >>"$T/caps.txt"
"$BIN/cap-tokenize" vocab --min-count 1 -o "$OUT/tokenizer/drop-punct.json" "$T/caps.txt" 2>/dev/null
"$BIN/cap-tokenize" vocab --min-count 1 --keep-punct -o "$OUT/tokenizer/keep-punct.json" "$T/caps.txt" 2>/dev/null
"$BIN/cap-tokenize" encode --tokenizer "$OUT/tokenizer/drop-punct.json" -o "$OUT/stream/captions.mp" "$T/caps.txt" 2>/dev/null

if "$PY" -c 'import msgpack' 2>/dev/null; then
	"$PY" - "$T/feats.mp" <<'EOF'
import msgpack, struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(msgpack.packb({"format": "cap", "version": 1, "kind": "features", "dim": 4, "dtype": "float32"}))
    for i in range(6):
        f.write(msgpack.packb({"image": "im%d.jpg" % i, "feature": struct.pack("<4f", i, 1, -i, 0.5), "shape": [4]},
                              use_bin_type=True))
EOF
	cp "$T/feats.mp" "$OUT/stream/features.mp"
	cat "$T/feats.mp" "$T/feats.mp" >"$OUT/stream/concatenated.mp"
	for L in 1 2; do
		"$BIN/cap-train" --features "$T/feats.mp" --captions "$OUT/stream/captions.mp" --embed 4 --hidden 4 \
			--layers $L --epochs 1 --batch 4 --threads 1 -o "$T/model$L.st" 2>/dev/null
		cp "$T/model$L.st" "$OUT/model/layers$L.safetensors"
	done
	cp "$T/model1.st" "$OUT/safetensors/model.safetensors"
	"$BIN/cap-generate" --model "$T/model1.st" --threads 1 --beam 2 --nbest 2 -o "$OUT/stream/generated.mp" \
		"$T/feats.mp" 2>/dev/null
else
	echo "seeds: no python3 msgpack: no features stream, model or generated seeds" >&2
fi

# ---- safetensors of every dtype; .pth files; images
"$PY" - "$OUT" <<'EOF' || echo "seeds: python could not make the safetensors/pth/image seeds" >&2
import json, os, struct, sys
out = sys.argv[1]
def st(path, tensors, meta=None):
    header, blobs, off = {}, [], 0
    if meta: header["__metadata__"] = meta
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw); off += len(raw)
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
st(os.path.join(out, "safetensors", "dtypes.safetensors"), {
    "f32": ("F32", [2, 2], struct.pack("<4f", 1, -2, 3.5, 0)), "f16": ("F16", [3], b"\x00\x3c\x00\xc0\x00\x7c"),
    "bf16": ("BF16", [1, 2], b"\x80\x3f\x00\xc0"), "f64": ("F64", [1], struct.pack("<d", 2.5)),
    "i64": ("I64", [1], struct.pack("<q", -3)), "i32": ("I32", [1], struct.pack("<i", 7)),
    "i16": ("I16", [1], b"\x01\x00"), "i8": ("I8", [2], b"\x01\xff"), "u8": ("U8", [2], b"\x01\xff"),
    "bool": ("BOOL", [1], b"\x01"), "empty": ("F32", [0, 3], b""), "scalar": ("F32", [], struct.pack("<f", 9))},
    {"source": "seeds", "note": "every dtype"})
try:
    import torch, collections
    sd = collections.OrderedDict()
    sd["conv1.weight"] = torch.arange(24, dtype=torch.float32).view(2, 3, 2, 2)
    sd["bn1.running_mean"] = torch.zeros(2)
    sd["bn1.num_batches_tracked"] = torch.tensor(5)
    base = torch.arange(12, dtype=torch.float32).view(3, 4)
    sd["view.t"] = base.t()          # a strided view
    sd["view.slice"] = base[1:, 1:]   # a storage offset
    sd["half"] = torch.ones(3, dtype=torch.float16)
    sd["double"] = torch.ones(2, dtype=torch.float64)
    torch.save(sd, os.path.join(out, "pth", "state_dict.pth"))
    torch.save({"fc.weight": torch.nn.Parameter(torch.ones(2, 2))}, os.path.join(out, "pth", "parameter.pth"))
    torch.save(collections.OrderedDict([("a", torch.ones(1))]), os.path.join(out, "pth", "one.pth"))
except Exception as e:
    print("seeds: no .pth seeds:", e, file=sys.stderr)
from PIL import Image
im = Image.new("RGB", (13, 9))
for y in range(9):
    for x in range(13):
        im.putpixel((x, y), (x * 19 % 256, y * 28 % 256, (x * y * 7) % 256))
j, p = os.path.join(out, "jpeg"), os.path.join(out, "png")
im.save(os.path.join(j, "baseline.jpg"), quality=90)
im.save(os.path.join(j, "progressive.jpg"), progressive=True, quality=80)
im.save(os.path.join(j, "444.jpg"), subsampling=0)
im.save(os.path.join(j, "422.jpg"), subsampling=1)
im.save(os.path.join(j, "restart.jpg"), restart_marker_blocks=1)
im.convert("L").save(os.path.join(j, "grey.jpg"))
im.convert("CMYK").save(os.path.join(j, "cmyk.jpg"))
im.save(os.path.join(p, "rgb.png"))
im.convert("RGBA").save(os.path.join(p, "rgba.png"))
im.convert("L").save(os.path.join(p, "grey.png"))
im.convert("LA").save(os.path.join(p, "grey-alpha.png"))
im.convert("P").save(os.path.join(p, "palette.png"))
im.convert("1").save(os.path.join(p, "1bit.png"))
im.convert("I").point(lambda v: v * 200).convert("I;16").save(os.path.join(p, "grey16.png"))
im.convert("P").save(os.path.join(p, "palette-trns.png"), transparency=3)
EOF

# ---- a few third-party images (interlaced PNGs, 16-bit, arithmetic and 12-bit JPEGs)
CONF=${CAP_DATA:-$here/../../../shared/data}/conformance
if [ -d "$CONF" ]; then
	find "$CONF/libpng" -name '*.png' -size -3k | sort | awk 'NR % 6 == 1' | head -n 40 | while read -r f; do
		cp "$f" "$OUT/png/conf-$(basename "$f")"
	done
	find "$CONF/libjpeg-turbo" -name '*.jpg' -size -20k | sort | while read -r f; do
		cp "$f" "$OUT/jpeg/conf-$(basename "$f")"
	done
fi
for d in "$OUT"/*; do
	[ -n "$(ls "$d")" ] || echo "seeds: $(basename "$d"): no seeds (the harness starts from nothing)" >&2
done
exit 0
