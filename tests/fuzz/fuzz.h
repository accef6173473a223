/* Helpers shared by the libFuzzer harnesses (see tests/fuzz/README). */
#ifndef CAP_FUZZ_H
#define CAP_FUZZ_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The input as a file for the readers that take a path: an anonymous memory file, named
 * /proc/self/fd/N in path (at least 32 bytes). Returns the descriptor to close, or -1. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap)
{
	int fd = memfd_create("fuzz", 0);
	if (fd < 0) { perror("memfd_create"); abort(); }
	for (size_t off = 0; off < size;) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0) { perror("write"); abort(); }
		off += (size_t)w;
	}
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}
#endif
