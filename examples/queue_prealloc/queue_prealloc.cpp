// SPDX-License-Identifier: LGPL-2.1-or-later
//
// queue_prealloc: every process of a robot opens the queue memory of every
// channel in the configuration at start, in whatever order they are
// launched, and reports what it committed.
//
//   queue_prealloc app --config=FILE --app=NAME [--namespace=NS]
//                       [--base-address=ADDR]
//   queue_prealloc start --config=FILE [--namespace=NS] [--base-address=ADDR]
//   queue_prealloc remove --config=FILE [--namespace=NS]
//
// `app` is one application. `start` is the launcher (AOS's starterd): it
// allocates every queue itself first, so the memory is counted once and
// up front, then launches one process per application named in the
// configuration, all at once. `remove` unlinks the queues.
#include <getopt.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "queues.hpp"
#include "units.hpp"

namespace {

using queue_prealloc::Channel;
using queue_prealloc::Queue;

constexpr const char* kUsage =
    "usage: queue_prealloc app --config=FILE --app=NAME [--namespace=NS] "
    "[--base-address=ADDR]\n"
    "       queue_prealloc start --config=FILE [--namespace=NS] "
    "[--base-address=ADDR]\n"
    "       queue_prealloc remove --config=FILE [--namespace=NS]\n"
    "\n"
    "The configuration lists one channel per line: CHANNEL SIZE "
    "WRITER[,WRITER...]\n"
    "(SIZE takes K, M, G). Queues are regions named NS.CHANNEL with '/' "
    "read as '.'\n"
    "(NS defaults to \"aos\"), the i-th at ADDR + i * stride (ADDR "
    "defaults to\n"
    "0x80000000000; the stride is 512 GiB on the kernel backend, 1 GiB on "
    "the\n"
    "POSIX fallback). MSHARE_BACKEND=kernel|posix picks the backend.\n";

struct Arguments {
  std::string command;
  std::string config;
  std::string app;
  std::string name_space = "aos";
  std::uintptr_t base_address = queue_prealloc::kDefaultBaseAddress;
};

bool parse(int argc, char** argv, Arguments& args) {
  static const option options[] = {
      {"config", required_argument, nullptr, 'c'},
      {"app", required_argument, nullptr, 'a'},
      {"namespace", required_argument, nullptr, 'n'},
      {"base-address", required_argument, nullptr, 'b'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  int option;
  while ((option = getopt_long(argc, argv, "c:a:n:b:h", options, nullptr)) !=
         -1) {
    switch (option) {
      case 'c':
        args.config = optarg;
        break;
      case 'a':
        args.app = optarg;
        break;
      case 'n':
        args.name_space = optarg;
        break;
      case 'b': {
        auto address = examples::parse_address(optarg);
        if (!address) return false;
        args.base_address = *address;
        break;
      }
      default:
        return false;
    }
  }
  if (optind != argc - 1) return false;
  args.command = argv[optind];
  if (args.config.empty()) return false;
  if (args.command == "app") return !args.app.empty();
  return args.command == "start" || args.command == "remove";
}

// Opens every queue and prints one line per queue, then the totals:
//   queue channel=/robot/imu region=aos.robot.imu address=0x... size=...
//     access=read-only creator=PID created=no
//   committed bytes=N queues=N created-bytes=N created-queues=N
int run_app(const std::vector<Channel>& channels, const Arguments& args) {
  const std::vector<Queue> queues = queue_prealloc::open_queues(
      channels, args.app, args.name_space, args.base_address);
  std::size_t committed = 0;
  std::size_t created = 0;
  int created_queues = 0;
  std::printf("app name=%s pid=%d backend=%s\n", args.app.c_str(),
              static_cast<int>(getpid()),
              libmshare::to_string(queues.front().region.backend()));
  for (const Queue& queue : queues) {
    std::printf(
        "queue channel=%s region=%s address=%s size=%zu access=%s "
        "creator=%d created=%s\n",
        queue.channel.name.c_str(), queue.region.name().c_str(),
        examples::hex(reinterpret_cast<std::uintptr_t>(queue.region.data()))
            .c_str(),
        queue.region.size(), libmshare::to_string(queue.region.access()),
        static_cast<int>(queue.creator), queue.created ? "yes" : "no");
    committed += queue.region.size();
    if (queue.created) {
      created += queue.region.size();
      ++created_queues;
    }
  }
  std::printf(
      "committed bytes=%zu queues=%zu created-bytes=%zu created-queues=%d "
      "(%.1f MiB mapped and prefaulted before running)\n",
      committed, queues.size(), created, created_queues,
      static_cast<double>(committed) / (1 << 20));
  return 0;
}

std::string self_path() {
  char path[4096];
  ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (length <= 0)
    throw std::system_error(errno, std::generic_category(),
                            "readlink(/proc/self/exe)");
  path[length] = '\0';
  return path;
}

// The launcher: allocate every queue, then start every application at once.
// It writes to no channel, so it keeps every queue read-only once created.
int run_start(const std::vector<Channel>& channels, const Arguments& args) {
  Arguments own = args;
  own.app = "starterd";
  if (run_app(channels, own) != 0) return 1;
  std::fflush(stdout);

  std::set<std::string> apps;
  for (const Channel& channel : channels)
    apps.insert(channel.writers.begin(), channel.writers.end());
  const std::string self = self_path();
  std::vector<pid_t> children;
  for (const std::string& app : apps) {
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("queue_prealloc: fork");
      break;
    }
    if (pid == 0) {
      const std::string config = "--config=" + args.config;
      const std::string app_option = "--app=" + app;
      const std::string name_space = "--namespace=" + args.name_space;
      const std::string base =
          "--base-address=" + examples::hex(args.base_address);
      execl(self.c_str(), self.c_str(), "app", config.c_str(),
            app_option.c_str(), name_space.c_str(), base.c_str(), nullptr);
      std::perror("queue_prealloc: exec");
      _exit(127);
    }
    children.push_back(pid);
  }
  int failed = static_cast<int>(apps.size() - children.size());
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  std::printf("start applications=%zu failed=%d\n", apps.size(), failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  if (!parse(argc, argv, args)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  try {
    const std::vector<Channel> channels =
        queue_prealloc::read_config(args.config);
    if (args.command == "app") return run_app(channels, args);
    if (args.command == "start") return run_start(channels, args);
    int removed = queue_prealloc::remove_queues(channels, args.name_space);
    std::printf("removed queues=%d\n", removed);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "queue_prealloc: %s\n", error.what());
    return 1;
  }
}
