// fs_probe OP PATH [PATH2]: one filesystem operation, for sandbox tests.
// Prints "ok <detail>" and exits 0, or "error <errno-name>" and exits 2.
// OPs: read, write, append, create, trunc, unlink, rmdir, mkdir, rename, ls,
// stat, symlink.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(void) {
  const char *name = "OTHER";
  switch (errno) {
    case ENOENT: name = "ENOENT"; break;
    case EACCES: name = "EACCES"; break;
    case EPERM: name = "EPERM"; break;
    case EROFS: name = "EROFS"; break;
    case ENOTCAPABLE: name = "ENOTCAPABLE"; break;
    case EISDIR: name = "EISDIR"; break;
    case ENOTDIR: name = "ENOTDIR"; break;
    case EEXIST: name = "EEXIST"; break;
    case EBADF: name = "EBADF"; break;
    case ELOOP: name = "ELOOP"; break;
    case ENOTSUP: name = "ENOTSUP"; break;
    case ENOTEMPTY: name = "ENOTEMPTY"; break;
  }
  printf("error %s\n", name);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: fs_probe OP PATH [PATH2]\n"); return 64; }
  const char *op = argv[1], *path = argv[2];
  if (!strcmp(op, "read")) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail();
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    printf("ok %zu ", n);
    fwrite(buf, 1, n, stdout);
    printf("\n");
    return 0;
  }
  if (!strcmp(op, "write") || !strcmp(op, "append") || !strcmp(op, "create")) {
    int flags = O_WRONLY | O_CREAT | (!strcmp(op, "append") ? O_APPEND : 0);
    if (!strcmp(op, "create")) flags |= O_EXCL;
    int fd = open(path, flags, 0644);
    if (fd < 0) return fail();
    const char *text = argc > 3 ? argv[3] : "data\n";
    if (write(fd, text, strlen(text)) < 0) return fail();
    close(fd);
    printf("ok wrote\n");
    return 0;
  }
  if (!strcmp(op, "trunc")) {
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0) return fail();
    printf("ok truncated\n");
    return 0;
  }
  if (!strcmp(op, "unlink")) { if (unlink(path)) return fail(); printf("ok\n"); return 0; }
  if (!strcmp(op, "rmdir")) { if (rmdir(path)) return fail(); printf("ok\n"); return 0; }
  if (!strcmp(op, "mkdir")) { if (mkdir(path, 0755)) return fail(); printf("ok\n"); return 0; }
  if (!strcmp(op, "symlink")) {
    if (argc < 4 || symlink(argv[3], path)) return fail();
    printf("ok\n");
    return 0;
  }
  if (!strcmp(op, "rename")) {
    if (argc < 4 || rename(path, argv[3])) return fail();
    printf("ok\n");
    return 0;
  }
  if (!strcmp(op, "stat")) {
    struct stat st;
    if (stat(path, &st)) return fail();
    printf("ok size=%lld dir=%d\n", (long long)st.st_size, S_ISDIR(st.st_mode) ? 1 : 0);
    return 0;
  }
  if (!strcmp(op, "ls")) {
    DIR *d = opendir(path);
    if (!d) return fail();
    struct dirent *e;
    printf("ok");
    while ((e = readdir(d))) printf(" %s", e->d_name);
    printf("\n");
    closedir(d);
    return 0;
  }
  fprintf(stderr, "unknown op %s\n", op);
  return 64;
}
