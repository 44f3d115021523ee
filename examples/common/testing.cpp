// SPDX-License-Identifier: LGPL-2.1-or-later
#include "testing.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>

#include "mshare/syscall.h"

extern char** environ;

namespace examples_test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const char* call) {
  throw std::system_error(errno, std::generic_category(), call);
}

std::string read_file(int fd) {
  std::string text;
  char chunk[4096];
  for (off_t offset = 0;;) {
    ssize_t got = pread(fd, chunk, sizeof(chunk), offset);
    if (got <= 0) break;
    text.append(chunk, static_cast<std::size_t>(got));
    offset += got;
  }
  return text;
}

// Our environment with `extra` ("NAME=VALUE") added or replacing entries.
std::vector<std::string> environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text = *entry;
    std::string_view key = text.substr(0, text.find('='));
    bool replaced = false;
    for (const std::string& add : extra)
      replaced |= std::string_view(add).substr(0, add.find('=')) == key;
    if (!replaced) env.emplace_back(text);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> result;
  for (std::string& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

}  // namespace

std::string program(std::string_view name) {
  std::string directory;
  if (const char* override_dir = std::getenv("MSHARE_EXAMPLES_BIN_DIR")) {
    directory = override_dir;
  } else {
    char self[4096];
    ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (length <= 0) fail("readlink(/proc/self/exe)");
    self[length] = '\0';
    directory = self;
    directory.erase(directory.rfind('/'));
  }
  return directory + "/" + std::string(name);
}

std::string Result::describe() const {
  std::string text;
  if (timed_out)
    text = "timed out";
  else if (exited)
    text = "exited with " + std::to_string(code);
  else
    text = std::string("killed by ") + strsignal(signal);
  return text + "\n--- stdout\n" + out + "--- stderr\n" + err;
}

Child::Child(const Command& command, const int* gate) {
  out_ = memfd_create("stdout", MFD_CLOEXEC);
  err_ = memfd_create("stderr", MFD_CLOEXEC);
  if (out_ < 0 || err_ < 0) fail("memfd_create");
  // Children of the program share these files: appending keeps their
  // writes from overwriting each other (a memfd has no atomic position).
  if (fcntl(out_, F_SETFL, O_APPEND) != 0 ||
      fcntl(err_, F_SETFL, O_APPEND) != 0)
    fail("fcntl(O_APPEND)");
  std::vector<std::string> argv = command.argv;
  std::vector<std::string> env = environment(command.env);
  std::vector<char*> argv_pointers = pointers(argv);
  std::vector<char*> env_pointers = pointers(env);

  std::fflush(nullptr);
  pid_ = fork();
  if (pid_ < 0) fail("fork");
  if (pid_ != 0) return;

  // The child: only async-signal-safe calls from here on.
  if (gate != nullptr) {
    close(gate[1]);
    char byte;
    ssize_t got;
    do {
      got = read(gate[0], &byte, 1);
    } while (got < 0 && errno == EINTR);
  }
  dup2(out_, STDOUT_FILENO);
  dup2(err_, STDERR_FILENO);
  if (command.uid) {
    const uid_t id = *command.uid;
    if (setgroups(0, nullptr) != 0 || setresgid(id, id, id) != 0 ||
        setresuid(id, id, id) != 0) {
      static const char message[] = "cannot switch user\n";
      (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
      _exit(126);
    }
  }
  execve(argv_pointers[0], argv_pointers.data(), env_pointers.data());
  static const char message[] = "exec failed\n";
  (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
  _exit(127);
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      out_(std::exchange(other.out_, -1)),
      err_(std::exchange(other.err_, -1)) {}

Child::~Child() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_ >= 0) close(out_);
  if (err_ >= 0) close(err_);
}

Result Child::wait(std::chrono::milliseconds timeout) {
  Result result;
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (done < 0 && errno != EINTR) fail("waitpid");
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  pid_ = -1;
  if (WIFEXITED(status)) {
    result.exited = true;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  result.out = read_file(out_);
  result.err = read_file(err_);
  return result;
}

Result run(const Command& command, std::chrono::milliseconds timeout) {
  return Child(command).wait(timeout);
}

std::vector<Result> run_together(const std::vector<Command>& commands,
                                 std::chrono::milliseconds timeout) {
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) != 0) fail("pipe2");
  std::vector<Child> children;
  try {
    for (const Command& command : commands)
      children.emplace_back(command, gate);
  } catch (...) {
    close(gate[0]);
    close(gate[1]);
    throw;
  }
  close(gate[0]);
  close(gate[1]);  // every child sees EOF now
  std::vector<Result> results;
  const auto deadline = Clock::now() + timeout;
  for (Child& child : children) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    results.push_back(child.wait(std::max(left, 1ms)));
  }
  return results;
}

std::string unique_name(std::string_view tag) {
  static std::atomic<unsigned> counter{0};
  return "ex." + std::string(tag) + "." + std::to_string(getpid()) + "." +
         std::to_string(counter.fetch_add(1));
}

std::vector<std::string> lines_starting(const std::string& text,
                                        std::string_view prefix) {
  std::vector<std::string> lines;
  std::istringstream input(text);
  std::string line;
  while (std::getline(input, line))
    if (line.compare(0, prefix.size(), prefix) == 0) lines.push_back(line);
  return lines;
}

std::string field(const std::string& line, std::string_view key) {
  const std::string needle = " " + std::string(key) + "=";
  std::size_t at = (" " + line).find(needle);
  if (at == std::string::npos) return {};
  std::size_t start = at + needle.size() - 1;
  return line.substr(start, line.find(' ', start) - start);
}

std::string hex(std::uintptr_t value) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%llx",
                static_cast<unsigned long long>(value));
  return text;
}

bool kernel_supported() { return mshare_supported() != 0; }

std::size_t kernel_unit() { return mshare_unit(); }

bool running_as_root() { return geteuid() == 0; }

void BackendTest::SetUp() {
  if (kernel() && !kernel_supported())
    GTEST_SKIP() << "msharefs is not mounted at " MSHARE_MOUNT_POINT;
}

void BackendTest::TearDown() {
  for (const std::string& region : names_) {
    try {
      libmshare::Region::unlink(region, backend());
    } catch (const std::system_error&) {
      // Already removed by the test.
    }
  }
}

std::string BackendTest::name(std::string_view tag) {
  names_.push_back(unique_name(tag));
  return names_.back();
}

void BackendTest::remove_later(const std::string& region_name) {
  names_.push_back(region_name);
}

Command BackendTest::command(std::string_view program_name,
                             std::vector<std::string> args) const {
  Command result;
  result.argv.push_back(program(program_name));
  for (std::string& arg : args) result.argv.push_back(std::move(arg));
  result.env.push_back(std::string("MSHARE_BACKEND=") +
                       libmshare::to_string(backend()));
  return result;
}

int in_child(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int code = 100;
    try {
      code = body();
    } catch (const std::exception& error) {
      std::fprintf(stderr, "child: %s\n", error.what());
    }
    std::fflush(nullptr);
    _exit(code);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  return status;
}

}  // namespace examples_test
