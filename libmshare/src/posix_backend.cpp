// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Backend::Posix: a POSIX shm object "/mshare.NAME" (the file
// /dev/shm/mshare.NAME) mapped at the same address in every process.
//
// create: shm_open(O_CREAT|O_EXCL) decides the creator, which holds an
//   exclusive flock() on the object until it has written the header and set
//   header.state to ready. Openers map the header page, wait (bounded) for
//   the ready state, then map the object at header.address with
//   MAP_FIXED_NOREPLACE. An opener that times out tells a slow creator
//   (lock still held) from a dead one (lock free: a stale object).
// grow: under the flock, ftruncate, map the new part right after the old
//   one, then publish header.size. Openers map it in refresh().
// shrink: under the flock, publish the smaller header.size, then truncate
//   the object; mappings are kept (SIGBUS past the end of the object).
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "internal.hpp"

namespace libmshare::detail::posix {
namespace {

constexpr Backend kBackend = Backend::Posix;
constexpr const char* kShmDirectory = "/dev/shm/";
constexpr std::string_view kPrefix = "mshare.";
// Regions the library places are this far apart, so each can grow to at
// least this size without running into another one.
constexpr std::size_t kSlot = std::size_t{1} << 30;

// Removes the shm object unless released.
class ObjectGuard {
 public:
  explicit ObjectGuard(std::string object) : object_(std::move(object)) {}
  ObjectGuard(const ObjectGuard&) = delete;
  ObjectGuard& operator=(const ObjectGuard&) = delete;
  ~ObjectGuard() {
    if (!object_.empty()) shm_unlink(object_.c_str());
  }
  void release() noexcept { object_.clear(); }

 private:
  std::string object_;
};

class FileLock {
 public:
  FileLock(int fd, std::string_view name) : fd_(fd) {
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR)
        throw_error(errno, "flock(LOCK_EX) for " + describe(name, kBackend));
    }
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() { flock(fd_, LOCK_UN); }

 private:
  int fd_;
};

struct Published {
  std::uint64_t address = 0;
  std::uint64_t size = 0;
  std::uint32_t flags = 0;
};

int prot_for(Access access) {
  return access == Access::ReadOnly ? PROT_READ : PROT_READ | PROT_WRITE;
}

std::string mmap_call(std::uintptr_t address, std::size_t length) {
  return "mmap(" + hex(address) + ", " + std::to_string(length) + ")";
}

[[noreturn]] void throw_map_error(int error, std::uintptr_t address,
                                  std::size_t length, std::string_view name,
                                  const char* purpose) {
  std::string message = mmap_call(address, length) + " " + purpose + " " +
                        describe(name, kBackend);
  if (error == EEXIST) message += ": address range already in use";
  throw_error(error, message);
}

// Reports why an opener gave up waiting for the header.
[[noreturn]] void throw_not_published(int fd, std::string_view name,
                                      std::chrono::milliseconds timeout) {
  bool creator_alive =
      flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  if (!creator_alive) flock(fd, LOCK_UN);
  std::string message = describe(name, kBackend) +
                        " was not published within " +
                        std::to_string(timeout.count()) + " ms: ";
  if (creator_alive) {
    message += "its creator is still initialising it";
  } else {
    message += "its creator is gone; remove the stale object " +
               object_path(name) + " (Region::unlink or `mshare rm " +
               std::string(name) + "`)";
  }
  throw_error(ETIMEDOUT, message);
}

void validate_published(const Header& header, const Published& published,
                        off_t object_size, std::string_view name) {
  std::string where = describe(name, kBackend);
  if (header.magic != kHeaderMagic)
    throw_error(EPROTO, where + " is not a libmshare region (magic " +
                            hex(header.magic) + ")");
  if (header.version != kHeaderVersion)
    throw_error(EPROTO, where + " has header version " +
                            std::to_string(header.version) +
                            ", this library reads version " +
                            std::to_string(kHeaderVersion));
  if (header.header_size != kHeaderSize || published.address == 0 ||
      published.address % page_size() != 0 ||
      region_length(published.size) > static_cast<std::size_t>(object_size))
    throw_error(EPROTO, where + " has a corrupt header (address " +
                            hex(published.address) + ", size " +
                            std::to_string(published.size) + ", object " +
                            std::to_string(object_size) + " bytes)");
}

// Returns the header once the creator has published it; reading it must
// not touch bytes past the end of the object (SIGBUS).
Published wait_published(int fd, std::string_view name,
                         Clock::time_point deadline,
                         std::chrono::milliseconds timeout) {
  std::chrono::microseconds pause{100};
  for (;;) {
    struct stat st;
    if (fstat(fd, &st) != 0)
      throw_error(errno, "fstat for " + describe(name, kBackend));
    if (st.st_size >= static_cast<off_t>(kHeaderSize)) {
      void* page = mmap(nullptr, kHeaderSize, PROT_READ, MAP_SHARED, fd, 0);
      if (page == MAP_FAILED)
        throw_error(errno, "mmap of the header of " + describe(name, kBackend));
      MappingGuard unmap(reinterpret_cast<std::uintptr_t>(page), kHeaderSize);
      const auto* header = static_cast<const Header*>(page);
      if (header->state.load(std::memory_order_acquire) == kStateReady) {
        Published published;
        published.address = header->address;
        published.size = header->size.load(std::memory_order_acquire);
        published.flags = header->flags;
        // The object is extended before a larger size is published.
        if (fstat(fd, &st) != 0)
          throw_error(errno, "fstat for " + describe(name, kBackend));
        validate_published(*header, published, st.st_size, name);
        return published;
      }
    }
    if (Clock::now() >= deadline) throw_not_published(fd, name, timeout);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds{10000});
  }
}

