// librill_faultshim.so: an LD_PRELOAD shim that fails one kind of I/O call
// with EIO, so rel_io_errors can show what rill does when the disk says no.
//
//   RILL_FAULT_OP    fsync | fdatasync | pwrite | write | msync | sync (= fsync,
//                    fdatasync and msync together)
//   RILL_FAULT_AT    fail the N-th matching call (1-based)
//   RILL_FAULT_STICKY=1   ...and every matching call after it (a dead disk)
//   RILL_FAULT_PATH  count only calls on files whose path contains this
//                    (msync: always counted, it has no descriptor)
//   RILL_FAULT_LOG   file to append "fired OP N" to when a fault is injected,
//                    so the test knows the fault happened (stderr belongs to rill)
//
// pwrite covers pwrite/pwrite64/pwritev/pwritev64, write covers write/writev:
// LMDB writes pages with pwrite or writev and its meta page with pwrite.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_long calls;

static int op_matches(const char* op) {
  const char* want = getenv("RILL_FAULT_OP");
  if (want == NULL) return 0;
  if (strcmp(want, op) == 0) return 1;
  return strcmp(want, "sync") == 0 &&
         (strcmp(op, "fsync") == 0 || strcmp(op, "fdatasync") == 0 || strcmp(op, "msync") == 0);
}

static int path_matches(int fd) {
  const char* want = getenv("RILL_FAULT_PATH");
  if (want == NULL || *want == '\0' || fd < 0) return 1;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return 0;
  path[n] = '\0';
  return strstr(path, want) != NULL;
}

// True when this call must fail: counts matching calls, fires at the N-th.
static int should_fail(const char* op, int fd) {
  if (!op_matches(op) || !path_matches(fd)) return 0;
  const char* at = getenv("RILL_FAULT_AT");
  long n = at ? atol(at) : 1;
  long mine = atomic_fetch_add(&calls, 1) + 1;
  const char* sticky = getenv("RILL_FAULT_STICKY");
  int fire = mine == n || (sticky && *sticky == '1' && mine > n);
  if (fire) {
    const char* log = getenv("RILL_FAULT_LOG");
    if (log) {
      int lfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      if (lfd >= 0) {
        char line[96];
        int len = snprintf(line, sizeof line, "fired %s %ld\n", op, mine);
        ssize_t ignored = ((ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write"))(lfd, line, (size_t)len);
        (void)ignored;
        close(lfd);
      }
    }
  }
  return fire;
}

#define REAL(name)                              \
  static __typeof__(&name) real_##name = NULL; \
  if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

int fsync(int fd) {
  REAL(fsync);
  if (should_fail("fsync", fd)) { errno = EIO; return -1; }
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync);
  if (should_fail("fdatasync", fd)) { errno = EIO; return -1; }
  return real_fdatasync(fd);
}

int msync(void* addr, size_t len, int flags) {
  REAL(msync);
  if (should_fail("msync", -1)) { errno = EIO; return -1; }
  return real_msync(addr, len, flags);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  REAL(pwrite);
  if (should_fail("pwrite", fd)) { errno = EIO; return -1; }
  return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  REAL(pwrite64);
  if (should_fail("pwrite", fd)) { errno = EIO; return -1; }
  return real_pwrite64(fd, buf, n, off);
}

ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  REAL(pwritev);
  if (should_fail("pwrite", fd)) { errno = EIO; return -1; }
  return real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec* iov, int cnt, off_t off) {
  REAL(pwritev64);
  if (should_fail("pwrite", fd)) { errno = EIO; return -1; }
  return real_pwritev64(fd, iov, cnt, off);
}

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(write);
  if (fd > 2 && should_fail("write", fd)) { errno = EIO; return -1; }
  return real_write(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  REAL(writev);
  if (fd > 2 && should_fail("write", fd)) { errno = EIO; return -1; }
  return real_writev(fd, iov, cnt);
}
