// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Error reporting, argument checks and memory helpers used by both
// backends.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <new>
#include <system_error>

#include "internal.hpp"

namespace libmshare {

const char* to_string(Backend backend) noexcept {
  switch (backend) {
    case Backend::Auto:
      return "auto";
    case Backend::Kernel:
      return "kernel";
    case Backend::Posix:
      return "posix";
  }
  return "unknown";
}

const char* to_string(Access access) noexcept {
  return access == Access::ReadOnly ? "read-only" : "read-write";
}

}  // namespace libmshare

namespace libmshare::detail {
namespace {

// Addresses the library picks lie in [32 TiB, 80 TiB): above the
// AddressSanitizer shadow (ends near 16 TiB), below where x86_64 places PIE
// executables and their heap (85 TiB and up) and far below the top-down
// mmap area under 128 TiB.
constexpr std::uintptr_t kArenaStart = std::uintptr_t{32} << 40;
constexpr std::uintptr_t kArenaEnd = std::uintptr_t{80} << 40;
constexpr std::size_t kMaxProbes = 256;

std::uint64_t hash_name(std::string_view name) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace

Header* write_header(std::uintptr_t base, std::uint32_t flags,
                     std::uint64_t window, std::uint64_t size,
                     std::uint64_t mapped) noexcept {
  auto* header = new (reinterpret_cast<void*>(base)) Header{};
  header->magic = kHeaderMagic;
  header->version = kHeaderVersion;
  header->header_size = kHeaderSize;
  header->address = base;
  header->flags = flags;
  header->window = window;
  header->size.store(size, std::memory_order_relaxed);
  header->generation.store(1, std::memory_order_relaxed);
  header->mapped.store(mapped, std::memory_order_relaxed);
  return header;
}

void throw_error(int error, const std::string& message) {
  throw std::system_error(error, std::generic_category(), message);
}

std::string describe(std::string_view name, Backend backend) {
  std::string text = "region \"";
  text.append(name);
  text += "\" (";
  text += to_string(backend);
  text += ")";
  return text;
}

bool begin_shrink(State& state, std::size_t new_size,
                  const std::string& where) {
  if (new_size > state.size)
    throw_error(EINVAL, "shrink() of " + where + " from " +
                            std::to_string(state.size) + " to " +
                            std::to_string(new_size) +
                            " bytes: use grow() to make a region larger");
  if (new_size == state.size) return false;
  Header* header = state.header();
  header->size.store(new_size, std::memory_order_release);
  header->generation.fetch_add(1, std::memory_order_release);
  state.size = new_size;
  return true;
}

std::string hex(std::uintptr_t value) {
  char buffer[2 + 2 * sizeof(value) + 1];
  std::snprintf(buffer, sizeof(buffer), "0x%llx",
                static_cast<unsigned long long>(value));
  return buffer;
}

std::string octal(unsigned value) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "0%o", value);
  return buffer;
}

void validate_name(std::string_view name) {
  std::string quoted = "region name \"" + std::string(name) + "\"";
  if (name.empty()) throw_error(EINVAL, "empty region name");
  if (name.size() > kMaxNameLength)
    throw_error(ENAMETOOLONG, quoted + " is longer than " +
                                  std::to_string(kMaxNameLength) + " bytes");
  if (name == "." || name == "..")
    throw_error(EINVAL, quoted + " is not a valid name");
  for (char c : name) {
    if (c == '/' || c == '\0' || c == '\n')
      throw_error(EINVAL, quoted + " contains '/', NUL or newline");
  }
}

void validate_options(std::string_view name, const Options& options) {
  validate_name(name);
  if (options.size == 0)
    throw_error(EINVAL,
                "size 0 requested for region \"" + std::string(name) + "\"");
  if (options.size > (std::size_t{1} << 46))
    throw_error(EFBIG, "size " + std::to_string(options.size) +
                           " requested for region \"" + std::string(name) +
                           "\" is too large");
  if ((options.mode & ~static_cast<mode_t>(0777)) != 0)
    throw_error(EINVAL, "mode " + octal(options.mode) + " for region \"" +
                            std::string(name) + "\" has bits outside 0777");
  if (options.address % page_size() != 0)
    throw_error(EINVAL, "address " + hex(options.address) + " for region \"" +
                            std::string(name) + "\" is not page aligned");
}