std::unique_ptr<State> make_state(std::string_view name, Access access,
                                  std::uintptr_t base, std::size_t size,
                                  std::uint32_t flags) {
  auto state = std::make_unique<State>();
  state->name = std::string(name);
  state->backend = kBackend;
  state->access = access;
  state->base = base;
  state->size = size;
  state->mapped = region_length(size);
  state->flags = flags;
  return state;
}

}  // namespace

std::string object_name(std::string_view name) {
  return "/" + std::string(kPrefix) + std::string(name);
}

std::string object_path(std::string_view name) {
  return kShmDirectory + std::string(kPrefix) + std::string(name);
}

std::unique_ptr<State> try_create(std::string_view name,
                                  const Options& options) {
  const std::string object = object_name(name);
  const std::string where = describe(name, kBackend);
  UniqueFd fd(shm_open(object.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                       options.mode));
  if (!fd) {
    if (errno == EEXIST) return nullptr;
    throw_error(errno,
                "shm_open(\"" + object + "\", O_CREAT|O_EXCL) for " + where);
  }
  ObjectGuard remove_on_error(object);
  // Held until the header is published; see throw_not_published().
  if (flock(fd.get(), LOCK_EX) != 0)
    throw_error(errno, "flock(LOCK_EX) for " + where);
  // shm_open() applies the umask; the caller asked for exactly this mode.
  if (fchmod(fd.get(), options.mode) != 0)
    throw_error(errno, "fchmod(" + octal(options.mode) + ") for " + where);

  const std::size_t length = region_length(options.size);
  if (ftruncate(fd.get(), static_cast<off_t>(length)) != 0)
    throw_error(errno,
                "ftruncate(" + std::to_string(length) + ") for " + where);
  if (options.populate) allocate_backing(fd.get(), 0, length, name, kBackend);

  auto map_at = [&](std::uintptr_t address) {
    return map_exact(address, length, PROT_READ | PROT_WRITE, MAP_SHARED,
                     fd.get(), 0);
  };
  std::uintptr_t base = options.address;
  if (base != 0) {
    int error = map_at(base);
    if (error != 0) throw_map_error(error, base, length, name, "creating");
  } else {
    base = place_in_arena(name, kBackend,
                          std::max(kSlot, round_up(length, kSlot)), map_at);
  }
  MappingGuard unmap_on_error(base, length);
  if (options.huge_pages) advise_huge_pages(base, length, name, kBackend);
  if (options.populate) prefault(base, length, name, kBackend);

  std::uint32_t flags = (options.huge_pages ? kFlagHugePages : 0) |
                        (options.populate ? kFlagPopulate : 0);
  Header* header = write_header(base, flags, length, options.size, length);

  auto state = make_state(name, Access::ReadWrite, base, options.size, flags);
  state->created = true;
  if (options.initialize) options.initialize(state->data(), state->size);
  header->state.store(kStateReady, std::memory_order_release);
  flock(fd.get(), LOCK_UN);

  state->fd = std::move(fd);
  unmap_on_error.release();
  remove_on_error.release();
  return state;
}

