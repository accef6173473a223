"""Image decoding and preprocessing against the oracle: Pillow 9.4 (Image.open(p).convert("RGB"),
Image.resize BILINEAR) and torchvision 0.14's Resize/CenterCrop/ToTensor/Normalize.

Real photos from $CAP_DATA (all samples, a fixed subset of Flickr8k) and images synthesised
here: JPEGs in every mode Pillow writes (grey, RGB with 4:4:4/4:2:2/4:2:0, progressive, CMYK)
plus JPEGs from tests/tools/cap-mkjpeg (YCCK, CMYK without Adobe marker, RGB colour space,
arithmetic coding, restart markers, 4:4:0) and one with an EXIF rotation; PNGs of every colour type and bit depth written
by a small encoder below (plain and Adam7-interlaced, palettes shorter than their indices,
tRNS) and by Pillow itself. Decoded pixels must be equal, resized pixels within 1 level (we
aim for 0 and report the maximum), tensors within 1e-6."""
import glob, io, os, random, struct, sys, warnings, zlib
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caplib import ok, notok, check, skip, tool, run, tmpdir, data, finish
import numpy as np
from PIL import Image
from torchvision import transforms as T

DUMP = tool("cap-imgdump")
MKJPEG = tool("cap-mkjpeg")
TMP = tmpdir()
# Pillow warns when converting a palette image with per-entry alpha to RGB: that is the case tested.
warnings.filterwarnings("ignore", message="Palette images with Transparency")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
rng = np.random.default_rng(12345)
maxdiff = {"resized": 0, "cropped": 0, "tensor": 0.0}

def dump(path, *args):
    out = run([DUMP, *args, path]).stdout
    i = out.index(b"\n")
    w, h, c, dt = out[:i].split()
    w, h = int(w), int(h)
    if dt == b"u8":
        return np.frombuffer(out[i + 1:], np.uint8).reshape(h, w, 3)
    return np.frombuffer(out[i + 1:], np.float32).reshape(3, h, w)

def pil_rgb(path):
    with Image.open(path) as im:
        return im.convert("RGB")

def check_decode(path, name):
    want = np.array(pil_rgb(path))
    got = dump(path)
    if got.shape != want.shape:
        return notok("decode %s" % name, "shape %s, PIL %s" % (got.shape, want.shape))
    d = int(np.abs(got.astype(int) - want).max())
    check(d == 0, "decode %s equals PIL convert('RGB')" % name, "max diff %d" % d)

def resized_size(w, h, n):
    # torchvision's rule, written out independently of its helper for the assertion below
    if w <= h:
        return n, int(n * h / w)
    return int(n * w / h), n

def check_preprocess(path, name, resize=256, crop=224, squash=None, full_resize=True):
    im = pil_rgb(path)
    if squash:
        args = ["--squash", str(squash)]
        tf_u8 = T.Resize((squash, squash))
        tf = T.Compose([T.Resize((squash, squash)), T.ToTensor(), T.Normalize(MEAN, STD)])
        label = "squash %d" % squash
    else:
        args = ["--resize", str(resize), "--crop", str(crop)]
        tf_u8 = T.Compose([T.Resize(resize), T.CenterCrop(crop)])
        tf = T.Compose([T.Resize(resize), T.CenterCrop(crop), T.ToTensor(), T.Normalize(MEAN, STD)])
        label = "resize %d crop %d" % (resize, crop)
        if full_resize:
            want = np.array(im.resize(resized_size(im.width, im.height, resize), Image.BILINEAR))
            got = dump(path, *args, "--stage", "resized")
            if got.shape != want.shape:
                notok("resized %s (%s)" % (name, label), "shape %s, PIL %s" % (got.shape, want.shape))
            else:
                d = int(np.abs(got.astype(int) - want).max())
                maxdiff["resized"] = max(maxdiff["resized"], d)
                check(d <= 1, "resized %s (%s) within 1 of PIL, max diff %d" % (name, label, d))
    want = np.array(tf_u8(im))
    got = dump(path, *args, "--stage", "cropped")
    if got.shape != want.shape:
        notok("cropped %s (%s)" % (name, label), "shape %s, torchvision %s" % (got.shape, want.shape))
    else:
        d = int(np.abs(got.astype(int) - want).max())
        maxdiff["cropped"] = max(maxdiff["cropped"], d)
        check(d <= 1, "cropped %s (%s) within 1 of torchvision, max diff %d" % (name, label, d))
    want = tf(im).numpy()
    got = dump(path, *args, "--stage", "tensor")
    if got.shape != want.shape:
        return notok("tensor %s (%s)" % (name, label), "shape %s, torchvision %s" % (got.shape, want.shape))
    d = float(np.abs(got - want).max())
    maxdiff["tensor"] = max(maxdiff["tensor"], d)
    check(d <= 1e-6, "tensor %s (%s) within 1e-6 of torchvision, max diff %.3g" % (name, label, d))

