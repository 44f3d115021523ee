// SPDX-License-Identifier: LGPL-2.1-or-later
//
// growing_pool on both backends: subscribers that attached before the
// publisher's pool grew read the messages allocated in the new part
// through raw pointers, with no call on the kernel backend and with
// Region::refresh() on the POSIX fallback (without it they fault: the
// original flaw); the pool sits where POOL_ADDRESS says.
#include <signal.h>

#include <cstdlib>
#include <string>

#include "testing.hpp"

namespace {

using examples_test::BackendTest;
using examples_test::Command;
using examples_test::field;
using examples_test::lines_starting;
using examples_test::Result;

class GrowingPoolTest : public BackendTest {
 protected:
  std::string topic() {
    if (topic_.empty()) {
      topic_ = name("pool");
      remove_later(topic_ + ".registry");
    }
    return topic_;
  }
  Command publisher(int messages, int subscribers,
                    std::vector<std::string> env = {}, int timeout = 30) {
    Command result =
        command("growing_pool",
                {"publish", topic(), "--messages=" + std::to_string(messages),
                 "--subscribers=" + std::to_string(subscribers),
                 "--timeout=" + std::to_string(timeout)});
    result.env.insert(result.env.end(), env.begin(), env.end());
    return result;
  }
  Command subscriber(std::vector<std::string> args = {},
                     std::vector<std::string> env = {}) {
    args.insert(args.begin(), {"subscribe", topic(), "--timeout=30"});
    Command result = command("growing_pool", args);
    result.env.insert(result.env.end(), env.begin(), env.end());
    return result;
  }

  // The only line of `output` starting with `prefix`.
  static std::string line(const Result& result, const std::string& prefix) {
    auto lines = lines_starting(result.out, prefix);
    EXPECT_EQ(lines.size(), 1u) << prefix << " in\n" << result.describe();
    return lines.empty() ? std::string() : lines.front();
  }

 private:
  std::string topic_;
};

TEST_P(GrowingPoolTest, SubscribersFollowPointersIntoThePartThePoolGrewBy) {
  const std::vector<Result> results = examples_test::run_together(
      {publisher(800, 2, {"MEMPOOL_SIZE=16K"}), subscriber(), subscriber()});
  const Result& published = results[0];
  ASSERT_TRUE(published.succeeded()) << published.describe();
  const int grows = std::stoi(field(line(published, "published "), "grows"));
  EXPECT_GE(grows, 2) << published.out;
  EXPECT_EQ(lines_starting(published.out, "grow ").size(),
            static_cast<std::size_t>(grows));

  for (std::size_t i = 1; i < results.size(); ++i) {
    const Result& result = results[i];
    ASSERT_TRUE(result.succeeded()) << result.describe();
    const std::string attached = line(result, "subscriber ");
    // Attached before the first growth, read-only.
    EXPECT_EQ(field(attached, "size"), "16384") << attached;
    EXPECT_EQ(field(attached, "access"), "read-only") << attached;
    const std::string received = line(result, "received ");
    EXPECT_EQ(field(received, "messages"), "800") << received;
    EXPECT_GT(std::stoul(field(received, "in-grown-memory")), 400u) << received;
    EXPECT_EQ(lines_starting(result.out, "grown-memory ").size(), 1u);
    const int refreshes = std::stoi(field(received, "refreshes"));
    if (kernel()) {
      EXPECT_EQ(refreshes, 0) << "the grown part needs no call: " << received;
    } else {
      EXPECT_GE(refreshes, 1) << received;
      EXPECT_LE(refreshes, grows) << received;
    }
  }
}

TEST_P(GrowingPoolTest, PoolSitsAtTheAddressFromTheEnvironment) {
  const std::string address = "0x50000000000";  // 5 TiB
  const std::vector<std::string> env = {"POOL_ADDRESS=" + address,
                                        "MEMPOOL_SIZE=8K"};
  const std::vector<Result> results = examples_test::run_together(
      {publisher(200, 1, env), subscriber({}, env)});
  ASSERT_TRUE(results[0].succeeded()) << results[0].describe();
  ASSERT_TRUE(results[1].succeeded()) << results[1].describe();
  EXPECT_EQ(field(line(results[0], "publisher "), "address"), address);
  EXPECT_EQ(field(line(results[1], "subscriber "), "address"), address);
  // The last message, found by following pointers, lies in the grown pool.
  const std::size_t size =
      std::stoul(field(line(results[0], "published "), "size"));
  const std::uintptr_t start = std::stoul(address, nullptr, 16);
  const std::uintptr_t last =
      std::stoul(field(line(results[1], "received "), "last"), nullptr, 16);
  EXPECT_GE(last, start + libmshare::kHeaderSize + 8192);
  EXPECT_LT(last, start + libmshare::kHeaderSize + size);
}

TEST_P(GrowingPoolTest, WithoutRefreshOnlyTheKernelBackendSeesTheGrownPart) {
  const std::vector<Result> results = examples_test::run_together(
      {publisher(400, 1, {"MEMPOOL_SIZE=16K"}, kernel() ? 30 : 3),
       subscriber({"--no-refresh"}, {"MEMPOOL_SIZE=16K"})});
  const Result& result = results[1];
  if (kernel()) {
    ASSERT_TRUE(results[0].succeeded()) << results[0].describe();
    ASSERT_TRUE(result.succeeded()) << result.describe();
    const std::string received = line(result, "received ");
    EXPECT_EQ(field(received, "messages"), "400") << received;
    EXPECT_EQ(field(received, "refreshes"), "0") << received;
  } else {
    // Agnocast's known issue: the first pointer into the new part faults.
    EXPECT_FALSE(result.exited) << result.describe();
    EXPECT_EQ(result.signal, SIGSEGV) << result.describe();
    EXPECT_EQ(lines_starting(result.out, "grown-memory ").size(), 0u);
    // The publisher gives up waiting for the dead subscriber.
    EXPECT_TRUE(results[0].exited && results[0].code == 1)
        << results[0].describe();
    EXPECT_NE(results[0].err.find("timed out"), std::string::npos)
        << results[0].err;
  }
}

TEST_P(GrowingPoolTest, BadPoolAddressesAreClearErrors) {
  Result result = examples_test::run(publisher(10, 0, {"POOL_ADDRESS=banana"}));
  EXPECT_TRUE(result.exited && result.code == 2) << result.describe();
  EXPECT_NE(result.err.find("POOL_ADDRESS=banana is not an address"),
            std::string::npos)
      << result.err;

  // Kernel: not a multiple of 512 GiB; POSIX: not a multiple of a page.
  const std::string misaligned = kernel() ? "0x40000001000" : "0x40000000123";
  result = examples_test::run(publisher(10, 0, {"POOL_ADDRESS=" + misaligned}));
  EXPECT_TRUE(result.exited && result.code == 1) << result.describe();
  EXPECT_NE(result.err.find(misaligned), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("Invalid argument"), std::string::npos)
      << result.err;
}

TEST_P(GrowingPoolTest, DemoRunsAPublisherAndTwoSubscribers) {
  const Result result =
      examples_test::run(command("growing_pool", {"demo", "--messages=300"}));
  ASSERT_TRUE(result.succeeded()) << result.describe();
  EXPECT_EQ(lines_starting(result.out, "demo processes=").at(0),
            "demo processes=3 failed=0");
  EXPECT_EQ(lines_starting(result.out, "received messages=300 ").size(), 2u)
      << result.out;
}

EXAMPLES_INSTANTIATE_BACKENDS(GrowingPoolTest);

}  // namespace
