"""Weight files (lib/tensors) against the oracle: Debian's torch 1.13 and torchvision 0.14.

Small torchvision ResNets with random weights and random BatchNorm statistics are saved with
torch.save(model.state_dict()) and as safetensors (caplib.write_safetensors); every tensor read
through tests/tools/cap-tensors must have the state_dict's name, order, dtype, shape and bytes.
Then: float16/bfloat16/float64 conversion to float32 on every bit pattern, .pth files with views
(storage offsets, strides, shared storages), parameters, protocol 4 pickles, the digest, the
writer, and hostile files (lying safetensors offsets, pickles calling unexpected globals,
corrupt zips, random mutations) that must all give clean errors."""
import collections, hashlib, io, json, os, pickle, struct, subprocess, sys, zipfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caplib import ok, notok, check, skip, tool, run, tmpdir, write_safetensors, read_safetensors, finish
import numpy as np
import torch, torchvision
from torchvision.models.resnet import ResNet, BasicBlock, Bottleneck

CT = tool("cap-tensors")
TMP = tmpdir()
torch.manual_seed(1234)
rng = np.random.default_rng(1234)
DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
         torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
         torch.uint8: "U8", torch.bool: "BOOL"}

def p(name): return os.path.join(TMP, name)

def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16: t = t.view(torch.int16)
    return t.numpy().tobytes()

def listing(path):
    out = run([CT, path]).stdout.decode().splitlines()
    rows = []
    for line in out:
        name, dt, shape, nbytes, sha = line.split("\t")
        rows.append((name, dt, () if shape == "-" else tuple(int(x) for x in shape.split("x")), int(nbytes), sha))
    return rows

def expected_listing(sd):
    return [(k, DTYPE[v.dtype], tuple(v.shape), v.numel() * v.element_size(), hashlib.sha256(tensor_bytes(v)).hexdigest())
            for k, v in sd.items()]

def compare_listing(path, sd, what):
    try:
        got = listing(path)
    except RuntimeError as e:
        return notok(what, str(e)[:300])
    want = expected_listing(sd)
    if got == want:
        return ok(what)
    bad = [(g, w) for g, w in zip(got, want) if g != w][:2]
    notok(what, "%d vs %d tensors, first differences %s" % (len(got), len(want), bad))

def fails(path, what, expect=None):
    """cap-tensors must exit 1 with one message naming the file (and `expect`), never crash."""
    r = run([CT, path], check_rc=False)
    err = r.stderr.decode(errors="replace")
    good = r.returncode == 1 and err.startswith("cap-tensors: " + path + ": ") and (expect is None or expect in err)
    check(good, what, "exit %d, stderr %r" % (r.returncode, err[:300]))
    return err

def random_resnet(block, layers):
    m = ResNet(block, layers, num_classes=10)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5); mod.bias.normal_(0, 0.1)
                mod.running_mean.normal_(0, 0.1); mod.running_var.uniform_(0.5, 2.0)
                mod.num_batches_tracked.fill_(int(torch.randint(0, 1000, ())))
    return m.eval()

def st_of(sd):
    return collections.OrderedDict((k, v.numpy()) for k, v in sd.items())

