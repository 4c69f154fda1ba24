// wasi_suite CASE: Phase's WASI preview1 behaviour tests, one case per run,
// calling the raw preview1 functions (wasi/api.h) and checking results and
// errno values. Prints "ok CASE" and exits 0, or prints the failing line.
// Run by tests/wasi_test.ts with: stdin "stdin-data"; env A=1 UTF=ü;
// /data = a read-only host directory (hello.txt, sub/inner.txt, link_in ->
// hello.txt, link_out -> ../outside.txt); /rw = a writable host directory
// (a fresh copy of the same files); /tmp = the scratch directory, seeded
// with seed/a.txt ("seeded\n") and seed/link -> a.txt.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

// Not declared by this wasi-libc, but still part of preview1.
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")))
int32_t raw_proc_raise(int32_t sig);

static const char *current = "?";

#define CHECK(cond) do { if (!(cond)) { \
  printf("FAIL %s line %d: %s\n", current, __LINE__, #cond); exit(1); } } while (0)
#define ERR(call, want) do { int got_ = (call); if (got_ != (want)) { \
  printf("FAIL %s line %d: %s gave errno %d, want %d\n", current, __LINE__, #call, got_, (want)); \
  exit(1); } } while (0)
#define OK(call) ERR(call, 0)

enum { DATA = 3, RW = 4, SCRATCH = 5 };

static const __wasi_rights_t R_READ = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK |
  __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_FD_READDIR;
static const __wasi_rights_t R_RW = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE |
  __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_FILESTAT_GET |
  __WASI_RIGHTS_FD_FILESTAT_SET_SIZE | __WASI_RIGHTS_FD_FILESTAT_SET_TIMES |
  __WASI_RIGHTS_FD_ALLOCATE | __WASI_RIGHTS_FD_SYNC | __WASI_RIGHTS_FD_DATASYNC |
  __WASI_RIGHTS_FD_ADVISE | __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS;

static __wasi_fd_t open_at(__wasi_fd_t dir, const char *path, __wasi_oflags_t oflags,
                           __wasi_rights_t rights, __wasi_fdflags_t fdflags) {
  __wasi_fd_t fd = 0;
  OK(__wasi_path_open(dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, path, oflags, rights, 0, fdflags, &fd));
  return fd;
}

static int open_err(__wasi_fd_t dir, const char *path, __wasi_oflags_t oflags,
                    __wasi_rights_t rights, __wasi_fdflags_t fdflags) {
  __wasi_fd_t fd = 0;
  return __wasi_path_open(dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, path, oflags, rights, 0, fdflags, &fd);
}

static size_t read_all(__wasi_fd_t fd, char *buf, size_t len) {
  __wasi_iovec_t iov = {(uint8_t *)buf, len};
  __wasi_size_t n = 0;
  OK(__wasi_fd_read(fd, &iov, 1, &n));
  return n;
}

static void write_all(__wasi_fd_t fd, const char *text) {
  __wasi_ciovec_t iov = {(const uint8_t *)text, strlen(text)};
  __wasi_size_t n = 0;
  OK(__wasi_fd_write(fd, &iov, 1, &n));
  CHECK(n == strlen(text));
}

static __wasi_filestat_t stat_fd(__wasi_fd_t fd) {
  __wasi_filestat_t st;
  OK(__wasi_fd_filestat_get(fd, &st));
  return st;
}

static __wasi_filestat_t stat_path(__wasi_fd_t dir, const char *path, int follow) {
  __wasi_filestat_t st;
  OK(__wasi_path_filestat_get(dir, follow ? __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW : 0, path, &st));
  return st;
}

// Names in a directory listing, "|"-joined, starting at `cookie`.
static void list_dir(__wasi_fd_t fd, __wasi_dircookie_t cookie, char *out, size_t out_len) {
  uint8_t buf[1024];
  __wasi_size_t used = 0;
  OK(__wasi_fd_readdir(fd, buf, sizeof buf, cookie, &used));
  CHECK(used < sizeof buf);
  out[0] = 0;
  for (size_t at = 0; at + sizeof(__wasi_dirent_t) <= used;) {
    __wasi_dirent_t d;
    memcpy(&d, buf + at, sizeof d);
    at += sizeof d;
    strncat(out, (const char *)buf + at, d.d_namlen < out_len ? d.d_namlen : 0);
    strncat(out, "|", out_len - strlen(out) - 1);
    at += d.d_namlen;
  }
}

static void case_args(void) {
  __wasi_size_t count = 0, size = 0;
  OK(__wasi_args_sizes_get(&count, &size));
  CHECK(count == 4);
  // "wasi_suite" "args" "héllo" "✓" in UTF-8 bytes, NUL-terminated.
  CHECK(size == 11 + 5 + 7 + 4);
  uint8_t *argv[4];
  uint8_t buf[27];
  OK(__wasi_args_get(argv, buf));
  CHECK(strcmp((char *)argv[1], "args") == 0);
  CHECK(strcmp((char *)argv[2], "h\xc3\xa9llo") == 0);
  CHECK(strcmp((char *)argv[3], "\xe2\x9c\x93") == 0);
}

static void case_environ(void) {
  __wasi_size_t count = 0, size = 0;
  OK(__wasi_environ_sizes_get(&count, &size));
  CHECK(count == 2);
  CHECK(size == 4 + 7);
  uint8_t *env[2];
  uint8_t buf[11];
  OK(__wasi_environ_get(env, buf));
  CHECK(strcmp((char *)env[0], "A=1") == 0);
  CHECK(strcmp((char *)env[1], "UTF=\xc3\xbc") == 0);
}

static void case_clocks(void) {
  __wasi_timestamp_t res, t1, t2, cpu1, cpu2;
  for (__wasi_clockid_t id = 0; id <= 3; id++) {
    OK(__wasi_clock_res_get(id, &res));
    CHECK(res > 0 && res <= 1000000);
  }
  ERR(__wasi_clock_res_get(9, &res), __WASI_ERRNO_INVAL);
  ERR(__wasi_clock_time_get(9, 0, &t1), __WASI_ERRNO_INVAL);
  OK(__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &t1));
  CHECK(t1 > 1600000000ull * 1000000000ull);  // after 2020
  OK(__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t1));
  OK(__wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &cpu1));
  volatile uint64_t spin = 0;
  for (int i = 0; i < 30000000; i++) spin += i;
  OK(__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t2));
  OK(__wasi_clock_time_get(__WASI_CLOCKID_THREAD_CPUTIME_ID, 1, &cpu2));
  CHECK(t2 > t1);
  CHECK(cpu1 > 0 && cpu2 > cpu1);  // CPU time is real, never a silent 0
}

static void case_random(void) {
  uint8_t a[64] = {0}, b[64] = {0};
  OK(__wasi_random_get(a, sizeof a));
  OK(__wasi_random_get(b, sizeof b));
  CHECK(memcmp(a, b, sizeof a) != 0);
  static uint8_t big[200000];
  OK(__wasi_random_get(big, sizeof big));
  int zeros = 0;
  for (size_t i = 0; i < sizeof big; i++) zeros += big[i] == 0;
  CHECK(zeros < 2000);  // ~781 expected
}

