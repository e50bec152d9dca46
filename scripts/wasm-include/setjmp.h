/* setjmp.h for the wasm builds of libaom, which has no exception handling
 * to unwind with (workerd and wasmtime would both need the proposal).
 * libaom sets a jump point around each encode and jumps to it only on an
 * internal error, chiefly a failed allocation. Here setjmp returns 0 and
 * longjmp traps: edgethumb checks its memory estimate before it encodes,
 * so that path is not reached by a well-formed call, and a trap ends the
 * request rather than continuing in a broken state. */
#ifndef EDGETHUMB_SETJMP_H
#define EDGETHUMB_SETJMP_H
typedef int jmp_buf[1];
#define setjmp(env) ((void)(env), 0)
static inline _Noreturn void longjmp(jmp_buf env, int val) {
  (void)env;
  (void)val;
  __builtin_trap();
}
#endif
