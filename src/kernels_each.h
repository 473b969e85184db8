/*
 * kernels.def once per dtype, with the includer's FS_KERNEL(op, f16, params, args) and
 * FS_ARRAY(op); T is the element type and DT its suffix (f32, f64) on each pass.
 * FS_NAME(op) is fs_<op>_<DT>, the public name of a kernel.  With FS_EACH_ANY defined, one
 * pass with T = void instead (DT undefined): the fs_<op>(dtype, ...) functions.
 */
#ifndef FS_CAT
#define FS_CAT_(a, b) a##_##b
#define FS_CAT(a, b) FS_CAT_(a, b)
#endif
#define FS_NAME(op) FS_CAT(FS_CAT(fs, op), DT)

#ifdef FS_EACH_ANY
#define T void
#include "kernels.def"
#undef T
#else
#define T float
#define DT f32
#include "kernels.def"
#undef T
#undef DT

#define T double
#define DT f64
#include "kernels.def"
#undef T
#undef DT
#endif

#undef FS_NAME
#undef FS_KERNEL
#undef FS_ARRAY
