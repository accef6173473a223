"""The limits the readers enforce (man/cap-stream.5, cap-encode.1, cap-tokenize.1), each tried at
the limit and one past it with files made here: the file at the limit is read (or fails later,
for another reason, where a complete file at the limit would be too large to make: the message
then shows that the limit check passed), the file past it is refused naming the limit."""
import io, os, struct, subprocess, sys, zipfile, zlib
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caplib as C

d = C.tmpdir()
DUMP, IMG, TENSORS = C.tool("cap-dump"), C.tool("cap-imgdump"), C.tool("cap-tensors")

def run(args, path, data):
    with open(path, "wb") as f:
        f.write(data)
    p = subprocess.run(args + [path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return p.returncode, p.stderr.decode(errors="replace")

def at_and_past(what, args, make, at, past, at_ok, past_msg, at_msg=None):
    """make(n) gives a file with the limited quantity n; the file at `at` is accepted (or fails
    with at_msg, not the limit's message), the one at `past` is refused with past_msg."""
    path = os.path.join(d, "limit.bin")
    rc, err = run(args, path, make(at))
    if at_ok:
        C.check(rc == 0, "%s: %s accepted" % (what, at), err.strip()[-300:])
    else:
        C.check(rc == 1 and at_msg in err and past_msg not in err,
                "%s: %s passes the limit check (then: %s)" % (what, at, at_msg), err.strip()[-300:])
    rc, err = run(args, path, make(past))
    C.check(rc == 1 and past_msg in err, "%s: %s refused (%s)" % (what, past, past_msg), err.strip()[-300:])

# ---- streams: one object is at most 256 MiB and nests at most 32 levels
HDR = b"\x83\xa6format\xa3cap\xa7version\x01\xa4kind\xa8captions"
MAX_RECORD = 256 << 20
at_and_past("stream nesting depth", [DUMP], lambda n: HDR + b"\x81\xa1x" + b"\x91" * (n - 1) + b"\xc0",
            32, 33, True, "nested deeper than 32 levels")
at_and_past("stream bin32 object of N bytes in all", [DUMP],
            lambda n: HDR + b"\xc6" + struct.pack(">I", n - 5) + b"abc", MAX_RECORD, MAX_RECORD + 1,
            False, "268435456-byte record limit", at_msg="ends inside")
at_and_past("stream str32 object of N bytes in all", [DUMP],
            lambda n: HDR + b"\xdb" + struct.pack(">I", n - 5) + b"abc", MAX_RECORD, MAX_RECORD + 1,
            False, "268435456-byte record limit", at_msg="ends inside")
at_and_past("stream array32 of N elements (each at least a byte) at the start of a record", [DUMP],
            lambda n: HDR + b"\xdd" + struct.pack(">I", n) + b"\xc0" * 3, MAX_RECORD - 5, MAX_RECORD - 4,
            False, "larger than the 268435456-byte record limit", at_msg="ends inside")

# ---- images: 16384 pixels a side, 2^26 pixels in all
def png(w, h, ctype=0):
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
    row = b"\x00" + b"\x00" * (w * (3 if ctype == 2 else 1))
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)) +
            chunk(b"IDAT", data) + chunk(b"IEND", b""))
at_and_past("PNG width", [IMG], lambda w: png(w, 2), 16384, 16385, True, "larger than the limit")
at_and_past("PNG height", [IMG], lambda h: png(3, h), 16384, 16385, True, "larger than the limit")
at_and_past("PNG pixels (16384 wide)", [IMG, "--squash", "32", "--stage", "cropped"], lambda h: png(16384, h),
            4096, 4097, True, "larger than the limit")
try:
    from PIL import Image
    def jpeg(w, h):
        b = io.BytesIO()
        Image.new("RGB", (min(w, 16384), h), (200, 30, 60)).save(b, "JPEG")
        j = bytearray(b.getvalue())
        sof = j.index(b"\xff\xc0")
        j[sof + 7:sof + 9] = struct.pack(">H", w)   # the declared width (Pillow cannot write > 65500)
        return bytes(j)
    at_and_past("JPEG width", [IMG], lambda w: jpeg(w, 8), 16384, 16385, True, "larger than the limit")
except ImportError:
    C.skip("JPEG limits: no PIL")

# ---- safetensors: a header of at most 100,000,000 bytes; at most 8 dimensions
def st_len(n):
    return struct.pack("<Q", n) + b"{}      "
at_and_past("safetensors header length", [TENSORS], st_len, 100000000, 100000001, False,
            "exceeds the 100 MB limit", at_msg="runs past the end")
