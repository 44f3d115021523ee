// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Backend::Kernel: mshare(2). A region of S usable bytes owns a window of
// whole msharefs units (512 GiB on x86_64); memory for the header and the
// S bytes is a memfd mapped at the start of the window, the rest is a hole.
//
// create: reserve the window (PROT_NONE, MAP_FIXED_NOREPLACE) so nothing
//   else lands in it, replace its start with the memory, unmap the rest,
//   write the header (already "ready": nobody can see the region before
//   the call), then mshare(O_CREAT|O_EXCL) decides the creator.
// open: read struct mshare_info from /sys/fs/mshare/NAME and attach.
// grow: map more memory right after the existing part (MAP_FIXED inside
//   the window): every sharer sees it without a call; header.size tells
//   them how much is usable.
// shrink: free and unmap the tail: a hole (SIGBUS) in every sharer.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <mutex>
#include <system_error>

#include "internal.hpp"
#include "mshare/syscall.h"

namespace libmshare::detail::kernel {
namespace {

constexpr Backend kBackend = Backend::Kernel;

std::string mshare_call(std::string_view name, std::uintptr_t address,
                        std::size_t length, const char* flags) {
  return "mshare(\"" + std::string(name) + "\", " + hex(address) + ", " +
         std::to_string(length) + ", " + flags + ")";
}

// Reads /sys/fs/mshare/NAME. Returns false if there is no such region.
bool read_info(std::string_view name, mshare_info& info) {
  const std::string path = info_path(name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return false;
    throw_error(errno,
                "open(\"" + path + "\") for " + describe(name, kBackend));
  }
  ssize_t got = read(fd.get(), &info, sizeof(info));
  if (got != static_cast<ssize_t>(sizeof(info)))
    throw_error(got < 0 ? errno : EPROTO,
                "read(\"" + path + "\") for " + describe(name, kBackend) +
                    ": expected " + std::to_string(sizeof(info)) + " bytes");
  return true;
}

// Maps fresh memory at [address, address + length), replacing whatever is
// there (the caller owns the range: a reservation or a claimed hole).
void map_memory(std::string_view name, std::uintptr_t address,
                std::size_t length, std::uint32_t flags) {
  const std::string where = describe(name, kBackend);
  const std::string label = "mshare:" + std::string(name);
  UniqueFd memfd(memfd_create(label.c_str(), MFD_CLOEXEC));
  if (!memfd) throw_error(errno, "memfd_create for " + where);
  if (ftruncate(memfd.get(), static_cast<off_t>(length)) != 0)
    throw_error(errno,
                "ftruncate(" + std::to_string(length) + ") for " + where);
  if (flags & kFlagPopulate)
    allocate_backing(memfd.get(), 0, length, name, kBackend);
  void* wanted = reinterpret_cast<void*>(address);
  void* got = mmap(wanted, length, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, memfd.get(), 0);
  if (got == MAP_FAILED)
    throw_error(errno, "mmap(" + hex(address) + ", " + std::to_string(length) +
                           ", MAP_FIXED) for " + where);
  MappingGuard unmap_on_error(address, length);
  if (flags & kFlagHugePages)
    advise_huge_pages(address, length, name, kBackend);
  if (flags & kFlagPopulate) prefault(address, length, name, kBackend);
  unmap_on_error.release();
}

// Regions this process has attached: a second mshare() of the same window
// would fail, so stat() reads their header in place.
class AttachedRegions {
 public:
  void add(const std::string& name, std::uintptr_t base) {
    std::lock_guard<std::mutex> lock(mutex_);
    bases_[name] = base;
  }
  void remove(const std::string& name, std::uintptr_t base) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = bases_.find(name);
    if (found != bases_.end() && found->second == base) bases_.erase(found);
  }
  bool find(const std::string& name, std::uintptr_t& base) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = bases_.find(name);
    if (found == bases_.end()) return false;
    base = found->second;
    return true;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::uintptr_t> bases_;
};

AttachedRegions& attached_regions() {
  static AttachedRegions regions;
  return regions;
}

void check_header(const Header& header, std::string_view name) {
  if (header.magic != kHeaderMagic || header.version != kHeaderVersion ||
      header.header_size != kHeaderSize)
    throw_error(EPROTO, describe(name, kBackend) +
                            " has no libmshare header version " +
                            std::to_string(kHeaderVersion) + " (magic " +
                            hex(header.magic) + ")");
}

}  // namespace

bool supported() noexcept { return mshare_supported() != 0; }

std::size_t unit() {
  static const std::size_t cached = [] {
    unsigned long value = mshare_unit();
    if (value == 0)
      throw_error(errno, std::string("reading ") + MSHARE_MOUNT_POINT "/" +
                             MSHARE_INFO_FILE);
    return static_cast<std::size_t>(value);
  }();
  return cached;
}

std::string info_path(std::string_view name) {
  return std::string(MSHARE_MOUNT_POINT "/") + std::string(name);
}

