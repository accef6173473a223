/* Choosing a backend (see ops.h): the built-in ref and cpu tables, and the CUDA module, loaded
 * with dlopen only when --device cuda asks for it so that no tool links CUDA itself (linking
 * cuBLAS costs every process start 0.1-0.2 s and about 215 MB even without a GPU). */
#include "ops/ops.h"
#include "core/cpu.h"
#include "core/error.h"
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CUDA_MODULE "libcap-cuda.so"

/* The module beside the tools: DIR/bin/cap-x loads DIR/lib/cap/libcap-cuda.so (the build tree
 * build/bin and build/lib/cap, and an installed PREFIX/bin and PREFIX/lib/cap alike). */
static int module_path(char *out, size_t n)
{
	const char *env = getenv("CAP_CUDA_MODULE");
	if (env && *env) {
		snprintf(out, n, "%s", env);
		return 0;
	}
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len <= 0)
		return -1;
	exe[len] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = 0;   /* DIR/bin */
	if ((slash = strrchr(exe, '/')))
		*slash = 0;   /* DIR */
	snprintf(out, n, "%s/lib/cap/" CUDA_MODULE, exe);
	return 0;
}

static const cap_ops *cuda_ops;

static int open_cuda(const cap_ops **out)
{
	if (cuda_ops) {
		*out = cuda_ops;
		return 0;
	}
	char path[PATH_MAX + 32];
	if (module_path(path, sizeof path) < 0)
		snprintf(path, sizeof path, "%s", CUDA_MODULE);
	if (access(path, F_OK) != 0) {
		cap_fail("this build of cap has no CUDA backend (no %s); build cap on a machine with the "
		         "CUDA toolkit (make finds nvcc in /usr/local/cuda/bin or on PATH), or point "
		         "CAP_CUDA_MODULE at a libcap-cuda.so", path);
		return -2;
	}
	/* RTLD_LOCAL: the module's CUDA symbols stay out of the tool's namespace. */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return cap_fail("cannot load the CUDA backend %s: %s", path, dlerror());
	cap_ops_module_init_fn init = (cap_ops_module_init_fn)dlsym(h, CAP_OPS_MODULE_INIT);
	if (!init) {
		dlclose(h);
		return cap_fail("%s is not a cap backend module (no %s)", path, CAP_OPS_MODULE_INIT);
	}
	char err[512] = "";
	const cap_ops *ops = NULL;
	if (init(CAP_OPS_ABI, &ops, err, sizeof err) < 0 || !ops) {
		dlclose(h);
		return cap_fail("CUDA backend: %s", err[0] ? err : "the module failed to start");
	}
	if (ops->abi != CAP_OPS_ABI) {
		dlclose(h);
		return cap_fail("%s was built for ops ABI %d, this tool needs %d: rebuild it", path, ops->abi,
		                CAP_OPS_ABI);
	}
	cuda_ops = ops;   /* never unloaded: its tables live as long as the process */
	*out = ops;
	return 0;
}

const char *cap_default_device(void)
{
	const char *d = getenv("CAP_DEVICE");
	return d && *d ? d : "cpu";
}

int cap_ops_open(const char *device, const cap_ops **out)
{
	*out = NULL;
	if (!device || !strcmp(device, "cpu")) {
		*out = cap_ops_cpu();
		return 0;
	}
	if (!strcmp(device, "ref")) {
		cap_cpu_set_portable(1);
		*out = cap_ops_ref();
		return 0;
	}
	if (!strcmp(device, "cuda"))
		return open_cuda(out);
	cap_fail("unknown device '%s' (expected ref, cpu or cuda)", device);
	return -2;
}

const cap_ops *cap_ops_open_or_exit(const char *device)
{
	const cap_ops *ops;
	int rc = cap_ops_open(device, &ops);
	if (rc == 0) {
		const char *p = getenv("CAP_PROFILE");
		if (p && (!strcmp(p, "1") || !strcmp(p, "shapes")))
			return cap_ops_profiled(ops, !strcmp(p, "shapes"));
		return ops;
	}
	fprintf(stderr, "%s: --device %s: %s\n", program_invocation_short_name, device, cap_errmsg());
	exit(rc == -2 ? 2 : 1);
}

int cap_precision_parse(const char *s, cap_precision *p)
{
	static const char *const names[] = { "fp32", "tf32", "bf16" };
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i])) {
			*p = (cap_precision)i;
			return 0;
		}
	return cap_fail("unknown precision '%s' (expected fp32, tf32 or bf16)", s);
}

void *cap_ops_xalloc(const cap_ops *ops, size_t a, size_t b, size_t size, const char *what)
{
	size_t n;
	if (cap_mul_overflow(a, b, &n) || cap_mul_overflow(n, size, &n))
		abort();
	void *p = ops->alloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, cap_errmsg());
		exit(1);
	}
	return p;
}

const void *cap_ops_mirror(const cap_ops *ops, const void *host, size_t bytes)
{
	if (ops->host_memory)
		return host;
	void *p = ops->alloc(bytes);
	if (p)
		ops->upload(p, host, bytes);
	return p;
}

void cap_ops_unmirror(const cap_ops *ops, const void *mirror, const void *host)
{
	if (mirror && mirror != host)
		ops->free((void *)mirror);
}
