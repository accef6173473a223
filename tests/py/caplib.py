"""Helpers for the oracle tests in tests/py (run with Debian's python3, which has torch,
torchvision, PIL, msgpack, numpy and nltk). Every check prints one line that tests/run.sh
counts: "ok - ...", "not ok - ..." or "skip - ..."."""
import json, os, subprocess, sys, tempfile, atexit, shutil

BIN = os.environ.get("CAP_BIN", "")
TESTTOOLS = os.environ.get("CAP_TESTTOOLS", "")
DATA = os.environ.get("CAP_DATA", "")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = 0

def tool(name):
    """Path of a built tool (cap-*) or test tool (tests/tools/*)."""
    p = os.path.join(BIN, name)
    return p if os.path.exists(p) else os.path.join(TESTTOOLS, name)

def hf_oracle(what):
    """Hugging Face tokenizers (npm `tokenizers`, run by tests/py/hf_tokenizers.js) as a
    function hf(*args, input=None, parse=True) returning the script's JSON output (with
    parse=False: nothing), raising RuntimeError with its stderr when it fails; the test skips,
    naming `what`, where node or the package is absent."""
    node = shutil.which("node")
    if not node or not os.path.isdir(os.path.join(ROOT, "tests", "node_modules", "tokenizers")):
        skip(what + ": node or tests/node_modules/tokenizers absent (scripts/install-deps.sh)")
        finish()
    script = os.path.join(ROOT, "tests", "py", "hf_tokenizers.js")
    def hf(*args, input=None, parse=True):
        p = subprocess.run([node, script] + list(args), input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError("hf_tokenizers.js: " + p.stderr.decode()[:2000])
        return json.loads(p.stdout) if parse else None
    return hf

def ok(name): print("ok -", name, flush=True)
def skip(name): print("skip -", name, flush=True)
def notok(name, why=""):
    global failures
    failures += 1
    print("not ok -", name, ("(" + why + ")") if why else "", flush=True)

def check(cond, name, why=""):
    (ok if cond else (lambda n: notok(n, why)))(name)
    return cond

def run(args, input=None, check_rc=True):
    """Runs a command, returns CompletedProcess (bytes). Fails loudly on non-zero exit."""
    p = subprocess.run(args, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (args[0], p.returncode, p.stderr.decode(errors="replace")[:2000]))
    return p

def tmpdir():
    d = tempfile.mkdtemp(prefix="cap-pytest.")
    atexit.register(shutil.rmtree, d, True)
    return d

def data(*parts):
    """Path under ../shared/data, or None when the data is absent."""
    p = os.path.join(DATA, *parts) if DATA else ""
    return p if p and os.path.exists(p) else None

def rel_err(a, b):
    """max |a-b| / max |b| (the parity measure the issues use)."""
    import numpy as np
    a = np.asarray(a, dtype=np.float64); b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))

def write_safetensors(path, tensors, metadata=None):
    """Writes a dict name -> numpy array as safetensors (the format is simple enough that the
    test needs no library: u64 header length, JSON header, raw little-endian data)."""
    import json, struct, numpy as np
    dt = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("float64"): "F64",
          np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("uint8"): "U8"}
    header, blobs, off = {}, [], 0
    if metadata: header["__metadata__"] = metadata
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr).reshape(np.shape(arr))  # ascontiguousarray makes 0-d arrays 1-d
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

def read_safetensors(path):
    """Reads safetensors into a dict name -> numpy array (and the metadata dict)."""
    import json, struct, numpy as np
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n]); base = 8 + n
    dt = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1", "BF16": None}
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(raw[base + s:base + e], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return out, meta

def write_stream(path, kind, header, records):
    """Writes a cap stream: the header {"format":"cap","version":1,"kind":kind, **header}, then
    one msgpack map per record (float32 features as bin: numpy_array.astype("<f4").tobytes())."""
    import msgpack
    with open(path, "wb") as f:
        f.write(msgpack.packb(dict({"format": "cap", "version": 1, "kind": kind}, **header), use_bin_type=True))
        for r in records:
            f.write(msgpack.packb(r, use_bin_type=True))

def read_stream(path_or_bytes):
    """(header, [records]) of a cap stream (a path or the bytes); headers of concatenated parts
    after the first are skipped."""
    import io, msgpack
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    it = msgpack.Unpacker(io.BytesIO(data), raw=False)
    header, recs = next(it), []
    for r in it:
        if r.get("format") != "cap": recs.append(r)
    return header, recs

def finish():
    sys.exit(1 if failures else 0)
