"""PyTorch side of bench/encode.sh (Debian's torch/torchvision, /usr/bin/python3).

  encode_torch.py weights OUT.safetensors OUT.pth
      a torchvision ResNet-152 with its random init (zero_init_residual=True, as
      cap-encode --weights random), saved for both sides of the benchmark
  encode_torch.py run WEIGHTS.pth BATCH THREADS LIST
      encodes the images listed in LIST (one path a line) the usual PyTorch way: PIL decode,
      torchvision's Resize(256)/CenterCrop(224)/ToTensor/Normalize, model in eval mode under
      no_grad, BATCH images per forward; prints one JSON line with the times and peak RSS.
  encode_torch.py flops
      the FLOPs of one 224x224 image through the network cap-encode runs (convolutions, the
      pooled 2048-d feature; no classifier), 2 per multiply-add, counted by forward hooks"""
import json, resource, sys, time
t_start = time.monotonic()
import torch, torchvision
from torchvision import transforms
from PIL import Image

def model152(zero_init=True):
    m = torchvision.models.resnet152(zero_init_residual=zero_init)
    m.fc = torch.nn.Identity()
    return m.eval()

if sys.argv[1] == "flops":
    m, total = model152(), [0]
    def conv(mod, inp, out):
        total[0] += 2 * out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.register_forward_hook(conv)
    with torch.no_grad():
        m(torch.zeros(1, 3, 224, 224))
    print(total[0])
    sys.exit(0)

if sys.argv[1] == "weights":
    sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tests/py")
    import caplib
    torch.manual_seed(0)
    m = model152()
    sd = m.state_dict()
    caplib.write_safetensors(sys.argv[2], {k: v.numpy() for k, v in sd.items()})
    torch.save(sd, sys.argv[3])
    sys.exit(0)

_, _, weights, batch, threads, listfile = sys.argv
batch, threads = int(batch), int(threads)
torch.set_num_threads(threads)
m = model152()
m.load_state_dict(torch.load(weights), strict=True)
tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                         transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
paths = [l.strip() for l in open(listfile) if l.strip()]
t_loaded = time.monotonic()
n = 0
with torch.no_grad():
    for i in range(0, len(paths), batch):
        x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[i:i + batch]])
        f = m(x).numpy()
        n += f.shape[0]
t_end = time.monotonic()
print(json.dumps({"n": n, "batch": batch, "threads": threads, "load_s": t_loaded - t_start,
                  "encode_s": t_end - t_loaded, "total_s": t_end - t_start,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
