// SPDX-License-Identifier: LGPL-2.1-or-later
//
// queue_prealloc on both backends: processes started at once agree on
// every queue with exactly one creator, readers cannot write, the printed
// commitment is the configured memory and it really is allocated, and a
// changed size is an error, not a crash.
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "queues.hpp"
#include "testing.hpp"

namespace {

using examples_test::BackendTest;
using examples_test::Command;
using examples_test::field;
using examples_test::in_child;
using examples_test::lines_starting;
using examples_test::Result;
using libmshare::Backend;

constexpr const char* kConfig =
    "# channel size writers\n"
    "/robot/imu            64K   imu_driver\n"
    "/robot/camera/front   1M    camera\n"
    "/robot/odometry       16K   drivetrain,localizer   # two writers\n"
    "/robot/plan           32K   planner\n"
    "/robot/log            256K  logger\n";
constexpr std::size_t kConfiguredBytes =
    (64 << 10) + (1 << 20) + (16 << 10) + (32 << 10) + (256 << 10);

// What one process printed about one queue.
struct QueueLine {
  std::string address;
  std::string size;
  std::string access;
  std::string creator;
  bool created = false;
};

std::map<std::string, QueueLine> queue_lines(const std::string& output) {
  std::map<std::string, QueueLine> queues;
  for (const std::string& line : lines_starting(output, "queue ")) {
    QueueLine parsed;
    parsed.address = field(line, "address");
    parsed.size = field(line, "size");
    parsed.access = field(line, "access");
    parsed.creator = field(line, "creator");
    parsed.created = field(line, "created") == "yes";
    queues[field(line, "channel")] = parsed;
  }
  return queues;
}

std::string committed_line(const std::string& output) {
  auto lines = lines_starting(output, "committed ");
  return lines.size() == 1 ? lines.front() : std::string();
}

class QueuePreallocTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    char directory[] = "/tmp/queue_prealloc.XXXXXX";
    ASSERT_NE(mkdtemp(directory), nullptr);
    directory_ = directory;
    config_ = write_config("channels.conf", kConfig);
    name_space_ = examples_test::unique_name("q");
    // The library's Backend::Auto follows MSHARE_BACKEND in this process
    // too.
    setenv("MSHARE_BACKEND", libmshare::to_string(backend()), 1);
  }
  void TearDown() override {
    if (!name_space_.empty()) {
      try {
        queue_prealloc::remove_queues(queue_prealloc::read_config(config_),
                                      name_space_);
      } catch (const std::exception& error) {
        ADD_FAILURE() << error.what();
      }
    }
    for (const std::string& file : files_) unlink(file.c_str());
    if (!directory_.empty()) rmdir(directory_.c_str());
    unsetenv("MSHARE_BACKEND");
    BackendTest::TearDown();
  }

  std::string write_config(const std::string& file, const std::string& text) {
    std::string path = directory_ + "/" + file;
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }

  Command app(const std::string& name, const std::string& config = {}) const {
    return command("queue_prealloc",
                   {"app", "--config=" + (config.empty() ? config_ : config),
                    "--app=" + name, "--namespace=" + name_space_});
  }

  std::vector<queue_prealloc::Channel> channels() const {
    return queue_prealloc::read_config(config_);
  }

  std::string directory_;
  std::string config_;
  std::string name_space_;
  std::vector<std::string> files_;
};

TEST_P(QueuePreallocTest, EightProcessesStartedAtOnceAgreeOnEveryQueue) {
  const std::vector<std::string> apps = {"imu_driver", "camera",  "drivetrain",
                                         "localizer",  "planner", "logger",
                                         "monitor",    "monitor"};
  std::vector<Command> commands;
  for (const std::string& name : apps) commands.push_back(app(name));
  const std::vector<Result> results = examples_test::run_together(commands);

  const auto config = channels();
  std::map<std::string, QueueLine> agreed;
  std::map<std::string, int> creators;
  std::size_t created_bytes = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& result = results[i];
    ASSERT_TRUE(result.succeeded()) << apps[i] << ": " << result.describe();
    const std::string pid = field(lines_starting(result.out, "app ")[0], "pid");
    const auto queues = queue_lines(result.out);
    ASSERT_EQ(queues.size(), config.size()) << result.out;
    for (const auto& channel : config) {
      ASSERT_EQ(queues.count(channel.name), 1u) << result.out;
      const QueueLine& seen = queues.at(channel.name);
      EXPECT_EQ(seen.size, std::to_string(channel.size)) << channel.name;
      const bool writer =
          std::find(channel.writers.begin(), channel.writers.end(), apps[i]) !=
          channel.writers.end();
      EXPECT_EQ(seen.access, writer ? "read-write" : "read-only")
          << apps[i] << " " << channel.name;
      if (seen.created) {
        ++creators[channel.name];
        EXPECT_EQ(seen.creator, pid) << "the creator names itself";
      }
      const std::size_t index = &channel - config.data();
      EXPECT_EQ(seen.address,
                examples_test::hex(queue_prealloc::kDefaultBaseAddress +
                                   index * queue_prealloc::queue_stride() +
                                   libmshare::kHeaderSize))
          << channel.name;
      auto [first, inserted] = agreed.emplace(channel.name, seen);
      if (!inserted) {
        EXPECT_EQ(seen.address, first->second.address) << channel.name;
        EXPECT_EQ(seen.creator, first->second.creator) << channel.name;
      }
    }
    const std::string committed = committed_line(result.out);
    EXPECT_EQ(field(committed, "bytes"), std::to_string(kConfiguredBytes))
        << result.out;
    created_bytes += std::stoul(field(committed, "created-bytes"));
  }
  for (const auto& channel : config)
    EXPECT_EQ(creators[channel.name], 1) << channel.name << " creators";
  // Every queue was allocated once, by one of them.
  EXPECT_EQ(created_bytes, kConfiguredBytes);
}