# ---- a minimal PNG encoder, so that every colour type / bit depth / interlace is covered ----

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
SPP = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)

def pack_rows(px, depth):
    """px: (h, w, spp) ints -> list of row bytes (MSB-first bit packing, big-endian 16-bit)."""
    rows = []
    for r in px:
        flat = r.reshape(-1)
        if depth == 16:
            rows.append(flat.astype(">u2").tobytes())
        elif depth == 8:
            rows.append(flat.astype(np.uint8).tobytes())
        else:
            per = 8 // depth
            pad = (-len(flat)) % per
            v = np.concatenate([flat, np.zeros(pad, int)]).reshape(-1, per)
            b = np.zeros(len(v), int)
            for i in range(per):
                b |= v[:, i] << (8 - depth * (i + 1))
            rows.append(b.astype(np.uint8).tobytes())
    return rows

def make_png(px, depth, ctype, interlace=False, plte=None, trns=None):
    h, w = px.shape[:2]
    raw = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = px[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += b"".join(b"\0" + r for r in pack_rows(sub, depth))
    else:
        raw = b"".join(b"\0" + r for r in pack_rows(px, depth))
    s = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(interlace)))
    if plte is not None:
        s += png_chunk(b"PLTE", plte)
    if trns is not None:
        s += png_chunk(b"tRNS", trns)
    z = zlib.compress(raw)
    if interlace:
        # also: a gamma chunk (Pillow ignores it, so must we) and image data split over IDATs
        s += png_chunk(b"gAMA", struct.pack(">I", 45455))
        return s + b"".join(png_chunk(b"IDAT", z[i:i + 100]) for i in range(0, len(z), 100)) + png_chunk(b"IEND", b"")
    return s + png_chunk(b"IDAT", z) + png_chunk(b"IEND", b"")

def write(name, blob):
    p = os.path.join(TMP, name)
    with open(p, "wb") as f:
        f.write(blob)
    return p

