// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Reading sizes ("64K", "4M", "1G") and addresses ("0x40000000000") from
// configuration files, options and the environment.
#ifndef MSHARE_EXAMPLES_UNITS_HPP
#define MSHARE_EXAMPLES_UNITS_HPP

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

namespace examples {

// Bytes, with an optional K, M or G suffix (powers of 1024); nullopt if
// the text is not such a size or is 0.
inline std::optional<std::size_t> parse_size(const std::string& text) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || value == 0) return std::nullopt;
  unsigned shift = 0;
  switch (*end) {
    case '\0':
      break;
    case 'K':
      shift = 10;
      break;
    case 'M':
      shift = 20;
      break;
    case 'G':
      shift = 30;
      break;
    default:
      return std::nullopt;
  }
  if (*end != '\0' && end[1] != '\0') return std::nullopt;
  if (value > (~0ull >> shift)) return std::nullopt;
  return static_cast<std::size_t>(value << shift);
}

// A non-zero address in decimal or 0x-hex; nullopt otherwise.
inline std::optional<std::uintptr_t> parse_address(const std::string& text) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || *end != '\0' || value == 0) return std::nullopt;
  return static_cast<std::uintptr_t>(value);
}

inline std::string hex(std::uintptr_t value) {
  static const char digits[] = "0123456789abcdef";
  std::string text;
  do {
    text.insert(text.begin(), digits[value & 15]);
    value >>= 4;
  } while (value != 0);
  return "0x" + text;
}

}  // namespace examples

#endif  // MSHARE_EXAMPLES_UNITS_HPP
