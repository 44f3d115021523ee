// SPDX-License-Identifier: LGPL-2.1-or-later
//
// libmshare::Region: a named block of shared memory mapped at the same
// address in every process that opens it, so raw pointers stored inside it
// stay valid everywhere.
//
// Two backends provide it:
//  - Backend::Kernel uses mshare(2): all sharers share the page tables of
//    the region. Needs msharefs mounted at /sys/fs/mshare.
//  - Backend::Posix uses a POSIX shm object "/mshare.NAME" mapped with
//    MAP_FIXED_NOREPLACE at the address recorded in the object's header.
//
// Every region starts with a header page owned by the library; data()
// points just after it. Errors are reported as std::system_error carrying
// errno and a message naming the call, the region and the address or size.
#ifndef MSHARE_REGION_HPP
#define MSHARE_REGION_HPP

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace libmshare {

enum class Backend {
  Auto,    // MSHARE_BACKEND from the environment, else Kernel if supported
  Kernel,  // mshare(2) and msharefs
  Posix,   // POSIX shm at a fixed address
};

enum class Access { ReadOnly, ReadWrite };

const char* to_string(Backend backend) noexcept;
const char* to_string(Access access) noexcept;

// Longest region name accepted by both backends.
inline constexpr std::size_t kMaxNameLength = 200;

// Bytes at the start of every region used by the library's header.
inline constexpr std::size_t kHeaderSize = 4096;

// How long open() and open_or_create() wait for a creator to publish.
inline constexpr std::chrono::milliseconds kDefaultWaitTimeout{5000};

struct Options {
  // Usable bytes at data(). Must be > 0.
  std::size_t size = 0;
  // Permission bits of the region (umask is not applied).
  mode_t mode = 0600;
  // Start of the region (header included); 0 lets the library choose.
  // Kernel: a multiple of the msharefs unit; Posix: a multiple of the page
  // size. Anything already mapped there is an error (EEXIST), never
  // replaced.
  std::uintptr_t address = 0;
  // Allocate and map every page at creation and growth; fails with ENOMEM
  // instead of raising SIGBUS later.
  bool populate = false;
  // madvise(MADV_HUGEPAGE): transparent huge pages, not hugetlbfs.
  bool huge_pages = false;
  Backend backend = Backend::Auto;
  // open_or_create(): how long to wait for another creator to publish.
  std::chrono::milliseconds wait_timeout = kDefaultWaitTimeout;
  // Called by the creator before any other process can see the region, so
  // openers never observe uninitialised contents.
  std::function<void(void* data, std::size_t size)> initialize;
};

// What list() and stat() report about a region without attaching it.
struct RegionInfo {
  std::string name;
  Backend backend = Backend::Posix;
  std::uintptr_t address = 0;  // start of the region (header included)
  std::size_t size = 0;        // usable bytes; 0 if the header is unreadable
  std::size_t reserved = 0;    // Kernel: window length; Posix: object length
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool readable = false;  // the header could be read (size is valid)
};

namespace detail {
struct State;
}

class Region {
 public:
  // Creates a new region; EEXIST if the name is taken.
  static Region create(std::string_view name, const Options& options);

  // Opens an existing region; ENOENT if there is none. A region still being
  // created is waited for up to wait_timeout (ETIMEDOUT after that).
  static Region open(
      std::string_view name, Access access = Access::ReadWrite,
      Backend backend = Backend::Auto,
      std::chrono::milliseconds wait_timeout = kDefaultWaitTimeout);

  // Exactly one of many concurrent callers creates; the others open it once
  // published and verify its size (EINVAL naming both sizes on mismatch).
  static Region open_or_create(std::string_view name, const Options& options);

  // Creates a region with a unique name; it is unlinked when the creating
  // process destroys its Region.
  static Region create_temp(const Options& options);

  // Removes the name; attached processes keep their mappings.
  static void unlink(std::string_view name, Backend backend = Backend::Auto);

  // Regions visible on this system (Auto: both backends).
  static std::vector<RegionInfo> list(Backend backend = Backend::Auto);
  static RegionInfo stat(std::string_view name,
                         Backend backend = Backend::Auto);

  // The backend Backend::Auto resolves to for creation.
  static Backend default_backend();

  Region() noexcept;
  Region(Region&& other) noexcept;
  Region& operator=(Region&& other) noexcept;
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  // Detaches; unlinks only temporary regions (in the creating process).
  ~Region();

  explicit operator bool() const noexcept { return state_ != nullptr; }

  void* data() const noexcept;
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(data());
  }
  std::size_t size() const noexcept;
  std::uintptr_t address() const noexcept;
  const std::string& name() const noexcept;
  Backend backend() const noexcept;
  Access access() const noexcept;
  // True if this handle created the region (useful after open_or_create).
  bool created() const noexcept;
  bool temporary() const noexcept;

  // Grows the region in place to new_size usable bytes (same address).
  // Needs Access::ReadWrite. A smaller size is EINVAL: use shrink().
  void grow(std::size_t new_size);

  // Shrinks the region in place to new_size usable bytes (0 < new_size <=
  // size()) and gives the memory past them back to the system. Needs
  // Access::ReadWrite. Pointers past the new end become invalid in every
  // process: touching that part raises SIGBUS until the region grows again
  // (and then reads zeroes).
  void shrink(std::size_t new_size);

  // Picks up growth or shrinking made by another process. Kernel: the
  // memory is already visible and only size() changes; Posix: maps the new
  // part of a grown region. Returns true if size() changed.
  bool refresh();

  void set_mode(mode_t mode);
  void set_owner(uid_t uid, gid_t gid);

  // Unmaps the region now; the handle becomes empty.
  void detach() noexcept;

 private:
  explicit Region(std::unique_ptr<detail::State> state) noexcept;

  std::unique_ptr<detail::State> state_;
};

}  // namespace libmshare

#endif  // MSHARE_REGION_HPP
