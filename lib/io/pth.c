/* PyTorch's .pth files as torch.save writes them since PyTorch 1.6: a zip archive (entries
 * "stored", i.e. uncompressed; zip64 records allowed) holding <top>/data.pkl, a pickle of the
 * state_dict, and <top>/data/<key>, the raw little-endian bytes of each storage.
 *
 * The pickle is read by a small interpreter that understands only the opcodes and globals a
 * state_dict needs and refuses everything else, naming it. Nothing is ever called: the few
 * allowed globals are recognised by name and their effect (an empty OrderedDict, a tensor view
 * of a storage) is built here. Every count, length and index in the archive and the pickle is
 * checked against the file and against overflow; the interpreter's memory is bounded
 * (objects, memo, stack, copies), so a hostile file gets an error, never a crash. CRCs are
 * not verified (the reader only trusts sizes it has checked against the file). */
#include "io/tensors_internal.h"
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits of the interpreter, far above what a state_dict needs: ResNet-152's pickle is 160 KB
 * with about 10,000 memo entries and 20,000 objects. */
#define MAX_OBJECTS   (1u << 22)
#define MAX_MEMO      (1u << 22)
#define MAX_STACK     (1u << 22)
#define MAX_ARENA     ((size_t)1 << 30)   /* bytes of interpreter memory */
#define MAX_ENTRIES   (1u << 22)          /* zip entries */

static uint16_t u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t u64(const unsigned char *p) { return u32(p) | (uint64_t)u32(p + 4) << 32; }

/* ---- zip ---- */

typedef struct zentry {
	char *name;
	uint64_t local;    /* offset of the local header */
	uint64_t size;     /* compressed == uncompressed size (stored) */
	uint16_t method, flags;
} zentry;

typedef struct zip {
	const unsigned char *p;
	uint64_t size;
	uint64_t cd_end;   /* entries' data must lie before the central directory */
	zentry *e;
	size_t n;
} zip;

static int zentry_cmp(const void *a, const void *b) { return strcmp(((const zentry *)a)->name, ((const zentry *)b)->name); }

static void zip_free(zip *z)
{
	for (size_t i = 0; i < z->n; i++) free(z->e[i].name);
	free(z->e);
}

static int zip_range(const zip *z, const zentry *e, const unsigned char **data);

static int zip_open(zip *z, const unsigned char *p, uint64_t size)
{
	memset(z, 0, sizeof *z);
	z->p = p;
	z->size = size;
	if (size < 22) return cap_fail("zip archive truncated (no end of central directory)");
	/* The end-of-central-directory record: the last one whose comment reaches the file end. */
	uint64_t eocd = UINT64_MAX;
	uint64_t lo = size - 22 > 65535 ? size - 22 - 65535 : 0;
	for (uint64_t pos = size - 22 + 1; pos-- > lo;)
		if (u32(p + pos) == 0x06054b50 && pos + 22 + u16(p + pos + 20) == size) { eocd = pos; break; }
	if (eocd == UINT64_MAX) return cap_fail("zip archive truncated or corrupt (no end of central directory record)");
	const unsigned char *e = p + eocd;
	if (u16(e + 4) != 0 || u16(e + 6) != 0) return cap_fail("multi-disk zip archives are not supported");
	uint64_t count = u16(e + 10), cd_size = u32(e + 12), cd_off = u32(e + 16), dir_end = eocd;
	/* zip64: torch writes the zip64 end records (a locator just before the classic record). */
	if (eocd >= 20 && u32(p + eocd - 20) == 0x07064b50) {
		const unsigned char *l = p + eocd - 20;
		uint64_t z64 = u64(l + 8);
		if (u32(l + 4) != 0 || u32(l + 16) > 1) return cap_fail("multi-disk zip archives are not supported");
		if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || u32(p + z64) != 0x06064b50)
			return cap_fail("corrupt zip64 end of central directory locator");
		const unsigned char *r = p + z64;
		if (u32(r + 16) != 0 || u32(r + 20) != 0) return cap_fail("multi-disk zip archives are not supported");
		count = u64(r + 32);
		cd_size = u64(r + 40);
		cd_off = u64(r + 48);
		dir_end = z64;
	}
	if (cd_off > dir_end || cd_size > dir_end - cd_off)
		return cap_fail("zip central directory (offset %llu, %llu bytes) lies outside the file",
		                (unsigned long long)cd_off, (unsigned long long)cd_size);
	if (count > cd_size / 46 || count > MAX_ENTRIES)
		return cap_fail("zip central directory claims %llu entries in %llu bytes",
		                (unsigned long long)count, (unsigned long long)cd_size);
	z->cd_end = cd_off;
	z->e = cap_xcalloc(count ? count : 1, sizeof *z->e);
	const unsigned char *c = p + cd_off, *end = c + cd_size;
	for (uint64_t i = 0; i < count; i++) {
		if (end - c < 46 || u32(c) != 0x02014b50)
			return cap_fail("zip central directory entry %llu is corrupt", (unsigned long long)i);
		size_t nlen = u16(c + 28), xlen = u16(c + 30), clen = u16(c + 32);
		if ((size_t)(end - c) - 46 < nlen + xlen + clen)
			return cap_fail("zip central directory entry %llu runs past the directory", (unsigned long long)i);
		zentry *ze = &z->e[z->n];
		uint64_t csize = u32(c + 20), usize = u32(c + 24), local = u32(c + 42);
		/* zip64 extra field: the 64-bit values of the fields saturated at 0xffffffff, in order. */
		const unsigned char *x = c + 46 + nlen, *xend = x + xlen;
		while (xend - x >= 4) {
			size_t id = u16(x), len = u16(x + 2);
			if ((size_t)(xend - x) - 4 < len) return cap_fail("zip entry %llu: corrupt extra field", (unsigned long long)i);
			if (id == 1) {
				const unsigned char *v = x + 4, *vend = v + len;
				uint64_t *fields[3] = {&usize, &csize, &local};
				for (int k = 0; k < 3; k++) {
					if (*fields[k] != 0xffffffffu) continue;
					if (vend - v < 8) return cap_fail("zip entry %llu: short zip64 extra field", (unsigned long long)i);
					*fields[k] = u64(v);
					v += 8;
				}
			}
			x += 4 + len;
		}
		if (memchr(c + 46, 0, nlen)) return cap_fail("zip entry %llu: NUL in its name", (unsigned long long)i);
		ze->name = strndup((const char *)c + 46, nlen);
		if (!ze->name) return cap_fail("out of memory");
		z->n++;
		ze->flags = u16(c + 8);
		ze->method = u16(c + 10);
		ze->local = local;
		ze->size = csize;
		if (ze->method == 0 && csize != usize)
			return cap_fail("zip entry %s: stored with different compressed and uncompressed sizes", ze->name);
		c += 46 + nlen + xlen + clen;
	}
	/* Every entry's local header and data must lie in the file, used or not. */
	for (size_t i = 0; i < z->n; i++) {
		const unsigned char *data;
		if (zip_range(z, &z->e[i], &data) < 0) return -1;
	}
	qsort(z->e, z->n, sizeof *z->e, zentry_cmp);
	for (size_t i = 1; i < z->n; i++)
		if (!strcmp(z->e[i - 1].name, z->e[i].name)) return cap_fail("zip entry %s appears twice", z->e[i].name);
	return 0;
}