static __wasi_subscription_t clock_sub(__wasi_userdata_t user, __wasi_timestamp_t ns, int abs) {
  __wasi_subscription_t s;
  memset(&s, 0, sizeof s);
  s.userdata = user;
  s.u.tag = __WASI_EVENTTYPE_CLOCK;
  s.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
  s.u.u.clock.timeout = ns;
  s.u.u.clock.flags = abs ? __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME : 0;
  return s;
}

static void case_poll(void) {
  __wasi_event_t ev[3];
  __wasi_size_t n = 0;
  __wasi_timestamp_t t1, t2, cpu1, cpu2;
  // One relative clock: sleeps, without burning CPU.
  __wasi_subscription_t one = clock_sub(7, 30000000, 0);
  OK(__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t1));
  OK(__wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &cpu1));
  OK(__wasi_poll_oneoff(&one, ev, 1, &n));
  OK(__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t2));
  OK(__wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &cpu2));
  CHECK(n == 1 && ev[0].userdata == 7 && ev[0].type == __WASI_EVENTTYPE_CLOCK && ev[0].error == 0);
  CHECK(t2 - t1 >= 30000000);
  CHECK(cpu2 - cpu1 < 20000000);  // no busy wait
  // Several clocks: the earliest fires alone.
  __wasi_subscription_t two[2] = {clock_sub(1, 2000000000, 0), clock_sub(2, 10000000, 0)};
  OK(__wasi_poll_oneoff(two, ev, 2, &n));
  CHECK(n == 1 && ev[0].userdata == 2);
  // An absolute deadline in the past is ready at once.
  __wasi_subscription_t past = clock_sub(3, 1, 1);
  OK(__wasi_poll_oneoff(&past, ev, 1, &n));
  CHECK(n == 1 && ev[0].userdata == 3);
  // A descriptor that is ready wins over a long clock.
  __wasi_subscription_t mixed[2] = {clock_sub(4, 5000000000ull, 0)};
  memset(&mixed[1], 0, sizeof mixed[1]);
  mixed[1].userdata = 5;
  mixed[1].u.tag = __WASI_EVENTTYPE_FD_READ;
  mixed[1].u.u.fd_read.file_descriptor = 0;
  OK(__wasi_poll_oneoff(mixed, ev, 2, &n));
  CHECK(n == 1 && ev[0].userdata == 5 && ev[0].type == __WASI_EVENTTYPE_FD_READ);
  // A bad descriptor is reported in its event.
  mixed[1].u.u.fd_read.file_descriptor = 99;
  OK(__wasi_poll_oneoff(mixed, ev, 2, &n));
  CHECK(n == 1 && ev[0].error == __WASI_ERRNO_BADF);
  ERR(__wasi_poll_oneoff(mixed, ev, 0, &n), __WASI_ERRNO_INVAL);
}

static void case_proc_exit(void) {
  printf("ok proc_exit\n");
  fflush(stdout);
  __wasi_proc_exit(7);
}

static void case_proc_raise(void) {
  ERR(raw_proc_raise(15), __WASI_ERRNO_NOSYS);
}

static void case_sched_yield(void) {
  OK(__wasi_sched_yield());
}

static void case_sockets(void) {
  __wasi_fd_t fd;
  __wasi_size_t n;
  __wasi_roflags_t ro;
  uint8_t byte;
  __wasi_iovec_t iov = {&byte, 1};
  __wasi_ciovec_t ciov = {&byte, 1};
  ERR(__wasi_sock_accept(0, 0, &fd), __WASI_ERRNO_NOTSOCK);
  ERR(__wasi_sock_recv(0, &iov, 1, 0, &n, &ro), __WASI_ERRNO_NOTSOCK);
  ERR(__wasi_sock_send(1, &ciov, 1, 0, &n), __WASI_ERRNO_NOTSOCK);
  ERR(__wasi_sock_shutdown(1, __WASI_SDFLAGS_WR), __WASI_ERRNO_NOTSOCK);
  ERR(__wasi_sock_accept(99, 0, &fd), __WASI_ERRNO_BADF);
  ERR(__wasi_sock_shutdown(99, __WASI_SDFLAGS_WR), __WASI_ERRNO_BADF);
}

static void case_stdio(void) {
  __wasi_fdstat_t st;
  OK(__wasi_fd_fdstat_get(0, &st));
  CHECK(st.fs_filetype == __WASI_FILETYPE_CHARACTER_DEVICE);
  CHECK(st.fs_rights_base & __WASI_RIGHTS_FD_READ);
  OK(__wasi_fd_fdstat_get(1, &st));
  CHECK(st.fs_rights_base & __WASI_RIGHTS_FD_WRITE);
  ERR(__wasi_fd_fdstat_get(99, &st), __WASI_ERRNO_BADF);
  char buf[32] = {0};
  CHECK(read_all(0, buf, sizeof buf) == 10 && memcmp(buf, "stdin-data", 10) == 0);
  CHECK(read_all(0, buf, sizeof buf) == 0);  // end of input
  write_all(1, "to stdout\n");
  write_all(2, "to stderr\n");
  __wasi_filesize_t pos;
  __wasi_size_t n;
  ERR(__wasi_fd_seek(1, 0, __WASI_WHENCE_SET, &pos), __WASI_ERRNO_SPIPE);
  ERR(__wasi_fd_tell(1, &pos), __WASI_ERRNO_SPIPE);
  __wasi_ciovec_t ciov = {(const uint8_t *)"x", 1};
  __wasi_iovec_t iov = {(uint8_t *)buf, 1};
  ERR(__wasi_fd_write(0, &ciov, 1, &n), __WASI_ERRNO_BADF);
  ERR(__wasi_fd_read(1, &iov, 1, &n), __WASI_ERRNO_BADF);
  ERR(__wasi_fd_pwrite(1, &ciov, 1, 0, &n), __WASI_ERRNO_SPIPE);
  ERR(__wasi_fd_pread(0, &iov, 1, 0, &n), __WASI_ERRNO_SPIPE);
  ERR(__wasi_fd_write(99, &ciov, 1, &n), __WASI_ERRNO_BADF);
}

static void case_prestat(void) {
  __wasi_prestat_t p;
  char name[16] = {0};
  OK(__wasi_fd_prestat_get(DATA, &p));
  CHECK(p.tag == __WASI_PREOPENTYPE_DIR && p.u.dir.pr_name_len == 5);
  OK(__wasi_fd_prestat_dir_name(DATA, (uint8_t *)name, 5));
  CHECK(memcmp(name, "/data", 5) == 0);
  OK(__wasi_fd_prestat_get(RW, &p));
  CHECK(p.u.dir.pr_name_len == 3);
  OK(__wasi_fd_prestat_get(SCRATCH, &p));
  CHECK(p.u.dir.pr_name_len == 4);
  OK(__wasi_fd_prestat_dir_name(SCRATCH, (uint8_t *)name, 4));
  CHECK(memcmp(name, "/tmp", 4) == 0);
  ERR(__wasi_fd_prestat_dir_name(DATA, (uint8_t *)name, 2), __WASI_ERRNO_NAMETOOLONG);
  ERR(__wasi_fd_prestat_get(0, &p), __WASI_ERRNO_BADF);
  ERR(__wasi_fd_prestat_get(6, &p), __WASI_ERRNO_BADF);
  // A directory opened under a preopen is not a preopen.
  __wasi_fd_t sub = open_at(DATA, "sub", __WASI_OFLAGS_DIRECTORY, R_READ, 0);
  ERR(__wasi_fd_prestat_get(sub, &p), __WASI_ERRNO_BADF);
}

