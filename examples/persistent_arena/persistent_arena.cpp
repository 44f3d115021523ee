// SPDX-License-Identifier: LGPL-2.1-or-later
//
// persistent_arena: a shared arena at a fixed address whose contents
// outlive the processes that use it (the tmc_shmem API, on libmshare).
//
//   persistent_arena build NAME [--nodes=N] [--address=ADDR] [--mode=MODE]
//   persistent_arena walk NAME
//   persistent_arena grow NAME --nodes=N      append N nodes in new memory
//   persistent_arena shrink NAME --nodes=N    keep the first N nodes
//   persistent_arena chmod NAME MODE
//   persistent_arena unlink NAME
//   persistent_arena temp [--nodes=N] [--address=ADDR]
//
// `build` creates the arena (0600 unless --mode), links N nodes with
// absolute pointers and exits; `walk` opens it by name, read-only, at the
// address it was built at and follows the pointers. `temp` builds a
// temporary arena, has another process walk it, and removes it on exit.
#include <getopt.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "arena.hpp"
#include "units.hpp"

namespace {

using libmshare::Access;
using libmshare::Region;
using persistent_arena::Error;

constexpr const char* kUsage =
    "usage: persistent_arena build NAME [--nodes=N] [--address=ADDR] "
    "[--mode=MODE]\n"
    "       persistent_arena walk NAME\n"
    "       persistent_arena grow NAME --nodes=N\n"
    "       persistent_arena shrink NAME --nodes=N\n"
    "       persistent_arena chmod NAME MODE\n"
    "       persistent_arena unlink NAME\n"
    "       persistent_arena temp [--nodes=N] [--address=ADDR]\n"
    "MSHARE_BACKEND=kernel|posix picks the backend; the default address is "
    "0x60000000000.\n";

struct Arguments {
  std::string command;
  std::vector<std::string> operands;
  std::uint64_t nodes = 1000;
  bool nodes_given = false;
  std::uintptr_t address = persistent_arena::kDefaultAddress;
  mode_t mode = 0600;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string pointer(const void* p) {
  return examples::hex(reinterpret_cast<std::uintptr_t>(p));
}

mode_t parse_mode(const std::string& text) {
  char* end = nullptr;
  unsigned long mode = std::strtoul(text.c_str(), &end, 8);
  if (text.empty() || *end != '\0' || mode > 0777)
    throw UsageError("bad mode \"" + text + "\"");
  return static_cast<mode_t>(mode);
}

libmshare::Options options_for(const Arguments& args) {
  libmshare::Options options;
  options.size =
      persistent_arena::empty_size() + persistent_arena::bytes_for(args.nodes);
  options.address = args.address;
  options.mode = args.mode;
  options.initialize = persistent_arena::format;
  return options;
}

void print_walk(const Region& arena) {
  const persistent_arena::Walk walk = persistent_arena::walk(arena);
  if (!walk.error.empty())
    throw Error("arena \"" + arena.name() + "\": " + walk.error);
  std::printf(
      "walked name=%s address=%s size=%zu nodes=%llu sum=%llu first=%s "
      "last=%s backend=%s pid=%d\n",
      arena.name().c_str(), examples::hex(arena.address()).c_str(),
      arena.size(), static_cast<unsigned long long>(walk.count),
      static_cast<unsigned long long>(walk.sum), pointer(walk.first).c_str(),
      pointer(walk.last).c_str(), libmshare::to_string(arena.backend()),
      static_cast<int>(getpid()));
}

int build(const Arguments& args) {
  Region arena = Region::create(args.operands.at(0), options_for(args));
  persistent_arena::Node* first = persistent_arena::append(arena, args.nodes);
  std::printf(
      "built name=%s address=%s size=%zu nodes=%llu first=%s "
      "last=%s mode=%03o\n",
      arena.name().c_str(), examples::hex(arena.address()).c_str(),
      arena.size(), static_cast<unsigned long long>(args.nodes),
      pointer(first).c_str(),
      pointer(arena.as<persistent_arena::ArenaHeader>()->tail).c_str(),
      static_cast<unsigned>(args.mode));
  return 0;  // the arena stays when this process exits
}

int walk(const Arguments& args) {
  Region arena = Region::open(args.operands.at(0), Access::ReadOnly);
  print_walk(arena);
  return 0;
}

int grow(const Arguments& args) {
  Region arena = Region::open(args.operands.at(0), Access::ReadWrite);
  const std::size_t old_size = arena.size();
  const auto& header = *arena.as<persistent_arena::ArenaHeader>();
  // Like tmc_shmem_grow(): extend the arena in place and allocate from the
  // new part; every pointer stored so far stays valid.
  arena.grow(header.used + persistent_arena::bytes_for(args.nodes));
  persistent_arena::Node* first = persistent_arena::append(arena, args.nodes);
  std::printf("grew name=%s from=%zu to=%zu new-nodes=%llu first-new=%s\n",
              arena.name().c_str(), old_size, arena.size(),
              static_cast<unsigned long long>(args.nodes),
              pointer(first).c_str());
  return 0;
}

int shrink(const Arguments& args) {
  Region arena = Region::open(args.operands.at(0), Access::ReadWrite);
  const std::size_t old_size = arena.size();
  // Like tmc_shmem_shrink(): pointers into the part cut off become invalid
  // (SIGBUS) in every process.
  arena.shrink(persistent_arena::truncate(arena, args.nodes));
  std::printf("shrank name=%s from=%zu to=%zu nodes=%llu\n",
              arena.name().c_str(), old_size, arena.size(),
              static_cast<unsigned long long>(args.nodes));
  return 0;
}

int change_mode(const Arguments& args) {
  const mode_t mode = parse_mode(args.operands.at(1));
  Region arena = Region::open(args.operands.at(0), Access::ReadWrite);
  arena.set_mode(mode);
  std::printf("chmod name=%s mode=%03o\n", arena.name().c_str(),
              static_cast<unsigned>(mode));
  return 0;
}

int remove(const Arguments& args) {
  Region::unlink(args.operands.at(0));
  std::printf("unlinked name=%s\n", args.operands.at(0).c_str());
  return 0;
}

// A temporary arena: its name is made up at creation and must reach the
// other processes out of band (here: the command line of the child).
int temp(const Arguments& args) {
  std::string name;
  {
    Region arena = Region::create_temp(options_for(args));
    name = arena.name();
    persistent_arena::append(arena, args.nodes);
    std::printf("temporary name=%s address=%s pid=%d\n", name.c_str(),
                examples::hex(arena.address()).c_str(),
                static_cast<int>(getpid()));
    std::fflush(stdout);

    char self[4096];
    ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (length <= 0)
      throw std::system_error(errno, std::generic_category(), "readlink");
    self[length] = '\0';
    pid_t child = fork();
    if (child < 0)
      throw std::system_error(errno, std::generic_category(), "fork");
    if (child == 0) {
      execl(self, self, "walk", name.c_str(), nullptr);
      std::perror("persistent_arena: exec");
      _exit(127);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw Error("the walker of " + name + " failed");
  }  // the creator's Region goes: the arena is unlinked
  std::printf("removed name=%s\n", name.c_str());
  return 0;
}

Arguments parse(int argc, char** argv) {
  static const option options[] = {
      {"nodes", required_argument, nullptr, 'n'},
      {"address", required_argument, nullptr, 'a'},
      {"mode", required_argument, nullptr, 'm'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  Arguments args;
  int option;
  while ((option = getopt_long(argc, argv, "n:a:m:h", options, nullptr)) !=
         -1) {
    switch (option) {
      case 'n': {
        char* end = nullptr;
        args.nodes = std::strtoull(optarg, &end, 10);
        if (*optarg < '0' || *optarg > '9' || *end != '\0' ||
            args.nodes > (1ull << 32))
          throw UsageError(std::string("bad --nodes \"") + optarg + "\"");
        args.nodes_given = true;
        break;
      }
      case 'a': {
        auto address = examples::parse_address(optarg);
        if (!address)
          throw UsageError(std::string("bad --address \"") + optarg + "\"");
        args.address = *address;
        break;
      }
      case 'm':
        args.mode = parse_mode(optarg);
        break;
      default:
        throw UsageError("");
    }
  }
  if (optind >= argc) throw UsageError("");
  args.command = argv[optind++];
  args.operands.assign(argv + optind, argv + argc);
  const std::string& c = args.command;
  std::size_t operands = c == "temp" ? 0 : c == "chmod" ? 2 : 1;
  bool known = c == "build" || c == "walk" || c == "grow" || c == "shrink" ||
               c == "chmod" || c == "unlink" || c == "temp";
  if (!known || args.operands.size() != operands)
    throw UsageError(known ? "wrong number of operands for " + c : "");
  if ((c == "grow" || c == "shrink") && !args.nodes_given)
    throw UsageError(c + " needs --nodes");
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Arguments args = parse(argc, argv);
    const std::string& c = args.command;
    if (c == "build") return build(args);
    if (c == "walk") return walk(args);
    if (c == "grow") return grow(args);
    if (c == "shrink") return shrink(args);
    if (c == "chmod") return change_mode(args);
    if (c == "unlink") return remove(args);
    return temp(args);
  } catch (const UsageError& error) {
    if (*error.what() != '\0')
      std::fprintf(stderr, "persistent_arena: %s\n", error.what());
    std::fputs(kUsage, stderr);
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "persistent_arena: %s\n", error.what());
    return 1;
  }
}
