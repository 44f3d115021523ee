// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Region across real processes: every test execs mshare_test_helper as the
// other party.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <system_error>
#include <thread>

#include "mshare/region.hpp"
#include "shared_layout.hpp"
#include "support.hpp"

namespace {

using libmshare::Access;
using libmshare::Backend;
using libmshare::Options;
using libmshare::Region;
using mshare_test::BackendTest;
using mshare_test::Exit;
using mshare_test::Process;
using namespace std::chrono_literals;

constexpr std::size_t kPage = 4096;

class MultiProcessTest : public BackendTest {
 protected:
  std::vector<std::string> helper(std::vector<std::string> args) {
    args.insert(args.begin(), mshare_test::program_path("mshare_test_helper"));
    return args;
  }
  std::string backend_arg() const {
    return mshare_test::backend_argument(backend());
  }
};

TEST_P(MultiProcessTest, PointersStoredByOneProcessAreValidInAnother) {
  const std::string region_name = name();
  constexpr std::uint64_t kNodes = 1000;
  Region region = Region::create(
      region_name, options(sizeof(mshare_test::ListLayout) +
                           kNodes * sizeof(mshare_test::ListNode)));
  auto* layout = region.as<mshare_test::ListLayout>();
  mshare_test::ListNode* nodes = mshare_test::list_nodes(layout);
  // Link the nodes in a scrambled order so that only the pointers tell it.
  mshare_test::ListNode** link = &layout->head;
  for (std::uint64_t i = 0; i < kNodes; ++i) {
    mshare_test::ListNode* node = &nodes[(i * 7919) % kNodes];
    node->value = i;
    *link = node;
    link = &node->next;
  }
  *link = nullptr;
  region.detach();  // the helper maps it at the same address

  std::string output;
  Exit exit = mshare_test::run_program(
      helper({"follow-list", region_name, backend_arg()}), &output);
  ASSERT_TRUE(exit.exited && exit.code == 0) << exit.describe() << output;
  EXPECT_EQ(output, "followed 1000\n");

  Region reopened = Region::open(region_name, Access::ReadOnly, backend());
  const auto* seen = reopened.as<mshare_test::ListLayout>();
  EXPECT_EQ(seen->seen_count, kNodes);
  EXPECT_EQ(seen->seen_sum, kNodes * (kNodes - 1) / 2);
}

// Several rounds, each with a fresh name: one lucky round proves little.
TEST_P(MultiProcessTest, SixteenRacingCreatorsCreateExactlyOnce) {
  constexpr int kRacers = 16;
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string region_name = name("race");
    int start[2];
    ASSERT_EQ(pipe2(start, O_CLOEXEC), 0);
    std::vector<std::unique_ptr<Process>> racers;
    for (int i = 0; i < kRacers; ++i) {
      racers.push_back(std::make_unique<Process>(
          helper({"open-or-create", region_name, backend_arg(),
                  std::to_string(64 * 1024), std::to_string(start[0])}),
          start[0]));
    }
    close(start[0]);
    close(start[1]);  // releases every racer at once

    std::map<std::string, int> outcomes;
    std::set<std::string> addresses;
    for (auto& racer : racers) {
      std::string line = racer->read_line(20s);
      Exit exit = racer->wait();
      ASSERT_TRUE(exit.exited && exit.code == 0) << exit.describe();
      auto space = line.find(' ');
      ASSERT_NE(space, std::string::npos) << line;
      ++outcomes[line.substr(0, space)];
      addresses.insert(line.substr(space + 1));
    }
    EXPECT_EQ(outcomes["created"], 1);
    EXPECT_EQ(outcomes["opened"], kRacers - 1);
    EXPECT_EQ(addresses.size(), 1u) << "all racers must map the same address";

    Region region = Region::open(region_name, Access::ReadOnly, backend());
    EXPECT_EQ(region.as<mshare_test::RaceLayout>()->attached.load(),
              static_cast<std::uint64_t>(kRacers));
  }
}

