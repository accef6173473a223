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
	/* Little-endian, contiguous (row-major), nbytes long. Usually a pointer into a read-only
	 * mapping of the file, so it may be unaligned for its dtype: read it with memcpy or
	 * cap_tensor_to_f32, never through a cast (float *) pointer. */
	const void *data;
	size_t nbytes;
} cap_tensor;

typedef struct cap_tensors cap_tensors;

/* Loads a .safetensors or .pth file. NULL with cap_errmsg() ("FILE: ...") on error.
 * safetensors: validated as the reference implementation does (header at most 100 MB and
 * starting with '{', known dtypes, nbytes == numel * width, byte ranges tiling the data area
 * exactly up to the end of the file, no duplicate names, __metadata__ string to string).
 * .pth: the zip written by torch.save since PyTorch 1.6 (stored entries, zip64 allowed) holding
 * a state_dict: a dict of names to tensors. Its pickle is read by a restricted interpreter that
 * knows only the opcodes and globals such a file needs (OrderedDict, _rebuild_tensor_v2,
 * _rebuild_parameter, the typed storages) and refuses anything else, naming it; it never calls
 * anything. Views (storage offset, strides) are copied into contiguous tensors (at most 4x
 * the file size in copies); the interpreter stops at 4M objects, memo entries or stack items
 * and 1 GB of memory. Entry CRCs are not checked (every size and offset is).
 * Tensors come in file order (safetensors: header order; .pth: state_dict order). The file is
 * mapped, not read: it must not be truncated while loaded (that would raise SIGBUS). */
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

/* The dtype as safetensors spells it ("F32", "BF16", ...) and its width in bytes. */
const char *cap_dtype_name(cap_dtype d);
size_t cap_dtype_size(cap_dtype d);
/* Number of __metadata__ pairs, and the i-th one in file order (0, or -1 out of range). */
size_t cap_tensors_meta_count(const cap_tensors *ts);
int cap_tensors_meta_at(const cap_tensors *ts, size_t i, const char **key, const char **value);
/* SHA-256 naming the weights, the same whichever container holds them: over the tensors in
 * name order (bytewise), each as u64le len + name, u64le len + dtype name, u64le ndim,
 * u64le dims, u64le nbytes, data. Metadata is not included. Writes 64 hex digits + NUL. */
int cap_tensors_digest(const cap_tensors *ts, char hex[65]);

/* Writing safetensors (float32 model files): written to a temporary file in the same
 * directory, fsync'ed and renamed, so the path never holds a partial file (the temporary is
 * removed on any error). meta is a NULL-terminated list of key, value strings (NULL or empty:
 * no __metadata__); any UTF-8 values, escaped as JSON. Names and keys must be unique valid
 * UTF-8; tensors are written in the given order, the header padded with spaces to a multiple
 * of 8 as the reference implementation does. 0, or -1 with cap_errmsg() "PATH: ...". */
typedef struct cap_tensor_out {
	const char *name;
	int ndim;
	int64_t shape[CAP_TENSOR_MAX_DIMS];
	const float *data;
} cap_tensor_out;
int cap_safetensors_write(const char *path, const cap_tensor_out *ts, size_t n, const char *const *meta);
#endif
