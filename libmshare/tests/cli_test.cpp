// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The mshare command-line tool: commands, output and exit statuses.
#include <unistd.h>

#include <string>
#include <vector>

#include "mshare/region.hpp"
#include "support.hpp"

namespace {

using libmshare::Access;
using libmshare::Region;
using mshare_test::BackendTest;
using mshare_test::Exit;

struct Result {
  int status = -1;
  std::string out;
};

class CliTest : public BackendTest {
 protected:
  Result run(std::vector<std::string> args) {
    args.insert(args.begin(), {mshare_test::program_path("mshare"),
                               std::string("--backend=") +
                                   mshare_test::backend_argument(backend())});
    Result result;
    Exit exit = mshare_test::run_program(args, &result.out);
    EXPECT_TRUE(exit.exited) << exit.describe();
    result.status = exit.code;
    return result;
  }
};

TEST_P(CliTest, HelpDescribesCommandsAndExitStatuses) {
  Result help = run({"--help"});
  EXPECT_EQ(help.status, 0);
  for (const char* word : {"ls", "stat NAME", "create NAME SIZE", "rm NAME",
                           "--bytes", "Exit status"})
    EXPECT_NE(help.out.find(word), std::string::npos) << word;
}

TEST_P(CliTest, UsageErrorsExitWith2) {
  EXPECT_EQ(run({}).status, 2);
  EXPECT_EQ(run({"frobnicate"}).status, 2);
  EXPECT_EQ(run({"--no-such-option", "ls"}).status, 2);
  EXPECT_EQ(run({"create", name()}).status, 2);
  EXPECT_EQ(run({"create", name(), "12Q"}).status, 2);
  EXPECT_EQ(run({"create", name(), "0"}).status, 2);
  EXPECT_EQ(run({"create", "a/b", "1M"}).status, 2);
  EXPECT_EQ(run({"create", name(), "1M", "--mode=999"}).status, 2);
  EXPECT_EQ(run({"stat"}).status, 2);
}

TEST_P(CliTest, CreateStatListRemoveRoundTrip) {
  const std::string region_name = name();
  Result created = run({"create", region_name, "1M", "--mode", "0640"});
  ASSERT_EQ(created.status, 0) << created.out;
  EXPECT_EQ(created.out.rfind(region_name + " ", 0), 0u) << created.out;
  EXPECT_NE(created.out.find("1.0 MiB"), std::string::npos) << created.out;

  Region region = Region::open(region_name, Access::ReadOnly, backend());
  EXPECT_EQ(region.size(), 1024u * 1024u);
  region.detach();

  Result stat = run({"stat", region_name});
  ASSERT_EQ(stat.status, 0);
  EXPECT_NE(stat.out.find("size:     1.0 MiB"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("mode:     0640"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("owner:    " + std::to_string(geteuid())),
            std::string::npos)
      << stat.out;
  Result bytes = run({"stat", "--bytes", region_name});
  EXPECT_NE(bytes.out.find("size:     1048576\n"), std::string::npos)
      << bytes.out;

  Result list = run({"ls"});
  ASSERT_EQ(list.status, 0);
  EXPECT_EQ(list.out.rfind("NAME", 0), 0u) << list.out;
  std::string row;
  for (std::size_t at = 0; at < list.out.size();) {
    std::size_t end = list.out.find('\n', at);
    std::string line = list.out.substr(at, end - at);
    if (line.rfind(region_name + " ", 0) == 0) row = line;
    at = end + 1;
  }
  ASSERT_FALSE(row.empty()) << list.out;
  EXPECT_NE(row.find(mshare_test::backend_argument(backend())),
            std::string::npos);
  EXPECT_NE(row.find("1.0 MiB"), std::string::npos) << row;
  EXPECT_NE(row.find("0640"), std::string::npos) << row;
  EXPECT_NE(run({"ls", "--bytes"}).out.find("1048576"), std::string::npos);

  EXPECT_EQ(run({"create", region_name, "1M"}).status, 4);
  EXPECT_EQ(run({"rm", region_name}).status, 0);
  EXPECT_EQ(run({"rm", region_name}).status, 3);
  EXPECT_EQ(run({"stat", region_name}).status, 3);
}

TEST_P(CliTest, SizesAcceptBinarySuffixes) {
  const std::string region_name = name();
  ASSERT_EQ(run({"create", region_name, "64KiB", "--populate"}).status, 0);
  Result stat = run({"stat", "--bytes", region_name});
  EXPECT_NE(stat.out.find("size:     65536\n"), std::string::npos) << stat.out;
}

TEST_P(CliTest, PermissionDeniedExitsWith5) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as uid 65534";
  const std::string region_name = name();
  ASSERT_EQ(run({"create", region_name, "4K", "--mode=0600"}).status, 0);
  std::string output;
  Exit exit = mshare_test::run_program(
      {mshare_test::program_path("mshare_test_helper"), "exec-as", "65534",
       mshare_test::program_path("mshare"),
       std::string("--backend=") + mshare_test::backend_argument(backend()),
       "rm", region_name},
      &output);
  EXPECT_TRUE(exit.exited && exit.code == 5) << exit.describe();
  EXPECT_EQ(run({"stat", region_name}).status, 0) << "rm must have failed";
}

MSHARE_INSTANTIATE_BACKENDS(CliTest);

TEST(CliBackend, UnavailableKernelBackendExitsWith6) {
  if (mshare_test::kernel_supported()) GTEST_SKIP() << "msharefs is mounted";
  std::string output;
  Exit exit = mshare_test::run_program(
      {mshare_test::program_path("mshare"), "--backend=kernel", "ls"}, &output);
  EXPECT_TRUE(exit.exited && exit.code == 6) << exit.describe();
}

}  // namespace