// Racers are killed with SIGKILL at random moments, creators among them
// while they initialise (before publishing). Whatever is left: survivors
// created at most once and got a region or a clear error, and the next
// open_or_create() returns within its wait_timeout -- on Kernel with a
// region (a creator that died before mshare() left no name), on Posix
// with a region or ETIMEDOUT naming the stale object, after whose removal
// creating works. Nothing ever hangs.
TEST_P(MultiProcessTest, CreatorsKilledAtRandomMomentsNeverHangTheNextCaller) {
  constexpr int kRacers = 16;
  constexpr int kRounds = 6;
  constexpr std::size_t kSize = 64 * 1024;
  constexpr auto kWait = 300ms;
  constexpr auto kInit = 30ms;
  std::mt19937 random(static_cast<unsigned>(getpid()));
  int stale_recoveries = 0;
  int killed = 0;

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string region_name = name("killed");
    int start[2];
    ASSERT_EQ(pipe2(start, O_CLOEXEC), 0);
    std::vector<std::unique_ptr<Process>> racers;
    for (int i = 0; i < kRacers; ++i) {
      racers.push_back(std::make_unique<Process>(
          helper({"open-or-create-report", region_name, backend_arg(),
                  std::to_string(kSize), std::to_string(start[0]),
                  std::to_string(kWait.count()),
                  std::to_string(kInit.count())}),
          start[0]));
    }
    close(start[0]);
    close(start[1]);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(random() % (2 * kInit.count())));
    for (auto& racer : racers)
      if (random() % 2) racer->kill(SIGKILL);

    int created = 0;
    for (auto& racer : racers) {
      std::string line = racer->read_line(kWait + 10s);
      Exit exit = racer->wait();
      if (!exit.exited) {
        EXPECT_EQ(exit.signal, SIGKILL) << exit.describe();
        ++killed;
        continue;
      }
      ASSERT_EQ(exit.code, 0) << exit.describe();
      if (line.rfind("created ", 0) == 0) {
        ++created;
      } else if (line.rfind("error ", 0) == 0) {
        // Only a creator that died before publishing explains an error.
        EXPECT_EQ(backend(), Backend::Posix) << line;
        EXPECT_EQ(line.rfind("error " + std::to_string(ETIMEDOUT) + " ", 0), 0u)
            << line;
        EXPECT_NE(line.find("creator"), std::string::npos) << line;
      } else {
        EXPECT_EQ(line.rfind("opened ", 0), 0u) << line;
      }
    }
    EXPECT_LE(created, 1);

    Options opts = options(kSize);
    opts.wait_timeout = kWait;
    const auto begin = std::chrono::steady_clock::now();
    try {
      Region region = Region::open_or_create(region_name, opts);
      EXPECT_EQ(region.size(), kSize);
    } catch (const std::system_error& error) {
      EXPECT_EQ(backend(), Backend::Posix) << error.what();
      EXPECT_EQ(error.code().value(), ETIMEDOUT) << error.what();
      EXPECT_NE(std::string(error.what()).find("stale"), std::string::npos)
          << error.what();
      Region::unlink(region_name, backend());
      Region region = Region::open_or_create(region_name, opts);
      EXPECT_TRUE(region.created());
      ++stale_recoveries;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - begin, kWait + 5s);
  }
  RecordProperty("killed", killed);
  RecordProperty("stale_recoveries", stale_recoveries);
  std::printf("%d racers killed, %d stale objects removed and recreated\n",
              killed, stale_recoveries);
  EXPECT_GT(killed, 0);
}

TEST_P(MultiProcessTest, OpenerSeesGrowthAfterRefresh) {
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  const std::size_t grown = 5 * 1024 * 1024 + 3;
  Process watcher(helper(
      {"watch-growth", region_name, backend_arg(), std::to_string(grown)}));
  ASSERT_EQ(watcher.read_line(), "opened " + std::to_string(kPage));
  region.grow(grown);
  region.as<unsigned char>()[grown - 1] = mshare_test::kGrowthMarker;
  // The marker is written after the size is published: the watcher polls.
  EXPECT_EQ(watcher.read_line(), "grown " + std::to_string(grown));
  Exit exit = watcher.wait();
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.describe();
}