# --- torchvision ResNets as .pth and safetensors -------------------------------------------
for label, block in (("BasicBlock", BasicBlock), ("Bottleneck", Bottleneck)):
    sd = random_resnet(block, [1, 1, 1, 1]).state_dict()
    torch.save(sd, p(label + ".pth"))
    write_safetensors(p(label + ".safetensors"), st_of(sd), {"format": "pt"})
    compare_listing(p(label + ".pth"), sd, "ResNet %s [1,1,1,1] .pth: every tensor's name, order, dtype, shape and bytes" % label)
    compare_listing(p(label + ".safetensors"), sd, "ResNet %s [1,1,1,1] safetensors: every tensor's name, order, dtype, shape and bytes" % label)
    d1 = run([CT, "--digest", p(label + ".pth")]).stdout.strip()
    d2 = run([CT, "--digest", p(label + ".safetensors")]).stdout.strip()
    h = hashlib.sha256()
    u64 = lambda v: struct.pack("<Q", v)
    for k in sorted(sd, key=lambda s: s.encode()):
        t = sd[k]
        h.update(u64(len(k.encode())) + k.encode() + u64(len(DTYPE[t.dtype])) + DTYPE[t.dtype].encode())
        h.update(u64(t.dim()) + b"".join(u64(s) for s in t.shape) + u64(t.numel() * t.element_size()) + tensor_bytes(t))
    check(d1 == d2 == h.hexdigest().encode(), "ResNet %s: digest equal for .pth and safetensors and to the documented formula" % label,
          "%s %s %s" % (d1, d2, h.hexdigest()))
    w = sd["layer2.0.conv1.weight"]
    f = np.frombuffer(run([CT, "--f32", "layer2.0.conv1.weight", p(label + ".pth")]).stdout, np.float32)
    check(np.array_equal(f, w.numpy().ravel()), "ResNet %s: --f32 of a conv weight equals torch's" % label)
    r = run([CT, "--expect", "conv1.weight", "64x3x7x7", p(label + ".pth")], check_rc=False)
    check(r.returncode == 0, "ResNet %s: cap_tensors_expect accepts conv1.weight 64x3x7x7" % label, r.stderr.decode())
    r = run([CT, "--expect", "conv1.weight", "64x3x3x3", p(label + ".pth")], check_rc=False)
    check(r.returncode == 1 and b"[64, 3, 7, 7]" in r.stderr and b"[64, 3, 3, 3]" in r.stderr,
          "ResNet %s: cap_tensors_expect names both shapes on a mismatch" % label, r.stderr.decode())
    r = run([CT, "--expect", "layer9.weight", "1", p(label + ".pth")], check_rc=False)
    check(r.returncode == 1 and b"layer9.weight" in r.stderr, "ResNet %s: cap_tensors_expect names a missing tensor" % label)

# torch.save with pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) and
# nn.Parameter values (_rebuild_parameter).
sd = random_resnet(BasicBlock, [1, 1, 1, 1]).state_dict()
torch.save(sd, p("proto4.pth"), pickle_protocol=4)
compare_listing(p("proto4.pth"), sd, ".pth written with pickle protocol 4")
params = collections.OrderedDict((k, torch.nn.Parameter(torch.randn(3, 4))) for k in ("p.weight", "q.weight"))
torch.save(params, p("params.pth"))
compare_listing(p("params.pth"), params, ".pth of nn.Parameter values (_rebuild_parameter)")
torch.save({"plain": torch.arange(6.0)}, p("plaindict.pth"))
compare_listing(p("plaindict.pth"), {"plain": torch.arange(6.0)}, ".pth of a plain dict")

# Views: storage offsets, strides, shared storages, zero strides, every dtype.
base = torch.randn(5, 6)
views = collections.OrderedDict([
    ("base", base), ("rows", base[1:4]), ("transposed", base.t()), ("column", base[:, 2]),
    ("every_other", base[::2, 1::3]), ("scalar_in_storage", base[2, 3]), ("expanded", torch.randn(3, 1).expand(3, 4)),
    ("empty", base[2:2]), ("half", torch.randn(4, 3).half().t()), ("bf16", torch.randn(7).bfloat16()[2:]),
    ("f64", torch.randn(3, 3, dtype=torch.float64)[1:]), ("i64", torch.arange(10)[3:8:2]),
    ("i32", torch.arange(6, dtype=torch.int32).view(2, 3).t()), ("i16", torch.arange(4, dtype=torch.int16)),
    ("i8", torch.arange(-3, 3, dtype=torch.int8)), ("u8", torch.arange(250, 256, dtype=torch.uint8)),
    ("bool", torch.tensor([True, False, True])), ("scalar", torch.tensor(3.5)),
    ("nd8", torch.randn(1, 2, 1, 2, 1, 2, 1, 2).permute(7, 6, 5, 4, 3, 2, 1, 0)),
])
torch.save(views, p("views.pth"))
compare_listing(p("views.pth"), views, ".pth with views (offsets, strides, shared and expanded storages, every dtype)")
for k in ("transposed", "half", "bf16", "f64"):
    f = np.frombuffer(run([CT, "--f32", k, p("views.pth")]).stdout, np.float32)
    check(np.array_equal(f, views[k].float().contiguous().numpy().ravel()), ".pth view %s: --f32 equals torch's .float()" % k)
r = run([CT, "--f32", "i64", p("views.pth")], check_rc=False)
check(r.returncode == 1 and b"i64" in r.stderr and b"not a floating" in r.stderr, "--f32 of an int64 tensor is refused naming it")

