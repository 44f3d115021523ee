// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Region: argument checks, backend choice and dispatch to the backends.
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <linux/mshare.h>

#include "internal.hpp"

namespace libmshare {
namespace {

using detail::Clock;
using detail::State;
using detail::throw_error;

constexpr const char* kBackendVariable = "MSHARE_BACKEND";

// The backend named by MSHARE_BACKEND, or Auto if it is unset or empty.
Backend backend_from_environment() {
  const char* value = std::getenv(kBackendVariable);
  if (value == nullptr || *value == '\0') return Backend::Auto;
  std::string_view text = value;
  if (text == "kernel") return Backend::Kernel;
  if (text == "posix") return Backend::Posix;
  if (text == "auto") return Backend::Auto;
  throw_error(EINVAL, std::string(kBackendVariable) + "=\"" + value +
                          "\": expected kernel, posix or auto");
}

void require_kernel_support() {
  if (!detail::kernel::supported())
    throw_error(EOPNOTSUPP,
                "the kernel backend needs msharefs at " MSHARE_MOUNT_POINT
                " (not mounted or not an mshare kernel)");
}

// Resolves Auto for creating: MSHARE_BACKEND, then kernel support.
Backend resolve(Backend requested) {
  if (requested == Backend::Auto) requested = backend_from_environment();
  if (requested == Backend::Auto)
    return detail::kernel::supported() ? Backend::Kernel : Backend::Posix;
  if (requested == Backend::Kernel) require_kernel_support();
  return requested;
}

// The backends to look in, in order, for a name that already exists.
std::vector<Backend> lookup_order(Backend requested) {
  if (requested == Backend::Auto) requested = backend_from_environment();
  if (requested == Backend::Auto) {
    if (detail::kernel::supported()) return {Backend::Kernel, Backend::Posix};
    return {Backend::Posix};
  }
  if (requested == Backend::Kernel) require_kernel_support();
  return {requested};
}

std::unique_ptr<State> try_create(Backend backend, std::string_view name,
                                  const Options& options) {
  if (backend == Backend::Kernel)
    return detail::kernel::try_create(name, options);
  return detail::posix::try_create(name, options);
}

std::unique_ptr<State> try_open(Backend backend, std::string_view name,
                                Access access, Clock::time_point deadline,
                                std::chrono::milliseconds timeout) {
  if (backend == Backend::Kernel) return detail::kernel::try_open(name, access);
  return detail::posix::try_open(name, access, deadline, timeout);
}

[[noreturn]] void throw_missing(std::string_view name, Backend backend) {
  throw_error(ENOENT, "no " + detail::describe(name, backend));
}

std::string temp_name() {
  static std::atomic<unsigned> counter{0};
  std::uint32_t random = 0;
  if (getrandom(&random, sizeof(random), 0) != sizeof(random))
    random =
        static_cast<std::uint32_t>(Clock::now().time_since_epoch().count());
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "tmp.%d.%u.%08x",
                static_cast<int>(getpid()), counter.fetch_add(1), random);
  return buffer;
}

}  // namespace

Region::Region() noexcept = default;
Region::Region(std::unique_ptr<detail::State> state) noexcept
    : state_(std::move(state)) {}
Region::Region(Region&& other) noexcept = default;

Region& Region::operator=(Region&& other) noexcept {
  if (this != &other) {
    detach();
    state_ = std::move(other.state_);
  }
  return *this;
}

Region::~Region() { detach(); }

Backend Region::default_backend() { return resolve(Backend::Auto); }

Region Region::create(std::string_view name, const Options& options) {
  detail::validate_options(name, options);
  const Backend backend = resolve(options.backend);
  auto state = try_create(backend, name, options);
  if (!state)
    throw_error(EEXIST, detail::describe(name, backend) + " already exists");
  return Region(std::move(state));
}

Region Region::open(std::string_view name, Access access, Backend backend,
                    std::chrono::milliseconds wait_timeout) {
  detail::validate_name(name);
  const auto deadline = Clock::now() + wait_timeout;
  const std::vector<Backend> backends = lookup_order(backend);
  for (Backend candidate : backends) {
    if (auto state = try_open(candidate, name, access, deadline, wait_timeout))
      return Region(std::move(state));
  }
  throw_missing(name, backends.size() == 1 ? backends.front() : Backend::Auto);
}

Region Region::open_or_create(std::string_view name, const Options& options) {
  detail::validate_options(name, options);
  const Backend backend = resolve(options.backend);
  const auto deadline = Clock::now() + options.wait_timeout;
  for (;;) {
    if (auto state = try_create(backend, name, options))
      return Region(std::move(state));
    auto state = try_open(backend, name, Access::ReadWrite, deadline,
                          options.wait_timeout);
    if (state) {
      if (state->size != options.size) {
        const std::size_t existing = state->size;
        Region discard(std::move(state));
        throw_error(EINVAL,
                    detail::describe(name, backend) + " exists with size " +
                        std::to_string(existing) + " bytes, not the " +
                        std::to_string(options.size) + " bytes requested");
      }
      return Region(std::move(state));
    }
    // Removed between our create and open attempts: try again.
    if (Clock::now() >= deadline)
      throw_error(ETIMEDOUT, detail::describe(name, backend) +
                                 " kept disappearing while being opened");
  }
}