static const zentry *zip_find(const zip *z, const char *name)
{
	zentry key = {.name = (char *)name};
	return bsearch(&key, z->e, z->n, sizeof *z->e, zentry_cmp);
}

/* Where an entry's bytes are, checked to lie inside the file before the central directory. */
static int zip_range(const zip *z, const zentry *e, const unsigned char **data)
{
	if (e->local > z->cd_end || z->cd_end - e->local < 30 || u32(z->p + e->local) != 0x04034b50)
		return cap_fail("zip entry %s: local header at offset %llu is missing or outside the file",
		                e->name, (unsigned long long)e->local);
	const unsigned char *l = z->p + e->local;
	uint64_t start = e->local + 30 + u16(l + 26) + u16(l + 28);
	if (start > z->cd_end || e->size > z->cd_end - start)
		return cap_fail("zip entry %s: %llu bytes at offset %llu run past the end of the data",
		                e->name, (unsigned long long)e->size, (unsigned long long)start);
	*data = z->p + start;
	return 0;
}

/* The bytes of a stored entry. */
static int zip_data(const zip *z, const zentry *e, const unsigned char **data)
{
	if (e->flags & 1) return cap_fail("zip entry %s is encrypted", e->name);
	if (e->method != 0)
		return cap_fail("zip entry %s is compressed (method %u); torch.save stores entries uncompressed, "
		                "so re-save the file with torch.save", e->name, e->method);
	return zip_range(z, e, data);
}

/* ---- the pickle interpreter ---- */

typedef enum { O_NONE, O_BOOL, O_INT, O_FLOAT, O_STR, O_TUPLE, O_LIST, O_DICT, O_GLOBAL, O_STORAGE, O_TENSOR } okind;

enum { G_ODICT, G_REBUILD_V2, G_REBUILD, G_PARAM, G_STORAGE };