std::unique_ptr<State> try_open(std::string_view name, Access access,
                                Clock::time_point deadline,
                                std::chrono::milliseconds timeout) {
  const std::string object = object_name(name);
  const bool read_only = access == Access::ReadOnly;
  UniqueFd fd(
      shm_open(object.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0));
  if (!fd) {
    if (errno == ENOENT) return nullptr;
    throw_error(errno, "shm_open(\"" + object + "\", " +
                           (read_only ? "O_RDONLY" : "O_RDWR") + ") for " +
                           describe(name, kBackend));
  }
  Published published = wait_published(fd.get(), name, deadline, timeout);
  const std::size_t length = region_length(published.size);
  int error = map_exact(published.address, length, prot_for(access), MAP_SHARED,
                        fd.get(), 0);
  if (error != 0)
    throw_map_error(error, published.address, length, name, "opening");
  MappingGuard unmap_on_error(published.address, length);
  if (published.flags & kFlagHugePages)
    advise_huge_pages(published.address, length, name, kBackend);

  auto state = make_state(name, access, published.address, published.size,
                          published.flags);
  state->fd = std::move(fd);
  unmap_on_error.release();
  return state;
}

void grow(State& state, std::size_t new_size) {
  FileLock lock(state.fd.get(), state.name);
  refresh(state);
  if (new_size <= state.size) return;

  const std::string where = describe(state.name, kBackend);
  const std::size_t new_length = region_length(new_size);
  const int fd = state.fd.get();
  struct stat st;
  if (fstat(fd, &st) != 0) throw_error(errno, "fstat for " + where);
  // After a shrink the object ends before this process's mapping does.
  const std::size_t old_object_size = static_cast<std::size_t>(st.st_size);
  const bool extend = old_object_size < new_length;
  if (extend && ftruncate(fd, static_cast<off_t>(new_length)) != 0)
    throw_error(errno, "ftruncate(" + std::to_string(new_length) +
                           ") growing " + where);
  try {
    const bool populate = extend && (state.flags & kFlagPopulate);
    if (populate)
      allocate_backing(fd, static_cast<off_t>(old_object_size),
                       new_length - old_object_size, state.name, kBackend);
    if (new_length > state.mapped) {
      const std::uintptr_t start = state.base + state.mapped;
      const std::size_t length = new_length - state.mapped;
      int error = map_exact(start, length, PROT_READ | PROT_WRITE, MAP_SHARED,
                            fd, static_cast<off_t>(state.mapped));
      if (error != 0)
        throw_map_error(error, start, length, state.name, "growing");
      MappingGuard unmap_on_error(start, length);
      if (state.flags & kFlagHugePages)
        advise_huge_pages(start, length, state.name, kBackend);
      if (populate)
        prefault(state.base + old_object_size, new_length - old_object_size,
                 state.name, kBackend);
      unmap_on_error.release();
      state.mapped = new_length;
    } else if (populate) {
      prefault(state.base + old_object_size, new_length - old_object_size,
               state.name, kBackend);
    }
  } catch (...) {
    if (extend) (void)ftruncate(fd, static_cast<off_t>(old_object_size));
    throw;
  }
  Header* header = state.header();
  header->mapped.store(new_length, std::memory_order_relaxed);
  header->size.store(new_size, std::memory_order_release);
  header->generation.fetch_add(1, std::memory_order_release);
  state.size = new_size;
}

void shrink(State& state, std::size_t new_size) {
  FileLock lock(state.fd.get(), state.name);
  refresh(state);
  const std::string where = describe(state.name, kBackend);
  if (!begin_shrink(state, new_size, where)) return;

  // Truncate the object: that frees the pages, and every process still
  // mapping the tail (this one included: the mapping stays, ready for
  // growth) gets SIGBUS there.
  Header* header = state.header();
  const std::size_t new_length = region_length(new_size);
  if (ftruncate(state.fd.get(), static_cast<off_t>(new_length)) != 0)
    throw_error(errno, "ftruncate(" + std::to_string(new_length) +
                           ") shrinking " + where);
  header->mapped.store(new_length, std::memory_order_relaxed);
}

