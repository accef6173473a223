/* The network the encoder op runs (ops->encoder_new): a ResNet as a list of convolutions with
 * BatchNorm folded in. It is data the ops consume, so it lives with them; lib/encoder builds it
 * from weight files or random init (lib/encoder/resnet.h). */
#ifndef CAP_RESNET_NET_H
#define CAP_RESNET_NET_H

/* One convolution with its BatchNorm folded in: weights (cout, cin, k, k), bias (cout). */
typedef struct cap_conv {
	int cin, cout, k, stride, pad;
	float *w;
	float *b;
} cap_conv;

/* A residual block. BasicBlock: c1 (3x3, stride), c2 (3x3), c3.k == 0.
 * Bottleneck: c1 (1x1), c2 (3x3, stride), c3 (1x1, 4x wider). down: 1x1 conv with the
 * block's stride on the identity path, present when down.k != 0. */
typedef struct cap_resnet_block {
	cap_conv c1, c2, c3, down;
} cap_resnet_block;

typedef struct cap_resnet {
	int depth;          /* 2 + (2 or 3) * number of blocks: 18, 34, 50, 101, 152, ... */
	int bottleneck;     /* 1: Bottleneck blocks (expansion 4), 0: BasicBlock */
	int layers[4];      /* blocks per stage */
	int dim;            /* output channels: 512 * expansion */
	cap_conv stem;      /* conv1 (7x7, stride 2, pad 3) + bn1; then ReLU and 3x3/2 max pool */
	int nblocks;
	cap_resnet_block *blocks;
} cap_resnet;

#endif
