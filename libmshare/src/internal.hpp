// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Pieces shared by region.cpp and the two backends.
#ifndef LIBMSHARE_SRC_INTERNAL_HPP
#define LIBMSHARE_SRC_INTERNAL_HPP

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mshare/region.hpp"

namespace libmshare::detail {

using Clock = std::chrono::steady_clock;

// The first kHeaderSize bytes of every region. Written by the creator
// before the region becomes visible (Kernel) or before `state` becomes
// kReady (Posix); openers read it to learn where and how large the region
// is.
inline constexpr std::uint32_t kHeaderMagic = 0x4c48534d;  // "MSHL"
inline constexpr std::uint32_t kHeaderVersion = 1;
inline constexpr std::uint32_t kStateReady = 1;
inline constexpr std::uint32_t kFlagHugePages = 1u << 0;
inline constexpr std::uint32_t kFlagPopulate = 1u << 1;

struct Header {
  std::atomic<std::uint32_t> state;  // 0 while being created, kStateReady
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t address;
  std::uint32_t flags;
  std::uint32_t reserved0;
  std::uint64_t window;                   // Kernel: bytes shared
  std::atomic<std::uint64_t> size;        // usable bytes, published last
  std::atomic<std::uint64_t> generation;  // bumped by every growth
  std::atomic<std::uint64_t> mapped;      // Kernel: bytes claimed for memory
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(sizeof(Header) <= kHeaderSize);

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Unmaps [address, address + length) unless released.
class MappingGuard {
 public:
  MappingGuard(std::uintptr_t address, std::size_t length) noexcept
      : address_(address), length_(length) {}
  MappingGuard(const MappingGuard&) = delete;
  MappingGuard& operator=(const MappingGuard&) = delete;
  ~MappingGuard();
  void release() noexcept { length_ = 0; }

 private:
  std::uintptr_t address_;
  std::size_t length_;
};

// Everything a Region owns. Backends fill it in; region.cpp dispatches.
struct State {
  std::string name;
  Backend backend = Backend::Posix;
  Access access = Access::ReadWrite;
  std::uintptr_t base = 0;  // start of the region (header)
  std::size_t size = 0;     // usable bytes as known to this process
  std::size_t mapped = 0;   // Posix: bytes mapped at base here
  std::size_t window = 0;   // Kernel: bytes of the shared window
  std::uint32_t flags = 0;  // kFlag* copied from the header
  UniqueFd fd;              // Posix: the shm object
  bool created = false;
  bool temporary = false;
  pid_t creator_pid = 0;

