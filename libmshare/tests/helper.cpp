// SPDX-License-Identifier: LGPL-2.1-or-later
//
// mshare_test_helper: the "other process" in multi-process tests. Each
// command opens or creates a region as a separate program would and reports
// through its exit status and stdout.
//
//   open-or-create NAME BACKEND SIZE START_FD
//   open-or-create-report NAME BACKEND SIZE START_FD WAIT_MS INIT_MS
//   follow-list NAME BACKEND
//   watch-growth NAME BACKEND NEW_SIZE
//   peek-after-grow NAME BACKEND
//   write-read-only NAME BACKEND
//   open-as UID NAME BACKEND ro|rw
//   create NAME BACKEND SIZE BYTE
//   create-and-hang NAME BACKEND SIZE
//   exec-as UID PROGRAM [ARGS...]
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <system_error>
#include <thread>

#include "mshare/region.hpp"
#include "shared_layout.hpp"

namespace {

using libmshare::Access;
using libmshare::Backend;
using libmshare::Region;
using namespace std::chrono_literals;

Backend parse_backend(const std::string& text) {
  if (text == "kernel") return Backend::Kernel;
  if (text == "posix") return Backend::Posix;
  return Backend::Auto;
}

void say(const std::string& line) {
  std::cout << line << std::endl;  // flushes: the test reads it at once
}

std::string hex(std::uintptr_t value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "0x%lx",
                static_cast<unsigned long>(value));
  return buffer;
}

int open_or_create(const std::string& name, Backend backend, std::size_t size,
                   int start_fd) {
  // Block until the test releases every racer at once.
  char byte;
  while (read(start_fd, &byte, 1) < 0 && errno == EINTR) {
  }
  libmshare::Options options;
  options.size = size;
  options.backend = backend;
  Region region = Region::open_or_create(name, options);
  auto* layout = region.as<mshare_test::RaceLayout>();
  layout->attached.fetch_add(1);
  say(std::string(region.created() ? "created " : "opened ") +
      hex(region.address()));
  return 0;
}

// Like open-or-create, but the creator spends INIT_MS initialising (so that
// the test can kill it before it publishes) and every outcome is a line:
// "created ADDR", "opened ADDR" or "error ERRNO MESSAGE".
int open_or_create_report(const std::string& name, Backend backend,
                          std::size_t size, int start_fd,
                          std::chrono::milliseconds wait,
                          std::chrono::milliseconds init) {
  char byte;
  while (read(start_fd, &byte, 1) < 0 && errno == EINTR) {
  }
  libmshare::Options options;
  options.size = size;
  options.backend = backend;
  options.wait_timeout = wait;
  options.initialize = [init](void*, std::size_t) {
    std::this_thread::sleep_for(init);
  };
  try {
    Region region = Region::open_or_create(name, options);
    region.as<mshare_test::RaceLayout>()->attached.fetch_add(1);
    say(std::string(region.created() ? "created " : "opened ") +
        hex(region.address()));
  } catch (const std::system_error& error) {
    say("error " + std::to_string(error.code().value()) + " " + error.what());
  }
  return 0;
}

// Walks the list the test built with raw pointers and acknowledges.
int follow_list(const std::string& name, Backend backend) {
  Region region = Region::open(name, Access::ReadWrite, backend);
  auto* layout = region.as<mshare_test::ListLayout>();
  std::uint64_t sum = 0;
  std::uint64_t count = 0;
  for (const mshare_test::ListNode* node = layout->head; node != nullptr;
       node = node->next) {
    if (node->value != count) {
      std::fprintf(stderr, "node %lu holds %lu\n",
                   static_cast<unsigned long>(count),
                   static_cast<unsigned long>(node->value));
      return 1;
    }
    sum += node->value;
    ++count;
  }
  layout->seen_sum = sum;
  layout->seen_count = count;
  say("followed " + std::to_string(count));
  return 0;
}

int watch_growth(const std::string& name, Backend backend,
                 std::size_t new_size) {
  Region region = Region::open(name, Access::ReadOnly, backend);
  say("opened " + std::to_string(region.size()));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (region.size() < new_size) {
    if (std::chrono::steady_clock::now() > deadline) return 3;
    std::this_thread::sleep_for(1ms);
    region.refresh();
  }
  // The creator writes the marker after publishing the size: poll for it.
  const auto* bytes = static_cast<const volatile unsigned char*>(region.data());
  while (bytes[new_size - 1] != mshare_test::kGrowthMarker) {
    if (std::chrono::steady_clock::now() > deadline) return 4;
    std::this_thread::sleep_for(1ms);
  }
  say("grown " + std::to_string(region.size()));
  return 0;
}

