// Deterministic randomness for data/: splitmix64 streams and a keyed permutation of [0, n), no std:: distributions.
#pragma once
#include <cstdint>

namespace rt::data_detail {

// The splitmix64 finaliser: a bijective 64-bit mixer.
inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Combines two values into one well-mixed key (order matters).
inline uint64_t seed_combine(uint64_t a, uint64_t b) {
  return splitmix64_mix(splitmix64_mix(a + 0x9e3779b97f4a7c15ULL) ^ (b + 0x632be59bd9b4e019ULL));
}

// A splitmix64 stream: next() is the generator Vigna recommends for seeding; fine for data.
struct SplitMix64 {
  uint64_t state;
  explicit SplitMix64(uint64_t seed) : state(seed) {}
  uint64_t next() {
    state += 0x9e3779b97f4a7c15ULL;
    return splitmix64_mix(state);
  }
  // Uniform in [0, n) for n >= 1 (modulo bias <= n / 2^64, negligible for our n).
  uint64_t below(uint64_t n) { return next() % n; }
};

// A pseudo-random permutation of [0, n) keyed by `key`: a 4-round balanced Feistel network on the smallest
// even number of bits covering n, restricted to [0, n) by cycle walking. O(1) expected per call, stateless.
inline uint64_t permute_index(uint64_t j, uint64_t n, uint64_t key) {
  if (n <= 1) return 0;
  int bits = 2;
  while (bits < 64 && (uint64_t{1} << bits) < n) bits += 2;
  const int half = bits / 2;
  const uint64_t mask = (half >= 64) ? ~uint64_t{0} : ((uint64_t{1} << half) - 1);
  uint64_t x = j;
  do {
    uint64_t left = x >> half, right = x & mask;
    for (uint64_t round = 0; round < 4; ++round) {
      const uint64_t f = seed_combine(key + round, right) & mask;
      const uint64_t new_right = left ^ f;
      left = right;
      right = new_right;
    }
    x = (left << half) | right;
  } while (x >= n);  // the domain is at most 4n, so this loops fewer than 4 times on average
  return x;
}

}  // namespace rt::data_detail