std::unique_ptr<State> try_create(std::string_view name,
                                  const Options& options) {
  const std::string where = describe(name, kBackend);
  const std::size_t window_unit = unit();
  if (options.address % window_unit != 0)
    throw_error(EINVAL, "address " + hex(options.address) + " for " + where +
                            " is not a multiple of the msharefs unit " +
                            std::to_string(window_unit));
  const std::size_t length = region_length(options.size);
  const std::size_t window = round_up(length, window_unit);
  // A cheap early answer; mshare(O_EXCL) below is what decides.
  if (::access(info_path(name).c_str(), F_OK) == 0) return nullptr;

  auto reserve = [&](std::uintptr_t address) {
    int error = map_exact(address, window, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    // An anonymous mapping is refused with EACCES only inside a read-only
    // window this process has attached: the range is taken.
    return error == EACCES ? EEXIST : error;
  };
  std::uintptr_t base = options.address;
  if (base != 0) {
    int error = reserve(base);
    if (error != 0)
      throw_error(
          error, "mmap(" + hex(base) + ", " + std::to_string(window) +
                     ") creating " + where +
                     (error == EEXIST ? ": address range already in use" : ""));
  } else {
    base = place_in_arena(name, kBackend, window, reserve);
  }
  MappingGuard unmap_on_error(base, window);

  const std::uint32_t flags = (options.huge_pages ? kFlagHugePages : 0) |
                              (options.populate ? kFlagPopulate : 0);
  map_memory(name, base, length, flags);
  // The kernel shares the caller's mappings in the window; the rest of it
  // must be a hole, not the reservation.
  if (window > length &&
      munmap(reinterpret_cast<void*>(base + length), window - length) != 0)
    throw_error(errno, "munmap of the reservation for " + where);

  Header* header = write_header(base, flags, window, options.size, length);
  header->state.store(kStateReady, std::memory_order_release);

  auto state = std::make_unique<State>();
  state->name = std::string(name);
  state->backend = kBackend;
  state->access = Access::ReadWrite;
  state->base = base;
  state->size = options.size;
  state->window = window;
  state->flags = flags;
  state->created = true;
  if (options.initialize) options.initialize(state->data(), state->size);

  const std::string call =
      mshare_call(name, base, window, "O_CREAT|O_EXCL|O_RDWR");
  if (::mshare(state->name.c_str(), base, window, O_CREAT | O_EXCL | O_RDWR,
               options.mode) != 0) {
    if (errno == EEXIST) return nullptr;
    throw_error(errno, call + " for " + where);
  }
  // From here the window is the region's: munmap(base, window) detaches.
  unmap_on_error.release();
  attached_regions().add(state->name, base);

  struct stat st;
  const std::string path = info_path(name);
  if (::stat(path.c_str(), &st) != 0 ||
      ((st.st_mode & 07777) != options.mode &&
       chmod(path.c_str(), options.mode) != 0)) {
    int error = errno;
    ::mshare_unlink(state->name.c_str());
    detach(*state);
    throw_error(error, "chmod(\"" + path + "\", " + octal(options.mode) +
                           ") for " + where);
  }
  return state;
}

std::unique_ptr<State> try_open(std::string_view name, Access access) {
  const std::string where = describe(name, kBackend);
  mshare_info info{};
  if (!read_info(name, info)) return nullptr;
  const std::size_t window_unit = unit();
  if (info.start == 0 || info.size == 0 || info.start % window_unit != 0 ||
      info.size % window_unit != 0)
    throw_error(EPROTO, info_path(name) + " reports start " + hex(info.start) +
                            " and size " + std::to_string(info.size) + " for " +
                            where);

  const bool read_only = access == Access::ReadOnly;
  if (::mshare(std::string(name).c_str(), info.start, info.size,
               read_only ? O_RDONLY : O_RDWR, 0) != 0) {
    int error = errno;
    if (error == ENOENT) return nullptr;
    std::string message = mshare_call(name, info.start, info.size,
                                      read_only ? "O_RDONLY" : "O_RDWR") +
                          " for " + where;
    if (error == EEXIST || error == EINVAL)
      message += ": is the address range free in this process?";
    throw_error(error, message);
  }
  MappingGuard detach_on_error(info.start, info.size);
  const Header& header = *reinterpret_cast<const Header*>(info.start);
  check_header(header, name);

  auto state = std::make_unique<State>();
  state->name = std::string(name);
  state->backend = kBackend;
  state->access = access;
  state->base = info.start;
  state->window = info.size;
  state->size = header.size.load(std::memory_order_acquire);
  state->flags = header.flags;
  detach_on_error.release();
  attached_regions().add(state->name, state->base);
  return state;
}

void grow(State& state, std::size_t new_size) {
  refresh(state);
  if (new_size <= state.size) return;
  const std::size_t new_length = region_length(new_size);
  if (new_length > state.window)
    throw_error(EFBIG, "growing " + describe(state.name, kBackend) + " to " +
                           std::to_string(new_size) +
                           " bytes: more than its window of " +
                           std::to_string(state.window) + " bytes");

  // Claim [mapped, new_length) in the header so that two growers never map
  // over each other; give the claim back if mapping fails.
  Header* header = state.header();
  std::uint64_t claimed = header->mapped.load(std::memory_order_acquire);
  while (claimed < new_length) {
    if (!header->mapped.compare_exchange_weak(claimed, new_length,
                                              std::memory_order_acq_rel))
      continue;
    try {
      map_memory(state.name, state.base + claimed, new_length - claimed,
                 state.flags);
    } catch (...) {
      std::uint64_t expected = new_length;
      header->mapped.compare_exchange_strong(expected, claimed,
                                             std::memory_order_acq_rel);
      throw;
    }
    break;
  }

  std::uint64_t published = header->size.load(std::memory_order_acquire);
  while (published < new_size &&
         !header->size.compare_exchange_weak(published, new_size,
                                             std::memory_order_acq_rel)) {
  }
  header->generation.fetch_add(1, std::memory_order_release);
  state.size = header->size.load(std::memory_order_acquire);
}

void shrink(State& state, std::size_t new_size) {
  refresh(state);
  const std::string where = describe(state.name, kBackend);
  if (!begin_shrink(state, new_size, where)) return;

  // Free the tail's pages (a partial munmap alone would leave them in
  // their memfd) and unmap it, which leaves a hole in every sharer.
  Header* header = state.header();
  const std::size_t new_length = region_length(new_size);
  const std::uint64_t mapped = header->mapped.load(std::memory_order_acquire);
  if (mapped <= new_length) return;
  void* tail = reinterpret_cast<void*>(state.base + new_length);
  const std::size_t tail_length = mapped - new_length;
  if (madvise(tail, tail_length, MADV_REMOVE) != 0)
    throw_error(errno, "madvise(" + hex(state.base + new_length) + ", " +
                           std::to_string(tail_length) +
                           ", MADV_REMOVE) shrinking " + where);
  if (munmap(tail, tail_length) != 0)
    throw_error(errno, "munmap(" + hex(state.base + new_length) + ", " +
                           std::to_string(tail_length) + ") shrinking " +
                           where);
  header->mapped.store(new_length, std::memory_order_release);
}

bool refresh(State& state) {
  const std::uint64_t published =
      state.header()->size.load(std::memory_order_acquire);
  if (published == state.size) return false;
  state.size = published;
  return true;
}

void detach(State& state) noexcept {
  if (state.base != 0 && state.window != 0) {
    munmap(reinterpret_cast<void*>(state.base), state.window);
    try {
      attached_regions().remove(state.name, state.base);
    } catch (...) {
      // Only a failed mutex lock can throw; the entry then stays.
    }
  }
  state.base = 0;
  state.window = 0;
}

void unlink(std::string_view name) {
  if (::mshare_unlink(std::string(name).c_str()) != 0)
    throw_error(errno, "mshare_unlink(\"" + std::string(name) + "\") for " +
                           describe(name, kBackend));
}

void set_mode(State& state, mode_t mode) {
  const std::string path = info_path(state.name);
  if (chmod(path.c_str(), mode) != 0)
    throw_error(errno, "chmod(\"" + path + "\", " + octal(mode) + ") for " +
                           describe(state.name, kBackend));
}

void set_owner(State& state, uid_t uid, gid_t gid) {
  const std::string path = info_path(state.name);
  if (chown(path.c_str(), uid, gid) != 0)
    throw_error(errno, "chown(\"" + path + "\", " + std::to_string(uid) + ", " +
                           std::to_string(gid) + ") for " +
                           describe(state.name, kBackend));
}

bool stat(std::string_view name, RegionInfo& info) {
  struct stat st;
  if (!stat_name_file(info_path(name), name, kBackend, info, st)) return false;

  mshare_info window{};
  try {
    if (!read_info(name, window)) return false;
  } catch (const std::system_error&) {
    return true;  // not readable by us
  }
  info.address = window.start;
  info.reserved = window.size;
  // The usable size lives in the header: read it in place if this process
  // has the region attached, else attach read-only to read it.
  std::uintptr_t base = 0;
  if (attached_regions().find(info.name, base) && base == window.start) {
    const auto* header = reinterpret_cast<const Header*>(base);
    info.size = header->size.load(std::memory_order_acquire);
    info.readable = true;
    return true;
  }
  try {
    if (auto state = try_open(name, Access::ReadOnly)) {
      info.size = state->size;
      info.readable = true;
      detach(*state);
    }
  } catch (const std::system_error&) {
  }
  return true;
}

std::vector<RegionInfo> list() {
  std::vector<RegionInfo> regions;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(MSHARE_MOUNT_POINT),
                                          closedir);
  if (!dir) {
    if (errno == ENOENT) return regions;
    throw_error(errno, "opendir(\"" MSHARE_MOUNT_POINT "\")");
  }
  while (const dirent* entry = readdir(dir.get())) {
    std::string_view file = entry->d_name;
    if (file == "." || file == ".." || file == MSHARE_INFO_FILE) continue;
    RegionInfo info;
    if (stat(file, info)) regions.push_back(std::move(info));
  }
  std::sort(
      regions.begin(), regions.end(),
      [](const RegionInfo& a, const RegionInfo& b) { return a.name < b.name; });
  return regions;
}

}  // namespace libmshare::detail::kernel
