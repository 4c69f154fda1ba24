// many_ifs: 2,000 functions with 25 `if`s each, reachable through a table of
// function pointers: about 100,000 metered segments in one code section.
#include <stdio.h>

__attribute__((noinline)) static unsigned h(unsigned x) { return x * 7 + 1; }

// Calls in the branches keep it an `if` (clang would make a select of it).
#define IF(k) if (x & (1u << (k % 31))) x = h(x + k); else x ^= h(k);
#define IF5(a) IF(a##0) IF(a##1) IF(a##2) IF(a##3) IF(a##4)
#define BODY IF5(1) IF5(2) IF5(3) IF5(4) IF5(5)
#define F(n) __attribute__((noinline)) static unsigned g##n(unsigned x) { BODY return x + n; }
#define F10(n) F(n##0) F(n##1) F(n##2) F(n##3) F(n##4) F(n##5) F(n##6) F(n##7) F(n##8) F(n##9)
#define F100(n) F10(n##0) F10(n##1) F10(n##2) F10(n##3) F10(n##4) F10(n##5) F10(n##6) F10(n##7) F10(n##8) F10(n##9)
#define F1000(n) F100(n##0) F100(n##1) F100(n##2) F100(n##3) F100(n##4) F100(n##5) F100(n##6) F100(n##7) F100(n##8) F100(n##9)
#define P(n) g##n,
#define P10(n) P(n##0) P(n##1) P(n##2) P(n##3) P(n##4) P(n##5) P(n##6) P(n##7) P(n##8) P(n##9)
#define P100(n) P10(n##0) P10(n##1) P10(n##2) P10(n##3) P10(n##4) P10(n##5) P10(n##6) P10(n##7) P10(n##8) P10(n##9)
#define P1000(n) P100(n##0) P100(n##1) P100(n##2) P100(n##3) P100(n##4) P100(n##5) P100(n##6) P100(n##7) P100(n##8) P100(n##9)

F1000(1) F1000(2)

static unsigned (*const table[])(unsigned) = {P1000(1) P1000(2)};

int main(void) {
  unsigned sum = 0;
  for (unsigned i = 0; i < sizeof table / sizeof *table; i++) sum += table[i](i);
  printf("%u functions, sum %u\n", (unsigned)(sizeof table / sizeof *table), sum);
  return 0;
}
