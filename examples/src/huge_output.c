// huge_output [MIB]: writes MIB mebibytes (default 64) of 'x' lines to
// stdout and a short line to stderr.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  long mib = argc > 1 ? atol(argv[1]) : 64;
  static char line[1024];
  memset(line, 'x', sizeof line - 1);
  line[sizeof line - 1] = '\n';
  for (long i = 0; i < mib * 1024; i++) fwrite(line, 1, sizeof line, stdout);
  fputs("done\n", stderr);
  return 0;
}