Region Region::create_temp(const Options& options) {
  for (int attempt = 0;; ++attempt) {
    const std::string name = temp_name();
    detail::validate_options(name, options);
    const Backend backend = resolve(options.backend);
    if (auto state = try_create(backend, name, options)) {
      state->temporary = true;
      state->creator_pid = getpid();
      return Region(std::move(state));
    }
    if (attempt == 16)
      throw_error(EEXIST, "no unused temporary region name (last tried " +
                              detail::describe(name, backend) + ")");
  }
}

void Region::unlink(std::string_view name, Backend backend) {
  detail::validate_name(name);
  const std::vector<Backend> backends = lookup_order(backend);
  for (Backend candidate : backends) {
    try {
      if (candidate == Backend::Kernel)
        detail::kernel::unlink(name);
      else
        detail::posix::unlink(name);
      return;
    } catch (const std::system_error& error) {
      if (error.code().value() != ENOENT || candidate == backends.back()) throw;
    }
  }
}

std::vector<RegionInfo> Region::list(Backend backend) {
  std::vector<RegionInfo> regions;
  for (Backend candidate : lookup_order(backend)) {
    auto found = candidate == Backend::Kernel ? detail::kernel::list()
                                              : detail::posix::list();
    for (auto& info : found) regions.push_back(std::move(info));
  }
  return regions;
}

RegionInfo Region::stat(std::string_view name, Backend backend) {
  detail::validate_name(name);
  const std::vector<Backend> backends = lookup_order(backend);
  RegionInfo info;
  for (Backend candidate : backends) {
    bool found = candidate == Backend::Kernel ? detail::kernel::stat(name, info)
                                              : detail::posix::stat(name, info);
    if (found) return info;
  }
  throw_missing(name, backends.size() == 1 ? backends.front() : Backend::Auto);
}

void* Region::data() const noexcept {
  return state_ ? state_->data() : nullptr;
}

std::size_t Region::size() const noexcept { return state_ ? state_->size : 0; }

std::uintptr_t Region::address() const noexcept {
  return state_ ? state_->base : 0;
}

const std::string& Region::name() const noexcept {
  static const std::string empty;
  return state_ ? state_->name : empty;
}

Backend Region::backend() const noexcept {
  return state_ ? state_->backend : Backend::Auto;
}

Access Region::access() const noexcept {
  return state_ ? state_->access : Access::ReadOnly;
}

bool Region::created() const noexcept { return state_ && state_->created; }

bool Region::temporary() const noexcept { return state_ && state_->temporary; }

void Region::grow(std::size_t new_size) {
  if (!state_) throw_error(EBADF, "grow() on an empty Region");
  const std::string where = detail::describe(state_->name, state_->backend);
  if (state_->access != Access::ReadWrite)
    throw_error(EPERM, "grow() of " + where + " opened read-only");
  if (new_size < state_->size)
    throw_error(EINVAL, "grow() of " + where + " from " +
                            std::to_string(state_->size) + " to " +
                            std::to_string(new_size) +
                            " bytes: use shrink() to make a region smaller");
  if (state_->backend == Backend::Kernel)
    detail::kernel::grow(*state_, new_size);
  else
    detail::posix::grow(*state_, new_size);
}

void Region::shrink(std::size_t new_size) {
  if (!state_) throw_error(EBADF, "shrink() on an empty Region");
  const std::string where = detail::describe(state_->name, state_->backend);
  if (state_->access != Access::ReadWrite)
    throw_error(EPERM, "shrink() of " + where + " opened read-only");
  if (new_size == 0)
    throw_error(EINVAL, "shrink() of " + where + " to 0 bytes");
  if (state_->backend == Backend::Kernel)
    detail::kernel::shrink(*state_, new_size);
  else
    detail::posix::shrink(*state_, new_size);
}

bool Region::refresh() {
  if (!state_) throw_error(EBADF, "refresh() on an empty Region");
  if (state_->backend == Backend::Kernel)
    return detail::kernel::refresh(*state_);
  return detail::posix::refresh(*state_);
}

void Region::set_mode(mode_t mode) {
  if (!state_) throw_error(EBADF, "set_mode() on an empty Region");
  if ((mode & ~static_cast<mode_t>(0777)) != 0)
    throw_error(EINVAL, "mode " + detail::octal(mode) + " for " +
                            detail::describe(state_->name, state_->backend) +
                            " has bits outside 0777");
  if (state_->backend == Backend::Kernel)
    detail::kernel::set_mode(*state_, mode);
  else
    detail::posix::set_mode(*state_, mode);
}

void Region::set_owner(uid_t uid, gid_t gid) {
  if (!state_) throw_error(EBADF, "set_owner() on an empty Region");
  if (state_->backend == Backend::Kernel)
    detail::kernel::set_owner(*state_, uid, gid);
  else
    detail::posix::set_owner(*state_, uid, gid);
}

void Region::detach() noexcept {
  if (!state_) return;
  std::unique_ptr<State> state = std::move(state_);
  if (state->backend == Backend::Kernel)
    detail::kernel::detach(*state);
  else
    detail::posix::detach(*state);
  // A forked child holds a copy of a temporary Region: only the creating
  // process removes the name.
  if (state->temporary && state->creator_pid == getpid()) {
    try {
      if (state->backend == Backend::Kernel)
        detail::kernel::unlink(state->name);
      else
        detail::posix::unlink(state->name);
    } catch (const std::system_error&) {
      // Already removed by someone else.
    }
  }
}

}  // namespace libmshare
