// SPDX-License-Identifier: LGPL-2.1-or-later
#include "support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <thread>

#include "mshare/syscall.h"

namespace mshare_test {
namespace {

using Clock = std::chrono::steady_clock;

Exit wait_pid(pid_t pid, std::chrono::milliseconds timeout) {
  Exit result;
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return result;
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.signal = SIGKILL;
      result.code = -2;  // timed out
      return result;
    }
    std::this_thread::sleep_for(2ms);
  }
  if (WIFEXITED(status)) {
    result.exited = true;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace

std::string unique_name(std::string_view tag) {
  static std::atomic<unsigned> counter{0};
  return "t." + std::to_string(getpid()) + "." + std::string(tag) + "." +
         std::to_string(counter.fetch_add(1));
}

std::string program_path(std::string_view program) {
  std::string directory;
  if (const char* override_dir = std::getenv("MSHARE_TEST_BIN_DIR")) {
    directory = override_dir;
  } else {
    char self[4096];
    ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (length > 0) {
      self[length] = '\0';
      directory = self;
      directory.erase(directory.rfind('/'));
    } else {
      directory = ".";
    }
  }
  return directory + "/" + std::string(program);
}

bool kernel_supported() { return mshare_supported() != 0; }

const char* backend_argument(libmshare::Backend backend) {
  return libmshare::to_string(backend);
}

std::string Exit::describe() const {
  if (exited) return "exited with " + std::to_string(code);
  if (code == -2) return "timed out";
  if (signal != 0) return std::string("killed by ") + strsignal(signal);
  return "unknown";
}

Exit run_in_child(const std::function<int()>& body,
                  std::chrono::milliseconds timeout) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
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
  return wait_pid(pid, timeout);
}

Process::Process(const std::vector<std::string>& argv, int pass_fd) {
  int in[2];
  int out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::fflush(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid_ == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    if (pass_fd >= 0) fcntl(pass_fd, F_SETFD, 0);
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  stdin_ = in[1];
  stdout_ = out[0];
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      stdin_(std::exchange(other.stdin_, -1)),
      stdout_(std::exchange(other.stdout_, -1)),
      buffer_(std::move(other.buffer_)) {}

Process::~Process() {
  if (stdin_ >= 0) close(stdin_);
  if (stdout_ >= 0) close(stdout_);
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Process::write_line(const std::string& line) {
  std::string text = line + "\n";
  if (write(stdin_, text.data(), text.size()) !=
      static_cast<ssize_t>(text.size()))
    throw std::system_error(errno, std::generic_category(), "write to child");
}

std::string Process::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    if (left.count() <= 0) return {};
    pollfd entry{stdout_, POLLIN, 0};
    int ready = poll(&entry, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return {};
    char chunk[512];
    ssize_t got = read(stdout_, chunk, sizeof(chunk));
    if (got <= 0) return {};
    buffer_.append(chunk, static_cast<std::size_t>(got));
  }
}

std::string Process::read_all(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd entry{stdout_, POLLIN, 0};
    int ready = poll(&entry, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char chunk[512];
    ssize_t got = read(stdout_, chunk, sizeof(chunk));
    if (got <= 0) break;
    buffer_.append(chunk, static_cast<std::size_t>(got));
  }
  return std::exchange(buffer_, {});
}

Exit Process::wait(std::chrono::milliseconds timeout) {
  Exit result = wait_pid(pid_, timeout);
  pid_ = -1;
  return result;
}

void Process::kill(int signal) { ::kill(pid_, signal); }

Exit run_program(const std::vector<std::string>& argv, std::string* output,
                 std::chrono::milliseconds timeout) {
  Process process(argv);
  std::string text = process.read_all(timeout);
  if (output != nullptr) *output = text;
  return process.wait(timeout);
}

void BackendTest::SetUp() {
  if (backend() == libmshare::Backend::Kernel && !kernel_supported())
    GTEST_SKIP() << "msharefs is not mounted at " MSHARE_MOUNT_POINT;
}

void BackendTest::TearDown() {
  for (const std::string& region : names_) {
    try {
      libmshare::Region::unlink(region, backend());
    } catch (const std::system_error&) {
    }
  }
}

std::string BackendTest::name(std::string_view tag) {
  names_.push_back(unique_name(tag));
  return names_.back();
}

libmshare::Options BackendTest::options(std::size_t size) const {
  libmshare::Options result;
  result.size = size;
  result.backend = backend();
  return result;
}

std::string backend_test_name(
    const ::testing::TestParamInfo<libmshare::Backend>& info) {
  return info.param == libmshare::Backend::Kernel ? "Kernel" : "Posix";
}

}  // namespace mshare_test
