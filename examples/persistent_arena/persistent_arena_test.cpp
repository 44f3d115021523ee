// SPDX-License-Identifier: LGPL-2.1-or-later
//
// persistent_arena on both backends: a structure of absolute pointers
// outlives its builder and is walked at the same address by another
// process; the arena grows and shrinks in place; a temporary arena goes
// with its creator; its mode keeps other users out until chmod; unlinking
// it leaves the processes using it working.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <system_error>

#include "arena.hpp"
#include "testing.hpp"

namespace {

using examples_test::BackendTest;
using examples_test::Command;
using examples_test::field;
using examples_test::in_child;
using examples_test::lines_starting;
using examples_test::Result;
using libmshare::Access;
using libmshare::Backend;
using libmshare::Region;

constexpr uid_t kNobody = 65534;

class PersistentArenaTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    setenv("MSHARE_BACKEND", libmshare::to_string(backend()), 1);
  }
  void TearDown() override {
    unsetenv("MSHARE_BACKEND");
    BackendTest::TearDown();
  }

  Result arena(std::vector<std::string> args,
               std::optional<uid_t> uid = std::nullopt) {
    Command c = command("persistent_arena", std::move(args));
    c.uid = uid;
    return examples_test::run(c);
  }
  // Runs persistent_arena and returns the only line starting with `prefix`.
  std::string line(std::vector<std::string> args, const std::string& prefix) {
    Result result = arena(std::move(args));
    EXPECT_TRUE(result.succeeded()) << result.describe();
    auto lines = lines_starting(result.out, prefix);
    EXPECT_EQ(lines.size(), 1u) << result.describe();
    return lines.empty() ? std::string() : lines.front();
  }
};

TEST_P(PersistentArenaTest, StructureBuiltByAnExitedProcessIsWalkedByAnother) {
  const std::string arena_name = name("list");
  const std::string built =
      line({"build", arena_name, "--nodes=1000"}, "built ");
  // Nothing of the builder is left but the arena.
  const std::string walked = line({"walk", arena_name}, "walked ");
  EXPECT_EQ(field(walked, "address"), "0x60000000000") << walked;
  EXPECT_EQ(field(walked, "nodes"), "1000") << walked;
  EXPECT_EQ(field(walked, "sum"), std::to_string(999 * 1000 / 2)) << walked;
  EXPECT_EQ(field(walked, "first"), field(built, "first"));
  EXPECT_EQ(field(walked, "last"), field(built, "last"));
  EXPECT_NE(field(walked, "pid"), "");
  EXPECT_EQ(field(walked, "backend"), libmshare::to_string(backend()));
}

TEST_P(PersistentArenaTest, ArenaIsMappedWhereItsCreatorPutIt) {
  const std::string arena_name = name("addr");
  const std::string address = "0x70000000000";  // 7 TiB
  const std::string built = line(
      {"build", arena_name, "--nodes=10", "--address=" + address}, "built ");
  EXPECT_EQ(field(built, "address"), address);
  const std::string walked = line({"walk", arena_name}, "walked ");
  EXPECT_EQ(field(walked, "address"), address);
  EXPECT_EQ(field(walked, "first"), field(built, "first"));
  EXPECT_EQ(Region::stat(arena_name, backend()).address,
            std::stoul(address, nullptr, 16));
}

TEST_P(PersistentArenaTest, GrowAppendsNodesInTheNewPart) {
  const std::string arena_name = name("grow");
  const std::string built =
      line({"build", arena_name, "--nodes=100"}, "built ");
  const std::size_t old_size = std::stoul(field(built, "size"));
  const std::string grew = line({"grow", arena_name, "--nodes=5000"}, "grew ");
  EXPECT_EQ(field(grew, "from"), std::to_string(old_size));
  EXPECT_GT(std::stoul(field(grew, "to")), old_size + 5000 * 48);
  const std::uintptr_t data = 0x60000000000 + libmshare::kHeaderSize;
  EXPECT_GE(std::stoul(field(grew, "first-new"), nullptr, 16),
            data + old_size - 64)
      << "the new nodes are in the part the arena grew by";
  const std::string walked = line({"walk", arena_name}, "walked ");
  EXPECT_EQ(field(walked, "nodes"), "5100");
  EXPECT_EQ(field(walked, "sum"), std::to_string(5099ull * 5100 / 2));
  EXPECT_EQ(field(walked, "size"), field(grew, "to"));
}