static void case_ro_read(void) {
  __wasi_fd_t fd = open_at(DATA, "hello.txt", 0, R_READ, 0);
  CHECK(fd == 6);  // lowest free number
  char buf[32] = {0};
  CHECK(read_all(fd, buf, sizeof buf) == 13 && memcmp(buf, "hello, phase\n", 13) == 0);
  __wasi_filesize_t pos;
  OK(__wasi_fd_seek(fd, 7, __WASI_WHENCE_SET, &pos));
  CHECK(pos == 7);
  memset(buf, 0, sizeof buf);
  CHECK(read_all(fd, buf, 5) == 5 && memcmp(buf, "phase", 5) == 0);
  OK(__wasi_fd_tell(fd, &pos));
  CHECK(pos == 12);
  OK(__wasi_fd_seek(fd, -3, __WASI_WHENCE_END, &pos));
  CHECK(pos == 10);
  OK(__wasi_fd_seek(fd, 1, __WASI_WHENCE_CUR, &pos));
  CHECK(pos == 11);
  ERR(__wasi_fd_seek(fd, -100, __WASI_WHENCE_CUR, &pos), __WASI_ERRNO_INVAL);
  ERR(__wasi_fd_seek(fd, 0, 7, &pos), __WASI_ERRNO_INVAL);
  __wasi_iovec_t iov = {(uint8_t *)buf, 5};
  __wasi_size_t n;
  OK(__wasi_fd_pread(fd, &iov, 1, 0, &n));
  CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
  OK(__wasi_fd_tell(fd, &pos));
  CHECK(pos == 11);  // pread leaves the position alone
  __wasi_filestat_t st = stat_fd(fd);
  CHECK(st.filetype == __WASI_FILETYPE_REGULAR_FILE && st.size == 13 && st.mtim > 0);
  __wasi_fdstat_t fs;
  OK(__wasi_fd_fdstat_get(fd, &fs));
  CHECK(fs.fs_filetype == __WASI_FILETYPE_REGULAR_FILE);
  CHECK((fs.fs_rights_base & __WASI_RIGHTS_FD_READ) && !(fs.fs_rights_base & __WASI_RIGHTS_FD_WRITE));
  // Dropping a right on a host file: reported, enforced, never regained.
  OK(__wasi_fd_fdstat_set_rights(fd, fs.fs_rights_base & ~__WASI_RIGHTS_FD_SEEK, 0));
  ERR(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos), __WASI_ERRNO_NOTCAPABLE);
  __wasi_fdstat_t narrowed;
  OK(__wasi_fd_fdstat_get(fd, &narrowed));
  CHECK(narrowed.fs_rights_base == (fs.fs_rights_base & ~__WASI_RIGHTS_FD_SEEK));
  ERR(__wasi_fd_fdstat_set_rights(fd, fs.fs_rights_base, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_fd_fdstat_set_rights(99, 0, 0), __WASI_ERRNO_BADF);
  OK(__wasi_fd_advise(fd, 0, 13, __WASI_ADVICE_SEQUENTIAL));
  ERR(__wasi_fd_advise(fd, 0, 13, 9), __WASI_ERRNO_INVAL);
  OK(__wasi_fd_close(fd));
  ERR(__wasi_fd_close(fd), __WASI_ERRNO_BADF);
  CHECK(open_at(DATA, "sub/inner.txt", 0, R_READ, 0) == 6);  // number reused
  CHECK(open_at(DATA, "./sub/../hello.txt", 0, R_READ, 0) == 7);
}

