/* A hash map from byte strings to uint32 values (see wordmap.h). */
#include "core/wordmap.h"
#include "core/buf.h"
#include "core/error.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cap_wordmap {
	uint32_t *slots;     /* 0 = empty, else entry index + 1 */
	size_t nslots;       /* power of two */
	size_t *key_off;     /* entry -> offset of its key in keys */
	size_t *key_len;
	uint32_t *hash;
	uint32_t *val;
	size_t n, cap;
	cap_buf keys;        /* keys, each followed by a NUL */
};

static uint32_t hash_bytes(const char *s, size_t n)
{
	uint32_t h = 2166136261u;  /* FNV-1a */
	for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

cap_wordmap *cap_wordmap_new(void)
{
	cap_wordmap *m = cap_xcalloc(1, sizeof *m);
	m->nslots = 64;
	m->slots = cap_xcalloc(m->nslots, sizeof *m->slots);
	return m;
}

void cap_wordmap_free(cap_wordmap *m)
{
	if (!m) return;
	free(m->slots);
	free(m->key_off);
	free(m->key_len);
	free(m->hash);
	free(m->val);
	cap_buf_free(&m->keys);
	free(m);
}

static size_t find_slot(const cap_wordmap *m, const char *key, size_t len, uint32_t h)
{
	size_t mask = m->nslots - 1, i = h & mask;
	for (;;) {
		uint32_t e = m->slots[i];
		if (!e) return i;
		e--;
		if (m->hash[e] == h && m->key_len[e] == len && memcmp(m->keys.data + m->key_off[e], key, len) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

uint32_t *cap_wordmap_get(const cap_wordmap *m, const char *key, size_t len)
{
	uint32_t e = m->slots[find_slot(m, key, len, hash_bytes(key, len))];
	return e ? &m->val[e - 1] : NULL;
}

uint32_t *cap_wordmap_put(cap_wordmap *m, const char *key, size_t len, int *added)
{
	uint32_t h = hash_bytes(key, len);
	size_t i = find_slot(m, key, len, h);
	if (added) *added = 0;
	if (m->slots[i]) return &m->val[m->slots[i] - 1];
	if (m->n >= UINT32_MAX - 1) { fprintf(stderr, "%s: word map full\n", program_invocation_short_name); abort(); }
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->key_off = cap_xrealloc(m->key_off, m->cap * sizeof *m->key_off);
		m->key_len = cap_xrealloc(m->key_len, m->cap * sizeof *m->key_len);
		m->hash = cap_xrealloc(m->hash, m->cap * sizeof *m->hash);
		m->val = cap_xrealloc(m->val, m->cap * sizeof *m->val);
	}
	size_t e = m->n++;
	m->key_off[e] = m->keys.len;
	m->key_len[e] = len;
	m->hash[e] = h;
	m->val[e] = 0;
	cap_buf_add(&m->keys, key, len);
	cap_buf_addc(&m->keys, 0);
	m->slots[i] = (uint32_t)(e + 1);
	if (added) *added = 1;
	if (2 * m->n > m->nslots) {  /* keep the load under one half */
		free(m->slots);
		m->nslots *= 2;
		m->slots = cap_xcalloc(m->nslots, sizeof *m->slots);
		for (size_t k = 0; k < m->n; k++) {
			size_t j = m->hash[k] & (m->nslots - 1);
			while (m->slots[j]) j = (j + 1) & (m->nslots - 1);
			m->slots[j] = (uint32_t)(k + 1);
		}
	}
	return &m->val[e];
}

size_t cap_wordmap_size(const cap_wordmap *m) { return m->n; }

const char *cap_wordmap_key(const cap_wordmap *m, size_t i, size_t *len)
{
	if (len) *len = m->key_len[i];
	return m->keys.data + m->key_off[i];
}

uint32_t cap_wordmap_value(const cap_wordmap *m, size_t i) { return m->val[i]; }
