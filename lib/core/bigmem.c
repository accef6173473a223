/* Large host arrays on transparent huge pages (see bigmem.h). */
#include "core/bigmem.h"
#include "core/error.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20 };

void *cap_big_alloc(size_t bytes)
{
	void *p = NULL;
	if (bytes >= (size_t)HUGE_PAGE / 2) {
		/* whole huge pages: a block of 1 MB takes one, and its end shares no page */
		size_t whole = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
		if (whole < bytes || posix_memalign(&p, HUGE_PAGE, whole) != 0)
			return NULL;
		/* advice only: where huge pages are off this fails and the pages stay small */
		(void)madvise(p, whole, MADV_HUGEPAGE);
		memset(p, 0, bytes);   /* the first touch, which is where the huge pages come from */
		return p;
	}
	return calloc(1, bytes ? bytes : 1);
}

void *cap_big_xalloc(size_t bytes)
{
	void *p = cap_big_alloc(bytes);
	if (!p)
		cap_out_of_memory(bytes);
	return p;
}

void *cap_big_xgrow(void *p, size_t old, size_t bytes)
{
	void *q = cap_big_xalloc(bytes);
	if (p && old)
		memcpy(q, p, old < bytes ? old : bytes);
	free(p);
	return q;
}