# --- dtype conversion on every bit pattern -------------------------------------------------
allbits = np.arange(65536, dtype=np.uint16)
hdr = {"h": {"dtype": "F16", "shape": [65536], "data_offsets": [0, 131072]},
       "b": {"dtype": "BF16", "shape": [256, 256], "data_offsets": [131072, 262144]}}
def raw_st(path, header, data, pad=True):
    h = json.dumps(header).encode()
    if pad: h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f: f.write(struct.pack("<Q", len(h)) + h + data)
raw_st(p("bits.safetensors"), hdr, allbits.tobytes() * 2)
got = np.frombuffer(run([CT, "--f32", "h", p("bits.safetensors")]).stdout, np.float32)
want = allbits.view(np.float16).astype(np.float32)
nan = np.isnan(want)
check(np.array_equal(np.isnan(got), nan) and np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32)),
      "F16 to float32: all 65536 bit patterns equal numpy's (NaN as NaN)")
got = np.frombuffer(run([CT, "--f32", "b", p("bits.safetensors")]).stdout, np.float32)
want = torch.from_numpy(allbits.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
nan = np.isnan(want)
check(np.array_equal(np.isnan(got), nan) and np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32)),
      "BF16 to float32: all 65536 bit patterns equal torch's (NaN as NaN)")
d = np.concatenate([rng.standard_normal(1000) * 10.0 ** rng.integers(-40, 40, 1000),
                    [0.0, -0.0, 1e300, -1e300, 1e-300, np.inf, -np.inf, 3.4028235677973366e38, 1.401298464324817e-45]])
write_safetensors(p("f64.safetensors"), {"d": d})
got = np.frombuffer(run([CT, "--f32", "d", p("f64.safetensors")]).stdout, np.float32)
check(np.array_equal(got.view(np.uint32), d.astype(np.float32).view(np.uint32)), "F64 to float32 rounds as numpy does (overflow, subnormals)")
# The data area need not be aligned: a header whose length is not a multiple of 8.
raw_st(p("unaligned.safetensors"), {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}, "__metadata__": {"a": "b"}},
       np.array([1.5, -2, 3], np.float32).tobytes(), pad=False)
got = np.frombuffer(run([CT, "--f32", "x", p("unaligned.safetensors")]).stdout, np.float32)
check(got.tolist() == [1.5, -2, 3], "safetensors with unaligned data reads correctly")
# A safetensors file with tensors listed out of offset order and every dtype.
arrs = collections.OrderedDict([("z", np.arange(3, dtype=np.int64)), ("a", np.ones((2, 2), np.float16)),
                                ("m", np.array(7, np.int32)), ("e", np.zeros((0, 4), np.float32))])
write_safetensors(p("dtypes.safetensors"), arrs)
raw, meta = read_safetensors(p("dtypes.safetensors"))
rows = listing(p("dtypes.safetensors"))
check([(r[0], r[2], r[4]) for r in rows] == [(k, v.shape, hashlib.sha256(v.tobytes()).hexdigest()) for k, v in arrs.items()],
      "safetensors with I64/F16/I32 scalar/empty tensors")

# --- the writer ------------------------------------------------------------------------------
run([CT, "--write", p("written.safetensors")])
t, meta = read_safetensors(p("written.safetensors"))
check(t["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and t["b"].shape == () and t["b"] == 7 and t["c"].shape == (0,),
      "written safetensors reads back in Python (shapes, scalar, empty)")
check(meta == {"k1": "v1", "k2": 'quote"\n\u00e9'}, "written metadata (quotes, newline, UTF-8) reads back in Python", repr(meta))
hl = struct.unpack("<Q", open(p("written.safetensors"), "rb").read(8))[0]
check(hl % 8 == 0, "written header is padded to a multiple of 8")
check(sorted(os.listdir(TMP)) == sorted(set(os.listdir(TMP))) and not [f for f in os.listdir(TMP) if ".tmp." in f],
      "the writer leaves no temporary file")
m = run([CT, "--meta", p("written.safetensors")]).stdout.decode()
check(m == 'k1\t"v1"\nk2\t"quote\\"\\n\u00e9"\n', "metadata reads back through cap_tensors_meta_at", repr(m))

# The writer at scale: a whole ResNet (and the views file, with f16/bf16/f64) converted to
# float32 safetensors by cap_safetensors_write, read by caplib's independent reader.
for src, sdict in ((p("Bottleneck.pth"), torch.load(p("Bottleneck.pth"))), (p("views.pth"), views)):
    dst = src + ".f32.safetensors"
    run([CT, "--convert", src, dst])
    t, meta = read_safetensors(dst)
    want = collections.OrderedDict((k, v.float().contiguous().numpy()) for k, v in sdict.items() if v.is_floating_point())
    same = list(t) == list(want) and all(t[k].dtype == np.float32 and t[k].shape == want[k].shape and
                                         t[k].tobytes() == want[k].tobytes() for k in want)
    check(same and meta == {"source": src}, "cap_safetensors_write of %s's float tensors reads back exactly in Python" % os.path.basename(src))

# --- hostile safetensors -------------------------------------------------------------------
good_hdr = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}
good_data = np.arange(6, dtype=np.float32).tobytes()
def bad_st(name, header, data=good_data, expect=None):
    raw_st(p(name), header, data)
    fails(p(name), "safetensors refused: " + name, expect)
