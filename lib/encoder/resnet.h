/* ResNet (torchvision's v1.5: the stride of a downsampling Bottleneck sits on its 3x3 conv)
 * in eval mode, up to the global average pool: the image encoder of Show-and-Tell.
 *
 * The network is built from named tensors with torchvision/timm names (conv1.weight,
 * bn1.running_var, layer3.35.conv2.weight, layer2.0.downsample.0.weight, ...); the depth is
 * read from the names (ResNet-18/34 with BasicBlocks, 50/101/152 with Bottlenecks, any other
 * count of blocks per stage too) and every tensor's shape is checked against torchvision's
 * widths. fc.* is ignored. BatchNorm is folded into the preceding convolution at load time
 * (eps 1e-5, as torchvision), so each conv carries its own bias.
 *
 * Images are float CHW (3, h, w), normalised as cap_preprocess() makes them; the output of
 * each image is cap_resnet_dim() floats. */
#ifndef CAP_RESNET_H
#define CAP_RESNET_H
#include <stdint.h>
#include "io/tensors.h"
#include "ops/resnet_net.h"

/* Builds the network from loaded tensors. NULL with cap_errmsg() naming the missing or
 * mis-shaped tensor. */
cap_resnet *cap_resnet_from_tensors(const cap_tensors *ts);
/* Blocks per stage and block type of a standard depth (18, 34, 50, 101, 152); -1 otherwise. */
int cap_resnet_arch(int depth, int layers[4], int *bottleneck);
/* A randomly initialised network as torchvision's ResNet(..., zero_init_residual=True):
 * convs kaiming_normal_(mode="fan_out", nonlinearity="relu"); BatchNorm weight 1, bias 0,
 * running mean 0, variance 1; the last BatchNorm of each block has weight 0. The draws come
 * from a seeded generator of our own (same distribution as torch, not the same numbers). */
cap_resnet *cap_resnet_random(int depth, uint64_t seed);
void cap_resnet_free(cap_resnet *net);
static inline int cap_resnet_dim(const cap_resnet *net) { return net->dim; }

/* The forward pass (up to the global pool) is a backend op: ops->encoder_new/run (lib/ops/ops.h),
 * plain C loops in lib/ops/ref/resnet.c, oneDNN in lib/ops/cpu/resnet.c. */
#endif