TEST_P(MultiProcessTest, KernelOpenerSeesGrownMemoryWithoutACall) {
  if (backend() != Backend::Kernel)
    GTEST_SKIP() << "posix openers must call refresh()";
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  const std::size_t grown = 2 * 1024 * 1024;
  Process peeker(helper({"peek-after-grow", region_name, backend_arg()}));
  ASSERT_EQ(peeker.read_line(), "opened " + std::to_string(kPage));
  region.grow(grown);
  region.as<unsigned char>()[grown - 1] = mshare_test::kGrowthMarker;
  peeker.write_line(std::to_string(grown));
  EXPECT_EQ(peeker.read_line(), "peeked");
  Exit exit = peeker.wait();
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.describe();
}

TEST_P(MultiProcessTest, ReadOnlyOpenerInAnotherProcessFaultsOnWrite) {
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  std::string output;
  Exit exit = mshare_test::run_program(
      helper({"write-read-only", region_name, backend_arg()}), &output);
  EXPECT_EQ(output, "writing\n");
  EXPECT_FALSE(exit.exited) << exit.describe();
  EXPECT_EQ(exit.signal, SIGSEGV) << exit.describe();
  EXPECT_EQ(region.as<char>()[0], 0);
}

TEST_P(MultiProcessTest, ModeDecidesWhatAnotherUserMayOpen) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));  // 0600
  auto open_as_nobody = [&](const char* access) {
    std::string output;
    Exit exit = mshare_test::run_program(
        helper({"open-as", "65534", region_name, backend_arg(), access}),
        &output);
    EXPECT_TRUE(exit.exited) << exit.describe();
    return exit.code;
  };
  EXPECT_EQ(open_as_nobody("ro"), EACCES);
  EXPECT_EQ(open_as_nobody("rw"), EACCES);
  region.set_mode(0644);
  EXPECT_EQ(open_as_nobody("ro"), 0);
  EXPECT_EQ(open_as_nobody("rw"), EACCES);
  region.set_mode(0600);
  region.set_owner(65534, 65534);
  EXPECT_EQ(open_as_nobody("rw"), 0);
}

TEST_P(MultiProcessTest, RegionOutlivesTheProcessThatCreatedIt) {
  const std::string region_name = name();
  std::string output;
  Exit exit = mshare_test::run_program(
      helper({"create", region_name, backend_arg(), "10000", "99"}), &output);
  ASSERT_TRUE(exit.exited && exit.code == 0) << exit.describe();
  Region region = Region::open(region_name, Access::ReadOnly, backend());
  EXPECT_EQ(
      output, "created " + [&] {
        char text[32];
        std::snprintf(text, sizeof(text), "0x%lx",
                      static_cast<unsigned long>(region.address()));
        return std::string(text);
      }() + "\n");
  EXPECT_EQ(region.size(), 10000u);
  EXPECT_EQ(region.as<unsigned char>()[9999], 99);
}

TEST_P(MultiProcessTest, CreatorKilledBeforePublishingNeverHangsOpeners) {
  const std::string region_name = name();
  Process creator(helper(
      {"create-and-hang", region_name, backend_arg(), std::to_string(kPage)}));
  ASSERT_EQ(creator.read_line(), "initialising");
  Options opts = options(kPage);
  opts.wait_timeout = 200ms;
  std::string message;
  if (backend() == Backend::Kernel) {
    // The name appears only once the header is complete.
    EXPECT_SYSTEM_ERROR(
        Region::open(region_name, Access::ReadOnly, backend(), 200ms), ENOENT,
        message);
  } else {
    EXPECT_SYSTEM_ERROR(
        Region::open(region_name, Access::ReadOnly, backend(), 200ms),
        ETIMEDOUT, message);
    EXPECT_NE(message.find("still initialising"), std::string::npos) << message;
  }
  creator.kill(SIGKILL);
  Exit exit = creator.wait();
  EXPECT_EQ(exit.signal, SIGKILL) << exit.describe();

  if (backend() == Backend::Kernel) {
    Region created = Region::open_or_create(region_name, opts);
    EXPECT_TRUE(created.created());
    return;
  }
  EXPECT_SYSTEM_ERROR(Region::open_or_create(region_name, opts), ETIMEDOUT,
                      message);
  EXPECT_NE(message.find("stale"), std::string::npos) << message;
  Region::unlink(region_name, backend());
  Region created = Region::open_or_create(region_name, opts);
  EXPECT_TRUE(created.created());
}

MSHARE_INSTANTIATE_BACKENDS(MultiProcessTest);

}  // namespace