def with_(**changes):
    h = json.loads(json.dumps(good_hdr))
    for k, v in changes.items(): h[k.split("__")[0]][k.split("__")[1]] = v
    return h
bad_st("offset_past_end", with_(b__data_offsets=[16, 32]), expect="do not hold")
bad_st("lying_offsets_both", with_(b__data_offsets=[24, 32], b__shape=[2]), expect="begin at")
bad_st("overlap", with_(b__data_offsets=[8, 16], b__shape=[2]), expect="begin at 8")
bad_st("gap", with_(a__data_offsets=[0, 16], b__data_offsets=[20, 28]), good_data + b"\0" * 4, expect="begin at 20")
bad_st("data_after_tensors", good_hdr, good_data + b"\0" * 8, expect="cover 24 bytes but the data area has 32")
bad_st("data_short", good_hdr, good_data[:20], expect="past the end")
bad_st("reversed_range", with_(b__data_offsets=[24, 16]), expect="do not hold")
bad_st("size_mismatch", with_(a__shape=[2, 3]), expect="do not hold")
bad_st("bad_dtype", with_(a__dtype="F8_E4M3"), expect="unsupported dtype")
bad_st("dtype_not_string", with_(a__dtype=4), expect="dtype")
bad_st("shape_overflow", with_(a__shape=[2 ** 32, 2 ** 32, 16]), expect="overflow")
bad_st("shape_overflow2", with_(a__shape=[2 ** 63, 2]), expect="overflow")
bad_st("shape_too_big_int", with_(a__shape=[2 ** 64 + 1]), expect="shape[0]")
bad_st("negative_shape", with_(a__shape=[-2, -2]), expect="shape[0]")
bad_st("fractional_shape", with_(a__shape=[2.5, 2]), expect="shape[0]")
bad_st("offset_overflow", with_(b__data_offsets=[16, 2 ** 64 + 16]), expect="data_offsets")
bad_st("offsets_not_pair", with_(b__data_offsets=[16, 24, 32]), expect="data_offsets")
bad_st("missing_offsets", {"a": {"dtype": "F32", "shape": [6]}}, expect="data_offsets")
bad_st("nine_dims", with_(a__shape=[1] * 7 + [2, 2]), expect="dimensions")
bad_st("metadata_not_string", dict(good_hdr, __metadata__={"k": 1}), expect="__metadata__")
bad_st("metadata_not_object", dict(good_hdr, __metadata__=["k"]), expect="__metadata__")
bad_st("info_not_object", dict(good_hdr, c=[1, 2]), expect="not an object")
def raw_file(name, blob, expect=None):
    with open(p(name), "wb") as f: f.write(blob)
    fails(p(name), "safetensors refused: " + name, expect)