  Header* header() const noexcept { return reinterpret_cast<Header*>(base); }
  void* data() const noexcept {
    return reinterpret_cast<void*>(base + kHeaderSize);
  }
};

// Writes a new region's header at `base`, still marked as being created:
// the creator stores kStateReady (release) once the region is usable.
Header* write_header(std::uintptr_t base, std::uint32_t flags,
                     std::uint64_t window, std::uint64_t size,
                     std::uint64_t mapped) noexcept;

// Errors ------------------------------------------------------------------

[[noreturn]] void throw_error(int error, const std::string& message);
// "region \"NAME\" (posix)"
std::string describe(std::string_view name, Backend backend);

// The start of shrink() in every backend: EINVAL (naming `where`) if
// `new_size` is larger than the region; false if it is the same size.
// Otherwise publishes the smaller size to every sharer first, so that
// nobody starts using the part that goes, and returns true: the backend
// then frees the tail.
bool begin_shrink(State& state, std::size_t new_size, const std::string& where);

// stat(2) of the file that names a region (`path`) into `st`, and the
// fields of `info` that every backend learns from it: name, backend, mode,
// owner.  Returns false if there is no such file.
bool stat_name_file(const std::string& path, std::string_view name,
                    Backend backend, RegionInfo& info, struct stat& st);
std::string hex(std::uintptr_t value);
std::string octal(unsigned value);

// Checks ------------------------------------------------------------------

void validate_name(std::string_view name);
void validate_options(std::string_view name, const Options& options);

// Memory helpers -------------------------------------------------------------

std::size_t page_size() noexcept;
constexpr std::size_t round_up(std::size_t value, std::size_t unit) noexcept {
  return (value + unit - 1) / unit * unit;
}
// Bytes mapped for a region with `size` usable bytes.
std::size_t region_length(std::size_t size) noexcept;

// mmap with MAP_FIXED_NOREPLACE at exactly `address`. Returns 0 or errno
// (EEXIST when something is already mapped in the range).
int map_exact(std::uintptr_t address, std::size_t length, int prot, int flags,
              int fd, off_t offset) noexcept;

// Calls try_at(candidate) for candidates in the library's address arena,
// starting from a hash of the name, until it returns 0; returns the
// address used. try_at returns 0, EEXIST or EACCES (try the next one) or
// another errno (thrown).
template <typename TryAt>
std::uintptr_t place_in_arena(std::string_view name, Backend backend,
                              std::size_t slot, TryAt&& try_at);
std::vector<std::uintptr_t> arena_candidates(std::string_view name,
                                             std::size_t slot);

// fallocate() [offset, offset + length) of fd: ENOMEM if memory is short.
void allocate_backing(int fd, off_t offset, std::size_t length,
                      std::string_view name, Backend backend);
// Prefaults writable pages; ENOMEM on failure.
void prefault(std::uintptr_t address, std::size_t length, std::string_view name,
              Backend backend);
void advise_huge_pages(std::uintptr_t address, std::size_t length,
                       std::string_view name, Backend backend);

// Backends -----------------------------------------------------------------
// try_create returns nullptr if the name exists; try_open returns nullptr if
// it does not. Everything else is thrown.

namespace posix {
std::string object_name(std::string_view name);
std::string object_path(std::string_view name);
std::unique_ptr<State> try_create(std::string_view name,
                                  const Options& options);
std::unique_ptr<State> try_open(std::string_view name, Access access,
                                Clock::time_point deadline,
                                std::chrono::milliseconds timeout);
void grow(State& state, std::size_t new_size);
void shrink(State& state, std::size_t new_size);
bool refresh(State& state);
void detach(State& state) noexcept;
void unlink(std::string_view name);
void set_mode(State& state, mode_t mode);
void set_owner(State& state, uid_t uid, gid_t gid);
std::vector<RegionInfo> list();
// Returns false if there is no such region.
bool stat(std::string_view name, RegionInfo& info);
}  // namespace posix

namespace kernel {
bool supported() noexcept;
std::size_t unit();
std::string info_path(std::string_view name);
std::unique_ptr<State> try_create(std::string_view name,
                                  const Options& options);
std::unique_ptr<State> try_open(std::string_view name, Access access);
void grow(State& state, std::size_t new_size);
void shrink(State& state, std::size_t new_size);
bool refresh(State& state);
void detach(State& state) noexcept;
void unlink(std::string_view name);
void set_mode(State& state, mode_t mode);
void set_owner(State& state, uid_t uid, gid_t gid);
std::vector<RegionInfo> list();
bool stat(std::string_view name, RegionInfo& info);
}  // namespace kernel

template <typename TryAt>
std::uintptr_t place_in_arena(std::string_view name, Backend backend,
                              std::size_t slot, TryAt&& try_at) {
  for (std::uintptr_t candidate : arena_candidates(name, slot)) {
    int error = try_at(candidate);
    if (error == 0) return candidate;
    // EEXIST: something is mapped there. EACCES: a read-only mshare window
    // of this process covers the slot (its range refuses new mappings).
    if (error != EEXIST && error != EACCES)
      throw_error(error, "mmap(" + hex(candidate) + ", " +
                             std::to_string(slot) + ") for " +
                             describe(name, backend));
  }
  throw_error(ENOMEM, "no free address for " + describe(name, backend) +
                          " in slots of " + std::to_string(slot) + " bytes");
}

}  // namespace libmshare::detail

#endif  // LIBMSHARE_SRC_INTERNAL_HPP
