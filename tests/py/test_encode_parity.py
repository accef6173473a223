"""cap-encode against torchvision: small ResNets (Bottleneck and BasicBlock, one block per
stage) with random weights and random BatchNorm statistics, saved from Python as safetensors
and as .pth, run on real Flickr8k JPEGs with both preprocessing modes; features must match
torchvision's eval transform + model (fc replaced by Identity) within 1e-4 relative. Also the
full ResNet-152 depth on two images, bf16's error, and bad weight files."""
import io, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caplib
from caplib import check, skip, ok, notok, run, tool, rel_err

try:
    import numpy as np, torch, msgpack
    import torchvision
    from torchvision import transforms
    from torchvision.models.resnet import ResNet, Bottleneck, BasicBlock
    from PIL import Image
except ImportError as e:
    skip("encode parity: no torch/torchvision/PIL (%s)" % e)
    caplib.finish()

images_dir = caplib.data("flickr8k", "images")
if not images_dir:
    skip("encode parity: no $CAP_DATA/flickr8k/images")
    caplib.finish()

torch.set_num_threads(2)
ENC = tool("cap-encode")
T = caplib.tmpdir()
IMAGES = sorted(os.path.join(images_dir, f) for f in os.listdir(images_dir) if f.endswith(".jpg"))[:8]
NORM = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
TF = {
    "resize-crop": transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(), NORM]),
    "squash": transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(), NORM]),
}
ARGS = {"resize-crop": ["--resize", "256", "--crop", "224"], "squash": ["--squash", "224"]}


def read_stream(data):
    objs = list(msgpack.Unpacker(io.BytesIO(data), raw=False))
    return objs[0], objs[1:]


def encode(weights, images, extra=(), input=None):
    p = run([ENC, "--weights", weights, "--threads", "2"] + list(extra) + list(images), input=input)
    return read_stream(p.stdout)


def feats(recs):
    return np.stack([np.frombuffer(r["feature"], dtype="<f4") for r in recs])


def torch_feats(model, images, mode):
    with torch.no_grad():
        x = torch.stack([TF[mode](Image.open(p).convert("RGB")) for p in images])
        return model(x).numpy()


def randomise_bn(model, gen, last_scale=None):
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
            if last_scale is not None and name.endswith("bn3"):   # last BN of a Bottleneck
                m.weight.data.mul_(last_scale)


def save_both(model, stem):
    sd = model.state_dict()
    st = os.path.join(T, stem + ".safetensors")
    caplib.write_safetensors(st, {k: v.numpy() for k, v in sd.items()})
    pth = os.path.join(T, stem + ".pth")
    torch.save(sd, pth)
    return st, pth


