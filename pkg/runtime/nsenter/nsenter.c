// nsenter: the only C in xrunc.
//
// A multi-threaded process cannot setns(2) into a user namespace, and the Go
// runtime has started several threads before any Go code runs. So when
// xrunc re-executes itself as a container's init, this constructor runs
// first, while the process still has one thread, and does the namespace work
// the Go side cannot:
//
//   1. joins the namespaces whose fds are listed in _XRUNC_NSENTER (all
//      others first, as host root, then the user namespace, so the others
//      may belong to any owner);
//   2. clone(2)s the real init with CLONE_PARENT and the flags of the
//      namespaces to create, so the init is xrunc's own child and, for a
//      joined or new pid namespace, a member of it;
//   3. the intermediate reports the init's pid on the sync socket and exits;
//      with a new user namespace the init waits until xrunc has written its
//      uid/gid maps, then becomes root in it.
//
// Then the Go runtime starts in the init and xrunc's Go code takes over (see
// pkg/runtime/syncproto for the rest of the conversation). Without
// _XRUNC_NSENTER in the environment this file does nothing.
//
// _XRUNC_NSENTER = "<syncfd> <cloneflags hex> [<fd>:<nstype hex>]..."

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_JOINS 16

struct join {
	int fd;
	int nstype;
};

static int sync_fd = -1;

// report sends a JSON message over the sync socket. Messages are tiny and
// built from numbers and fixed strings, so no escaping is needed beyond
// what strerror can produce (plain text).
static void report(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) || sync_fd < 0)
		return;
	while (send(sync_fd, buf, n, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void __attribute__((noreturn)) bail(const char *what)
{
	int saved = errno;
	report("{\"type\":\"error\",\"error\":\"nsenter: %s: %s\"}", what, strerror(saved));
	_exit(1);
}

static const char *nsname(int t)
{
	switch (t) {
	case CLONE_NEWUSER: return "join user namespace";
	case CLONE_NEWNS: return "join mount namespace";
	case CLONE_NEWPID: return "join pid namespace";
	case CLONE_NEWNET: return "join network namespace";
	case CLONE_NEWIPC: return "join ipc namespace";
	case CLONE_NEWUTS: return "join uts namespace";
	case CLONE_NEWCGROUP: return "join cgroup namespace";
	case CLONE_NEWTIME: return "join time namespace";
	}
	return "join namespace";
}

static void become_root(void)
{
	// Inside a user namespace the ids we had on the host may be unmapped;
	// set the container's root ids so files created during setup get a
	// mapped owner.
	if (setresgid(0, 0, 0) < 0)
		bail("setresgid to the container's root (is gid 0 mapped?)");
	if (setresuid(0, 0, 0) < 0)
		bail("setresuid to the container's root (is uid 0 mapped?)");
}

static void wait_for_maps(void)
{
	char buf[64];
	ssize_t n;
	do {
		n = recv(sync_fd, buf, sizeof(buf) - 1, 0);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n == 0)
			errno = EPIPE;
		bail("wait for uid/gid maps");
	}
	buf[n] = '\0';
	if (strstr(buf, "\"mapped\"") == NULL) {
		errno = EPROTO;
		bail("wait for uid/gid maps");
	}
}

__attribute__((constructor)) static void xrunc_nsenter(void)
{
	const char *cfg = getenv("_XRUNC_NSENTER");
	if (cfg == NULL)
		return;

	char *end;
	long fd = strtol(cfg, &end, 10);
	if (end == cfg || fd < 0) {
		fprintf(stderr, "nsenter: malformed _XRUNC_NSENTER\n");
		_exit(1);
	}
	sync_fd = (int)fd;
	unsigned long clone_flags = strtoul(end, &end, 16);

	struct join joins[MAX_JOINS];
	int njoins = 0;
	while (*end == ' ') {
		char *p = end + 1;
		long jfd = strtol(p, &end, 10);
		if (end == p || *end != ':' || njoins == MAX_JOINS) {
			errno = EINVAL;
			bail("parse namespace list");
		}
		p = end + 1;
		long t = strtol(p, &end, 16);
		if (end == p) {
			errno = EINVAL;
			bail("parse namespace list");
		}
		joins[njoins].fd = (int)jfd;
		joins[njoins].nstype = (int)t;
		njoins++;
	}

	// Nothing running in the container may ptrace us or open our /proc
	// files while we hold host resources (CVE-2016-9962). execve of the
	// container's program restores dumpability.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		bail("prctl(PR_SET_DUMPABLE)");

	int joined_user = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < njoins; i++) {
			int is_user = joins[i].nstype == CLONE_NEWUSER;
			if (is_user != pass)
				continue;
			if (setns(joins[i].fd, joins[i].nstype) < 0)
				bail(nsname(joins[i].nstype));
			close(joins[i].fd);
			joined_user |= is_user;
		}
	}
	if (joined_user)
		become_root();

	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | clone_flags | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		bail("clone");
	if (pid > 0) {
		report("{\"type\":\"pid\",\"pid\":%d}", (int)pid);
		_exit(0);
	}

	if (clone_flags & CLONE_NEWUSER) {
		wait_for_maps();
		become_root();
	}
	// The Go runtime starts next, in the container init.
}
