#include "kernels/core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <cstdint>

namespace engine::kernels {
namespace {

// Linux (5.16+) enables the 8 KiB AMX tile data state per process on request; without the
// request the first tile instruction faults. Returns whether the state is usable.
bool RequestAmxTileData() {
#if defined(__linux__) && defined(__x86_64__)
  constexpr long kArchReqXcompPerm = 0x1023;  // arch_prctl code (asm/prctl.h)
  constexpr long kXfeatureXtileData = 18;     // XCR0 bit of the tile data state
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
#else
  return false;
#endif
}

}  // namespace

std::string CpuFeatures::ToString() const {
  std::string s;
  auto add = [&s](bool present, const char* name) {
    if (!present) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avxvnni, "avxvnni");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512vnni, "avx512vnni");
  add(amx_int8, "amx-int8");
  return s.empty() ? "none" : s;
}

CpuFeatures DetectCpuFeatures() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = (ecx >> 27) & 1;
  f.fma = (ecx >> 12) & 1;
  f.f16c = (ecx >> 29) & 1;
  if (!osxsave) return f;
  // XCR0: bits 1-2 = SSE/AVX state, bits 5-7 = AVX-512 opmask/ZMM state saved by the OS.
  uint32_t xcr0_lo = 0, xcr0_hi = 0;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool os_avx = (xcr0_lo & 0x6) == 0x6;
  const bool os_avx512 = (xcr0_lo & 0xe6) == 0xe6;
  if (!os_avx) {
    f.fma = f.f16c = false;
    return f;
  }
  // XCR0 bits 17-18: the OS saves the tile configuration and tile data (AMX).
  const bool os_amx = (xcr0_lo & 0x60000) == 0x60000;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.avx2 = (ebx >> 5) & 1;
    if (os_avx512) {
      f.avx512f = (ebx >> 16) & 1;
      f.avx512bw = (ebx >> 30) & 1;
      f.avx512vl = (ebx >> 31) & 1;
      f.avx512vnni = (ecx >> 11) & 1;
    }
    const bool amx_tile = (edx >> 24) & 1, amx_int8 = (edx >> 25) & 1;
    f.amx_int8 = os_amx && amx_tile && amx_int8 && RequestAmxTileData();
  }
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) f.avxvnni = (eax >> 4) & 1;
#endif
  return f;
}

}  // namespace engine::kernels
