// SPDX-License-Identifier: LGPL-2.1-or-later
//
// growing_pool: a zero-copy publisher allocates its messages in a writable
// memory pool at a fixed address; subscribers map the pool read-only and
// follow raw pointers into it. When the pool is full the publisher grows
// it, while the subscribers run, and keeps publishing into the new part.
//
//   growing_pool publish TOPIC [--messages=N] [--subscribers=N] [--timeout=S]
//   growing_pool subscribe TOPIC [--no-refresh] [--timeout=S]
//   growing_pool demo [--messages=N] [--subscribers=N] [--no-refresh]
//                     [--timeout=S]
//
// POOL_ADDRESS sets the pool's address (default 0x40000000000), MEMPOOL_SIZE
// its first size (default 64K), MSHARE_BACKEND the backend.
//
// Agnocast's known issue is that subscribers never see the part a
// publisher's pool grows by. On the kernel backend they do, with no call at
// all: the publisher maps the new memory inside the region's window, and
// every sharer's page tables are the region's. On the POSIX fallback a
// subscriber must call Region::refresh() when a pointer leads past what it
// has mapped; --no-refresh leaves that out and shows the original flaw.
#include <getopt.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "mshare/region.hpp"
#include "pool.hpp"
#include "units.hpp"

namespace {

using namespace growing_pool;
using libmshare::Access;
using libmshare::Backend;
using libmshare::Region;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: growing_pool publish TOPIC [--messages=N] [--subscribers=N] "
    "[--timeout=SECONDS]\n"
    "       growing_pool subscribe TOPIC [--no-refresh] [--timeout=SECONDS]\n"
    "       growing_pool demo [--messages=N] [--subscribers=N] "
    "[--no-refresh] [--timeout=SECONDS]\n"
    "environment: POOL_ADDRESS (default 0x40000000000), MEMPOOL_SIZE "
    "(default 64K),\n"
    "             MSHARE_BACKEND=kernel|posix\n";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Arguments {
  std::string command;
  std::string topic;
  unsigned long messages = 500;
  unsigned long subscribers = 0;
  int timeout_seconds = 60;
  bool refresh = true;
};

// Polls `done` until it holds or the timeout passes.
template <typename Done>
void wait_for(const Arguments& args, const char* what, Done&& done) {
  const auto deadline =
      Clock::now() + std::chrono::seconds(args.timeout_seconds);
  while (!done()) {
    if (Clock::now() >= deadline)
      throw std::runtime_error(std::string("timed out waiting for ") + what);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// Removes the pool and the registry when the publisher leaves, however it
// leaves; subscribers still attached keep their mappings.
class TopicNames {
 public:
  explicit TopicNames(std::string topic) : topic_(std::move(topic)) {}
  TopicNames(const TopicNames&) = delete;
  TopicNames& operator=(const TopicNames&) = delete;
  ~TopicNames() {
    for (const std::string& name : {topic_, registry_name(topic_)}) {
      try {
        Region::unlink(name);
      } catch (const std::system_error&) {
      }
    }
  }

 private:
  std::string topic_;
};

std::uintptr_t pool_address() {
  const char* text = std::getenv("POOL_ADDRESS");
  if (text == nullptr || *text == '\0') return kDefaultPoolAddress;
  auto address = examples::parse_address(text);
  if (!address)
    throw UsageError(std::string("POOL_ADDRESS=") + text +
                     " is not an address (e.g. 0x40000000000)");
  return *address;
}

std::size_t pool_size() {
  const char* text = std::getenv("MEMPOOL_SIZE");
  if (text == nullptr || *text == '\0') return kDefaultPoolSize;
  auto size = examples::parse_size(text);
  if (!size || *size < sizeof(PoolHeader))
    throw UsageError(std::string("MEMPOOL_SIZE=") + text +
                     " is not a size (e.g. 64K)");
  return *size;
}

Region open_registry(const std::string& topic) {
  libmshare::Options options;
  options.size = sizeof(Registry);
  options.initialize = [](void* data, std::size_t) { new (data) Registry{}; };
  return Region::open_or_create(registry_name(topic), options);
}

std::uint64_t slowest_subscriber(const Registry& registry) {
  std::uint64_t slowest = ~std::uint64_t{0};
  const unsigned count = std::min(registry.subscribers.load(), kMaxSubscribers);
  for (unsigned i = 0; i < count; ++i)
    slowest = std::min(slowest, registry.slots[i].seen.load());
  return slowest;  // no subscriber: nobody to wait for
}

int publish(const Arguments& args) {
  libmshare::Options options;
  options.size = pool_size();
  options.address = pool_address();
  options.initialize = [](void* data, std::size_t) {
    new (data) PoolHeader{kPoolMagic, {nullptr}, {0}, sizeof(PoolHeader)};
  };
  Region pool = Region::create(args.topic, options);
  TopicNames remove_at_exit(args.topic);
  Region registry_region = open_registry(args.topic);
  const Registry& registry = *registry_region.as<Registry>();
  auto* header = pool.as<PoolHeader>();
  auto* data = pool.as<char>();
  std::printf("publisher pid=%d pool=%s address=%s size=%zu backend=%s\n",
              static_cast<int>(getpid()), args.topic.c_str(),
              examples::hex(pool.address()).c_str(), pool.size(),
              libmshare::to_string(pool.backend()));
  std::fflush(stdout);

  wait_for(args, "subscribers",
           [&] { return registry.subscribers.load() >= args.subscribers; });
  Message* last = nullptr;
  unsigned grows = 0;
  for (std::uint64_t sequence = 1; sequence <= args.messages; ++sequence) {
    const std::string text = message_text(sequence);
    const std::size_t need = (sizeof(Message) + text.size() + 15) & ~15ul;
    if (header->used + need > pool.size()) {
      // Let every subscriber catch up first: they are attached and running
      // when the pool grows, and their next message lies in the new part.
      wait_for(args, "subscribers to read every message",
               [&] { return slowest_subscriber(registry) >= sequence - 1; });
      const std::size_t old_size = pool.size();
      pool.grow(std::max(2 * old_size, header->used + need));
      ++grows;
      std::printf("grow from=%zu to=%zu after-message=%llu\n", old_size,
                  pool.size(), static_cast<unsigned long long>(sequence - 1));
      std::fflush(stdout);
    }
    auto* message =
        new (data + header->used) Message{{nullptr}, sequence, text.size()};
    std::memcpy(const_cast<char*>(message->text()), text.data(), text.size());
    header->used += need;
    // Release: a subscriber that sees the pointer sees the whole message.
    if (last == nullptr)
      header->first.store(message, std::memory_order_release);
    else
      last->next.store(message, std::memory_order_release);
    last = message;
  }
  header->closed.store(1, std::memory_order_release);
  wait_for(args, "subscribers to read every message",
           [&] { return slowest_subscriber(registry) >= args.messages; });
  std::printf("published messages=%lu size=%zu grows=%u\n", args.messages,
              pool.size(), grows);
  return 0;
}

int subscribe(const Arguments& args) {
  Region registry_region = open_registry(args.topic);
  auto& registry = *registry_region.as<Registry>();
  const unsigned slot = registry.subscribers.fetch_add(1);
  if (slot >= kMaxSubscribers)
    throw std::runtime_error("more than " + std::to_string(kMaxSubscribers) +
                             " subscribers");
  registry.slots[slot].pid.store(getpid());

  // The publisher may not have created its pool yet.
  Region pool;
  wait_for(args, "the publisher's pool", [&] {
    try {
      pool = Region::open(args.topic, Access::ReadOnly);
      return true;
    } catch (const std::system_error& error) {
      if (error.code().value() != ENOENT) throw;
      return false;
    }
  });
  const auto* header = pool.as<PoolHeader>();
  const char* data = pool.as<char>();
  const std::size_t attached_size = pool.size();
  if (header->magic != kPoolMagic)
    throw std::runtime_error("region \"" + args.topic + "\" is not a pool");
  std::printf(
      "subscriber pid=%d pool=%s address=%s size=%zu access=%s backend=%s\n",
      static_cast<int>(getpid()), args.topic.c_str(),
      examples::hex(pool.address()).c_str(), attached_size,
      libmshare::to_string(pool.access()),
      libmshare::to_string(pool.backend()));
  std::fflush(stdout);

  // Kernel backend: what the publisher adds to its pool is in our page
  // tables already. POSIX fallback: map it first, or touching it faults.
  const bool must_refresh = pool.backend() == Backend::Posix && args.refresh;
  unsigned refreshes = 0;
  auto reachable = [&](const void* start, std::size_t length) {
    const char* end = static_cast<const char*>(start) + length;
    if (must_refresh && end > data + pool.size()) {
      pool.refresh();
      ++refreshes;
    }
  };

  std::uint64_t received = 0;
  std::uint64_t in_grown_memory = 0;
  const Message* message = nullptr;
  wait_for(args, "the first message", [&] {
    message = header->first.load(std::memory_order_acquire);
    return message != nullptr;
  });
  const Message* last = nullptr;
  while (message != nullptr) {
    reachable(message, sizeof(Message));
    reachable(message, sizeof(Message) + message->length);
    const std::string expected = message_text(received + 1);
    if (message->sequence != received + 1 ||
        message->length != expected.size() ||
        std::memcmp(message->text(), expected.data(), expected.size()) != 0)
      throw std::runtime_error(
          "message " + std::to_string(received + 1) + " at " +
          examples::hex(reinterpret_cast<std::uintptr_t>(message)) +
          " is not what was published");
    ++received;
    if (reinterpret_cast<const char*>(message) >= data + attached_size &&
        in_grown_memory++ == 0)
      std::printf(
          "grown-memory sequence=%llu address=%s\n",
          static_cast<unsigned long long>(message->sequence),
          examples::hex(reinterpret_cast<std::uintptr_t>(message)).c_str());
    registry.slots[slot].seen.store(received);
    last = message;
    const Message* next = nullptr;
    wait_for(args, "the next message", [&] {
      next = message->next.load(std::memory_order_acquire);
      // The publisher links the last message before it closes the pool.
      return next != nullptr ||
             header->closed.load(std::memory_order_acquire) != 0;
    });
    if (next == nullptr) next = message->next.load(std::memory_order_acquire);
    message = next;
  }
  std::printf(
      "received messages=%llu in-grown-memory=%llu refreshes=%u "
      "last=%s\n",
      static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(in_grown_memory), refreshes,
      examples::hex(reinterpret_cast<std::uintptr_t>(last)).c_str());
  return 0;
}

// One publisher and its subscribers as separate processes.
int demo(const Arguments& args) {
  char self[4096];
  ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0)
    throw std::system_error(errno, std::generic_category(), "readlink");
  self[length] = '\0';
  const std::string topic = "demo." + std::to_string(getpid());
  const unsigned subscribers = args.subscribers == 0 ? 2 : args.subscribers;
  std::vector<std::vector<std::string>> commands;
  const std::string timeout =
      "--timeout=" + std::to_string(args.timeout_seconds);
  commands.push_back({self, "publish", topic,
                      "--messages=" + std::to_string(args.messages),
                      "--subscribers=" + std::to_string(subscribers), timeout});
  for (unsigned i = 0; i < subscribers; ++i) {
    commands.push_back({self, "subscribe", topic, timeout});
    if (!args.refresh) commands.back().push_back("--no-refresh");
  }

  std::fflush(stdout);
  std::vector<pid_t> children;
  for (auto& command : commands) {
    std::vector<char*> argv;
    for (std::string& arg : command) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid < 0)
      throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
      execv(argv[0], argv.data());
      std::perror("growing_pool: exec");
      _exit(127);
    }
    children.push_back(pid);
  }
  int failed = 0;
  for (std::size_t i = 0; i < children.size(); ++i) {
    int status = 0;
    waitpid(children[i], &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    ++failed;
    const char* role = i == 0 ? "publisher" : "subscriber";
    if (WIFSIGNALED(status))
      std::printf("demo %s pid=%d killed by %s\n", role,
                  static_cast<int>(children[i]), strsignal(WTERMSIG(status)));
    else
      std::printf("demo %s pid=%d exited with %d\n", role,
                  static_cast<int>(children[i]), WEXITSTATUS(status));
  }
  std::printf("demo processes=%zu failed=%d\n", children.size(), failed);
  return failed == 0 ? 0 : 1;
}

Arguments parse(int argc, char** argv) {
  static const option options[] = {
      {"messages", required_argument, nullptr, 'm'},
      {"subscribers", required_argument, nullptr, 's'},
      {"timeout", required_argument, nullptr, 't'},
      {"no-refresh", no_argument, nullptr, 'n'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  Arguments args;
  auto number = [](const char* text, const char* what,
                   unsigned long minimum = 1) {
    char* end = nullptr;
    unsigned long value = std::strtoul(text, &end, 10);
    if (*text < '0' || *text > '9' || *end != '\0' || value < minimum ||
        value > 1000000)
      throw UsageError(std::string("bad ") + what + " \"" + text + "\"");
    return value;
  };
  int option;
  while ((option = getopt_long(argc, argv, "m:s:t:nh", options, nullptr)) !=
         -1) {
    switch (option) {
      case 'm':
        args.messages = number(optarg, "--messages");
        break;
      case 's':
        args.subscribers = number(optarg, "--subscribers", 0);
        if (args.subscribers > kMaxSubscribers)
          throw UsageError("at most " + std::to_string(kMaxSubscribers) +
                           " subscribers");
        break;
      case 't':
        args.timeout_seconds = static_cast<int>(number(optarg, "--timeout"));
        break;
      case 'n':
        args.refresh = false;
        break;
      default:
        throw UsageError("");
    }
  }
  if (optind >= argc) throw UsageError("");
  args.command = argv[optind++];
  if (args.command == "demo") {
    if (optind != argc) throw UsageError("");
    return args;
  }
  if ((args.command != "publish" && args.command != "subscribe") ||
      optind != argc - 1)
    throw UsageError("");
  args.topic = argv[optind];
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Arguments args = parse(argc, argv);
    if (args.command == "publish") return publish(args);
    if (args.command == "subscribe") return subscribe(args);
    return demo(args);
  } catch (const UsageError& error) {
    if (*error.what() != '\0')
      std::fprintf(stderr, "growing_pool: %s\n", error.what());
    std::fputs(kUsage, stderr);
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "growing_pool: %s\n", error.what());
    return 1;
  }
}
