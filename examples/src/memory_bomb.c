// memory_bomb: allocates and touches 1 MiB blocks until malloc fails, then
// reports how far it got and exits 1.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct block { struct block *next; char data[(1 << 20) - sizeof(void *)]; };

int main(void) {
  struct block *head = NULL;
  size_t mib = 0;
  for (;;) {
    struct block *b = malloc(sizeof *b);
    if (!b) break;
    memset(b->data, 0xA5, sizeof b->data);
    b->next = head;
    head = b;
    mib++;
  }
  size_t check = 0;
  for (struct block *b = head; b; b = b->next) check += (unsigned char)b->data[mib % sizeof b->data];
  fprintf(stderr, "malloc failed after %zu MiB (check %zu)\n", mib, check);
  return 1;
}
