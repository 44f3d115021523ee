// SPDX-License-Identifier: LGPL-2.1-or-later
//
// What the example suites share: run an example program (alone, or several
// released at the same instant), capture its output, and a fixture
// parametrised over the two libmshare backends.
#ifndef MSHARE_EXAMPLES_TESTING_HPP
#define MSHARE_EXAMPLES_TESTING_HPP

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "mshare/region.hpp"

namespace libmshare {
// Test names and failure messages show "posix" / "kernel".
inline void PrintTo(Backend backend, std::ostream* out) {
  *out << to_string(backend);
}
}  // namespace libmshare

namespace examples_test {

using namespace std::chrono_literals;

// Path of an example program built beside the running test;
// MSHARE_EXAMPLES_BIN_DIR overrides the directory.
std::string program(std::string_view name);

// A program to run: its arguments, extra environment ("NAME=VALUE", added
// to or replacing ours) and, if set, the uid and gid to run it as.
struct Command {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::optional<uid_t> uid;
};

// How a program ended and what it printed.
struct Result {
  bool exited = false;  // by exit(); else killed by `signal`
  int code = -1;
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;

  bool succeeded() const { return exited && code == 0; }
  // "exited with 1", "killed by Segmentation fault", plus its output: for
  // failure messages.
  std::string describe() const;
};

// A started program. Its output goes to memory files read after it ends.
class Child {
 public:
  // `gate`, if given, is a pipe: the child blocks reading gate[0] until
  // EOF, so closing gate[1] releases every child holding it at once.
  explicit Child(const Command& command, const int* gate = nullptr);
  Child(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child& operator=(Child&&) = delete;
  ~Child();  // kills it if still running

  pid_t pid() const { return pid_; }
  // Waits at most `timeout`, then kills it (timed_out is set).
  Result wait(std::chrono::milliseconds timeout = 60s);

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
};

Result run(const Command& command, std::chrono::milliseconds timeout = 60s);

// Starts every command, releases them at the same instant, waits for all.
std::vector<Result> run_together(const std::vector<Command>& commands,
                                 std::chrono::milliseconds timeout = 120s);

// A region name no other test or concurrent test process uses.
std::string unique_name(std::string_view tag);

// Lines of `text` starting with `prefix`.
std::vector<std::string> lines_starting(const std::string& text,
                                        std::string_view prefix);

// The value after "key=" in `line` (up to the next space), or "".
std::string field(const std::string& line, std::string_view key);

std::string hex(std::uintptr_t value);
bool kernel_supported();
std::size_t kernel_unit();
bool running_as_root();

// Suites parametrised over both backends; Kernel skips without msharefs.
// Programs started through command() use the fixture's backend.
class BackendTest : public ::testing::TestWithParam<libmshare::Backend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  libmshare::Backend backend() const { return GetParam(); }
  bool kernel() const { return backend() == libmshare::Backend::Kernel; }
  // A fresh region name, unlinked after the test.
  std::string name(std::string_view tag);
  // Also unlink this name after the test.
  void remove_later(const std::string& region_name);
  // `program` with `args`, MSHARE_BACKEND set to this test's backend.
  Command command(std::string_view program_name,
                  std::vector<std::string> args) const;

 private:
  std::vector<std::string> names_;
};

#define EXAMPLES_INSTANTIATE_BACKENDS(suite)                                 \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                                  \
                           ::testing::Values(libmshare::Backend::Posix,      \
                                             libmshare::Backend::Kernel),    \
                           [](const auto& info) {                            \
                             return info.param == libmshare::Backend::Kernel \
                                        ? std::string("Kernel")              \
                                        : std::string("Posix");              \
                           })

// Runs `body` in a forked child (an exception ends it with 100, printed
// on stderr); returns its wait status.
int in_child(const std::function<int()>& body);

}  // namespace examples_test

#endif  // MSHARE_EXAMPLES_TESTING_HPP
