/*
 * mmap-probe: checks how a file behaves under mmap, for the walkenfs tests.
 *
 *   mmap-probe FILE MODE      MODE = shared-rw | shared-ro | private | private-rw
 *
 *   shared-rw   open O_RDWR,   MAP_SHARED,  PROT_READ|PROT_WRITE, write byte 0
 *   shared-ro   open O_RDONLY, MAP_SHARED,  PROT_READ,            read byte 0
 *   private     open O_RDONLY, MAP_PRIVATE, PROT_READ|PROT_WRITE, write byte 0 (copy-on-write)
 *   private-rw  open O_RDWR,   MAP_PRIVATE, PROT_READ|PROT_WRITE, write byte 0 (copy-on-write)
 *
 * Prints one line: `ok` (exit 0), or `<step> <ERRNAME> <errno>` (exit 1),
 * e.g. `mmap ENODEV 19`. Usage errors exit 2. The file must not be empty:
 * touching a mapping past EOF is SIGBUS, not an answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail (const char *step) {
  int e = errno;
  const char *name = strerrorname_np(e);
  printf("%s %s %d\n", step, name ? name : "E?", e);
  return 1;
}

int main (int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: mmap-probe FILE shared-rw|shared-ro|private|private-rw\n");
    return 2;
  }
  const char *mode = argv[2];
  int oflags, mflags, prot, write_byte;
  if (strcmp(mode, "shared-rw") == 0) {
    oflags = O_RDWR; mflags = MAP_SHARED; prot = PROT_READ | PROT_WRITE; write_byte = 1;
  } else if (strcmp(mode, "shared-ro") == 0) {
    oflags = O_RDONLY; mflags = MAP_SHARED; prot = PROT_READ; write_byte = 0;
  } else if (strcmp(mode, "private") == 0) {
    oflags = O_RDONLY; mflags = MAP_PRIVATE; prot = PROT_READ | PROT_WRITE; write_byte = 1;
  } else if (strcmp(mode, "private-rw") == 0) {
    oflags = O_RDWR; mflags = MAP_PRIVATE; prot = PROT_READ | PROT_WRITE; write_byte = 1;
  } else {
    fprintf(stderr, "mmap-probe: unknown mode '%s' (shared-rw|shared-ro|private|private-rw)\n", mode);
    return 2;
  }

  int fd = open(argv[1], oflags);
  if (fd < 0) return fail("open");
  struct stat st;
  if (fstat(fd, &st) != 0) return fail("fstat");
  if (st.st_size < 1) {
    fprintf(stderr, "mmap-probe: %s is empty; mapping it proves nothing\n", argv[1]);
    return 2;
  }
  size_t len = (size_t) st.st_size < 4096 ? (size_t) st.st_size : 4096;
  volatile unsigned char *p = mmap(NULL, len, prot, mflags, fd, 0);
  if (p == MAP_FAILED) return fail("mmap");
  unsigned char c = p[0];
  if (write_byte) p[0] = (unsigned char) (c ^ 0xff);
  if (mflags == MAP_SHARED && write_byte && msync((void *) p, len, MS_SYNC) != 0) return fail("msync");
  if (munmap((void *) p, len) != 0) return fail("munmap");
  close(fd);
  printf("ok\n");
  return 0;
}
