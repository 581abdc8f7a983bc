// Portable 16-float vectors for the CPU kernels, and the per-ISA clones of their hot loops.
//
// Vec16 is a GCC/Clang vector extension type: in each clone the compiler lowers it to one zmm
// register (x86-64-v4: AVX-512), two ymm (x86-64-v3: AVX2 + FMA) or four xmm (baseline SSE2), so
// one source serves every CPU. CONVBERT_CPU_CLONES on a function makes GCC compile it once per
// ISA and pick the best one when the library is loaded (an ifunc), so the library runs on CPUs
// without AVX-512 and nothing is built with -march=native. The helpers below are always inlined
// into the clone that calls them and never cross a call boundary.
#pragma once


namespace convbert {

constexpr int kLanes = 16;
typedef float Vec16 __attribute__((vector_size(kLanes * sizeof(float))));
typedef float Vec8 __attribute__((vector_size(8 * sizeof(float))));
typedef float Vec4 __attribute__((vector_size(4 * sizeof(float))));

#define CONVBERT_INLINE inline __attribute__((always_inline))

// Defined beforehand (e.g. empty), it compiles one version for the -march given instead (the tests
// build each ISA level that way, so the clones this CPU does not pick are checked too).
#ifndef CONVBERT_CPU_CLONES
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CONVBERT_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CONVBERT_CPU_CLONES
#endif
#endif

// GCC notes that a 64-byte vector passed by value has an ISA-dependent ABI (-Wpsabi) wherever these
// helpers are called; they are always inlined, so no such call is made: files that include this
// header are compiled with -Wno-psabi (CMakeLists.txt).
// Unaligned loads and stores through a 4-byte-aligned vector type. GCC lets a vector of float alias
// float (and nothing else), so unlike a memcpy a store does not make the compiler reload pointers
// it holds in other objects (e.g. an argument struct's fields) after every store.
typedef float Vec16Unaligned __attribute__((vector_size(kLanes * sizeof(float)), aligned(alignof(float))));

CONVBERT_INLINE Vec16 load16(const float* p) { return *reinterpret_cast<const Vec16Unaligned*>(p); }

CONVBERT_INLINE void store16(float* p, Vec16 v) { *reinterpret_cast<Vec16Unaligned*>(p) = v; }

CONVBERT_INLINE Vec16 splat16(float f) { return Vec16{} + f; }

// Sum of the lanes in a fixed order (halves added pairwise), with register shuffles.
CONVBERT_INLINE float hsum16(Vec16 v) {
  const Vec8 v8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                  __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const Vec4 v4 = __builtin_shufflevector(v8, v8, 0, 1, 2, 3) + __builtin_shufflevector(v8, v8, 4, 5, 6, 7);
  const Vec4 v2 = v4 + __builtin_shufflevector(v4, v4, 2, 3, 0, 1);
  return v2[0] + v2[1];
}

}  // namespace convbert
