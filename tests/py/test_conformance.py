"""Third-party image corpora ($CAP_DATA/conformance: libpng's PngSuite and test PNGs with their
crashers/ and badpal/, libjpeg-turbo's test images; see its SOURCE.md): every file decoded by cap
(tests/tools/cap-imgdump) and by Pillow (Image.open(p).convert("RGB")). Where both decode, the
pixels are equal; where only one does, the file is on the short list below with the reason;
nothing makes cap crash (any exit but 0 or 1). Then cap-encode over the whole folder names each
refused file, skips it, encodes the rest in order and exits 1 with the count."""
import glob, os, subprocess, sys, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caplib as C
import msgpack
import numpy as np
from PIL import Image

ROOT = C.data("conformance")
if not ROOT:
    C.skip("conformance corpora: no $CAP_DATA/conformance")
    C.finish()
warnings.simplefilter("ignore")   # Pillow warns on some of these files; its verdict is what counts

# Files only one side decodes: relative path -> (the side that decodes, why).
ONE_SIDED = {
    "libpng/contrib/testpngs/crashers/badcrc.png":
        ("pillow", "bad IDAT CRC: cap refuses (libpng checks it), Pillow does not check IDAT CRCs"),
    "libpng/contrib/testpngs/crashers/huge_IDAT.png":
        ("pillow", "the IDAT declares more bytes than the file holds: cap refuses a truncated chunk, "
                   "Pillow stops once the pixels are complete"),
    "libpng/contrib/testpngs/crashers/empty_ancillary_chunks.png":
        ("cap", "empty ancillary chunks: libpng skips them, Pillow cannot identify the file"),
}

DUMP = C.tool("cap-imgdump")
files = sorted(glob.glob(os.path.join(ROOT, "**", "*.png"), recursive=True) +
               glob.glob(os.path.join(ROOT, "**", "*.jpg"), recursive=True))
C.check(len(files) > 150, "conformance corpora: %d PNG and JPEG files" % len(files))

def cap_decode(path):
    p = subprocess.run([DUMP, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        return None, p.returncode, p.stderr.decode(errors="replace").strip()
    out = p.stdout
    i = out.index(b"\n")
    w, h, _, _ = out[:i].split()
    return np.frombuffer(out[i + 1:], np.uint8).reshape(int(h), int(w), 3), 0, ""

def pil_decode(path):
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB")), ""
    except Exception as e:  # Pillow's refusals come as many exception types
        return None, "%s: %s" % (type(e).__name__, e)

equal, both_refuse, cap_refused = 0, 0, set()
for f in files:
    rel = os.path.relpath(f, ROOT)
    got, rc, err = cap_decode(f)
    want, perr = pil_decode(f)
    if rc not in (0, 1):
        C.notok("cap decodes or refuses %s cleanly" % rel, "exit status %d: %s" % (rc, err[-300:]))
        continue
    if rc == 1:
        cap_refused.add(f)
        if rel not in err and os.path.basename(f) not in err:
            C.notok("cap's refusal of %s names the file" % rel, err[-300:])
    if got is not None and want is not None:
        if got.shape == want.shape and (got == want).all():
            equal += 1
        else:
            d = int(np.abs(got.astype(int) - want).max()) if got.shape == want.shape else -1
            C.notok("%s: cap's pixels equal Pillow's" % rel, "shape %s vs %s, max diff %d" % (got.shape, want.shape, d))
        if rel in ONE_SIDED:
            C.notok("%s is listed as decoded by one side only, but both decode it: drop it from the list" % rel)
    elif got is None and want is None:
        both_refuse += 1
        if rel in ONE_SIDED:
            C.notok("%s is listed as decoded by one side only, but both refuse it" % rel)
    else:
        side = "cap" if got is not None else "pillow"
        listed = ONE_SIDED.get(rel)
        C.check(listed is not None and listed[0] == side,
                "%s: only %s decodes it, as listed (%s)" % (rel, side, listed[1] if listed else "not listed"),
                "cap: %s; Pillow: %s" % (err[-200:] or "decodes", perr[:200] or "decodes"))
C.check(equal > 150, "%d files decoded by both with equal pixels; %d refused by both" % (equal, both_refuse))
missing = [r for r in ONE_SIDED if not os.path.exists(os.path.join(ROOT, r))]
C.check(not missing, "every file on the one-sided list is in the corpora", ", ".join(missing))

# cap-encode over the whole folder: small network input (the decode is what is tested).
d = C.tmpdir()
out = os.path.join(d, "conf.mp")
p = subprocess.run([C.tool("cap-encode"), "--weights", "random:1", "--squash", "32", "--threads", "2",
                    "--batch", "64", "-o", out], input="\n".join(files).encode() + b"\n",
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
err = p.stderr.decode(errors="replace")
C.check(p.returncode == 1, "cap-encode over the corpora exits 1 (some files refused)", "exit %d" % p.returncode)
named = {f for f in files if ("%s: " % f) in err and "(skipped)" in err.split("%s: " % f, 1)[1].split("\n", 1)[0]}
C.check(named == cap_refused, "cap-encode names each of the %d refused files and skips it" % len(cap_refused),
        "not named: %s; named but decoded: %s" % (sorted(cap_refused - named)[:3], sorted(named - cap_refused)[:3]))
C.check("%d of %d images failed" % (len(cap_refused), len(files)) in err,
        "cap-encode counts the failures", err.strip().splitlines()[-1][:200] if err.strip() else "")
recs = []
if os.path.exists(out):
    with open(out, "rb") as f:
        recs = list(msgpack.Unpacker(f, raw=False))[1:]
want_names = [f for f in files if f not in cap_refused]
C.check([r["image"] for r in recs] == want_names,
        "cap-encode goes on: the other %d files encoded, in input order" % len(want_names), "%d records" % len(recs))
C.finish()