def photo(w, h):
    """A smooth image with some texture, so resampling and JPEG coding are exercised."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(x / 7.0 + c) * np.cos(y / 5.0 - c) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)

def synth_pngs():
    out = []
    w, h = 37, 23
    for ctype, depths in [(0, (1, 2, 4, 8, 16)), (2, (8, 16)), (3, (1, 2, 4, 8)), (4, (8, 16)), (6, (8, 16))]:
        for depth in depths:
            for interlace in (False, True):
                px = rng.integers(0, 1 << depth, size=(h, w, SPP[ctype]))
                plte = trns = None
                if ctype == 3:
                    # fewer entries than indices: Pillow's palette is a grey ramp past the PLTE
                    n = max(1, (1 << depth) * 3 // 4)
                    plte = rng.integers(0, 256, size=3 * n).astype(np.uint8).tobytes()
                    trns = bytes([0, 128]) if depth > 1 else None
                elif ctype == 0 and depth >= 8:
                    trns = struct.pack(">H", 7)
                elif ctype == 2:
                    trns = struct.pack(">HHH", 1, 2, 3)
                name = "c%d_d%d%s.png" % (ctype, depth, "_i" if interlace else "")
                out.append((name, write(name, make_png(px, depth, ctype, interlace, plte, trns))))
    # Pillow's own writer, the usual modes
    base = Image.fromarray(photo(61, 45))
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, size=(45, 61)).astype(np.uint8)))
    pal = base.quantize(64)
    palt = pal.copy()
    palt.info["transparency"] = 3
    i16 = Image.fromarray((rng.integers(0, 700, size=(45, 61))).astype(np.uint16))
    variants = [("L", base.convert("L"), {}), ("LA", base.convert("LA"), {}), ("P", pal, {}),
                ("P-trns", palt, {"transparency": 3}), ("P-4bit", base.quantize(16), {"bits": 4}),
                ("RGBA", rgba, {}), ("1", base.convert("1"), {}), ("I;16", i16, {}),
                ("RGB", base, {})]
    for label, im, kw in variants:
        p = os.path.join(TMP, "pil_%s.png" % label.replace(";", "_"))
        try:
            im.save(p, **kw)
        except Exception as e:  # say so rather than silently testing less
            skip("PIL cannot write PNG mode %s: %s" % (label, e))
            continue
        out.append(("PIL-written PNG %s (opens as %s)" % (label, Image.open(p).mode), p))
    return out

def synth_jpegs():
    out = []
    base = Image.fromarray(photo(83, 57))
    for label, im, kw in [("grey", base.convert("L"), {}),
                          ("444", base, {"subsampling": 0, "quality": 92}),
                          ("422", base, {"subsampling": 1}), ("420", base, {"subsampling": 2}),
                          ("progressive", base, {"progressive": True}),
                          ("cmyk", base.convert("CMYK"), {}),
                          ("cmyk-random", Image.fromarray(rng.integers(0, 256, size=(57, 83, 4)).astype(np.uint8), "CMYK"), {})]:
        p = os.path.join(TMP, "jpeg_%s.jpg" % label)
        im.save(p, **kw)
        out.append(("JPEG %s (opens as %s)" % (label, Image.open(p).mode), p))
    # EXIF orientation 6 ("rotate 90"): PIL.Image.open does not apply it, nor do we
    exif = Image.Exif()
    exif[0x0112] = 6
    p = os.path.join(TMP, "jpeg_exif6.jpg")
    base.save(p, exif=exif)
    out.append(("JPEG with EXIF orientation 6", p))
    # kinds Pillow cannot write, made with libjpeg by cap-mkjpeg
    for mode, nc in [("ycck", 4), ("cmyk-noadobe", 4), ("rgb", 3), ("arith", 3), ("restart", 3), ("h1v2", 3)]:
        p = os.path.join(TMP, "jpeg_%s.jpg" % mode)
        if nc == 4:
            px = rng.integers(0, 256, size=(57, 83, 4)).astype(np.uint8)
        else:
            px = photo(83, 57)
        r = run([MKJPEG, mode, "83", "57", p], input=px.tobytes(), check_rc=False)
        if r.returncode != 0:
            notok("cap-mkjpeg writes a %s JPEG" % mode, r.stderr.decode(errors="replace"))
            continue
        with Image.open(p) as im:
            out.append(("JPEG %s (opens as %s, adobe_transform %s)" % (mode, im.mode, im.info.get("adobe_transform")), p))
    return out

def main():
    # Synthesised images: decoding of every mode, then preprocessing of a few, including
    # upscaling (these are smaller than 256) and unusual sizes.
    for name, p in synth_pngs() + synth_jpegs():
        check_decode(p, name)
    for name, p in [("grey JPEG", os.path.join(TMP, "jpeg_grey.jpg")), ("CMYK JPEG", os.path.join(TMP, "jpeg_cmyk.jpg")),
                    ("16-bit RGBA PNG", os.path.join(TMP, "c6_d16_i.png"))]:
        check_preprocess(p, name)
        check_preprocess(p, name, squash=224)
    for w, h in [(3, 50), (50, 3), (256, 300), (300, 256), (257, 1000), (1, 1), (223, 225), (640, 480)]:
        p = write("size_%dx%d.png" % (w, h), make_png(photo(w, h), 8, 2))
        check_preprocess(p, "%dx%d" % (w, h))
        check_preprocess(p, "%dx%d" % (w, h), resize=97, crop=33)
        check_preprocess(p, "%dx%d" % (w, h), squash=57)

    # Real photos
    if not data("samples"):
        skip("no $CAP_DATA/samples: real-photo parity not checked")
    else:
        files = sorted(f for f in glob.glob(os.path.join(data("samples"), "**", "*"), recursive=True)
                       if f.lower().endswith((".png", ".jpg", ".jpeg")))
        for f in files:
            name = os.path.relpath(f, data("samples"))
            check_decode(f, name)
            check_preprocess(f, name)
            check_preprocess(f, name, squash=224)
    if not data("flickr8k", "images"):
        skip("no $CAP_DATA/flickr8k/images: Flickr8k parity not checked")
    else:
        files = sorted(glob.glob(os.path.join(data("flickr8k", "images"), "*.jpg")))
        random.Random(8).shuffle(files)
        for f in files[:40]:
            name = os.path.basename(f)
            check_decode(f, name)
            check_preprocess(f, name, full_resize=False)
            check_preprocess(f, name, squash=224)

    # Broken files against Pillow: whatever we accept, Pillow accepts with the same pixels;
    # whatever Pillow refuses, we refuse (we may refuse more: see lib/image/image.h).
    srcs = [p for p in [data("flickr8k", "images", "1001773457_577c3a7d70.jpg"), data("samples", "chelsea.png")] if p]
    srcs += [os.path.join(TMP, "jpeg_progressive.jpg"), os.path.join(TMP, "c3_d4_i.png")]
    prng = random.Random(3)
    agree, cases, ours_only = True, 0, 0
    for src in srcs:
        blob = open(src, "rb").read()
        variants = [blob[:n] for n in sorted(prng.sample(range(len(blob)), 12)) + [len(blob) - 2]]
        for _ in range(12):
            b = bytearray(blob)
            for _ in range(prng.randint(1, 3)):
                b[prng.randrange(8, len(b))] ^= prng.randrange(1, 256)
            variants.append(bytes(b))
        for v in variants:
            p = write("broken" + os.path.splitext(src)[1], v)
            try:
                want = np.array(pil_rgb(p))
            except Exception:
                want = None
            r = run([DUMP, p], check_rc=False)
            cases += 1
            if r.returncode == 0:
                i = r.stdout.index(b"\n")
                got = np.frombuffer(r.stdout[i + 1:], np.uint8)
                if want is None or got.size != want.size or (got != want.reshape(-1)).any():
                    agree = False
                    notok("broken %s: we accept a variant Pillow %s" % (os.path.basename(src), "refuses" if want is None else "decodes differently"))
            elif r.returncode == 1 and b"cap-imgdump: " + p.encode() in r.stderr:
                ours_only += want is not None
            else:
                agree = False
                notok("broken %s: exit %d without a proper message" % (os.path.basename(src), r.returncode))
    check(agree, "%d truncated/corrupted files: where we decode, Pillow decodes the same; "
          "we refuse %d that Pillow decodes" % (cases, ours_only))

    # Other formats are refused by content, not by name
    for fmt, ext in [("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tif")]:
        p = os.path.join(TMP, "x.%s" % ext)
        Image.new("RGB", (8, 8)).save(p, fmt)
        pj = os.path.join(TMP, "really_%s.jpg" % ext)
        os.replace(p, pj)
        r = run([DUMP, pj], check_rc=False)
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 1 and "unsupported image format (expected JPEG or PNG)" in err and pj in err,
              "%s named .jpg is refused with a clear message" % fmt, "exit %d: %s" % (r.returncode, err))

    print("# max diff vs PIL/torchvision: resized %d levels, cropped %d levels, tensor %.3g"
          % (maxdiff["resized"], maxdiff["cropped"], maxdiff["tensor"]))
    finish()

main()