static void case_ro_refusals(void) {
  ERR(open_err(DATA, "missing.txt", 0, R_READ, 0), __WASI_ERRNO_NOENT);
  ERR(open_err(DATA, "hello.txt/x", 0, R_READ, 0), __WASI_ERRNO_NOTDIR);
  ERR(open_err(DATA, "hello.txt", __WASI_OFLAGS_DIRECTORY, R_READ, 0), __WASI_ERRNO_NOTDIR);
  ERR(open_err(DATA, "new.txt", __WASI_OFLAGS_CREAT, R_RW, 0), __WASI_ERRNO_ROFS);
  ERR(open_err(DATA, "hello.txt", 0, R_RW, 0), __WASI_ERRNO_ROFS);
  ERR(open_err(DATA, "hello.txt", __WASI_OFLAGS_TRUNC, R_READ, 0), __WASI_ERRNO_ROFS);
  ERR(open_err(DATA, "hello.txt", 0, R_READ, __WASI_FDFLAGS_APPEND), __WASI_ERRNO_ROFS);
  // Escapes.
  ERR(open_err(DATA, "../outside.txt", 0, R_READ, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(DATA, "/etc/passwd", 0, R_READ, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(DATA, "sub/../../outside.txt", 0, R_READ, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(DATA, "link_out", 0, R_READ, 0), __WASI_ERRNO_NOTCAPABLE);
  __wasi_fd_t in = open_at(DATA, "link_in", 0, R_READ, 0);
  char buf[16] = {0};
  CHECK(read_all(in, buf, 5) == 5 && memcmp(buf, "hello", 5) == 0);
  // Every mutation of the read-only tree.
  ERR(__wasi_path_create_directory(DATA, "newdir"), __WASI_ERRNO_ROFS);
  ERR(__wasi_path_unlink_file(DATA, "hello.txt"), __WASI_ERRNO_ROFS);
  ERR(__wasi_path_remove_directory(DATA, "sub"), __WASI_ERRNO_ROFS);
  ERR(__wasi_path_rename(DATA, "hello.txt", DATA, "moved.txt"), __WASI_ERRNO_ROFS);
  ERR(__wasi_path_rename(DATA, "hello.txt", SCRATCH, "moved.txt"), __WASI_ERRNO_ROFS);
  ERR(__wasi_path_link(DATA, 0, "hello.txt", DATA, "again.txt"), __WASI_ERRNO_ROFS);
  ERR(__wasi_path_symlink("hello.txt", DATA, "sym"), __WASI_ERRNO_ROFS);
  ERR(__wasi_path_filestat_set_times(DATA, 0, "hello.txt", 0, 0, __WASI_FSTFLAGS_MTIM_NOW), __WASI_ERRNO_ROFS);
  ERR(__wasi_fd_filestat_set_times(in, 0, 0, __WASI_FSTFLAGS_MTIM_NOW), __WASI_ERRNO_ROFS);
  __wasi_ciovec_t ciov = {(const uint8_t *)"x", 1};
  __wasi_size_t n;
  ERR(__wasi_fd_write(in, &ciov, 1, &n), __WASI_ERRNO_BADF);
  ERR(__wasi_fd_pwrite(in, &ciov, 1, 0, &n), __WASI_ERRNO_BADF);
  ERR(__wasi_fd_filestat_set_size(in, 0), __WASI_ERRNO_BADF);
  ERR(__wasi_fd_allocate(in, 0, 10), __WASI_ERRNO_BADF);
  ERR(__wasi_fd_fdstat_set_flags(in, __WASI_FDFLAGS_APPEND), __WASI_ERRNO_ROFS);
  __wasi_iovec_t iov = {(uint8_t *)buf, 1};
  ERR(__wasi_fd_read(DATA, &iov, 1, &n), __WASI_ERRNO_ISDIR);
}

static void case_ro_stat(void) {
  CHECK(stat_path(DATA, "hello.txt", 1).size == 13);
  CHECK(stat_path(DATA, "sub", 1).filetype == __WASI_FILETYPE_DIRECTORY);
  CHECK(stat_path(DATA, "link_in", 0).filetype == __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK(stat_path(DATA, "link_in", 1).filetype == __WASI_FILETYPE_REGULAR_FILE);
  CHECK(stat_fd(DATA).filetype == __WASI_FILETYPE_DIRECTORY);
  __wasi_filestat_t st;
  ERR(__wasi_path_filestat_get(DATA, 0, "nope", &st), __WASI_ERRNO_NOENT);
  ERR(__wasi_path_filestat_get(DATA, 1, "link_out", &st), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_filestat_get(DATA, 0, "../outside.txt", &st), __WASI_ERRNO_NOTCAPABLE);
  char link[32] = {0};
  __wasi_size_t n = 0;
  OK(__wasi_path_readlink(DATA, "link_in", (uint8_t *)link, sizeof link, &n));
  CHECK(n == 9 && memcmp(link, "hello.txt", 9) == 0);
  ERR(__wasi_path_readlink(DATA, "hello.txt", (uint8_t *)link, sizeof link, &n), __WASI_ERRNO_INVAL);
  ERR(__wasi_path_readlink(DATA, "nope", (uint8_t *)link, sizeof link, &n), __WASI_ERRNO_NOENT);
  char names[256];
  list_dir(DATA, 0, names, sizeof names);
  CHECK(strcmp(names, ".|..|hello.txt|link_in|link_out|sub|") == 0);
  list_dir(DATA, 3, names, sizeof names);  // resume after the third entry
  CHECK(strcmp(names, "link_in|link_out|sub|") == 0);
  uint8_t small[30];
  __wasi_size_t used = 0;
  OK(__wasi_fd_readdir(DATA, small, sizeof small, 0, &used));
  CHECK(used == sizeof small);  // full buffer: ask again with a bigger one
  ERR(__wasi_fd_readdir(99, small, sizeof small, 0, &used), __WASI_ERRNO_BADF);
}

static void case_scratch_file(void) {
  __wasi_fd_t fd = open_at(SCRATCH, "a.txt", __WASI_OFLAGS_CREAT, R_RW, 0);
  write_all(fd, "hello");
  __wasi_filesize_t pos;
  OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  char buf[300] = {0};
  CHECK(read_all(fd, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
  CHECK(stat_fd(fd).size == 5);
  OK(__wasi_fd_filestat_set_size(fd, 2));
  CHECK(stat_fd(fd).size == 2);
  OK(__wasi_fd_filestat_set_size(fd, 10));
  __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
  __wasi_size_t n;
  OK(__wasi_fd_pread(fd, &iov, 1, 0, &n));
  CHECK(n == 10 && memcmp(buf, "he\0\0\0\0\0\0\0\0", 10) == 0);
  OK(__wasi_fd_allocate(fd, 0, 100));
  CHECK(stat_fd(fd).size == 100);
  __wasi_ciovec_t ciov = {(const uint8_t *)"END", 3};
  OK(__wasi_fd_pwrite(fd, &ciov, 1, 200, &n));
  CHECK(n == 3 && stat_fd(fd).size == 203);
  OK(__wasi_fd_tell(fd, &pos));
  CHECK(pos == 5);  // pwrite leaves the position alone
  OK(__wasi_fd_sync(fd));
  OK(__wasi_fd_datasync(fd));
  OK(__wasi_fd_advise(fd, 0, 0, __WASI_ADVICE_DONTNEED));
  OK(__wasi_fd_filestat_set_times(fd, 1000, 2000, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
  __wasi_filestat_t st = stat_path(SCRATCH, "a.txt", 1);
  CHECK(st.atim == 1000 && st.mtim == 2000 && st.nlink == 1);
  ERR(__wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW), __WASI_ERRNO_INVAL);
  OK(__wasi_path_filestat_set_times(SCRATCH, 0, "a.txt", 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
  CHECK(stat_fd(fd).mtim > 1000000000ull * 1000000000ull);
  __wasi_fdstat_t fs;
  OK(__wasi_fd_fdstat_get(fd, &fs));
  CHECK(fs.fs_rights_base == R_RW);
  // Rights can be dropped, never regained.
  OK(__wasi_fd_fdstat_set_rights(fd, R_RW & ~__WASI_RIGHTS_FD_WRITE, 0));
  ERR(__wasi_fd_write(fd, &ciov, 1, &n), __WASI_ERRNO_NOTCAPABLE);
  OK(__wasi_fd_fdstat_get(fd, &fs));
  CHECK(fs.fs_rights_base == (R_RW & ~__WASI_RIGHTS_FD_WRITE));
  ERR(__wasi_fd_fdstat_set_rights(fd, R_RW, 0), __WASI_ERRNO_NOTCAPABLE);
  // A read-only open of a writable file cannot write.
  __wasi_fd_t ro = open_at(SCRATCH, "a.txt", 0, R_READ, 0);
  ERR(__wasi_fd_write(ro, &ciov, 1, &n), __WASI_ERRNO_BADF);
  // Truncate on open.
  __wasi_fd_t tr = open_at(SCRATCH, "a.txt", __WASI_OFLAGS_TRUNC, R_RW, 0);
  CHECK(stat_fd(tr).size == 0);
  ERR(open_err(SCRATCH, "a.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, R_RW, 0), __WASI_ERRNO_EXIST);
  ERR(open_err(SCRATCH, "a.txt", __WASI_OFLAGS_DIRECTORY, R_READ, 0), __WASI_ERRNO_NOTDIR);
  ERR(open_err(SCRATCH, "nope.txt", 0, R_READ, 0), __WASI_ERRNO_NOENT);
}

static void case_scratch_append(void) {
  __wasi_fd_t fd = open_at(SCRATCH, "log.txt", __WASI_OFLAGS_CREAT, R_RW, __WASI_FDFLAGS_APPEND);
  __wasi_fdstat_t fs;
  OK(__wasi_fd_fdstat_get(fd, &fs));
  CHECK(fs.fs_flags & __WASI_FDFLAGS_APPEND);
  write_all(fd, "one\n");
  __wasi_filesize_t pos;
  OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  write_all(fd, "two\n");  // appends despite the seek
  CHECK(stat_fd(fd).size == 8);
  OK(__wasi_fd_fdstat_set_flags(fd, 0));
  OK(__wasi_fd_fdstat_get(fd, &fs));
  CHECK(!(fs.fs_flags & __WASI_FDFLAGS_APPEND));
  OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  write_all(fd, "ONE\n");  // overwrites now
  OK(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
  char buf[16] = {0};
  CHECK(read_all(fd, buf, sizeof buf) == 8 && memcmp(buf, "ONE\ntwo\n", 8) == 0);
}

static void case_scratch_dirs(void) {
  OK(__wasi_path_create_directory(SCRATCH, "d"));
  ERR(__wasi_path_create_directory(SCRATCH, "d"), __WASI_ERRNO_EXIST);
  ERR(__wasi_path_create_directory(SCRATCH, "missing/x"), __WASI_ERRNO_NOENT);
  __wasi_fd_t f = open_at(SCRATCH, "d/f", __WASI_OFLAGS_CREAT, R_RW, 0);
  OK(__wasi_fd_close(f));
  ERR(__wasi_path_create_directory(SCRATCH, "d/f/x"), __WASI_ERRNO_NOTDIR);
  ERR(__wasi_path_remove_directory(SCRATCH, "d"), __WASI_ERRNO_NOTEMPTY);
  ERR(__wasi_path_unlink_file(SCRATCH, "d"), __WASI_ERRNO_ISDIR);
  ERR(__wasi_path_remove_directory(SCRATCH, "d/f"), __WASI_ERRNO_NOTDIR);
  ERR(__wasi_path_unlink_file(SCRATCH, "d/f/"), __WASI_ERRNO_NOTDIR);
  ERR(open_err(SCRATCH, "d", 0, R_RW, 0), __WASI_ERRNO_ISDIR);
  __wasi_fd_t d = open_at(SCRATCH, "d/", __WASI_OFLAGS_DIRECTORY, R_READ, 0);
  CHECK(stat_fd(d).filetype == __WASI_FILETYPE_DIRECTORY);
  // Paths relative to an opened subdirectory may not leave it.
  ERR(open_err(d, "../d/f", 0, R_READ, 0), __WASI_ERRNO_NOTCAPABLE);
  CHECK(stat_path(d, "f", 1).filetype == __WASI_FILETYPE_REGULAR_FILE);
  OK(__wasi_path_create_directory(SCRATCH, "b"));
  char names[128];
  list_dir(SCRATCH, 0, names, sizeof names);
  CHECK(strcmp(names, ".|..|b|d|seed|") == 0);
  list_dir(SCRATCH, 3, names, sizeof names);
  CHECK(strcmp(names, "d|seed|") == 0);
  OK(__wasi_path_unlink_file(SCRATCH, "d/f"));
  ERR(__wasi_path_unlink_file(SCRATCH, "d/f"), __WASI_ERRNO_NOENT);
  OK(__wasi_path_remove_directory(SCRATCH, "d"));
  __wasi_filestat_t st;
  ERR(__wasi_path_filestat_get(SCRATCH, 0, "d", &st), __WASI_ERRNO_NOENT);
  ERR(open_err(SCRATCH, "../escape", __WASI_OFLAGS_CREAT, R_RW, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(SCRATCH, "/abs", __WASI_OFLAGS_CREAT, R_RW, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_create_directory(SCRATCH, "b/../../x"), __WASI_ERRNO_NOTCAPABLE);
}

static void case_scratch_links(void) {
  __wasi_fd_t a = open_at(SCRATCH, "a", __WASI_OFLAGS_CREAT, R_RW, 0);
  write_all(a, "shared");
  OK(__wasi_path_link(SCRATCH, 0, "a", SCRATCH, "b"));
  CHECK(stat_path(SCRATCH, "b", 1).nlink == 2);
  __wasi_fd_t b = open_at(SCRATCH, "b", 0, R_READ, 0);
  char buf[16] = {0};
  CHECK(read_all(b, buf, sizeof buf) == 6 && memcmp(buf, "shared", 6) == 0);
  ERR(__wasi_path_link(SCRATCH, 0, "a", SCRATCH, "b"), __WASI_ERRNO_EXIST);
  OK(__wasi_path_create_directory(SCRATCH, "dir"));
  ERR(__wasi_path_link(SCRATCH, 0, "dir", SCRATCH, "dir2"), __WASI_ERRNO_PERM);
  ERR(__wasi_path_link(SCRATCH, 0, "missing", SCRATCH, "c"), __WASI_ERRNO_NOENT);
  ERR(__wasi_path_link(SCRATCH, 0, "a", DATA, "c"), __WASI_ERRNO_ROFS);
  // Renames.
  OK(__wasi_path_rename(SCRATCH, "a", SCRATCH, "c"));
  ERR(__wasi_path_filestat_get(SCRATCH, 0, "a", &(__wasi_filestat_t){0}), __WASI_ERRNO_NOENT);
  OK(__wasi_path_rename(SCRATCH, "c", SCRATCH, "b"));  // one file: POSIX does nothing
  CHECK(stat_path(SCRATCH, "c", 1).nlink == 2);
  OK(__wasi_fd_close(open_at(SCRATCH, "d", __WASI_OFLAGS_CREAT, R_RW, 0)));
  OK(__wasi_path_rename(SCRATCH, "d", SCRATCH, "b"));  // replaces b
  CHECK(stat_path(SCRATCH, "b", 1).size == 0 && stat_path(SCRATCH, "c", 1).nlink == 1);
  OK(__wasi_path_create_directory(SCRATCH, "dir/inner"));
  ERR(__wasi_path_rename(SCRATCH, "dir", SCRATCH, "dir/inner/x"), __WASI_ERRNO_INVAL);
  ERR(__wasi_path_rename(SCRATCH, "b", SCRATCH, "dir"), __WASI_ERRNO_ISDIR);
  ERR(__wasi_path_rename(SCRATCH, "dir", SCRATCH, "b"), __WASI_ERRNO_NOTDIR);
  OK(__wasi_path_create_directory(SCRATCH, "empty"));
  ERR(__wasi_path_rename(SCRATCH, "empty", SCRATCH, "dir"), __WASI_ERRNO_NOTEMPTY);
  OK(__wasi_path_rename(SCRATCH, "dir/", SCRATCH, "empty/"));  // onto an empty dir
  CHECK(stat_path(SCRATCH, "empty/inner", 1).filetype == __WASI_FILETYPE_DIRECTORY);
  ERR(__wasi_path_rename(SCRATCH, "missing", SCRATCH, "x"), __WASI_ERRNO_NOENT);
  // The open file outlives its names.
  OK(__wasi_path_unlink_file(SCRATCH, "c"));
  __wasi_filesize_t pos;
  OK(__wasi_fd_seek(a, 0, __WASI_WHENCE_SET, &pos));
  CHECK(read_all(a, buf, sizeof buf) == 6);
  // Symbolic links: case symlinks has the details.
  OK(__wasi_path_symlink("empty", SCRATCH, "sym"));
  char link[8];
  __wasi_size_t n;
  ERR(__wasi_path_readlink(SCRATCH, "empty", (uint8_t *)link, sizeof link, &n), __WASI_ERRNO_INVAL);
  OK(__wasi_path_readlink(SCRATCH, "sym", (uint8_t *)link, sizeof link, &n));
  CHECK(n == 5 && memcmp(link, "empty", 5) == 0);
  ERR(__wasi_path_symlink("x", 99, "sym"), __WASI_ERRNO_BADF);
}

static void case_renumber(void) {
  __wasi_fd_t a = open_at(SCRATCH, "a", __WASI_OFLAGS_CREAT, R_RW, 0);
  __wasi_fd_t b = open_at(SCRATCH, "b", __WASI_OFLAGS_CREAT, R_RW, 0);
  write_all(a, "from a");
  OK(__wasi_fd_renumber(a, b));
  __wasi_filesize_t pos;
  ERR(__wasi_fd_tell(a, &pos), __WASI_ERRNO_BADF);
  OK(__wasi_fd_tell(b, &pos));
  CHECK(pos == 6);  // b is now a's description, position included
  OK(__wasi_fd_renumber(b, b));
  OK(__wasi_fd_tell(b, &pos));
  ERR(__wasi_fd_renumber(b, 99), __WASI_ERRNO_BADF);
  ERR(__wasi_fd_renumber(99, b), __WASI_ERRNO_BADF);
  // The freed number is the next one handed out.
  CHECK(open_at(SCRATCH, "c", __WASI_OFLAGS_CREAT, R_RW, 0) == a);
}

static void case_scratch_cap(void) {
  // The scratch tree holds at most the job's memory limit (32 MiB here).
  __wasi_fd_t fd = open_at(SCRATCH, "big", __WASI_OFLAGS_CREAT, R_RW, 0);
  __wasi_ciovec_t ciov = {(const uint8_t *)"x", 1};
  __wasi_size_t n;
  ERR(__wasi_fd_pwrite(fd, &ciov, 1, 40u << 20, &n), __WASI_ERRNO_NOSPC);
  ERR(__wasi_fd_filestat_set_size(fd, 40u << 20), __WASI_ERRNO_FBIG);
  OK(__wasi_fd_filestat_set_size(fd, 1u << 20));
  CHECK(stat_fd(fd).size == 1u << 20);
}


static __wasi_errno_t open_flags(__wasi_fd_t dir, __wasi_lookupflags_t lf, const char *path,
                                 __wasi_oflags_t oflags, __wasi_rights_t rights, __wasi_fd_t *fd) {
  return __wasi_path_open(dir, lf, path, oflags, rights, 0, 0, fd);
}

static void case_symlinks(void) {
  __wasi_fd_t fd;
  __wasi_filestat_t st;
  char buf[64] = {0};
  __wasi_size_t n = 0;
  OK(__wasi_fd_close(open_at(SCRATCH, "file", __WASI_OFLAGS_CREAT, R_RW, 0)));
  OK(__wasi_path_create_directory(SCRATCH, "dir"));
  OK(__wasi_path_symlink("file", SCRATCH, "to_file"));
  OK(__wasi_path_symlink("dir", SCRATCH, "to_dir"));
  OK(__wasi_path_symlink("missing", SCRATCH, "dangling"));
  OK(__wasi_path_symlink("loop", SCRATCH, "loop"));
  OK(__wasi_path_symlink("/etc/passwd", SCRATCH, "absolute"));
  OK(__wasi_path_symlink("../../escape", SCRATCH, "dir/up"));
  OK(__wasi_path_symlink("to_dir/../file", SCRATCH, "chain"));
  // readlink: the target as written; a small buffer gets its start.
  OK(__wasi_path_readlink(SCRATCH, "to_file", (uint8_t *)buf, sizeof buf, &n));
  CHECK(n == 4 && memcmp(buf, "file", 4) == 0);
  OK(__wasi_path_readlink(SCRATCH, "absolute", (uint8_t *)buf, 4, &n));
  CHECK(n == 4 && memcmp(buf, "/etc", 4) == 0);
  ERR(__wasi_path_readlink(SCRATCH, "file", (uint8_t *)buf, sizeof buf, &n), __WASI_ERRNO_INVAL);
  ERR(__wasi_path_readlink(SCRATCH, "nope", (uint8_t *)buf, sizeof buf, &n), __WASI_ERRNO_NOENT);
  // filestat: no-follow sees the link, follow its target.
  CHECK(stat_path(SCRATCH, "to_file", 0).filetype == __WASI_FILETYPE_SYMBOLIC_LINK);
  CHECK(stat_path(SCRATCH, "to_file", 0).size == 4);
  CHECK(stat_path(SCRATCH, "to_file", 1).filetype == __WASI_FILETYPE_REGULAR_FILE);
  CHECK(stat_path(SCRATCH, "to_dir", 1).filetype == __WASI_FILETYPE_DIRECTORY);
  CHECK(stat_path(SCRATCH, "dangling", 0).filetype == __WASI_FILETYPE_SYMBOLIC_LINK);
  ERR(__wasi_path_filestat_get(SCRATCH, 1, "dangling", &st), __WASI_ERRNO_NOENT);
  CHECK(stat_path(SCRATCH, "chain", 1).filetype == __WASI_FILETYPE_REGULAR_FILE);
  // Links in the middle of a path are always followed.
  CHECK(stat_path(SCRATCH, "to_dir/.", 0).filetype == __WASI_FILETYPE_DIRECTORY);
  OK(__wasi_fd_close(open_at(SCRATCH, "to_dir/inside", __WASI_OFLAGS_CREAT, R_RW, 0)));
  CHECK(stat_path(SCRATCH, "dir/inside", 0).filetype == __WASI_FILETYPE_REGULAR_FILE);
  // open: a final link without SYMLINK_FOLLOW is ELOOP; loops are ELOOP.
  ERR(open_flags(SCRATCH, 0, "to_file", 0, R_READ, &fd), __WASI_ERRNO_LOOP);
  ERR(open_flags(SCRATCH, 0, "to_dir", __WASI_OFLAGS_DIRECTORY, R_READ, &fd), __WASI_ERRNO_LOOP);
  OK(open_flags(SCRATCH, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "to_file", 0, R_READ, &fd));
  ERR(open_flags(SCRATCH, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "loop", 0, R_READ, &fd), __WASI_ERRNO_LOOP);
  ERR(__wasi_path_filestat_get(SCRATCH, 1, "loop", &st), __WASI_ERRNO_LOOP);
  ERR(open_flags(SCRATCH, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "dangling", 0, R_READ, &fd), __WASI_ERRNO_NOENT);
  ERR(open_flags(SCRATCH, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "dangling", __WASI_OFLAGS_DIRECTORY, R_READ, &fd), __WASI_ERRNO_NOENT);
  // O_CREAT|O_EXCL on a link: it exists, even dangling.
  ERR(open_flags(SCRATCH, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "dangling", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, R_RW, &fd), __WASI_ERRNO_EXIST);
  // Links never leave the directory: absolute targets and .. past it.
  ERR(open_flags(SCRATCH, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "absolute", 0, R_READ, &fd), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_flags(SCRATCH, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "dir/up", 0, R_READ, &fd), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_filestat_get(SCRATCH, 1, "absolute/x", &st), __WASI_ERRNO_NOTCAPABLE);
  __wasi_fd_t dir = open_at(SCRATCH, "dir", __WASI_OFLAGS_DIRECTORY, R_READ, 0);
  OK(__wasi_path_symlink("../file", dir, "parent"));
  ERR(open_flags(dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "parent", 0, R_READ, &fd), __WASI_ERRNO_NOTCAPABLE);
  // Trailing slashes: the name must be a directory.
  ERR(__wasi_path_symlink("file", SCRATCH, "new/"), __WASI_ERRNO_NOENT);
  ERR(__wasi_path_symlink("file", SCRATCH, "dir/"), __WASI_ERRNO_EXIST);
  ERR(__wasi_path_symlink("file", SCRATCH, "to_file"), __WASI_ERRNO_EXIST);
  ERR(__wasi_path_filestat_get(SCRATCH, 1, "to_file/", &st), __WASI_ERRNO_NOTDIR);
  CHECK(stat_path(SCRATCH, "to_dir/", 0).filetype == __WASI_FILETYPE_DIRECTORY);
  ERR(open_flags(SCRATCH, 0, "file/", 0, R_READ, &fd), __WASI_ERRNO_NOTDIR);
  ERR(__wasi_path_unlink_file(SCRATCH, "to_file/"), __WASI_ERRNO_NOTDIR);
  ERR(__wasi_path_symlink("", SCRATCH, "empty_target"), __WASI_ERRNO_NOENT);
  // Unlink, rename and hard-link act on the link itself.
  OK(__wasi_path_rename(SCRATCH, "to_file", SCRATCH, "moved"));
  CHECK(stat_path(SCRATCH, "moved", 0).filetype == __WASI_FILETYPE_SYMBOLIC_LINK);
  OK(__wasi_path_link(SCRATCH, 0, "moved", SCRATCH, "hard_to_link"));
  CHECK(stat_path(SCRATCH, "hard_to_link", 0).filetype == __WASI_FILETYPE_SYMBOLIC_LINK);
  OK(__wasi_path_link(SCRATCH, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "moved", SCRATCH, "hard_to_file"));
  CHECK(stat_path(SCRATCH, "hard_to_file", 0).filetype == __WASI_FILETYPE_REGULAR_FILE);
  CHECK(stat_path(SCRATCH, "file", 0).nlink == 2);
  OK(__wasi_path_unlink_file(SCRATCH, "moved"));
  CHECK(stat_path(SCRATCH, "file", 0).filetype == __WASI_FILETYPE_REGULAR_FILE);
  ERR(__wasi_path_remove_directory(SCRATCH, "to_dir"), __WASI_ERRNO_NOTDIR);
  OK(__wasi_path_unlink_file(SCRATCH, "to_dir"));
  CHECK(stat_path(SCRATCH, "dir", 0).filetype == __WASI_FILETYPE_DIRECTORY);
  // The listing names links as links.
  uint8_t raw[512];
  __wasi_size_t used = 0;
  OK(__wasi_fd_readdir(SCRATCH, raw, sizeof raw, 0, &used));
  int links = 0;
  for (size_t at = 0; at + sizeof(__wasi_dirent_t) <= used;) {
    __wasi_dirent_t d;
    memcpy(&d, raw + at, sizeof d);
    links += d.d_type == __WASI_FILETYPE_SYMBOLIC_LINK;
    at += sizeof d + d.d_namlen;
  }
  CHECK(links == 5);  // absolute, chain, dangling, hard_to_link, loop
}

static void case_rights(void) {
  __wasi_fd_t fd;
  __wasi_fdstat_t fs;
  __wasi_fd_t dir = open_at(SCRATCH, ".", __WASI_OFLAGS_DIRECTORY, R_READ, 0);
  OK(__wasi_fd_close(open_at(dir, "f", __WASI_OFLAGS_CREAT, R_RW, 0)));
  OK(__wasi_fd_fdstat_get(dir, &fs));
  __wasi_rights_t all = fs.fs_rights_base;
  // O_TRUNC needs PATH_FILESTAT_SET_SIZE, O_CREAT PATH_CREATE_FILE.
  OK(__wasi_fd_fdstat_set_rights(dir, all & ~__WASI_RIGHTS_PATH_FILESTAT_SET_SIZE, fs.fs_rights_inheriting));
  ERR(open_flags(dir, 0, "f", __WASI_OFLAGS_TRUNC, R_RW, &fd), __WASI_ERRNO_NOTCAPABLE);
  OK(open_flags(dir, 0, "f", 0, R_RW, &fd));
  OK(__wasi_fd_fdstat_set_rights(dir, all & ~__WASI_RIGHTS_PATH_FILESTAT_SET_SIZE & ~__WASI_RIGHTS_PATH_CREATE_FILE, fs.fs_rights_inheriting));
  ERR(open_flags(dir, 0, "g", __WASI_OFLAGS_CREAT, R_RW, &fd), __WASI_ERRNO_NOTCAPABLE);
  __wasi_filestat_t st;
  ERR(__wasi_path_filestat_get(dir, 0, "g", &st), __WASI_ERRNO_NOENT);  // nothing was made
  // Every path call checks its right on its directory.
  __wasi_rights_t few = __WASI_RIGHTS_PATH_OPEN | __WASI_RIGHTS_FD_READDIR;
  OK(__wasi_fd_fdstat_set_rights(dir, few, fs.fs_rights_inheriting));
  ERR(__wasi_path_create_directory(dir, "d"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_filestat_get(dir, 0, "f", &st), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_filestat_set_times(dir, 0, "f", 0, 0, __WASI_FSTFLAGS_MTIM_NOW), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_unlink_file(dir, "f"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_remove_directory(dir, "d"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_symlink("f", dir, "s"), __WASI_ERRNO_NOTCAPABLE);
  char buf[8];
  __wasi_size_t n;
  ERR(__wasi_path_readlink(dir, "s", (uint8_t *)buf, sizeof buf, &n), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_rename(dir, "f", SCRATCH, "f2"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_rename(SCRATCH, "f", dir, "f2"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_link(dir, 0, "f", SCRATCH, "f2"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_link(SCRATCH, 0, "f", dir, "f2"), __WASI_ERRNO_NOTCAPABLE);
  OK(open_flags(dir, 0, "f", 0, R_READ, &fd));
  // Path calls on a descriptor that is not a directory.
  ERR(open_flags(fd, 0, "x", 0, R_READ, &fd), __WASI_ERRNO_NOTDIR);
  ERR(__wasi_path_create_directory(1, "x"), __WASI_ERRNO_NOTDIR);
  ERR(__wasi_path_filestat_get(99, 0, "x", &st), __WASI_ERRNO_BADF);
}

static void case_dir_fds(void) {
  const __wasi_fd_t dirs[3] = {DATA, RW, SCRATCH};
  for (int i = 0; i < 3; i++) {
    __wasi_fd_t d = dirs[i];
    char buf[4];
    __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
    __wasi_ciovec_t ciov = {(const uint8_t *)"x", 1};
    __wasi_size_t n;
    __wasi_filesize_t pos;
    ERR(__wasi_fd_read(d, &iov, 1, &n), __WASI_ERRNO_ISDIR);
    ERR(__wasi_fd_pread(d, &iov, 1, 0, &n), __WASI_ERRNO_ISDIR);
    ERR(__wasi_fd_write(d, &ciov, 1, &n), __WASI_ERRNO_BADF);
    ERR(__wasi_fd_pwrite(d, &ciov, 1, 0, &n), __WASI_ERRNO_BADF);
    ERR(__wasi_fd_tell(d, &pos), __WASI_ERRNO_ISDIR);
    ERR(__wasi_fd_seek(d, 0, __WASI_WHENCE_SET, &pos), __WASI_ERRNO_ISDIR);
    ERR(__wasi_fd_allocate(d, 0, 1), __WASI_ERRNO_ISDIR);
    ERR(__wasi_fd_filestat_set_size(d, 0), __WASI_ERRNO_ISDIR);
    CHECK(stat_fd(d).filetype == __WASI_FILETYPE_DIRECTORY);
  }
}

static void case_seeded(void) {
  // The scratch tree starts with the seed; changes stay in memory.
  __wasi_fd_t fd = open_at(SCRATCH, "seed/link", 0, R_RW, 0);
  char buf[16] = {0};
  CHECK(read_all(fd, buf, sizeof buf) == 7 && memcmp(buf, "seeded\n", 7) == 0);
  char target[8];
  __wasi_size_t n;
  OK(__wasi_path_readlink(SCRATCH, "seed/link", (uint8_t *)target, sizeof target, &n));
  CHECK(n == 5 && memcmp(target, "a.txt", 5) == 0);
  __wasi_ciovec_t ciov = {(const uint8_t *)"S", 1};
  OK(__wasi_fd_pwrite(fd, &ciov, 1, 0, &n));
  __wasi_fd_t again = open_at(SCRATCH, "seed/a.txt", 0, R_READ, 0);
  memset(buf, 0, sizeof buf);
  CHECK(read_all(again, buf, sizeof buf) == 7 && memcmp(buf, "Seeded\n", 7) == 0);
  __wasi_fd_t tr = open_at(SCRATCH, "seed/a.txt", __WASI_OFLAGS_TRUNC, R_RW, 0);
  CHECK(stat_fd(tr).size == 0);
  OK(__wasi_path_rename(SCRATCH, "seed", SCRATCH, "renamed"));
  CHECK(stat_path(SCRATCH, "renamed/link", 0).filetype == __WASI_FILETYPE_SYMBOLIC_LINK);
}

static void case_rw_dir(void) {
  // A writable host directory: create, write, truncate, rename, link.
  __wasi_fd_t fd = open_at(RW, "new.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, R_RW, 0);
  write_all(fd, "written");
  OK(__wasi_fd_filestat_set_size(fd, 5));
  CHECK(stat_fd(fd).size == 5);
  OK(__wasi_fd_allocate(fd, 0, 8));
  CHECK(stat_fd(fd).size == 8);
  OK(__wasi_fd_sync(fd));
  OK(__wasi_fd_filestat_set_times(fd, 0, 2000000000ull * 1000000000ull, __WASI_FSTFLAGS_MTIM));
  CHECK(stat_fd(fd).mtim == 2000000000ull * 1000000000ull);
  ERR(open_err(RW, "new.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, R_RW, 0), __WASI_ERRNO_EXIST);
  __wasi_fd_t tr = open_at(RW, "hello.txt", __WASI_OFLAGS_TRUNC, R_RW, 0);
  CHECK(stat_fd(tr).size == 0);
  write_all(tr, "rewritten\n");
  __wasi_fd_t ap = open_at(RW, "hello.txt", 0, R_RW, __WASI_FDFLAGS_APPEND);
  write_all(ap, "more\n");
  CHECK(stat_path(RW, "hello.txt", 1).size == 15);
  OK(__wasi_path_create_directory(RW, "made"));
  OK(__wasi_path_rename(RW, "new.txt", RW, "made/moved.txt"));
  OK(__wasi_path_rename(RW, "made/moved.txt", RW, "back.txt"));
  OK(__wasi_path_link(RW, 0, "back.txt", RW, "made/hard.txt"));
  CHECK(stat_path(RW, "back.txt", 1).nlink == 2);
  OK(__wasi_path_filestat_set_times(RW, 0, "back.txt", 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
  ERR(__wasi_path_remove_directory(RW, "made"), __WASI_ERRNO_NOTEMPTY);
  OK(__wasi_path_unlink_file(RW, "made/hard.txt"));
  OK(__wasi_path_remove_directory(RW, "made"));
  ERR(__wasi_path_unlink_file(RW, "sub"), __WASI_ERRNO_ISDIR);
  // Existing links are read and followed inside; creating one is refused.
  char link[16];
  __wasi_size_t n;
  OK(__wasi_path_readlink(RW, "link_in", (uint8_t *)link, sizeof link, &n));
  CHECK(n == 9);
  ERR(__wasi_path_symlink("hello.txt", RW, "sym"), __WASI_ERRNO_NOTSUP);
  // Nothing leaves the directory: .., absolute paths, links out.
  ERR(open_err(RW, "../outside.txt", 0, R_READ, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(RW, "../escape.txt", __WASI_OFLAGS_CREAT, R_RW, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(RW, "/tmp/escape.txt", __WASI_OFLAGS_CREAT, R_RW, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(RW, "sub/../../escape.txt", __WASI_OFLAGS_CREAT, R_RW, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(RW, "link_out", __WASI_OFLAGS_TRUNC, R_RW, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(open_err(RW, "dir_out/escape.txt", __WASI_OFLAGS_CREAT, R_RW, 0), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_create_directory(RW, "dir_out/made"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_rename(RW, "back.txt", RW, "dir_out/stolen.txt"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_rename(RW, "dir_out/../outside.txt", RW, "in.txt"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_link(RW, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "link_out", RW, "in.txt"), __WASI_ERRNO_NOTCAPABLE);
  ERR(__wasi_path_unlink_file(RW, "dir_out/outside.txt"), __WASI_ERRNO_NOTCAPABLE);
  OK(__wasi_path_unlink_file(RW, "link_out"));  // the link itself, not its target
  // Between trees: EXDEV; into the read-only one: EROFS.
  ERR(__wasi_path_rename(RW, "back.txt", SCRATCH, "x"), __WASI_ERRNO_XDEV);
  ERR(__wasi_path_rename(RW, "back.txt", DATA, "x"), __WASI_ERRNO_ROFS);
}

struct test_case { const char *name; void (*run)(void); };
static const struct test_case cases[] = {
  {"args", case_args}, {"environ", case_environ}, {"clocks", case_clocks},
  {"random", case_random}, {"poll", case_poll}, {"proc_exit", case_proc_exit},
  {"proc_raise", case_proc_raise}, {"sched_yield", case_sched_yield},
  {"sockets", case_sockets}, {"stdio", case_stdio}, {"prestat", case_prestat},
  {"ro_read", case_ro_read}, {"ro_refusals", case_ro_refusals}, {"ro_stat", case_ro_stat},
  {"scratch_file", case_scratch_file}, {"scratch_append", case_scratch_append},
  {"scratch_dirs", case_scratch_dirs}, {"scratch_links", case_scratch_links},
  {"renumber", case_renumber}, {"scratch_cap", case_scratch_cap},
  {"symlinks", case_symlinks}, {"rights", case_rights}, {"dir_fds", case_dir_fds},
  {"seeded", case_seeded}, {"rw_dir", case_rw_dir},
};

int main(int argc, char **argv) {
  if (argc < 2) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) printf("%s\n", cases[i].name);
    return 0;
  }
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (strcmp(argv[1], cases[i].name) == 0) {
      current = cases[i].name;
      cases[i].run();
      printf("ok %s\n", current);
      return 0;
    }
  }
  printf("unknown case %s\n", argv[1]);
  return 2;
}
