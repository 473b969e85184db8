/* The instruction set of one source file (isa/avx2.c, isa/avx512.c), the rest of the build staying
 * at the baseline.  GCC: #pragma GCC target, for the rest of the file.  Clang ignores that pragma;
 * it gets the same target as an attribute on every function defined between FS_TARGET_PUSH and
 * FS_TARGET_POP (#pragma clang attribute, clang 9 and newer; macOS and clang-cl builds). */
#ifndef FS_ISA_TARGET_H
#define FS_ISA_TARGET_H

#define FS_PRAGMA(x) _Pragma(#x)
#ifdef __clang__
#define FS_TARGET_PUSH(features) \
    FS_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define FS_TARGET_POP FS_PRAGMA(clang attribute pop)
#else
#define FS_TARGET_PUSH(features) FS_PRAGMA(GCC target(features))
#define FS_TARGET_POP
#endif

#endif