std::size_t page_size() noexcept {
  static const std::size_t size =
      static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t region_length(std::size_t size) noexcept {
  return round_up(kHeaderSize + size, page_size());
}

MappingGuard::~MappingGuard() {
  if (length_ != 0) munmap(reinterpret_cast<void*>(address_), length_);
}

int map_exact(std::uintptr_t address, std::size_t length, int prot, int flags,
              int fd, off_t offset) noexcept {
  void* wanted = reinterpret_cast<void*>(address);
  void* got =
      mmap(wanted, length, prot, flags | MAP_FIXED_NOREPLACE, fd, offset);
  if (got == MAP_FAILED) return errno;
  if (got != wanted) {
    // Kernels before 4.17 treat the flag as a hint.
    munmap(got, length);
    return EEXIST;
  }
  return 0;
}

std::vector<std::uintptr_t> arena_candidates(std::string_view name,
                                             std::size_t slot) {
  std::vector<std::uintptr_t> candidates;
  std::uintptr_t first = round_up(kArenaStart, slot);
  if (first >= kArenaEnd || slot > kArenaEnd - first) return candidates;
  std::size_t slots = (kArenaEnd - first) / slot;
  std::uint64_t start = hash_name(name) % slots;
  for (std::size_t i = 0; i < slots && i < kMaxProbes; ++i)
    candidates.push_back(first + ((start + i) % slots) * slot);
  return candidates;
}

void allocate_backing(int fd, off_t offset, std::size_t length,
                      std::string_view name, Backend backend) {
  if (fallocate(fd, 0, offset, static_cast<off_t>(length)) == 0) return;
  int error = errno;
  std::string message = "fallocate(offset " + std::to_string(offset) +
                        ", length " + std::to_string(length) + ") for " +
                        describe(name, backend);
  if (error == ENOSPC) {
    // tmpfs reports its size limit as ENOSPC; to the caller it is memory.
    throw_error(ENOMEM, message + ": no space left for shared memory");
  }
  throw_error(error, message);
}

void prefault(std::uintptr_t address, std::size_t length, std::string_view name,
              Backend backend) {
  if (madvise(reinterpret_cast<void*>(address), length, MADV_POPULATE_WRITE) ==
      0)
    return;
  int error = errno;
  if (error == EINVAL) {
    // Kernel older than 5.14: the backing is already allocated, so touch
    // the pages to build the page tables.
    for (std::size_t offset = 0; offset < length; offset += page_size()) {
      auto* byte = reinterpret_cast<volatile char*>(address + offset);
      *byte = *byte;
    }
    return;
  }
  if (error == EFAULT) error = ENOMEM;
  throw_error(error, "madvise(" + hex(address) + ", " + std::to_string(length) +
                         ", MADV_POPULATE_WRITE) for " +
                         describe(name, backend));
}

void advise_huge_pages(std::uintptr_t address, std::size_t length,
                       std::string_view name, Backend backend) {
  if (madvise(reinterpret_cast<void*>(address), length, MADV_HUGEPAGE) == 0)
    return;
  throw_error(errno, "madvise(" + hex(address) + ", " + std::to_string(length) +
                         ", MADV_HUGEPAGE) for " + describe(name, backend));
}

bool stat_name_file(const std::string& path, std::string_view name,
                    Backend backend, RegionInfo& info, struct stat& st) {
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    throw_error(errno, "stat(\"" + path + "\") for " + describe(name, backend));
  }
  info = RegionInfo{};
  info.name = std::string(name);
  info.backend = backend;
  info.mode = st.st_mode & 07777;
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  return true;
}

}  // namespace libmshare::detail