TEST_P(QueuePreallocTest, ReadersWritesFaultWhileWritersWritesReachThem) {
  const Result creator = examples_test::run(app("camera"));
  ASSERT_TRUE(creator.succeeded()) << creator.describe();

  auto readers = queue_prealloc::open_queues(
      channels(), "monitor", name_space_, queue_prealloc::kDefaultBaseAddress);
  const queue_prealloc::Queue& camera = readers[1];
  ASSERT_EQ(camera.channel.name, "/robot/camera/front");
  ASSERT_FALSE(camera.writer);
  volatile char* byte = camera.region.as<char>() + 4096;

  int status = in_child([&] {
    signal(SIGSEGV, SIG_DFL);
    *byte = 'r';
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV)
      << "a reader's write ended with status " << status;

  status = in_child([&] {
    readers.clear();  // attach again as a writer, like another process
    auto writers = queue_prealloc::open_queues(
        channels(), "camera", name_space_, queue_prealloc::kDefaultBaseAddress);
    if (!writers[1].writer) return 2;
    writers[1].region.as<char>()[4096] = 'w';
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "status " << status;
  EXPECT_EQ(*byte, 'w');
}

TEST_P(QueuePreallocTest,
       PrintedCommitmentIsTheConfiguredMemoryAndIsAllocated) {
  const Result result = examples_test::run(app("planner"));
  ASSERT_TRUE(result.succeeded()) << result.describe();
  const std::string committed = committed_line(result.out);
  EXPECT_EQ(field(committed, "bytes"), std::to_string(kConfiguredBytes))
      << result.out;
  EXPECT_EQ(field(committed, "queues"), "5") << result.out;
  EXPECT_EQ(field(committed, "created-bytes"), std::to_string(kConfiguredBytes))
      << result.out;

  for (const auto& channel : channels()) {
    const std::string name =
        queue_prealloc::region_name(name_space_, channel.name);
    if (backend() == Backend::Posix) {
      // Allocated in the shm object, not just a sparse length.
      struct stat st;
      ASSERT_EQ(stat(("/dev/shm/mshare." + name).c_str(), &st), 0) << name;
      EXPECT_GE(static_cast<std::size_t>(st.st_blocks) * 512,
                libmshare::kHeaderSize + channel.size)
          << name;
    } else {
      // The creator prefaulted the shared page tables: another process
      // reads every page without a single fault.
      libmshare::Region queue =
          libmshare::Region::open(name, libmshare::Access::ReadOnly);
      rusage before{};
      rusage after{};
      getrusage(RUSAGE_SELF, &before);
      const volatile char* bytes = queue.as<char>();
      for (std::size_t offset = 0; offset < queue.size(); offset += 4096)
        (void)bytes[offset];
      getrusage(RUSAGE_SELF, &after);
      EXPECT_EQ(after.ru_minflt - before.ru_minflt, 0) << name;
    }
  }
}

TEST_P(QueuePreallocTest, AChangedQueueSizeIsAClearErrorNotACrash) {
  ASSERT_TRUE(examples_test::run(app("imu_driver")).succeeded());
  std::string changed = kConfig;
  changed.replace(changed.find("64K"), 3, "128K");
  const Result result =
      examples_test::run(app("planner", write_config("changed.conf", changed)));
  ASSERT_TRUE(result.exited) << result.describe();
  EXPECT_EQ(result.code, 1) << result.describe();
  EXPECT_NE(result.err.find("queue /robot/imu"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("65536"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("131072"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("size in the configuration"), std::string::npos)
      << result.err;
}

TEST_P(QueuePreallocTest, LauncherAllocatesEveryQueueBeforeTheApplicationsRun) {
  const Result result = examples_test::run(
      command("queue_prealloc",
              {"start", "--config=" + config_, "--namespace=" + name_space_}));
  ASSERT_TRUE(result.succeeded()) << result.describe();
  EXPECT_EQ(lines_starting(result.out, "start ").at(0),
            "start applications=6 failed=0");
  // Outputs of the launcher and the six applications: only the launcher
  // created anything.
  const auto apps = lines_starting(result.out, "app ");
  ASSERT_EQ(apps.size(), 7u) << result.out;
  EXPECT_EQ(field(apps[0], "name"), "starterd");
  const auto committed = lines_starting(result.out, "committed ");
  ASSERT_EQ(committed.size(), 7u) << result.out;
  EXPECT_EQ(field(committed[0], "created-bytes"),
            std::to_string(kConfiguredBytes));
  for (std::size_t i = 1; i < committed.size(); ++i) {
    EXPECT_EQ(field(committed[i], "bytes"), std::to_string(kConfiguredBytes));
    EXPECT_EQ(field(committed[i], "created-bytes"), "0") << committed[i];
  }
}

TEST_P(QueuePreallocTest, BadConfigurationLinesAreReportedWithTheirNumber) {
  const std::string bad =
      write_config("bad.conf", "/robot/imu 64K imu_driver\n/robot/x 12Q a\n");
  Result result = examples_test::run(app("imu_driver", bad));
  EXPECT_TRUE(result.exited && result.code == 1) << result.describe();
  EXPECT_NE(result.err.find("bad.conf:2: bad size \"12Q\""), std::string::npos)
      << result.err;
  result = examples_test::run(command("queue_prealloc", {"app"}));
  EXPECT_TRUE(result.exited && result.code == 2) << result.describe();
}

EXAMPLES_INSTANTIATE_BACKENDS(QueuePreallocTest);

}  // namespace
