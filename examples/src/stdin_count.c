// stdin_count: reads standard input to its end in 64 KiB pieces and prints
// its length and a checksum (FNV-1a over every 4096th byte and the last),
// so a test can check that a large input reached the guest whole.
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static unsigned char buffer[65536];

int main(void) {
  uint64_t total = 0;
  uint32_t hash = 2166136261u;
  unsigned char last = 0;
  for (;;) {
    ssize_t n = read(0, buffer, sizeof buffer);
    if (n < 0) return 2;
    if (n == 0) break;
    for (ssize_t i = 0; i < n; i++) {
      if (((total + (uint64_t)i) & 4095) == 0) {
        hash = (hash ^ buffer[i]) * 16777619u;
      }
    }
    last = buffer[n - 1];
    total += (uint64_t)n;
  }
  hash = (hash ^ last) * 16777619u;
  printf("%llu %08x\n", (unsigned long long)total, hash);
  return 0;
}
