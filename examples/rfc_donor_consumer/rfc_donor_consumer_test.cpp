// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The donor and consumer of the original proposal, on an mshare kernel: the
// region outlives the donor, the consumer learns its start and size from
// msharefs, reads the donor's text and removes it; O_EXCL and the 0600 mode
// are enforced.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "mshare/syscall.h"
#include "testing.hpp"

namespace {

using examples_test::Command;
using examples_test::Result;

constexpr uid_t kNobody = 65534;

class RfcDonorConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!examples_test::kernel_supported())
      GTEST_SKIP() << "msharefs is not mounted at " MSHARE_MOUNT_POINT;
    name_ = examples_test::unique_name("rfc");
  }
  void TearDown() override {
    if (!name_.empty()) mshare_unlink(name_.c_str());  // if still there
  }

  Result run(const char* program, std::optional<uid_t> uid = std::nullopt) {
    Command command;
    command.argv = {examples_test::program(program), name_};
    command.uid = uid;
    return examples_test::run(command);
  }
  std::string path() const { return MSHARE_MOUNT_POINT "/" + name_; }

  std::string name_;
};

TEST_F(RfcDonorConsumerTest, ConsumerReadsWhatTheExitedDonorWroteAndRemovesIt) {
  Result donor = run("rfc_donor");
  ASSERT_TRUE(donor.succeeded()) << donor.describe();
  EXPECT_NE(donor.out.find("wrote \"Some random shared text\""),
            std::string::npos)
      << donor.out;

  // The donor is gone; its region is not.
  struct stat st;
  ASSERT_EQ(stat(path().c_str(), &st), 0) << path();
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());

  Result consumer = run("rfc_consumer");
  ASSERT_TRUE(consumer.succeeded()) << consumer.describe();
  EXPECT_NE(consumer.out.find("INFO: 549755813888 bytes shared at addr "
                              "0x20000000000\n"),
            std::string::npos)
      << consumer.out;
  EXPECT_NE(consumer.out.find("Guest mmap at 0x20000000000:\n"
                              "Some random shared text\n"),
            std::string::npos)
      << consumer.out;
  EXPECT_NE(consumer.out.find("\nDone\n"), std::string::npos) << consumer.out;
  errno = 0;
  EXPECT_EQ(access(path().c_str(), F_OK), -1) << "the consumer unlinked it";
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(RfcDonorConsumerTest, SecondDonorIsRefusedWhileTheRegionExists) {
  ASSERT_TRUE(run("rfc_donor").succeeded());
  Result second = run("rfc_donor");
  EXPECT_TRUE(second.exited && second.code == 1) << second.describe();
  EXPECT_NE(second.err.find("mshare() syscall failed: File exists"),
            std::string::npos)
      << second.err;
}

TEST_F(RfcDonorConsumerTest, ConsumerOfAMissingRegionFailsCleanly) {
  Result consumer = run("rfc_consumer");
  EXPECT_TRUE(consumer.exited && consumer.code == 1) << consumer.describe();
  EXPECT_NE(consumer.err.find("open failed: No such file or directory"),
            std::string::npos)
      << consumer.err;
}

TEST_F(RfcDonorConsumerTest, AnotherUserCannotAttachTheDonors0600Region) {
  if (!examples_test::running_as_root())
    GTEST_SKIP() << "needs root to run a program as uid " << kNobody;
  ASSERT_TRUE(run("rfc_donor").succeeded());
  // The mode of the msharefs file keeps other users out.
  Result other = run("rfc_consumer", kNobody);
  EXPECT_TRUE(other.exited && other.code == 1) << other.describe();
  EXPECT_NE(other.err.find("Permission denied"), std::string::npos)
      << other.err;
  EXPECT_EQ(access(path().c_str(), F_OK), 0) << "still there";
  Result owner = run("rfc_consumer");
  EXPECT_TRUE(owner.succeeded()) << owner.describe();
}

}  // namespace