hj = json.dumps(good_hdr).encode()
raw_file("duplicate_names", struct.pack("<Q", len(hj) + 62) + hj[:-1] + b', "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}' + b" " * 0 + good_data)
raw_file("header_past_eof", struct.pack("<Q", len(hj) + 100) + hj + good_data, expect="past the end")
raw_file("huge_header", struct.pack("<Q", 2 ** 63 + 5) + hj + good_data, expect="100 MB")
raw_file("header_over_100MB", struct.pack("<Q", 100_000_001) + hj + good_data, expect="100 MB")
raw_file("non_object_header", struct.pack("<Q", 8) + b"[1, 2]  ", expect=None)
raw_file("object_then_garbage", struct.pack("<Q", len(hj) + 2) + hj + b"{}" + good_data, expect="header")
raw_file("bad_json", struct.pack("<Q", 8) + b'{"a":1,}', expect="header")
raw_file("invalid_utf8_name", struct.pack("<Q", 10) + b'{"\xff":1} ', expect="header")
raw_file("short_file", b"\x10\0\0", expect="too short")
raw_file("empty_file", b"", expect="too short")
raw_file("not_a_weight_file", b"hello world, not weights", expect="neither")
fails(p("does_not_exist"), "missing file refused", "No such file")
# Truncations of a valid file at many offsets: all refused cleanly.
raw_st(p("good.safetensors"), good_hdr, good_data)
blob = open(p("good.safetensors"), "rb").read()
bad = []
for cut in sorted(set(list(range(0, 40)) + list(range(40, len(blob), 7)))):
    if cut == len(blob): continue
    with open(p("trunc.safetensors"), "wb") as f: f.write(blob[:cut])
    r = run([CT, p("trunc.safetensors")], check_rc=False)
    if r.returncode != 1 or not r.stderr.startswith(b"cap-tensors: "): bad.append((cut, r.returncode))
check(not bad and listing(p("good.safetensors")), "safetensors truncated at %d offsets: all refused cleanly, the whole file loads" % len(blob), str(bad[:5]))
r = run([CT, "--fuzz", "3000", "7", p("good.safetensors")], check_rc=False)
check(r.returncode == 0, "3000 random mutations of a safetensors file: loaded or refused, never a crash", (r.stdout + r.stderr).decode()[-300:])

# --- hostile .pth ----------------------------------------------------------------------------
def zip_pth(name, pkl, storages=(), top="archive", compress=zipfile.ZIP_STORED, extra=()):
    with zipfile.ZipFile(p(name), "w", compress) as z:
        z.writestr(top + "/data.pkl", pkl)
        for key, data in storages: z.writestr(top + "/data/" + key, data)
        z.writestr(top + "/version", "3\n")
        for n, data in extra: z.writestr(n, data)
    return p(name)

class FakeStorage:
    def __init__(self, cls, key, numel): self.cls, self.key, self.numel = cls, key, numel
class FakeTensor:
    def __init__(self, storage, offset, size, stride): self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())
    def __reduce__(self): return (torch._utils._rebuild_tensor_v2, self.args)
class StatePickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", obj.cls, obj.key, "cpu", obj.numel) if isinstance(obj, FakeStorage) else None
def state_pickle(obj, protocol=2):
    b = io.BytesIO(); StatePickler(b, protocol=protocol).dump(obj); return b.getvalue()
def fake_pth(name, tensors, storages, expect):
    """tensors: name -> (storage class, key, numel, offset, size, stride); storages: key -> bytes."""
    sd = collections.OrderedDict((k, FakeTensor(FakeStorage(c, key, n), o, s, st)) for k, (c, key, n, o, s, st) in tensors.items())
    path = zip_pth(name, state_pickle(sd), storages.items())
    return fails(path, ".pth refused: " + name, expect)

f12 = np.arange(12, dtype=np.float32).tobytes()
# Sanity check that the generator makes loadable files, then hostile variants.
sd = collections.OrderedDict(w=FakeTensor(FakeStorage(torch.FloatStorage, "0", 12), 2, (2, 3), (3, 1)))
path = zip_pth("fake_ok.pth", state_pickle(sd), [("0", f12)])
check(listing(path) == [("w", "F32", (2, 3), 24, hashlib.sha256(np.arange(2, 8, dtype=np.float32).tobytes()).hexdigest())],
      "a hand-made .pth (offset view) loads")
sd = collections.OrderedDict(e=FakeTensor(FakeStorage(torch.FloatStorage, "0", 12), 99, (0, 2 ** 62, 4), (2 ** 40, 3, 1)))
path = zip_pth("fake_empty.pth", state_pickle(sd), [("0", f12)])
check(listing(path) == [("e", "F32", (0, 2 ** 62, 4), 0, hashlib.sha256(b"").hexdigest())],
      "a .pth view with a zero size and huge other sizes and strides loads as empty")
