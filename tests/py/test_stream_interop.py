"""Streams written by Python's msgpack are read by the tools (cap-dump prints exactly the values
Python packed); truncated and corrupt Python-written streams give errors with byte offsets."""
import json, os, struct, sys
sys.path.insert(0, os.path.dirname(__file__))
import caplib as C
import msgpack

d = C.tmpdir()
hdr = {"format": "cap", "version": 1, "kind": "features", "dim": 3, "note": "from python"}
recs = [{"image": "im%d.jpg" % i, "feature": struct.pack("<3f", i, 0.25, -1e-3 * i), "shape": [3],
         "extra": {"nested": [1, -2, 3.5, None, True, "ü 字"]}} for i in range(50)]
p = os.path.join(d, "py.mp")
with open(p, "wb") as f:
    f.write(msgpack.packb(hdr, use_bin_type=True))
    for r in recs: f.write(msgpack.packb(r, use_bin_type=True))

out = C.run([C.tool("cap-dump"), "--full", p]).stdout.decode().splitlines()
C.check(len(out) == 51, "cap-dump prints header + 50 records", str(len(out)))
C.check(json.loads(out[0]) == hdr, "header equal to what Python wrote")
good = True
for line, r in zip(out[1:], recs):
    j = json.loads(line)
    # float32 values are printed shortest-exact: they read back to the same float32
    want = r["feature"]
    got = struct.pack("<3f", *j["feature"])
    if j["image"] != r["image"] or got != want or j["extra"] != r["extra"] or j["shape"] != [3]:
        good = False
C.check(good, "every record's values equal to what Python wrote (floats exact)")

# Concatenation with a compatible header (only the informational 'note' differs) and with an
# incompatible one (another dim).
blob = open(p, "rb").read()
q = os.path.join(d, "cat.mp")
open(q, "wb").write(blob + msgpack.packb(dict(hdr, note="other shard")) + msgpack.packb(recs[0]))
C.check(len(C.run([C.tool("cap-dump"), q]).stdout.splitlines()) == 52, "compatible concatenated header accepted")
open(q, "wb").write(blob + msgpack.packb(dict(hdr, dim=4)) + msgpack.packb(recs[0]))
r = C.run([C.tool("cap-dump"), q], check_rc=False)
C.check(r.returncode == 1 and b"incompatible" in r.stderr and b"dim" in r.stderr,
        "incompatible concatenated header refused, naming the key", r.stderr.decode())

# Truncated at sampled offsets: exit 1 and a byte offset, never a crash or a silent success.
bad = []
for cut in list(range(1, 200)) + list(range(200, len(blob) - 1, 97)):
    open(q, "wb").write(blob[:cut])
    r = C.run([C.tool("cap-dump"), q], check_rc=False)
    boundary = False
    if r.returncode == 0:   # a cut exactly between objects is a valid shorter stream
        u = msgpack.Unpacker(); u.feed(blob[:cut])
        try:
            n = sum(1 for _ in u)
            boundary = u.tell() == cut
        except Exception:
            boundary = False
    if not ((r.returncode == 1 and b"byte" in r.stderr) or boundary):
        bad.append((cut, r.returncode))
C.check(not bad, "truncated streams fail with a byte offset", str(bad[:5]))

# Wrong kind, via stdin.
r = C.run([C.tool("cap-dump"), "--kind", "captions"], input=blob, check_rc=False)
C.check(r.returncode == 1 and b"expected a 'captions' stream, got 'features'" in r.stderr,
        "wrong kind refused on stdin", r.stderr.decode())
C.finish()