static const struct global {
	const char *module, *name;
	int kind;
	cap_dtype dtype;
} globals[] = {
	{"collections", "OrderedDict", G_ODICT, 0},
	{"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, 0},
	{"torch._utils", "_rebuild_tensor", G_REBUILD, 0},
	{"torch._utils", "_rebuild_parameter", G_PARAM, 0},
	{"torch", "FloatStorage", G_STORAGE, CAP_F32},
	{"torch", "HalfStorage", G_STORAGE, CAP_F16},
	{"torch", "BFloat16Storage", G_STORAGE, CAP_BF16},
	{"torch", "DoubleStorage", G_STORAGE, CAP_F64},
	{"torch", "LongStorage", G_STORAGE, CAP_I64},
	{"torch", "IntStorage", G_STORAGE, CAP_I32},
	{"torch", "ShortStorage", G_STORAGE, CAP_I16},
	{"torch", "CharStorage", G_STORAGE, CAP_I8},
	{"torch", "ByteStorage", G_STORAGE, CAP_U8},
	{"torch", "BoolStorage", G_STORAGE, CAP_BOOL},
};

typedef struct obj obj;
typedef struct view {
	obj *storage;
	uint64_t offset;
	int ndim;
	int64_t size[CAP_TENSOR_MAX_DIMS], stride[CAP_TENSOR_MAX_DIMS];
} view;

struct obj {
	okind kind;
	union {
		int64_t i;                                   /* BOOL, INT */
		double f;                                    /* FLOAT */
		struct { char *s; size_t len; } str;         /* STR (NUL-terminated) */
		struct { obj **v; size_t n, cap; } items;    /* TUPLE, LIST, DICT (key, value, ...) */
		const struct global *g;                      /* GLOBAL */
		struct { cap_dtype dtype; const unsigned char *data; uint64_t numel; } st;  /* STORAGE */
		view *t;                                     /* TENSOR */
	} u;
};

typedef struct block { struct block *next; size_t used, cap; max_align_t data[]; } block;

typedef struct vm {
	const unsigned char *p, *start, *end;
	const zip *z;
	const char *prefix;                /* "<top>/" */
	block *blocks;
	size_t arena, nobj;
	obj **stack; size_t sp, stack_cap;
	size_t *marks; size_t nmarks, marks_cap;
	obj **memo; size_t memo_cap;
	size_t memo_n;                     /* for MEMOIZE: the next index */
} vm;

static int vm_fail(vm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vm_fail(vm *m, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return cap_fail("%sdata.pkl, byte %zu: %s", m->prefix, (size_t)(m->p - m->start), msg);
}

static void *vm_alloc(vm *m, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	if (n > MAX_ARENA || m->arena > MAX_ARENA - n) return NULL;
	block *b = m->blocks;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > (1u << 20) ? n : (1u << 20);
		b = cap_xmalloc(sizeof *b + cap);
		b->next = m->blocks;
		b->used = 0;
		b->cap = cap;
		m->blocks = b;
		m->arena += cap;
	}
	void *r = (char *)b->data + b->used;
	b->used += n;
	return r;
}

static obj *new_obj(vm *m, okind k)
{
	obj *o = m->nobj < MAX_OBJECTS ? vm_alloc(m, sizeof *o) : NULL;
	if (!o) { vm_fail(m, "the pickle needs more than the %u objects or 1 GB a state_dict may use", MAX_OBJECTS); return NULL; }
	m->nobj++;
	memset(o, 0, sizeof *o);
	o->kind = k;
	return o;
}

static int push(vm *m, obj *o)
{
	if (!o) return -1;
	if (m->sp == m->stack_cap) {
		if (m->stack_cap >= MAX_STACK) return vm_fail(m, "stack deeper than %u", MAX_STACK);
		m->stack_cap = m->stack_cap ? 2 * m->stack_cap : 256;
		m->stack = cap_xrealloc(m->stack, m->stack_cap * sizeof *m->stack);
	}
	m->stack[m->sp++] = o;
	return 0;
}

static obj *pop(vm *m)
{
	/* Items above the last mark belong to it; popping below the mark is an error. */
	size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
	if (m->sp <= floor) { vm_fail(m, "stack underflow"); return NULL; }
	return m->stack[--m->sp];
}

static obj *top(vm *m)
{
	size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
	if (m->sp <= floor) { vm_fail(m, "stack underflow"); return NULL; }
	return m->stack[m->sp - 1];
}

/* Pops back to the last MARK; *first is the index of the first item above it. */
static int pop_mark(vm *m, size_t *first)
{
	if (!m->nmarks) return vm_fail(m, "no MARK on the stack");
	*first = m->marks[--m->nmarks];
	return 0;
}

static int add_items(vm *m, obj *c, obj **v, size_t n)
{
	if (n == 0)   /* APPENDS or SETITEMS of an empty mark: nothing (and no pointer arithmetic on a
	               * container that has no array yet) */
		return 0;
	if (c->u.items.cap - c->u.items.n < n) {
		size_t cap = c->u.items.cap ? c->u.items.cap : 4;
		while (cap - c->u.items.n < n) {
			if (cap > MAX_OBJECTS) return vm_fail(m, "container too large");
			cap *= 2;
		}
		obj **nv = vm_alloc(m, cap * sizeof *nv);
		if (!nv) return vm_fail(m, "the pickle needs more than 1 GB");
		if (c->u.items.n) memcpy(nv, c->u.items.v, c->u.items.n * sizeof *nv);
		c->u.items.v = nv;
		c->u.items.cap = cap;
	}
	memcpy(c->u.items.v + c->u.items.n, v, n * sizeof *v);
	c->u.items.n += n;
	return 0;
}

static obj *make_seq(vm *m, okind k, obj **v, size_t n)
{
	obj *o = new_obj(m, k);
	if (o && n && add_items(m, o, v, n) < 0) return NULL;
	return o;
}

static int need(vm *m, size_t n)
{
	if ((size_t)(m->end - m->p) < n) return vm_fail(m, "pickle truncated");
	return 0;
}

static obj *new_str(vm *m, size_t len)
{
	if (need(m, len) < 0) return NULL;
	if (memchr(m->p, 0, len)) { vm_fail(m, "string with a NUL character"); return NULL; }
	obj *o = new_obj(m, O_STR);
	char *s = o ? vm_alloc(m, len + 1) : NULL;
	if (!s) { if (o) vm_fail(m, "the pickle needs more than 1 GB"); return NULL; }
	memcpy(s, m->p, len);
	s[len] = 0;
	m->p += len;
	o->u.str.s = s;
	o->u.str.len = len;
	return o;
}

static obj *new_int(vm *m, int64_t v)
{
	obj *o = new_obj(m, O_INT);
	if (o) o->u.i = v;
	return o;
}

static int memo_put(vm *m, uint64_t idx)
{
	if (idx >= MAX_MEMO) return vm_fail(m, "memo index %llu too large", (unsigned long long)idx);
	obj *o = top(m);
	if (!o) return -1;
	if (idx >= m->memo_cap) {
		size_t cap = m->memo_cap ? m->memo_cap : 256;
		while (cap <= idx) cap *= 2;
		m->memo = cap_xrealloc(m->memo, cap * sizeof *m->memo);
		memset(m->memo + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *m->memo);
		m->memo_cap = cap;
	}
	m->memo[idx] = o;
	if (idx >= m->memo_n) m->memo_n = idx + 1;
	return 0;
}

static int memo_get(vm *m, uint64_t idx)
{
	if (idx >= m->memo_cap || !m->memo[idx]) return vm_fail(m, "memo index %llu was never stored", (unsigned long long)idx);
	return push(m, m->memo[idx]);
}

static const char *opname(unsigned op)
{
	switch (op) {
	case 'c': return "GLOBAL"; case 'i': return "INST"; case 'o': return "OBJ"; case 0x81: return "NEWOBJ";
	case 0x92: return "NEWOBJ_EX"; case 0x93: return "STACK_GLOBAL"; case 'P': return "PERSID";
	case 0x82: case 0x83: case 0x84: return "EXT"; case 'S': return "STRING"; case 'T': return "BINSTRING";
	case 'U': return "SHORT_BINSTRING"; case 'V': return "UNICODE"; case 'I': return "INT"; case 'L': return "LONG";
	case 'F': return "FLOAT"; case 0x8b: return "LONG4"; case 'B': return "BINBYTES"; case 'C': return "SHORT_BINBYTES";
	case 0x8e: return "BINBYTES8"; case 0x96: return "BYTEARRAY8"; case 0x97: return "NEXT_BUFFER";
	case 0x98: return "READONLY_BUFFER"; case 'p': return "PUT"; case 'g': return "GET"; case '0': return "POP";
	case '1': return "POP_MARK"; case '2': return "DUP"; case 0x8f: return "EMPTY_SET"; case 0x90: return "ADDITEMS";
	case 0x91: return "FROZENSET";
	default: return "unknown";
	}
}

static const char *kind_name(okind k)
{
	static const char *names[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global",
	                              "storage", "tensor"};
	return names[k];
}

/* GLOBAL: only the names in the table; anything else is refused by name. */
static int do_global(vm *m, const char *module, const char *name)
{
	for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
		if (!strcmp(module, globals[i].module) && !strcmp(name, globals[i].name)) {
			obj *o = new_obj(m, O_GLOBAL);
			if (!o) return -1;
			o->u.g = &globals[i];
			return push(m, o);
		}
	/* A whole pickled model names its classes; say what to save instead. */
	int model = !strncmp(module, "torch", 5) || !strcmp(module, "__main__");
	return vm_fail(m, "pickle calls %s.%s, which a state_dict never needs (refused; nothing was run)%s", module, name,
	               model ? "; if this is a whole model, save model.state_dict() instead" : "");
}

static int read_line(vm *m, char *buf, size_t cap)
{
	const unsigned char *nl = memchr(m->p, '\n', (size_t)(m->end - m->p) < cap ? (size_t)(m->end - m->p) : cap);
	if (!nl) return vm_fail(m, "GLOBAL name missing its newline or longer than %zu bytes", cap - 1);
	size_t n = (size_t)(nl - m->p);
	memcpy(buf, m->p, n);
	buf[n] = 0;
	if (memchr(buf, 0, n)) return vm_fail(m, "GLOBAL name with a NUL character");
	m->p = nl + 1;
	return 0;
}

static int as_int(const obj *o, int64_t *v)
{
	if (!o || (o->kind != O_INT && o->kind != O_BOOL)) return -1;
	*v = o->u.i;
	return 0;
}

/* persistent_load: ('storage', <storage class>, key, location, numel) -> the zip entry's bytes. */
static obj *persistent(vm *m, obj *pid)
{
	if (pid->kind != O_TUPLE || pid->u.items.n != 5) { vm_fail(m, "persistent id is not a 5-tuple"); return NULL; }
	obj **v = pid->u.items.v;
	int64_t numel;
	if (v[0]->kind != O_STR || strcmp(v[0]->u.str.s, "storage") || v[1]->kind != O_GLOBAL ||
	    v[1]->u.g->kind != G_STORAGE || v[2]->kind != O_STR || v[3]->kind != O_STR || as_int(v[4], &numel) < 0 || numel < 0) {
		vm_fail(m, "persistent id is not ('storage', torch.<Type>Storage, key, location, numel)");
		return NULL;
	}
	cap_dtype dt = v[1]->u.g->dtype;
	size_t plen = strlen(m->prefix), klen = v[2]->u.str.len;
	char *name = cap_xmalloc(plen + 5 + klen + 1);
	memcpy(name, m->prefix, plen);
	memcpy(name + plen, "data/", 5);
	memcpy(name + plen + 5, v[2]->u.str.s, klen + 1);
	const zentry *e = zip_find(m->z, name);
	const unsigned char *data = NULL;
	int rc = e ? zip_data(m->z, e, &data) : vm_fail(m, "storage %s: no zip entry %s", v[2]->u.str.s, name);
	size_t nbytes;
	if (rc == 0 && (cap_mul_overflow((size_t)numel, cap_dtype_size(dt), &nbytes) || nbytes != e->size))
		rc = vm_fail(m, "storage %s: %lld elements of %s do not match its %llu bytes", name, (long long)numel,
		             v[1]->u.g->name, (unsigned long long)e->size);
	free(name);
	if (rc < 0) return NULL;
	obj *o = new_obj(m, O_STORAGE);
	if (!o) return NULL;
	o->u.st.dtype = dt;
	o->u.st.data = data;
	o->u.st.numel = (uint64_t)numel;
	return o;
}

static int int_tuple(const obj *o, int64_t *out, int *n)
{
	if (o->kind != O_TUPLE || o->u.items.n > CAP_TENSOR_MAX_DIMS) return -1;
	for (size_t i = 0; i < o->u.items.n; i++)
		if (as_int(o->u.items.v[i], &out[i]) < 0 || out[i] < 0) return -1;
	*n = (int)o->u.items.n;
	return 0;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[,
 * metadata]) and the older _rebuild_tensor(storage, storage_offset, size, stride): a view. */
static obj *rebuild_tensor(vm *m, obj *args, int v2)
{
	size_t n = args->u.items.n;
	obj **a = args->u.items.v;
	int64_t off, stride[CAP_TENSOR_MAX_DIMS];
	int nstride;
	view *t = vm_alloc(m, sizeof *t);
	if (!t) { vm_fail(m, "the pickle needs more than 1 GB"); return NULL; }
	if ((v2 ? n != 6 && n != 7 : n != 4) || a[0]->kind != O_STORAGE || as_int(a[1], &off) < 0 || off < 0 ||
	    int_tuple(a[2], t->size, &t->ndim) < 0 || int_tuple(a[3], stride, &nstride) < 0 || nstride != t->ndim) {
		vm_fail(m, "%s called with arguments that are not (storage, offset, size, stride, ...) with at most %d dims",
		        v2 ? "_rebuild_tensor_v2" : "_rebuild_tensor", CAP_TENSOR_MAX_DIMS);
		return NULL;
	}
	memcpy(t->stride, stride, sizeof stride);
	t->storage = a[0];
	t->offset = (uint64_t)off;
	/* The view's last element must lie in the storage: offset + sum((size-1)*stride) < numel. */
	size_t numel;
	if (cap_shape_numel(t->ndim, t->size, &numel) < 0) { vm_fail(m, "tensor size overflows"); return NULL; }
	if (numel) {
		uint64_t last = t->offset, d;
		for (int i = 0; i < t->ndim; i++)
			if (__builtin_mul_overflow((uint64_t)(t->size[i] - 1), (uint64_t)t->stride[i], &d) ||
			    __builtin_add_overflow(last, d, &last)) {
				vm_fail(m, "tensor extent overflows");
				return NULL;
			}
		if (last >= a[0]->u.st.numel) {
			vm_fail(m, "tensor view reaches element %llu of a storage of %llu", (unsigned long long)last,
			        (unsigned long long)a[0]->u.st.numel);
			return NULL;
		}
	}
	obj *o = new_obj(m, O_TENSOR);
	if (o) o->u.t = t;
	return o;
}

static int do_reduce(vm *m)
{
	obj *args = pop(m), *fn = args ? pop(m) : NULL;
	if (!fn) return -1;
	if (fn->kind != O_GLOBAL) return vm_fail(m, "REDUCE on a %s, not a known function", kind_name(fn->kind));
	if (args->kind != O_TUPLE) return vm_fail(m, "REDUCE arguments are not a tuple");
	const struct global *g = fn->u.g;
	obj *r = NULL;
	switch (g->kind) {
	case G_ODICT:
		if (args->u.items.n != 0) return vm_fail(m, "OrderedDict called with arguments");
		r = new_obj(m, O_DICT);
		break;
	case G_REBUILD_V2:
	case G_REBUILD:
		r = rebuild_tensor(m, args, g->kind == G_REBUILD_V2);
		break;
	case G_PARAM:
		/* _rebuild_parameter(data, requires_grad, backward_hooks): the tensor itself. */
		if (args->u.items.n != 3 || args->u.items.v[0]->kind != O_TENSOR)
			return vm_fail(m, "_rebuild_parameter called with arguments that are not (tensor, bool, hooks)");
		r = args->u.items.v[0];
		break;
	default:
		return vm_fail(m, "pickle calls %s.%s, which a state_dict never calls (refused)", g->module, g->name);
	}
	return push(m, r);
}

/* Runs the pickle; *result is the object STOP returns. */
static int run(vm *m, obj **result)
{
	while (m->p < m->end) {
		unsigned op = *m->p++;
		obj *o, *k, *v;
		size_t first = 0;
		uint64_t n;
		switch (op) {
		case 0x80: /* PROTO */
			if (need(m, 1) < 0) return -1;
			if (*m->p > 5) return vm_fail(m, "pickle protocol %u unknown", *m->p);
			m->p++;
			break;
		case 0x95: /* FRAME: a length hint; the framed opcodes follow inline */
			if (need(m, 8) < 0) return -1;
			m->p += 8;
			break;
		case '.': /* STOP */
			if (!(*result = pop(m))) return -1;
			return 0;
		case '(': /* MARK */
			if (m->nmarks == m->marks_cap) {
				if (m->marks_cap >= MAX_STACK) return vm_fail(m, "too many MARKs");
				m->marks_cap = m->marks_cap ? 2 * m->marks_cap : 64;
				m->marks = cap_xrealloc(m->marks, m->marks_cap * sizeof *m->marks);
			}
			m->marks[m->nmarks++] = m->sp;
			break;
		case 'N': if (push(m, new_obj(m, O_NONE)) < 0) return -1; break;
		case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
			if (!(o = new_obj(m, O_BOOL)) || (o->u.i = op == 0x88, push(m, o) < 0)) return -1;
			break;
		case 'K': /* BININT1 */
			if (need(m, 1) < 0 || push(m, new_int(m, *m->p)) < 0) return -1;
			m->p += 1;
			break;
		case 'M': /* BININT2 */
			if (need(m, 2) < 0 || push(m, new_int(m, u16(m->p))) < 0) return -1;
			m->p += 2;
			break;
		case 'J': /* BININT: signed 32-bit */
			if (need(m, 4) < 0 || push(m, new_int(m, (int32_t)u32(m->p))) < 0) return -1;
			m->p += 4;
			break;
		case 0x8a: { /* LONG1: n-byte little-endian two's complement */
			if (need(m, 1) < 0) return -1;
			unsigned len = *m->p++;
			if (len > 8) return vm_fail(m, "integer of %u bytes is too large", len);
			if (need(m, len) < 0) return -1;
			uint64_t u = 0;
			for (unsigned i = 0; i < len; i++) u |= (uint64_t)m->p[i] << 8 * i;
			if (len && len < 8 && (m->p[len - 1] & 0x80)) u |= ~(uint64_t)0 << 8 * len;
			m->p += len;
			if (push(m, new_int(m, (int64_t)u)) < 0) return -1;
			break;
		}
		case 'G': { /* BINFLOAT: big-endian double */
			if (need(m, 8) < 0) return -1;
			uint64_t u = 0;
			for (int i = 0; i < 8; i++) u = u << 8 | m->p[i];
			m->p += 8;
			if (!(o = new_obj(m, O_FLOAT))) return -1;
			memcpy(&o->u.f, &u, 8);
			if (push(m, o) < 0) return -1;
			break;
		}
		case 'X': /* BINUNICODE */
			if (need(m, 4) < 0) return -1;
			n = u32(m->p);
			m->p += 4;
			if (push(m, new_str(m, n)) < 0) return -1;
			break;
		case 0x8c: /* SHORT_BINUNICODE */
			if (need(m, 1) < 0) return -1;
			n = *m->p++;
			if (push(m, new_str(m, n)) < 0) return -1;
			break;
		case 0x8d: /* BINUNICODE8 */
			if (need(m, 8) < 0) return -1;
			n = u64(m->p);
			m->p += 8;
			if (n > (uint64_t)(m->end - m->p)) return vm_fail(m, "pickle truncated");
			if (push(m, new_str(m, n)) < 0) return -1;
			break;
		case '}': if (push(m, new_obj(m, O_DICT)) < 0) return -1; break;
		case ']': if (push(m, new_obj(m, O_LIST)) < 0) return -1; break;
		case ')': if (push(m, new_obj(m, O_TUPLE)) < 0) return -1; break;
		case 't': case 'l': case 'd': /* TUPLE, LIST, DICT from the items above MARK */
			if (pop_mark(m, &first) < 0) return -1;
			if (op == 'd' && (m->sp - first) % 2) return vm_fail(m, "DICT with an odd number of items");
			o = make_seq(m, op == 't' ? O_TUPLE : op == 'l' ? O_LIST : O_DICT, m->stack + first, m->sp - first);
			m->sp = first;
			if (push(m, o) < 0) return -1;
			break;
		case 0x85: case 0x86: case 0x87: { /* TUPLE1, TUPLE2, TUPLE3 */
			size_t cnt = op - 0x84;
			size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
			if (m->sp - floor < cnt) return vm_fail(m, "stack underflow");
			o = make_seq(m, O_TUPLE, m->stack + m->sp - cnt, cnt);
			m->sp -= cnt;
			if (push(m, o) < 0) return -1;
			break;
		}
		case 'a': /* APPEND */
			if (!(v = pop(m)) || !(o = top(m))) return -1;
			if (o->kind != O_LIST) return vm_fail(m, "APPEND to a %s", kind_name(o->kind));
			if (add_items(m, o, &v, 1) < 0) return -1;
			break;
		case 'e': /* APPENDS */
			if (pop_mark(m, &first) < 0) return -1;
			if (first == 0 || m->stack[first - 1]->kind != O_LIST) return vm_fail(m, "APPENDS without a list");
			if (add_items(m, m->stack[first - 1], m->stack + first, m->sp - first) < 0) return -1;
			m->sp = first;
			break;
		case 's': /* SETITEM */
			if (!(v = pop(m)) || !(k = pop(m)) || !(o = top(m))) return -1;
			if (o->kind != O_DICT) return vm_fail(m, "SETITEM on a %s", kind_name(o->kind));
			if (add_items(m, o, (obj *[]){k, v}, 2) < 0) return -1;
			break;
		case 'u': /* SETITEMS */
			if (pop_mark(m, &first) < 0) return -1;
			if (first == 0 || m->stack[first - 1]->kind != O_DICT) return vm_fail(m, "SETITEMS without a dict");
			if ((m->sp - first) % 2) return vm_fail(m, "SETITEMS with an odd number of items");
			if (add_items(m, m->stack[first - 1], m->stack + first, m->sp - first) < 0) return -1;
			m->sp = first;
			break;
		case 'q': /* BINPUT */
			if (need(m, 1) < 0 || memo_put(m, *m->p) < 0) return -1;
			m->p += 1;
			break;
		case 'r': /* LONG_BINPUT */
			if (need(m, 4) < 0 || memo_put(m, u32(m->p)) < 0) return -1;
			m->p += 4;
			break;
		case 0x94: /* MEMOIZE */
			if (memo_put(m, m->memo_n) < 0) return -1;
			break;
		case 'h': /* BINGET */
			if (need(m, 1) < 0 || memo_get(m, *m->p) < 0) return -1;
			m->p += 1;
			break;
		case 'j': /* LONG_BINGET */
			if (need(m, 4) < 0 || memo_get(m, u32(m->p)) < 0) return -1;
			m->p += 4;
			break;
		case 'c': { /* GLOBAL module\nname\n */
			char module[256], name[256];
			if (read_line(m, module, sizeof module) < 0 || read_line(m, name, sizeof name) < 0) return -1;
			if (do_global(m, module, name) < 0) return -1;
			break;
		}
		case 0x93: /* STACK_GLOBAL */
			if (!(v = pop(m)) || !(k = pop(m))) return -1;
			if (k->kind != O_STR || v->kind != O_STR) return vm_fail(m, "STACK_GLOBAL on non-strings");
			if (do_global(m, k->u.str.s, v->u.str.s) < 0) return -1;
			break;
		case 'Q': /* BINPERSID */
			if (!(o = pop(m))) return -1;
			if (push(m, persistent(m, o)) < 0) return -1;
			break;
		case 'R': /* REDUCE */
			if (do_reduce(m) < 0) return -1;
			break;
		case 'b': /* BUILD: only an OrderedDict's __dict__ (its _metadata), which is not needed */
			if (!(v = pop(m)) || !(o = top(m))) return -1;
			if (o->kind != O_DICT) return vm_fail(m, "BUILD on a %s (only OrderedDict state is allowed)", kind_name(o->kind));
			break;
		default:
			m->p--;
			return vm_fail(m, "pickle opcode 0x%02x (%s) is not one a state_dict needs (refused)", op, opname(op));
		}
	}
	return vm_fail(m, "pickle ends without STOP");
}

/* A tensor of the state_dict: its data in the file when the view is contiguous, else copied. */
static int add_tensor(cap_tensors *ts, const char *name, const view *t, size_t *copied)
{
	const obj *s = t->storage;
	size_t w = cap_dtype_size(s->u.st.dtype), numel, nbytes;
	cap_shape_numel(t->ndim, t->size, &numel);   /* checked when the view was built */
	nbytes = numel * w;                            /* <= the storage's bytes */
	const unsigned char *base = s->u.st.data;
	if (numel == 0) {   /* sizes like (0, 2^62) must not reach the stride arithmetic */
		cap_tensors_push(ts, name, s->u.st.dtype, t->ndim, t->size, base, 0);
		return 0;
	}
	int contiguous = 1;
	int64_t expect = 1;   /* no overflow: the product of the sizes is numel */
	for (int i = t->ndim - 1; i >= 0; i--) {
		if (t->size[i] != 1 && t->stride[i] != expect) contiguous = 0;
		expect *= t->size[i];
	}
	if (contiguous) {
		cap_tensors_push(ts, name, s->u.st.dtype, t->ndim, t->size, base + t->offset * w, nbytes);
		return 0;
	}
	/* Copies are bounded so that a pickle listing one big strided view many times cannot make
	 * us allocate without limit. */
	if (*copied + nbytes > 4 * (size_t)ts->size + (1u << 20))
		return cap_fail("tensor \"%s\": strided views would need more than 4 times the file size in copies", name);
	*copied += nbytes;
	unsigned char *out = cap_tensors_own(ts, cap_xmalloc(nbytes));
	int64_t idx[CAP_TENSOR_MAX_DIMS] = {0};
	for (size_t e = 0; e < numel; e++) {
		uint64_t src = t->offset;
		for (int i = 0; i < t->ndim; i++) src += (uint64_t)idx[i] * (uint64_t)t->stride[i];
		memcpy(out + e * w, base + src * w, w);
		for (int i = t->ndim - 1; i >= 0; i--) {
			if (++idx[i] < t->size[i]) break;
			idx[i] = 0;
		}
	}
	cap_tensors_push(ts, name, s->u.st.dtype, t->ndim, t->size, out, nbytes);
	return 0;
}

int cap_pth_parse(cap_tensors *ts)
{
	zip z;
	vm m = {0};
	int rc = -1;
	if (zip_open(&z, ts->map, ts->size) < 0) goto out;
	/* The pickle is <top>/data.pkl; the top folder's name varies (archive, the file stem). */
	const zentry *pkl = NULL;
	for (size_t i = 0; i < z.n; i++) {
		const char *slash = strchr(z.e[i].name, '/');
		if (slash && !strcmp(slash, "/data.pkl")) {
			if (pkl) { cap_fail("two pickles in the archive (%s and %s)", pkl->name, z.e[i].name); goto out; }
			pkl = &z.e[i];
		}
	}
	if (!pkl) { cap_fail("zip archive without <dir>/data.pkl: not a file written by torch.save"); goto out; }
	size_t plen = strlen(pkl->name) - strlen("data.pkl");
	char *prefix = cap_tensors_own(ts, strndup(pkl->name, plen));
	if (!prefix) { cap_fail("out of memory"); goto out; }
	/* Newer torch.save records the byte order; storages are read as little-endian. */
	char *bo_name = cap_xmalloc(plen + 10);
	snprintf(bo_name, plen + 10, "%sbyteorder", prefix);
	const zentry *bo = zip_find(&z, bo_name);
	free(bo_name);
	const unsigned char *bytes;
	if (bo) {
		if (zip_data(&z, bo, &bytes) < 0) goto out;
		if (bo->size != 6 || memcmp(bytes, "little", 6)) {
			cap_fail("%sbyteorder is not \"little\": big-endian files are not supported", prefix);
			goto out;
		}
	}
	if (zip_data(&z, pkl, &bytes) < 0) goto out;
	m.p = m.start = bytes;
	m.end = bytes + pkl->size;
	m.z = &z;
	m.prefix = prefix;
	obj *r = NULL;
	if (run(&m, &r) < 0) goto out;
	if (r->kind != O_DICT) {
		cap_fail("%sdata.pkl holds a %s, not a state_dict (a dict of tensors)", prefix, kind_name(r->kind));
		goto out;
	}
	size_t copied = 0;
	for (size_t i = 0; i + 1 < r->u.items.n; i += 2) {
		obj *k = r->u.items.v[i], *v = r->u.items.v[i + 1];
		if (k->kind != O_STR) { cap_fail("state_dict key %zu is a %s, not a string", i / 2, kind_name(k->kind)); goto out; }
		if (v->kind != O_TENSOR) {
			cap_fail("state_dict entry \"%s\" is a %s, not a tensor%s", k->u.str.s, kind_name(v->kind),
			         v->kind == O_DICT ? " (a training checkpoint? save the model's state_dict alone)" : "");
			goto out;
		}
		if (add_tensor(ts, k->u.str.s, v->u.t, &copied) < 0) goto out;
	}
	rc = 0;
out:
	while (m.blocks) {
		block *b = m.blocks;
		m.blocks = b->next;
		free(b);
	}
	free(m.stack);
	free(m.marks);
	free(m.memo);
	zip_free(&z);
	return rc;
}