fake_pth("view_past_storage", {"w": (torch.FloatStorage, "0", 12, 7, (2, 3), (3, 1))}, {"0": f12}, "reaches element 12")
fake_pth("stride_past_storage", {"w": (torch.FloatStorage, "0", 12, 0, (2, 3), (100, 1))}, {"0": f12}, "reaches element")
fake_pth("stride_overflow", {"w": (torch.FloatStorage, "0", 12, 0, (3, 3), (2 ** 62, 1))}, {"0": f12}, "overflow")
fake_pth("size_overflow", {"w": (torch.FloatStorage, "0", 12, 0, (2 ** 40, 2 ** 40), (0, 0))}, {"0": f12}, "overflow")
fake_pth("numel_mismatch", {"w": (torch.FloatStorage, "0", 13, 0, (2, 3), (3, 1))}, {"0": f12}, "do not match")
fake_pth("missing_storage", {"w": (torch.FloatStorage, "9", 12, 0, (2, 3), (3, 1))}, {"0": f12}, "no zip entry archive/data/9")
fake_pth("negative_offset", {"w": (torch.FloatStorage, "0", 12, -1, (2, 3), (3, 1))}, {"0": f12}, "_rebuild_tensor_v2")
fake_pth("negative_stride", {"w": (torch.FloatStorage, "0", 12, 11, (2, 3), (-3, 1))}, {"0": f12}, "_rebuild_tensor_v2")
fake_pth("size_stride_rank", {"w": (torch.FloatStorage, "0", 12, 0, (2, 3), (3,))}, {"0": f12}, "_rebuild_tensor_v2")
fake_pth("nine_dims", {"w": (torch.FloatStorage, "0", 12, 0, (1,) * 9, (1,) * 9)}, {"0": f12}, "at most 8")
# Huge strided copies of one storage are bounded.
big = np.zeros(1 << 18, np.float32).tobytes()
fake_pth("copy_bomb", {"w%d" % i: (torch.FloatStorage, "0", 1 << 18, 0, (1 << 9, 1 << 9), (1, 1 << 9)) for i in range(20)},
         {"0": big}, "times the file size")

class Evil:
    def __reduce__(self): return (os.system, ("echo pwned > " + p("pwned"),))
zip_pth("os_system.pth", pickle.dumps(collections.OrderedDict(w=Evil()), protocol=2))
fails(p("os_system.pth"), ".pth whose pickle calls os.system is refused naming it", "pickle calls posix.system")
check(not os.path.exists(p("pwned")), "... and nothing was run")
class Evil2:
    def __reduce__(self): return (eval, ("1+1",))
zip_pth("eval_proto4.pth", pickle.dumps({"w": Evil2()}, protocol=4))
fails(p("eval_proto4.pth"), ".pth whose protocol 4 pickle calls builtins.eval is refused naming it", "pickle calls builtins.eval")
zip_pth("storage_call.pth", b"\x80\x02ctorch\nFloatStorage\n)R.")
fails(p("storage_call.pth"), ".pth calling a storage class is refused", "never calls")
zip_pth("inst.pth", b"\x80\x02(X\x02\x00\x00\x00lsios\nsystem\n.")
fails(p("inst.pth"), ".pth using the INST opcode is refused naming it", "INST")
zip_pth("not_dict.pth", pickle.dumps([1, 2], protocol=2))
fails(p("not_dict.pth"), ".pth holding a list, not a state_dict, is refused", "not a state_dict")
zip_pth("non_tensor.pth", pickle.dumps({"epoch": 3}, protocol=2))
fails(p("non_tensor.pth"), ".pth with a non-tensor value is refused naming the entry", '"epoch" is a int')
torch.save({"model": {"w": torch.ones(2)}, "epoch": 3}, p("checkpoint.pth"))
fails(p("checkpoint.pth"), "a training checkpoint (nested dict) is refused with a hint", "save the model's state_dict alone")
torch.save(torch.nn.Linear(2, 2), p("whole_model.pth"))
fails(p("whole_model.pth"), "a whole pickled model is refused with a hint", "save model.state_dict() instead")
zip_pth("no_stop.pth", pickle.dumps({}, protocol=2)[:-1])
fails(p("no_stop.pth"), ".pth pickle without STOP is refused", "without STOP")
zip_pth("underflow.pth", b"\x80\x02s.")
fails(p("underflow.pth"), ".pth pickle stack underflow is refused", "underflow")
zip_pth("bad_memo.pth", b"\x80\x02j\xff\xff\xff\x7f.")
fails(p("bad_memo.pth"), ".pth pickle reading an unset memo entry is refused", "memo")
zip_pth("huge_memo.pth", b"\x80\x02}r\xff\xff\xff\xff.")
fails(p("huge_memo.pth"), ".pth pickle with a huge memo index is refused", "memo index")
zip_pth("huge_string.pth", b"\x80\x02X\xff\xff\xff\xff.")
fails(p("huge_string.pth"), ".pth pickle with a string longer than the file is refused", "truncated")
zip_pth("deep_marks.pth", b"\x80\x02" + b"(" * 100000 + b".")
fails(p("deep_marks.pth"), ".pth pickle with 100000 MARKs is refused cleanly")
zip_pth("cyclic.pth", b"\x80\x02]q\x00h\x00a}q\x01h\x01h\x01s.")
fails(p("cyclic.pth"), ".pth pickle building cyclic containers is refused cleanly", "not a string")
zip_pth("big_endian.pth", pickle.dumps({}, protocol=2), extra=[("archive/byteorder", "big")])
fails(p("big_endian.pth"), ".pth recording big-endian byte order is refused", "byteorder")
with zipfile.ZipFile(p("no_pkl.pth"), "w") as z: z.writestr("archive/data/0", f12)
fails(p("no_pkl.pth"), "zip without */data.pkl is refused", "data.pkl")
zip_pth("deflated.pth", state_pickle(sd), [("0", f12)], compress=zipfile.ZIP_DEFLATED)
fails(p("deflated.pth"), "zip with compressed entries is refused with a clear message", "is compressed")
torch.save({"w": torch.ones(3)}, p("legacy.pth"), _use_new_zipfile_serialization=False)
fails(p("legacy.pth"), "the legacy (pre-1.6) torch.save format is refused with a clear message", "legacy")

