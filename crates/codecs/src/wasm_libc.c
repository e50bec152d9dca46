/* The rest of the C library libaom links against, for wasm32-unknown-unknown
 * (the Worker), which has no libc; allocation is in wasm_libc.rs. Built by
 * build.rs for that target only (the wasi targets link wasi-libc).
 *
 * libaom reaches stdio only in debugging and two-pass paths edgethumb never
 * enables, so files never open. Its formatted text is error detail: the
 * format is kept as written, unformatted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vsnprintf(char *restrict out, size_t n, const char *restrict fmt, va_list ap) {
  (void)ap;
  size_t len = strlen(fmt);
  if (n > 0) {
    size_t k = len < n - 1 ? len : n - 1;
    memcpy(out, fmt, k);
    out[k] = '\0';
  }
  return (int)len;
}

int snprintf(char *restrict out, size_t n, const char *restrict fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(out, n, fmt, ap);
  va_end(ap);
  return len;
}

int fprintf(FILE *restrict f, const char *restrict fmt, ...) {
  (void)f;
  (void)fmt;
  return 0;
}

int fscanf(FILE *restrict f, const char *restrict fmt, ...) {
  (void)f;
  (void)fmt;
  return EOF;
}

FILE *fopen(const char *restrict path, const char *restrict mode) {
  (void)path;
  (void)mode;
  return NULL;
}

int fclose(FILE *f) {
  (void)f;
  return EOF;
}

size_t fread(void *restrict p, size_t size, size_t n, FILE *restrict f) {
  (void)p, (void)size, (void)n, (void)f;
  return 0;
}

size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict f) {
  (void)p, (void)size, (void)n, (void)f;
  return 0;
}

int fseek(FILE *f, long offset, int whence) {
  (void)f, (void)offset, (void)whence;
  return -1;
}

int fputc(int c, FILE *f) {
  (void)c, (void)f;
  return EOF;
}

int feof(FILE *f) {
  (void)f;
  return 1;
}

int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
  for (; n > 0; n--, a++, b++) {
    if (*a != *b || !*a) return (unsigned char)*a - (unsigned char)*b;
  }
  return 0;
}

/* strtoul's digits: base 0 (prefix decides), 8, 10 or 16; no overflow
 * clamping (libaom parses small option values with it). */
static unsigned long parse(const char *s, char **end, int base, int *negative) {
  const char *p = s;
  while (*p == ' ' || (*p >= '\t' && *p <= '\r')) p++;
  *negative = 0;
  if (*p == '+' || *p == '-') *negative = *p++ == '-';
  if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    p += 2;
    base = 16;
  } else if (base == 0) {
    base = p[0] == '0' ? 8 : 10;
  }
  unsigned long v = 0;
  const char *digits = p;
  for (;; p++) {
    int d = *p >= '0' && *p <= '9'   ? *p - '0'
            : *p >= 'a' && *p <= 'z' ? *p - 'a' + 10
            : *p >= 'A' && *p <= 'Z' ? *p - 'A' + 10
                                     : 99;
    if (d >= base) break;
    v = v * (unsigned long)base + (unsigned long)d;
  }
  if (end) *end = (char *)(p == digits ? s : p);
  return v;
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base) {
  int negative;
  unsigned long v = parse(s, end, base, &negative);
  return negative ? -v : v;
}

long strtol(const char *restrict s, char **restrict end, int base) {
  int negative;
  unsigned long v = parse(s, end, base, &negative);
  return negative ? -(long)v : (long)v;
}

/* Film grain's seed; any sequence will do. */
static unsigned long rand_state = 1;
int rand(void) {
  rand_state = rand_state * 1103515245u + 12345u;
  return (int)((rand_state >> 16) & 0x7fff);
}

/* wasm's f64.nearest: round half to even, as lrint in the default mode. */
long lrint(double x) { return (long)__builtin_rint(x); }