def st_dims(k):
    h = ('{"t":{"dtype":"F32","shape":[%s],"data_offsets":[0,4]}}' % ",".join(["1"] * k)).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"\x00\x00\x80\x3f"
at_and_past("safetensors dimensions", [TENSORS], st_dims, 8, 9, True, "9 dimensions (at most 8 supported)")

# ---- .pth: the unpickler's memo holds at most 2^22 entries
def pth_memo(idx):
    pkl = b"\x80\x02}r" + struct.pack("<I", idx) + b"."
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
    return b.getvalue()
at_and_past(".pth pickle memo index", [TENSORS], pth_memo, (1 << 22) - 1, 1 << 22, True, "memo index 4194304 too large")
# ---- cap-train's streams: a caption of at most 1024 ids; features of at most 2^20 dimensions
try:
    import msgpack
    feats = os.path.join(d, "feats.mp")
    with open(feats, "wb") as f:
        f.write(msgpack.packb({"format": "cap", "version": 1, "kind": "features", "dim": 4}))
        f.write(msgpack.packb({"image": "a.jpg", "feature": struct.pack("<4f", 1, 2, 3, 4), "shape": [4]}, use_bin_type=True))
    def caps(n):
        hdr = {"format": "cap", "version": 1, "kind": "captions", "tokenizer": "t", "vocab_size": 8,
               "tokenizer_json": "{}"}
        return msgpack.packb(hdr) + msgpack.packb({"image": "a.jpg", "n": 0, "text": "",
                                                   "ids": [1] + [5] * (n - 2) + [2]})
    TRAIN = [C.tool("cap-train"), "--features", feats, "--embed", "4", "--hidden", "4", "--epochs", "1",
             "--threads", "1", "-o", os.path.join(d, "m.st"), "--captions"]
    at_and_past("cap-train caption length in ids", TRAIN, caps, 1024, 1025, True, "'ids' has 1025 elements, at most 1024")
    def dims(n):
        return msgpack.packb({"format": "cap", "version": 1, "kind": "features", "dim": n})
    cpath = os.path.join(d, "caps.mp")
    open(cpath, "wb").write(caps(4))
    TRAIN2 = [C.tool("cap-train"), "--captions", cpath, "--embed", "4", "--hidden", "4", "--epochs", "1",
              "--threads", "1", "-o", os.path.join(d, "m.st"), "--features"]
    at_and_past("cap-train feature dimension", TRAIN2, dims, 1 << 20, (1 << 20) + 1, False,
                "features header has no valid 'dim'", at_msg="no features")
    # ---- a model has at most 8 LSTM layers (cap-train --layers, and the loader)
    m8 = os.path.join(d, "m8.st")
    txt, tok, real = os.path.join(d, "caps.txt"), os.path.join(d, "tok.json"), os.path.join(d, "real.mp")
    open(txt, "w").write("a.jpg#0\tA red dog\na.jpg#1\tA dog\n")
    C.run([C.tool("cap-tokenize"), "vocab", "--min-count", "1", "-o", tok, txt])
    C.run([C.tool("cap-tokenize"), "encode", "--tokenizer", tok, "-o", real, txt])
    TR = [C.tool("cap-train"), "--features", feats, "--captions", real, "--embed", "4", "--hidden", "4",
          "--epochs", "1", "--threads", "1"]
    r = C.run(TR + ["--layers", "8", "-o", m8], check_rc=False)
    C.check(r.returncode == 0, "cap-train --layers 8 trains", r.stderr.decode()[-300:])
    r = C.run(TR + ["--layers", "9", "-o", m8 + "x"], check_rc=False)
    C.check(r.returncode == 2 and b"layers" in r.stderr, "cap-train --layers 9 refused (usage)", r.stderr.decode()[-300:])
    t, meta = C.read_safetensors(m8)
    gen = [C.tool("cap-generate"), "--model"]
    r = subprocess.run(gen + [m8, feats], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    C.check(r.returncode == 0, "a model of 8 layers loads (cap-generate)", r.stderr.decode()[-300:])
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        t["lstm.%s_l8" % k] = t["lstm.%s_l7" % k]
    m9 = os.path.join(d, "m9.st")
    C.write_safetensors(m9, t, dict(meta, layers="9"))
    r = subprocess.run(gen + [m9, feats], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    C.check(r.returncode == 1 and b"m9.st: expected 37 decoder tensors, found 41" in r.stderr,
            "a model of 9 layers is refused, naming the file",
            r.stderr.decode()[-300:])
except ImportError:
    C.skip("cap-train limits: no python3-msgpack")
C.finish()
