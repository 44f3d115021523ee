// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Helpers shared by the test suites: unique names, child processes and the
// per-backend fixture.
#ifndef LIBMSHARE_TESTS_SUPPORT_HPP
#define LIBMSHARE_TESTS_SUPPORT_HPP

#include <sys/types.h>

#include <chrono>
#include <functional>
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

namespace mshare_test {

using namespace std::chrono_literals;

// A region name no other test (or concurrent test process) uses.
std::string unique_name(std::string_view tag);

// Path of a program built next to the running test (the helper, the CLI).
// MSHARE_TEST_BIN_DIR overrides the directory.
std::string program_path(std::string_view program);

bool kernel_supported();
const char* backend_argument(libmshare::Backend backend);

// How a child process ended.
struct Exit {
  bool exited = false;  // by exit(); else by a signal (or still running)
  int code = -1;        // exit status
  int signal = 0;       // terminating signal
  std::string describe() const;
};

// Forks; the child runs `body` and exits with its return value (100 if it
// throws). The parent waits at most `timeout`, then kills the child.
Exit run_in_child(const std::function<int()>& body,
                  std::chrono::milliseconds timeout = 10000ms);

// A forked and exec'd program with pipes on its stdin and stdout.
class Process {
 public:
  // `pass_fd`, if >= 0, stays open across exec at the same number.
  Process(const std::vector<std::string>& argv, int pass_fd = -1);
  Process(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process& operator=(Process&&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }
  void write_line(const std::string& line);
  // One line without its newline; empty on EOF or timeout.
  std::string read_line(std::chrono::milliseconds timeout = 10000ms);
  // Everything until EOF (or timeout).
  std::string read_all(std::chrono::milliseconds timeout = 10000ms);
  Exit wait(std::chrono::milliseconds timeout = 20000ms);
  void kill(int signal);

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buffer_;
};

// Runs a program to completion; returns its exit and its stdout.
Exit run_program(const std::vector<std::string>& argv, std::string* output,
                 std::chrono::milliseconds timeout = 20000ms);

// Suites parametrised over both backends; Kernel skips without msharefs.
class BackendTest : public ::testing::TestWithParam<libmshare::Backend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  libmshare::Backend backend() const { return GetParam(); }
  // A fresh name, unlinked after the test.
  std::string name(std::string_view tag = "r");
  libmshare::Options options(std::size_t size) const;

 private:
  std::vector<std::string> names_;
};

std::string backend_test_name(
    const ::testing::TestParamInfo<libmshare::Backend>& info);

#define MSHARE_INSTANTIATE_BACKENDS(suite)                                \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                               \
                           ::testing::Values(libmshare::Backend::Posix,   \
                                             libmshare::Backend::Kernel), \
                           ::mshare_test::backend_test_name)

// Expects `statement` to throw std::system_error with `errno_value`; returns
// its message for further checks.
#define EXPECT_SYSTEM_ERROR(statement, errno_value, message_out)        \
  do {                                                                  \
    try {                                                               \
      statement;                                                        \
      ADD_FAILURE() << #statement " did not throw";                     \
    } catch (const std::system_error& error_) {                         \
      EXPECT_EQ(error_.code().value(), (errno_value)) << error_.what(); \
      message_out = error_.what();                                      \
    }                                                                   \
  } while (0)

}  // namespace mshare_test

#endif  // LIBMSHARE_TESTS_SUPPORT_HPP