gen = torch.Generator().manual_seed(1234)
torch.manual_seed(1234)
for block, bname, dim in ((Bottleneck, "bottleneck", 2048), (BasicBlock, "basicblock", 512)):
    model = ResNet(block, [1, 1, 1, 1])
    randomise_bn(model, gen)
    st, pth = save_both(model, bname)   # with fc.weight/fc.bias: cap-encode must ignore them
    model.fc = torch.nn.Identity()
    model.eval()
    digests = {}
    for mode in ("resize-crop", "squash"):
        want = torch_feats(model, IMAGES, mode)
        for wfile in (st, pth):
            kind = os.path.splitext(wfile)[1]
            try:
                head, recs = encode(wfile, IMAGES, ARGS[mode] + ["--batch", "3"])
            except RuntimeError as e:
                notok("%s %s %s: cap-encode ran" % (bname, kind, mode), str(e)[:300])
                continue
            got = feats(recs)
            digests[kind] = head["encoder"]["weights"]
            check([r["image"] for r in recs] == IMAGES, "%s %s %s: records in input order" % (bname, kind, mode))
            check(head["dim"] == dim and head["encoder"]["depth"] == 10 + 4 * (block is Bottleneck)
                  and head["preprocess"]["mode"] == mode and all(r["shape"] == [dim] for r in recs),
                  "%s %s %s: header dim %d depth %d" % (bname, kind, mode, head["dim"], head["encoder"]["depth"]))
            err = max(rel_err(g, w) for g, w in zip(got, want)) if got.shape == want.shape else float("inf")
            check(err < 1e-4, "%s %s %s: features vs torchvision, max rel err %.2e < 1e-4" % (bname, kind, mode, err))
    check(len(set(digests.values())) == 1 and all(d.startswith("sha256:") for d in digests.values()),
          "%s: .pth and .safetensors give the same weights digest" % bname)
    if block is Bottleneck:
        # bf16: faster, less exact; report and bound its error against fp32
        _, recs32 = encode(st, IMAGES[:4])
        head, recs16 = encode(st, IMAGES[:4], ["--bf16"])
        err = max(rel_err(a, b) for a, b in zip(feats(recs16), feats(recs32)))
        check(head["encoder"]["precision"] == "bf16" and err < 5e-2,
              "bottleneck --bf16 vs fp32: max rel err %.2e < 5e-2" % err)
        # stdin path list and --basename give the same features
        head, recs = encode(st, [], ["--basename"], input=("\n".join(IMAGES[:3]) + "\n").encode())
        check([r["image"] for r in recs] == [os.path.basename(p) for p in IMAGES[:3]]
              and np.array_equal(feats(recs), feats(recs32[:3])), "paths on stdin, --basename")

        # bad weights: a missing tensor, a wrong shape, a non-finite variance
        sd = {k: v.numpy() for k, v in model.state_dict().items()}
        cases = {
            "missing": ({k: v for k, v in sd.items() if k != "layer2.0.bn1.running_var"}, "layer2.0.bn1.running_var"),
            "shape": (dict(sd, **{"layer3.0.conv2.weight": np.zeros((256, 256, 3, 1), np.float32)}), "layer3.0.conv2.weight"),
            "nan": (dict(sd, **{"bn1.running_var": np.full(64, np.nan, np.float32)}), "bn1.running_var"),
        }
        for what, (d, name) in cases.items():
            path = os.path.join(T, "bad-%s.safetensors" % what)
            caplib.write_safetensors(path, d)
            p = run([ENC, "--weights", path, IMAGES[0]], check_rc=False)
            err_s = p.stderr.decode(errors="replace")
            check(p.returncode == 1 and name in err_s and not p.stdout,
                  "bad weights (%s): exit 1 naming %s" % (what, name), err_s[:200])
        p = run([ENC, "--weights", os.path.join(T, "absent.pth"), IMAGES[0]], check_rc=False)
        check(p.returncode == 1 and b"absent.pth" in p.stderr, "absent weights file: exit 1 naming it")

# Full ResNet-152 depth on 2 images: torchvision's init with random BatchNorm statistics and the
# last BatchNorm of each block scaled down (so 50 blocks neither vanish nor explode).
model = torchvision.models.resnet152()
randomise_bn(model, gen, last_scale=0.2)
model.fc = torch.nn.Identity()
model.eval()
st = os.path.join(T, "resnet152.safetensors")
caplib.write_safetensors(st, {k: v.numpy() for k, v in model.state_dict().items()})
want = torch_feats(model, IMAGES[:2], "resize-crop")
head, recs = encode(st, IMAGES[:2], ["--batch", "2"])
err = max(rel_err(g, w) for g, w in zip(feats(recs), want))
check(head["encoder"]["arch"] == "resnet152" and err < 1e-4,
      "ResNet-152 full depth vs torchvision: max rel err %.2e < 1e-4 (feature max %.3g)" % (err, float(np.abs(want).max())))
head, recs = encode(st, IMAGES[:2], ["--batch", "2", "--bf16"])
err = max(rel_err(g, w) for g, w in zip(feats(recs), want))
check(err < 5e-2, "ResNet-152 full depth --bf16 vs torchvision fp32: max rel err %.2e < 5e-2" % err)

caplib.finish()
