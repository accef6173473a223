/* Named tensors from weight files: safetensors (torchvision/timm names) and PyTorch's .pth
 * (zip + pickle, read by a restricted unpickler that executes nothing). cap_tensors_load()
 * tells the two apart by their first bytes. Every size, offset and count in a file is checked
 * against the file and against overflow before use: a malformed or hostile file gives an error
 * (cap_errmsg), never a crash or an out-of-bounds read. */
#ifndef CAP_TENSORS_H
#define CAP_TENSORS_H
#include <stddef.h>
#include <stdint.h>

#define CAP_TENSOR_MAX_DIMS 8

typedef enum cap_dtype {
	CAP_F32, CAP_F16, CAP_BF16, CAP_F64, CAP_I64, CAP_I32, CAP_I16, CAP_I8, CAP_U8, CAP_BOOL
} cap_dtype;

typedef struct cap_tensor {
	const char *name;
	cap_dtype dtype;
	int ndim;
	int64_t shape[CAP_TENSOR_MAX_DIMS];
	const void *data;     /* little-endian, contiguous (row-major), nbytes long */
	size_t nbytes;
} cap_tensor;

typedef struct cap_tensors cap_tensors;

/* Loads a .safetensors or .pth file. NULL with cap_errmsg() ("FILE: ...") on error. */
cap_tensors *cap_tensors_load(const char *path);
void cap_tensors_free(cap_tensors *ts);
size_t cap_tensors_count(const cap_tensors *ts);
const cap_tensor *cap_tensors_at(const cap_tensors *ts, size_t i);
/* The tensor of that name, or NULL. */
const cap_tensor *cap_tensors_find(const cap_tensors *ts, const char *name);
/* A safetensors __metadata__ value (NULL when absent; .pth files have none). */
const char *cap_tensors_meta(const cap_tensors *ts, const char *key);
/* Number of elements (product of the shape). */
size_t cap_tensor_numel(const cap_tensor *t);
/* Converts a floating tensor (F32/F16/BF16/F64) to float32; n must equal its numel.
 * Fails (cap_errmsg names the tensor) on other dtypes or a count mismatch. */
int cap_tensor_to_f32(const cap_tensor *t, float *out, size_t n);
/* Checks name exists with exactly this shape (ndim dims); message names what differs. */
int cap_tensors_expect(const cap_tensors *ts, const char *name, int ndim, const int64_t *shape);

/* Writing safetensors (float32 model files): written to a temporary file and renamed, so the
 * path never holds a partial file. meta is a NULL-terminated list of key, value strings. */
typedef struct cap_tensor_out {
	const char *name;
	int ndim;
	int64_t shape[CAP_TENSOR_MAX_DIMS];
	const float *data;
} cap_tensor_out;
int cap_safetensors_write(const char *path, const cap_tensor_out *ts, size_t n, const char *const *meta);
#endif
