// hello: prints its arguments (joined by spaces) reversed, or its standard
// input reversed when it has no arguments. Reverses by UTF-8 code point.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reverse_utf8(const char *s, size_t n) {
  size_t end = n;
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
    fwrite(s + start, 1, end - start, stdout);
    end = start;
  }
}

int main(int argc, char **argv) {
  if (argc > 1) {
    size_t total = 0;
    for (int i = 1; i < argc; i++) total += strlen(argv[i]) + 1;
    char *joined = malloc(total);
    if (!joined) return 1;
    joined[0] = 0;
    for (int i = 1; i < argc; i++) {
      if (i > 1) strcat(joined, " ");
      strcat(joined, argv[i]);
    }
    reverse_utf8(joined, strlen(joined));
    putchar('\n');
    return 0;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  if (!buf) return 1;
  int newline = n > 0 && buf[n - 1] == '\n';
  reverse_utf8(buf, newline ? n - 1 : n);
  if (newline) putchar('\n');
  return 0;
}