// Kernel backend: memory the creator maps later is visible without any
// call; only the size in the header tells how far.
int peek_after_grow(const std::string& name, Backend backend) {
  Region region = Region::open(name, Access::ReadOnly, backend);
  const std::size_t old_size = region.size();
  say("opened " + std::to_string(old_size));
  std::string line;
  if (!std::getline(std::cin, line)) return 5;
  const auto* bytes = static_cast<const unsigned char*>(region.data());
  // No refresh(): read past the size this handle knows.
  const std::size_t new_size = std::stoul(line);
  if (bytes[new_size - 1] != mshare_test::kGrowthMarker) return 4;
  say("peeked");
  return 0;
}

int write_read_only(const std::string& name, Backend backend) {
  Region region = Region::open(name, Access::ReadOnly, backend);
  signal(SIGSEGV, SIG_DFL);  // sanitizers install their own handler
  say("writing");
  *static_cast<volatile char*>(region.data()) = 1;
  return 0;  // the test fails if this process survives the write
}

int open_as(uid_t uid, const std::string& name, Backend backend,
            const std::string& mode) {
  if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) {
    std::perror("setresuid");
    return 99;
  }
  try {
    Region region = Region::open(
        name, mode == "ro" ? Access::ReadOnly : Access::ReadWrite, backend);
    say("opened");
    return 0;
  } catch (const std::system_error& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return error.code().value();
  }
}

// Runs PROGRAM as another user, e.g. the CLI as uid 65534.
int exec_as(uid_t uid, char** argv) {
  if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) {
    std::perror("setresuid");
    return 99;
  }
  execv(argv[0], argv);
  std::perror("execv");
  return 127;
}

int create(const std::string& name, Backend backend, std::size_t size,
           int byte) {
  libmshare::Options options;
  options.size = size;
  options.backend = backend;
  Region region = Region::create(name, options);
  std::memset(region.data(), byte, region.size());
  say("created " + hex(region.address()));
  return 0;  // detaches; the name stays
}

// Dies (killed by the test) inside the creator's initialisation, before the
// region is published.
int create_and_hang(const std::string& name, Backend backend,
                    std::size_t size) {
  libmshare::Options options;
  options.size = size;
  options.backend = backend;
  options.initialize = [](void*, std::size_t) {
    say("initialising");
    for (;;) pause();
  };
  Region region = Region::create(name, options);
  return 6;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  auto arg = [&](int index) -> std::string {
    if (index >= argc) {
      std::fprintf(stderr, "%s: missing argument %d\n", command.c_str(), index);
      std::exit(98);
    }
    return argv[index];
  };
  try {
    if (command == "open-or-create")
      return open_or_create(arg(2), parse_backend(arg(3)), std::stoul(arg(4)),
                            std::stoi(arg(5)));
    if (command == "open-or-create-report")
      return open_or_create_report(
          arg(2), parse_backend(arg(3)), std::stoul(arg(4)), std::stoi(arg(5)),
          std::chrono::milliseconds(std::stoul(arg(6))),
          std::chrono::milliseconds(std::stoul(arg(7))));
    if (command == "follow-list")
      return follow_list(arg(2), parse_backend(arg(3)));
    if (command == "watch-growth")
      return watch_growth(arg(2), parse_backend(arg(3)), std::stoul(arg(4)));
    if (command == "peek-after-grow")
      return peek_after_grow(arg(2), parse_backend(arg(3)));
    if (command == "write-read-only")
      return write_read_only(arg(2), parse_backend(arg(3)));
    if (command == "open-as")
      return open_as(static_cast<uid_t>(std::stoul(arg(2))), arg(3),
                     parse_backend(arg(4)), arg(5));
    if (command == "create")
      return create(arg(2), parse_backend(arg(3)), std::stoul(arg(4)),
                    std::stoi(arg(5)));
    if (command == "exec-as") {
      arg(3);  // PROGRAM is required
      return exec_as(static_cast<uid_t>(std::stoul(arg(2))), argv + 3);
    }
    if (command == "create-and-hang")
      return create_and_hang(arg(2), parse_backend(arg(3)), std::stoul(arg(4)));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", command.c_str(), error.what());
    return 1;
  }
  std::fprintf(stderr, "unknown command '%s'\n", command.c_str());
  return 97;
}
