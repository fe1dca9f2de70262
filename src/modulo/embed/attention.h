// Fused self-attention of one head of one sequence: scores = Q K^T, softmax over each row, and
// context = P V, computed a block of query rows at a time so the L×L score matrix never exists
// beyond one block (at most kAttendRows × L floats, in L1). The 1/sqrt(d) scale is expected to be
// folded into Q already.
//
// With AVX-512 and a head size that is a multiple of 16 (MiniLM: 32, BERT-base: 64) the kernel is
// register-blocked by hand (kAttendRows query rows against 16 keys per FMA; exp by range
// reduction, a degree-6 polynomial and VSCALEFPS, within 2 ulp of expf); otherwise a portable
// version runs, compiled for AVX2 and the baseline as well (chosen at load time). Both are
// checked against a double-precision reference in attention_test.cpp.
//
// Thread-safety: pure functions of their arguments; `scratch` is the caller's.
#pragma once

#include <cstddef>

namespace modulo::embed {

inline constexpr int kAttendRows = 8;

// Floats of scratch AttendHead needs for a sequence of `len` tokens and heads of `head_dim`.
std::size_t AttendScratchFloats(int len, int head_dim);

// q, k, v: row t of the head's queries, keys and values is at q + t * ld_in (and k, v alike);
// out: row t of the context at out + t * ld_out. len >= 1, head_dim >= 1.
void AttendHead(const float* q, const float* k, const float* v, std::size_t ld_in, float* out, std::size_t ld_out,
                int len, int head_dim, float* scratch);

// The portable version, also used where AVX-512 is missing (exposed for tests).
void AttendHeadPortable(const float* q, const float* k, const float* v, std::size_t ld_in, float* out,
                        std::size_t ld_out, int len, int head_dim, float* scratch);

}  // namespace modulo::embed