# A real small .pth (views) truncated and with a local header offset past the end of the file.
small = collections.OrderedDict([("a", base), ("b", base[1:].t()), ("n", torch.tensor(5)), ("h", torch.randn(3).half())])
torch.save(small, p("small.pth"))
blob = open(p("small.pth"), "rb").read()
bad = []
for cut in sorted(set(range(0, len(blob), max(1, len(blob) // 80))) | set(range(len(blob) - 120, len(blob)))):
    with open(p("trunc.pth"), "wb") as f: f.write(blob[:cut])
    r = run([CT, p("trunc.pth")], check_rc=False)
    if r.returncode != 1 or not r.stderr.startswith(b"cap-tensors: "): bad.append((cut, r.returncode, r.stderr[:100]))
check(not bad, ".pth truncated at ~200 offsets: all refused cleanly", str(bad[:3]))
cd = blob.rindex(b"PK\x01\x02")             # the last central directory entry
patched = bytearray(blob); patched[cd + 42:cd + 46] = struct.pack("<I", len(blob) + 1000)
with open(p("local_past_eof.pth"), "wb") as f: f.write(patched)
name_len = struct.unpack("<H", blob[cd + 28:cd + 30])[0]
entry = blob[cd + 46:cd + 46 + name_len].decode()
err = fails(p("local_past_eof.pth"), ".pth whose zip entry offset lies past the end is refused", "local header")
patched = bytearray(blob); patched[cd + 20:cd + 28] = struct.pack("<II", 10 ** 9, 10 ** 9)
with open(p("size_past_eof.pth"), "wb") as f: f.write(patched)
fails(p("size_past_eof.pth"), ".pth whose zip entry size runs past the end is refused", "run past")
eocd = blob.rindex(b"PK\x05\x06")
patched = bytearray(blob); patched[eocd + 16:eocd + 20] = struct.pack("<I", len(blob))
with open(p("cd_past_eof.pth"), "wb") as f: f.write(patched)
r = run([CT, p("cd_past_eof.pth")], check_rc=False)
check(r.returncode in (0, 1), "classic end record with a lying directory offset: zip64 record wins or a clean error")
r = run([CT, "--fuzz", "1500", "11", p("small.pth")], check_rc=False)
check(r.returncode == 0, "1500 random mutations of a .pth: loaded or refused, never a crash", (r.stdout + r.stderr).decode()[-300:])
r = run([CT, "--fuzz", "1500", "12", p("fake_ok.pth")], check_rc=False)
check(r.returncode == 0, "1500 random mutations of a hand-made .pth: loaded or refused, never a crash", (r.stdout + r.stderr).decode()[-300:])
finish()