TEST_P(PersistentArenaTest, ShrinkDropsTheTailForEveryProcess) {
  const std::string arena_name = name("shrink");
  const std::string built =
      line({"build", arena_name, "--nodes=5000"}, "built ");
  // This process keeps the arena open across the shrink.
  Region held = Region::open(arena_name, Access::ReadOnly, backend());
  const auto* old_last = reinterpret_cast<const volatile char*>(
      std::stoul(field(built, "last"), nullptr, 16));
  EXPECT_EQ(*old_last, *old_last);

  const std::string shrank =
      line({"shrink", arena_name, "--nodes=10"}, "shrank ");
  EXPECT_EQ(field(shrank, "from"), field(built, "size"));
  const std::size_t new_size = std::stoul(field(shrank, "to"));
  EXPECT_LT(new_size, 4096u);
  const std::string walked = line({"walk", arena_name}, "walked ");
  EXPECT_EQ(field(walked, "nodes"), "10");
  EXPECT_EQ(field(walked, "size"), std::to_string(new_size));

  // The memory is gone: the old pointer faults here too.
  int status = in_child([&] {
    signal(SIGBUS, SIG_DFL);
    return *old_last;
  });
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
      << "touching the cut-off tail ended with status " << status;
  EXPECT_TRUE(held.refresh());
  EXPECT_EQ(held.size(), new_size);
  if (backend() == Backend::Posix) {
    struct stat st;
    ASSERT_EQ(stat(("/dev/shm/mshare." + arena_name).c_str(), &st), 0);
    EXPECT_EQ(static_cast<std::size_t>(st.st_size),
              libmshare::kHeaderSize + 4096);
  }
}

TEST_P(PersistentArenaTest, TemporaryArenaDisappearsWithItsCreator) {
  Result result = arena({"temp", "--nodes=50"});
  ASSERT_TRUE(result.succeeded()) << result.describe();
  const auto temporary = lines_starting(result.out, "temporary ");
  ASSERT_EQ(temporary.size(), 1u) << result.out;
  const std::string temp_name = field(temporary[0], "name");
  remove_later(temp_name);
  // Another process found it by name while its creator lived...
  const auto walked = lines_starting(result.out, "walked ");
  ASSERT_EQ(walked.size(), 1u) << result.out;
  EXPECT_EQ(field(walked[0], "name"), temp_name);
  EXPECT_EQ(field(walked[0], "nodes"), "50");
  EXPECT_NE(field(walked[0], "pid"), field(temporary[0], "pid"));
  EXPECT_EQ(lines_starting(result.out, "removed name=" + temp_name).size(), 1u);
  // ...and nobody can once it is gone.
  try {
    Region::stat(temp_name, backend());
    ADD_FAILURE() << temp_name << " still exists";
  } catch (const std::system_error& error) {
    EXPECT_EQ(error.code().value(), ENOENT) << error.what();
  }
  result = arena({"walk", temp_name});
  EXPECT_TRUE(result.exited && result.code == 1) << result.describe();
}

TEST_P(PersistentArenaTest, AnotherUserIsKeptOutUntilChmod) {
  if (!examples_test::running_as_root())
    GTEST_SKIP() << "needs root to run a program as uid " << kNobody;
  const std::string arena_name = name("perm");
  const std::string built =
      line({"build", arena_name, "--nodes=100"}, "built ");
  EXPECT_EQ(field(built, "mode"), "600");

  Result result = arena({"walk", arena_name}, kNobody);
  EXPECT_TRUE(result.exited && result.code == 1) << result.describe();
  EXPECT_NE(result.err.find("Permission denied"), std::string::npos)
      << result.err;

  EXPECT_EQ(field(line({"chmod", arena_name, "0644"}, "chmod "), "mode"),
            "644");
  result = arena({"walk", arena_name}, kNobody);
  ASSERT_TRUE(result.succeeded()) << result.describe();
  EXPECT_EQ(field(lines_starting(result.out, "walked ").at(0), "nodes"), "100");
  // Read permission only: growing needs write access.
  result = arena({"grow", arena_name, "--nodes=1"}, kNobody);
  EXPECT_TRUE(result.exited && result.code == 1) << result.describe();
  EXPECT_NE(result.err.find("Permission denied"), std::string::npos)
      << result.err;
}

TEST_P(PersistentArenaTest, UnlinkWhileInUseKeepsItWorkingForItsUsers) {
  const std::string arena_name = name("unlink");
  line({"build", arena_name, "--nodes=10"}, "built ");
  Region in_use = Region::open(arena_name, Access::ReadWrite, backend());

  EXPECT_EQ(field(line({"unlink", arena_name}, "unlinked "), "name"),
            arena_name);
  Result result = arena({"walk", arena_name});
  EXPECT_TRUE(result.exited && result.code == 1) << result.describe();
  EXPECT_NE(result.err.find("no region"), std::string::npos) << result.err;

  // Those who have it keep using it, growth included.
  const auto& header = *in_use.as<persistent_arena::ArenaHeader>();
  in_use.grow(header.used + persistent_arena::bytes_for(1000));
  persistent_arena::append(in_use, 1000);
  persistent_arena::Walk walk = persistent_arena::walk(in_use);
  EXPECT_EQ(walk.error, "");
  EXPECT_EQ(walk.count, 1010u);
  // So does a process that shares it (a child inherits the mapping).
  int status = in_child([&] {
    persistent_arena::Walk seen = persistent_arena::walk(in_use);
    return seen.error.empty() && seen.count == 1010 ? 0 : 1;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "status " << status;
}

EXAMPLES_INSTANTIATE_BACKENDS(PersistentArenaTest);

}  // namespace