bool refresh(State& state) {
  const std::uint64_t published =
      state.header()->size.load(std::memory_order_acquire);
  if (published == state.size) return false;
  if (published < state.size) {
    // Shrunk by another process: the mapping past the end stays (SIGBUS
    // until the region grows again).
    state.size = published;
    return true;
  }
  const std::size_t new_length = region_length(published);
  if (new_length > state.mapped) {
    const std::uintptr_t start = state.base + state.mapped;
    const std::size_t length = new_length - state.mapped;
    int error = map_exact(start, length, prot_for(state.access), MAP_SHARED,
                          state.fd.get(), static_cast<off_t>(state.mapped));
    if (error != 0)
      throw_map_error(error, start, length, state.name, "refreshing");
    MappingGuard unmap_on_error(start, length);
    if (state.flags & kFlagHugePages)
      advise_huge_pages(start, length, state.name, kBackend);
    unmap_on_error.release();
    state.mapped = new_length;
  }
  state.size = published;
  return true;
}

void detach(State& state) noexcept {
  if (state.base != 0 && state.mapped != 0)
    munmap(reinterpret_cast<void*>(state.base), state.mapped);
  state.base = 0;
  state.mapped = 0;
  state.fd.reset();
}

void unlink(std::string_view name) {
  const std::string object = object_name(name);
  if (shm_unlink(object.c_str()) != 0)
    throw_error(errno, "shm_unlink(\"" + object + "\") for " +
                           describe(name, kBackend));
}

void set_mode(State& state, mode_t mode) {
  if (fchmod(state.fd.get(), mode) != 0)
    throw_error(errno, "fchmod(" + octal(mode) + ") for " +
                           describe(state.name, kBackend));
}

void set_owner(State& state, uid_t uid, gid_t gid) {
  if (fchown(state.fd.get(), uid, gid) != 0)
    throw_error(errno, "fchown(" + std::to_string(uid) + ", " +
                           std::to_string(gid) + ") for " +
                           describe(state.name, kBackend));
}

bool stat(std::string_view name, RegionInfo& info) {
  struct stat st;
  if (!stat_name_file(object_path(name), name, kBackend, info, st))
    return false;
  info.reserved = static_cast<std::size_t>(st.st_size);

  // The header is best effort: it needs read permission and a creator that
  // has published it.
  UniqueFd fd(shm_open(object_name(name).c_str(), O_RDONLY | O_CLOEXEC, 0));
  if (!fd || st.st_size < static_cast<off_t>(kHeaderSize)) return true;
  void* page = mmap(nullptr, kHeaderSize, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (page == MAP_FAILED) return true;
  MappingGuard unmap(reinterpret_cast<std::uintptr_t>(page), kHeaderSize);
  const auto* header = static_cast<const Header*>(page);
  if (header->state.load(std::memory_order_acquire) == kStateReady &&
      header->magic == kHeaderMagic && header->version == kHeaderVersion) {
    info.address = header->address;
    info.size = header->size.load(std::memory_order_acquire);
    info.readable = true;
  }
  return true;
}

std::vector<RegionInfo> list() {
  std::vector<RegionInfo> regions;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(kShmDirectory), closedir);
  if (!dir) {
    if (errno == ENOENT) return regions;
    throw_error(errno, std::string("opendir(\"") + kShmDirectory + "\")");
  }
  while (const dirent* entry = readdir(dir.get())) {
    std::string_view file = entry->d_name;
    if (file.size() <= kPrefix.size() ||
        file.substr(0, kPrefix.size()) != kPrefix)
      continue;
    RegionInfo info;
    if (stat(file.substr(kPrefix.size()), info))
      regions.push_back(std::move(info));
  }
  std::sort(
      regions.begin(), regions.end(),
      [](const RegionInfo& a, const RegionInfo& b) { return a.name < b.name; });
  return regions;
}

}  // namespace libmshare::detail::posix
