// scratch_bomb: creates up to 100,000 directories with names of about 4 KiB
// (paths just under the 4096 bytes a path call takes) in the scratch
// directory given as argv[1], then prints how many it made and the error
// that stopped it. Names and entries cost host memory that Phase charges to
// the job's budget, so this ends with ENOSPC, not a big sandbox.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static char path[4096];
enum { NAME = 4000 };

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : "/scratch";
  size_t prefix = (size_t)snprintf(path, sizeof path, "%s/", root);
  memset(path + prefix, 'd', NAME - 16);
  int made = 0;
  int error = 0;
  for (int i = 0; i < 100000; i++) {
    snprintf(path + prefix + NAME - 16, 16, "%08d", i);
    if (mkdir(path, 0700) != 0) {
      error = errno;
      break;
    }
    made++;
  }
  printf("made %d directories, stopped by %s\n", made,
         error ? strerror(error) : "nothing");
  return 0;
}
