// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Region in one process: creation, opening, naming, addresses, access,
// growth and shrinking, temporary regions, options and errors, on both
// backends.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "mshare/region.hpp"
#include "mshare/syscall.h"
#include "support.hpp"

namespace {

using libmshare::Access;
using libmshare::Backend;
using libmshare::kHeaderSize;
using libmshare::Options;
using libmshare::Region;
using mshare_test::BackendTest;
using mshare_test::Exit;
using mshare_test::run_in_child;
using namespace std::chrono_literals;

constexpr std::size_t kPage = 4096;

std::string hex(std::uintptr_t value) {
  std::ostringstream text;
  text << "0x" << std::hex << value;
  return text.str();
}

bool is_mapped(std::uintptr_t address) {
  unsigned char vector;
  return mincore(reinterpret_cast<void*>(address), kPage, &vector) == 0;
}

// Minor faults taken to read one byte of every page: none when every page
// is already mapped.  (mincore() cannot tell on the kernel backend: the
// pages belong to the region, not to the process.)
// Not instrumented: ASan would fault in its shadow of the range.
__attribute__((no_sanitize_address)) long faults_reading(std::uintptr_t address,
                                                         std::size_t length) {
  struct rusage before {
  }, after{};
  getrusage(RUSAGE_SELF, &before);
  const volatile char* p = reinterpret_cast<const volatile char*>(address);
  unsigned long sum = 0;
  for (std::size_t off = 0; off < length; off += kPage) sum += p[off];
  getrusage(RUSAGE_SELF, &after);
  (void)sum;
  return after.ru_minflt - before.ru_minflt;
}

// The VmFlags line of the mapping holding `address` in /proc/self/smaps.
std::string vm_flags(std::uintptr_t address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long start = 0;
    unsigned long end = 0;
    char dash = 0;
    std::istringstream fields(line);
    if (fields >> std::hex >> start >> dash >> end && dash == '-') {
      inside = address >= start && address < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line + " ";
    }
  }
  return {};
}

std::size_t window_unit(Backend backend) {
  return backend == Backend::Kernel ? mshare_unit() : kPage;
}

// An address where a region of this backend can be placed in this process.
std::uintptr_t free_address(Backend backend) {
  const std::size_t unit = window_unit(backend);
  const std::size_t length = std::max<std::size_t>(unit, std::size_t{1} << 30);
  for (std::uintptr_t address = std::uintptr_t{48} << 40;
       address < (std::uintptr_t{64} << 40); address += length) {
    void* got =
        mmap(reinterpret_cast<void*>(address), length, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
             -1, 0);
    if (got == MAP_FAILED) continue;
    munmap(got, length);
    if (got == reinterpret_cast<void*>(address)) return address;
  }
  ADD_FAILURE() << "no free address found";
  return 0;
}

class RegionTest : public BackendTest {};

TEST_P(RegionTest, CreateGivesZeroedWritableMemoryAfterTheHeader) {
  Region region = Region::create(name(), options(10000));
  ASSERT_TRUE(region);
  EXPECT_EQ(region.size(), 10000u);
  EXPECT_EQ(region.backend(), backend());
  EXPECT_EQ(region.access(), Access::ReadWrite);
  EXPECT_TRUE(region.created());
  EXPECT_FALSE(region.temporary());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(region.data()),
            region.address() + kHeaderSize);
  EXPECT_EQ(region.address() % window_unit(backend()), 0u);
  auto* bytes = static_cast<unsigned char*>(region.data());
  EXPECT_TRUE(std::all_of(bytes, bytes + region.size(),
                          [](unsigned char b) { return b == 0; }));
  std::memset(bytes, 0xa5, region.size());
  EXPECT_EQ(bytes[region.size() - 1], 0xa5);
}

TEST_P(RegionTest, ReopenedRegionHasSameAddressAndContents) {
  const std::string region_name = name();
  std::uintptr_t address = 0;
  {
    Region region = Region::create(region_name, options(8192));
    std::strcpy(region.as<char>(), "kept across handles");
    address = region.address();
  }
  EXPECT_FALSE(is_mapped(address)) << "the destructor must detach";
  Region reopened = Region::open(region_name, Access::ReadWrite, backend());
  EXPECT_EQ(reopened.address(), address);
  EXPECT_EQ(reopened.size(), 8192u);
  EXPECT_FALSE(reopened.created());
  EXPECT_STREQ(reopened.as<char>(), "kept across handles");
}

TEST_P(RegionTest, SecondHandleInTheSameProcessIsRefusedAndHarmless) {
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  std::strcpy(region.as<char>(), "first");
  try {
    Region second = Region::open(region_name, Access::ReadWrite, backend());
    ADD_FAILURE() << "a second mapping at the same address was allowed";
  } catch (const std::system_error& error) {
    if (backend() == Backend::Posix) {
      EXPECT_EQ(error.code().value(), EEXIST);
    }
    EXPECT_NE(std::string(error.what()).find(region_name), std::string::npos);
  }
  EXPECT_STREQ(region.as<char>(), "first");
}

TEST_P(RegionTest, RejectsInvalidNames) {
  const std::string too_long(libmshare::kMaxNameLength + 1, 'n');
  const std::string names[] = {
      "",         "a/b", "/leading", ".", "..", std::string("nul\0inside", 10),
      "new\nline"};
  std::string message;
  for (const std::string& bad : names) {
    EXPECT_SYSTEM_ERROR(Region::create(bad, options(kPage)), EINVAL, message);
    EXPECT_SYSTEM_ERROR(Region::open(bad, Access::ReadWrite, backend()), EINVAL,
                        message);
    EXPECT_SYSTEM_ERROR(Region::unlink(bad, backend()), EINVAL, message);
  }
  EXPECT_SYSTEM_ERROR(Region::create(too_long, options(kPage)), ENAMETOOLONG,
                      message);
  EXPECT_NE(message.find(too_long), std::string::npos);
}

TEST_P(RegionTest, AcceptsTheLongestName) {
  std::string longest = name("long");
  longest.resize(libmshare::kMaxNameLength, 'x');
  Region region = Region::create(longest, options(kPage));
  EXPECT_EQ(region.name(), longest);
  Region::unlink(longest, backend());
}

TEST_P(RegionTest, RejectsSizeZeroAndLeavesNothingBehind) {
  const std::string region_name = name();
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::create(region_name, options(0)), EINVAL, message);
  EXPECT_NE(message.find("size 0"), std::string::npos) << message;
  EXPECT_NE(message.find(region_name), std::string::npos) << message;
  EXPECT_SYSTEM_ERROR(Region::stat(region_name, backend()), ENOENT, message);
}

TEST_P(RegionTest, RejectsModeBitsOutside0777) {
  Options bad = options(kPage);
  bad.mode = 04755;
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::create(name(), bad), EINVAL, message);
}

TEST_P(RegionTest, CreateOfAnExistingNameFailsWithEEXIST) {
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  std::strcpy(region.as<char>(), "original");
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::create(region_name, options(kPage)), EEXIST,
                      message);
  EXPECT_NE(message.find(region_name), std::string::npos) << message;
  EXPECT_STREQ(region.as<char>(), "original");
}

TEST_P(RegionTest, OpenOfAMissingRegionFailsWithENOENT) {
  const std::string region_name = name();
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::open(region_name, Access::ReadWrite, backend()),
                      ENOENT, message);
  EXPECT_NE(message.find(region_name), std::string::npos) << message;
  EXPECT_SYSTEM_ERROR(Region::open(region_name, Access::ReadOnly, backend()),
                      ENOENT, message);
  EXPECT_SYSTEM_ERROR(Region::unlink(region_name, backend()), ENOENT, message);
}

TEST_P(RegionTest, UnlinkRemovesTheNameButNotAttachedMemory) {
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  std::strcpy(region.as<char>(), "still here");
  Region::unlink(region_name, backend());
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::stat(region_name, backend()), ENOENT, message);
  EXPECT_STREQ(region.as<char>(), "still here");
  region.as<char>()[0] = 'S';
  region.detach();
  Region fresh = Region::create(region_name, options(kPage));
  EXPECT_EQ(fresh.as<char>()[0], 0) << "a new region must not reuse memory";
}

TEST_P(RegionTest, AddressInUseIsRefusedWithoutTouchingTheMapping) {
  const std::uintptr_t address = free_address(backend());
  ASSERT_NE(address, 0u);
  void* mine =
      mmap(reinterpret_cast<void*>(address), kPage, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(mine, reinterpret_cast<void*>(address));
  *static_cast<unsigned char*>(mine) = 0x77;

  const std::string region_name = name();
  Options at = options(kPage);
  at.address = address;
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::create(region_name, at), EEXIST, message);
  EXPECT_NE(message.find(hex(address)), std::string::npos) << message;
  EXPECT_NE(message.find(region_name), std::string::npos) << message;
  EXPECT_NE(message.find("in use"), std::string::npos) << message;
  EXPECT_EQ(*static_cast<unsigned char*>(mine), 0x77);
  EXPECT_SYSTEM_ERROR(Region::stat(region_name, backend()), ENOENT, message);
  munmap(mine, kPage);
}

TEST_P(RegionTest, CreatesAtTheRequestedAddress) {
  const std::uintptr_t address = free_address(backend());
  ASSERT_NE(address, 0u);
  const std::string region_name = name();
  Options at = options(3 * kPage);
  at.address = address;
  {
    Region region = Region::create(region_name, at);
    EXPECT_EQ(region.address(), address);
  }
  Region reopened = Region::open(region_name, Access::ReadOnly, backend());
  EXPECT_EQ(reopened.address(), address);
}

TEST_P(RegionTest, RejectsAMisalignedAddress) {
  Options at = options(kPage);
  at.address = free_address(backend()) + window_unit(backend()) / 2;
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::create(name(), at), EINVAL, message);
  EXPECT_NE(message.find(hex(at.address)), std::string::npos) << message;
}

TEST_P(RegionTest, ReadOnlyOpenReadsButItsWritesFault) {
  const std::string region_name = name();
  {
    Region region = Region::create(region_name, options(kPage));
    region.as<char>()[0] = 42;
  }
  Region reader = Region::open(region_name, Access::ReadOnly, backend());
  EXPECT_EQ(reader.access(), Access::ReadOnly);
  EXPECT_EQ(reader.as<char>()[0], 42);
  Exit exit = run_in_child([&] {
    signal(SIGSEGV, SIG_DFL);
    *static_cast<volatile char*>(reader.data()) = 1;
    return 0;
  });
  EXPECT_FALSE(exit.exited) << exit.describe();
  EXPECT_EQ(exit.signal, SIGSEGV) << exit.describe();
  std::string message;
  EXPECT_SYSTEM_ERROR(reader.grow(2 * kPage), EPERM, message);
  EXPECT_EQ(reader.as<char>()[0], 42);
}

TEST_P(RegionTest, GrowKeepsAddressAndContentsAndAddsZeroedMemory) {
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  const std::uintptr_t address = region.address();
  std::memset(region.data(), 0x11, kPage);

  const std::size_t grown = 3 * 1024 * 1024 + 5;
  region.grow(grown);
  EXPECT_EQ(region.address(), address);
  EXPECT_EQ(region.size(), grown);
  auto* bytes = region.as<unsigned char>();
  EXPECT_TRUE(std::all_of(bytes, bytes + kPage,
                          [](unsigned char b) { return b == 0x11; }));
  EXPECT_TRUE(std::all_of(bytes + kPage, bytes + grown,
                          [](unsigned char b) { return b == 0; }));
  bytes[grown - 1] = 0x22;

  std::string message;
  EXPECT_SYSTEM_ERROR(region.grow(kPage), EINVAL, message);
  EXPECT_NE(message.find(std::to_string(grown)), std::string::npos) << message;
  region.grow(grown);  // same size: nothing to do
  EXPECT_FALSE(region.refresh());

  region.detach();
  Region reopened = Region::open(region_name, Access::ReadOnly, backend());
  EXPECT_EQ(reopened.size(), grown);
  EXPECT_EQ(reopened.as<unsigned char>()[grown - 1], 0x22);
}

TEST_P(RegionTest, ShrinkKeepsTheStartAndThePartPastTheEndRaisesSIGBUS) {
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  const std::uintptr_t address = region.address();
  const std::size_t grown = 64 * kPage;
  region.grow(grown);
  std::memset(region.data(), 0x33, grown);
  auto* bytes = region.as<unsigned char>();
  volatile unsigned char* gone = bytes + 32 * kPage;

  // A process that mapped the region before the shrink.
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::fflush(nullptr);
  const pid_t other = fork();
  ASSERT_GE(other, 0);
  if (other == 0) {
    close(go[1]);
    char byte;
    if (read(go[0], &byte, 1) != 1) _exit(1);
    if (!region.refresh() || region.size() != 2 * kPage) _exit(2);
    signal(SIGBUS, SIG_DFL);
    _exit(*gone);
  }
  close(go[0]);

  region.shrink(2 * kPage);
  EXPECT_EQ(region.address(), address);
  EXPECT_EQ(region.size(), 2 * kPage);
  EXPECT_FALSE(region.refresh());
  EXPECT_TRUE(std::all_of(bytes, bytes + 2 * kPage,
                          [](unsigned char b) { return b == 0x33; }));
  if (backend() == Backend::Posix) {
    struct stat st;
    ASSERT_EQ(::stat(("/dev/shm/mshare." + region_name).c_str(), &st), 0);
    EXPECT_EQ(static_cast<std::size_t>(st.st_size), kHeaderSize + 2 * kPage);
  }

  ASSERT_EQ(write(go[1], "g", 1), 1);
  close(go[1]);
  int status = 0;
  ASSERT_EQ(waitpid(other, &status, 0), other);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
      << "status " << status;
  Exit exit = run_in_child([&] {
    signal(SIGBUS, SIG_DFL);
    return *gone;
  });
  EXPECT_EQ(exit.signal, SIGBUS) << exit.describe();

  // Growing again brings zeroed memory back at the same address.
  region.grow(grown);
  EXPECT_EQ(region.address(), address);
  EXPECT_EQ(*gone, 0);
  EXPECT_EQ(bytes[2 * kPage - 1], 0x33);
  region.detach();
  Region reopened = Region::open(region_name, Access::ReadOnly, backend());
  EXPECT_EQ(reopened.size(), grown);
}

TEST_P(RegionTest, ShrinkRejectsZeroALargerSizeAndReadOnlyHandles) {
  const std::string region_name = name();
  Region region = Region::create(region_name, options(4 * kPage));
  std::string message;
  EXPECT_SYSTEM_ERROR(region.shrink(0), EINVAL, message);
  EXPECT_SYSTEM_ERROR(region.shrink(5 * kPage), EINVAL, message);
  EXPECT_NE(message.find("grow()"), std::string::npos) << message;
  EXPECT_SYSTEM_ERROR(region.grow(kPage), EINVAL, message);
  EXPECT_NE(message.find("shrink()"), std::string::npos) << message;
  region.shrink(4 * kPage);  // same size: nothing to do
  EXPECT_EQ(region.size(), 4 * kPage);
  region.detach();
  Region reader = Region::open(region_name, Access::ReadOnly, backend());
  EXPECT_SYSTEM_ERROR(reader.shrink(kPage), EPERM, message);
  EXPECT_EQ(reader.size(), 4 * kPage);
}

TEST_P(RegionTest, OpenOrCreateCreatesOnceThenOpens) {
  const std::string region_name = name();
  Region first = Region::open_or_create(region_name, options(8192));
  EXPECT_TRUE(first.created());
  std::strcpy(first.as<char>(), "made by the first caller");
  first.detach();
  Region second = Region::open_or_create(region_name, options(8192));
  EXPECT_FALSE(second.created());
  EXPECT_EQ(second.size(), 8192u);
  EXPECT_STREQ(second.as<char>(), "made by the first caller");
}

TEST_P(RegionTest, OpenOrCreateRejectsADifferentSizeNamingBoth) {
  const std::string region_name = name();
  Region::create(region_name, options(8192)).detach();
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::open_or_create(region_name, options(16384)),
                      EINVAL, message);
  EXPECT_NE(message.find("8192"), std::string::npos) << message;
  EXPECT_NE(message.find("16384"), std::string::npos) << message;
  EXPECT_NE(message.find(region_name), std::string::npos) << message;
}

TEST_P(RegionTest, InitializeRunsOnlyInTheCreatorBeforeOthersSeeTheRegion) {
  const std::string region_name = name();
  int calls = 0;
  Options with_init = options(kPage);
  with_init.initialize = [&](void* data, std::size_t size) {
    ++calls;
    EXPECT_EQ(size, kPage);
    std::memset(data, 0xab, size);
  };
  Region::open_or_create(region_name, with_init).detach();
  Region opened = Region::open_or_create(region_name, with_init);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(opened.as<unsigned char>()[kPage - 1], 0xab);
}

TEST_P(RegionTest, FailingInitializeLeavesNoRegion) {
  const std::string region_name = name();
  Options with_init = options(kPage);
  with_init.initialize = [](void*, std::size_t) {
    throw std::runtime_error("initialisation failed");
  };
  EXPECT_THROW(Region::create(region_name, with_init), std::runtime_error);
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::stat(region_name, backend()), ENOENT, message);
}

TEST_P(RegionTest, TemporaryRegionIsRemovedWithItsCreator) {
  std::string temp_name;
  std::uintptr_t address = 0;
  {
    Region temp = Region::create_temp(options(kPage));
    temp_name = temp.name();
    address = temp.address();
    EXPECT_TRUE(temp.temporary());
    EXPECT_EQ(temp_name.rfind("tmp.", 0), 0u) << temp_name;
    EXPECT_EQ(Region::stat(temp_name, backend()).name, temp_name);
  }
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::stat(temp_name, backend()), ENOENT, message);
  EXPECT_FALSE(is_mapped(address));
}

TEST_P(RegionTest, TemporaryRegionsHaveDistinctNames) {
  Region a = Region::create_temp(options(kPage));
  Region b = Region::create_temp(options(kPage));
  EXPECT_NE(a.name(), b.name());
  EXPECT_NE(a.address(), b.address());
}

TEST_P(RegionTest, TemporaryRegionSurvivesAForkedChildDroppingIt) {
  Region temp = Region::create_temp(options(kPage));
  Exit exit = run_in_child([&] {
    temp.detach();
    return 0;
  });
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.describe();
  EXPECT_EQ(Region::stat(temp.name(), backend()).name, temp.name());
}

TEST_P(RegionTest, MoveTransfersOwnershipOnce) {
  Region a = Region::create(name(), options(kPage));
  const std::uintptr_t address = a.address();
  Region b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.address(), address);

  Region c = Region::create(name(), options(kPage));
  const std::uintptr_t replaced = c.address();
  c = std::move(b);
  EXPECT_FALSE(is_mapped(replaced)) << "assignment must detach the old region";
  EXPECT_EQ(c.address(), address);
  EXPECT_TRUE(is_mapped(address));
  c.detach();
  EXPECT_FALSE(c);
  EXPECT_FALSE(is_mapped(address));
}

TEST_P(RegionTest, PopulateMapsEveryPageUpFront) {
  const std::size_t size = 4 * 1024 * 1024;
  const std::size_t length = kHeaderSize + size;
  Region lazy = Region::create(name(), options(size));
  EXPECT_GT(faults_reading(lazy.address(), length), 0);
  Options populate = options(size);
  populate.populate = true;
  Region eager = Region::create(name(), populate);
  EXPECT_EQ(faults_reading(eager.address(), length), 0);
  eager.grow(2 * size);
  EXPECT_EQ(faults_reading(eager.address(), kHeaderSize + 2 * size), 0);
}

TEST_P(RegionTest, PopulateFailsWithENOMEMWhenMemoryIsShort) {
  if (backend() == Backend::Kernel)
    GTEST_SKIP() << "kernel backend memory is a memfd without a size limit: "
                    "exhausting it would wake the OOM killer";
  const std::string region_name = name();
  Options huge = options(std::size_t{1} << 45);
  huge.populate = true;
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::create(region_name, huge), ENOMEM, message);
  EXPECT_NE(message.find("fallocate"), std::string::npos) << message;
  EXPECT_SYSTEM_ERROR(Region::stat(region_name, backend()), ENOENT, message);
}

TEST_P(RegionTest, HugePagesAdviseTransparentHugePages) {
  Options huge = options(4 * 1024 * 1024);
  huge.huge_pages = true;
  Region advised = Region::create(name(), huge);
  if (backend() == Backend::Kernel)
    GTEST_SKIP() << "the advice applies to the region's memory in the kernel; "
                    "this process's smaps shows only its window";
  EXPECT_NE(vm_flags(advised.address()).find(" hg "), std::string::npos)
      << vm_flags(advised.address());
  Region plain = Region::create(name(), options(4 * 1024 * 1024));
  EXPECT_EQ(vm_flags(plain.address()).find(" hg "), std::string::npos)
      << vm_flags(plain.address());
}

TEST_P(RegionTest, ModeIsExactAndCanBeChangedWithOwner) {
  const std::string region_name = name();
  const mode_t old_umask = umask(077);
  Options opts = options(kPage);
  opts.mode = 0644;
  Region region = Region::create(region_name, opts);
  umask(old_umask);
  EXPECT_EQ(Region::stat(region_name, backend()).mode, 0644u);
  region.set_mode(0640);
  EXPECT_EQ(Region::stat(region_name, backend()).mode, 0640u);
  std::string message;
  EXPECT_SYSTEM_ERROR(region.set_mode(01777), EINVAL, message);
  if (geteuid() == 0) {
    region.set_owner(65534, 65534);
    auto info = Region::stat(region_name, backend());
    EXPECT_EQ(info.uid, 65534u);
    EXPECT_EQ(info.gid, 65534u);
  }
}

TEST_P(RegionTest, StatAndListDescribeTheRegion) {
  const std::string region_name = name();
  Options opts = options(12345);
  opts.mode = 0640;
  Region region = Region::create(region_name, opts);
  auto info = Region::stat(region_name, backend());
  EXPECT_EQ(info.name, region_name);
  EXPECT_EQ(info.backend, backend());
  EXPECT_EQ(info.address, region.address());
  EXPECT_TRUE(info.readable);
  EXPECT_EQ(info.size, 12345u);
  EXPECT_GE(info.reserved, kHeaderSize + 12345);
  EXPECT_EQ(info.mode, 0640u);
  EXPECT_EQ(info.uid, geteuid());
  auto all = Region::list(backend());
  EXPECT_TRUE(std::any_of(all.begin(), all.end(), [&](const auto& entry) {
    return entry.name == region_name && entry.size == 12345u;
  }));
}

MSHARE_INSTANTIATE_BACKENDS(RegionTest);

// Backend selection --------------------------------------------------------

class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnvironment() {
    if (old_.empty())
      unsetenv(name_);
    else
      setenv(name_, old_.c_str(), 1);
  }

 private:
  const char* name_;
  std::string old_;
};

TEST(BackendSelection, EnvironmentChoosesTheBackendForAuto) {
  {
    ScopedEnvironment posix("MSHARE_BACKEND", "posix");
    EXPECT_EQ(Region::default_backend(), Backend::Posix);
    Options opts;
    opts.size = kPage;
    Region temp = Region::create_temp(opts);
    EXPECT_EQ(temp.backend(), Backend::Posix);
  }
  {
    ScopedEnvironment bogus("MSHARE_BACKEND", "bogus");
    std::string message;
    EXPECT_SYSTEM_ERROR(Region::default_backend(), EINVAL, message);
    EXPECT_NE(message.find("MSHARE_BACKEND"), std::string::npos) << message;
  }
  {
    ScopedEnvironment unset("MSHARE_BACKEND", nullptr);
    EXPECT_EQ(Region::default_backend(), mshare_test::kernel_supported()
                                             ? Backend::Kernel
                                             : Backend::Posix);
  }
}

TEST(BackendSelection, ExplicitBackendIsNotOverriddenByTheEnvironment) {
  ScopedEnvironment kernel("MSHARE_BACKEND", "kernel");
  Options opts;
  opts.size = kPage;
  opts.backend = Backend::Posix;
  Region temp = Region::create_temp(opts);
  EXPECT_EQ(temp.backend(), Backend::Posix);
}

TEST(BackendSelection, KernelBackendWithoutMsharefsIsRefused) {
  if (mshare_test::kernel_supported())
    GTEST_SKIP() << "msharefs is mounted here";
  Options opts;
  opts.size = kPage;
  opts.backend = Backend::Kernel;
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::create(mshare_test::unique_name("k"), opts),
                      EOPNOTSUPP, message);
  EXPECT_NE(message.find(MSHARE_MOUNT_POINT), std::string::npos) << message;
}

TEST(BackendSelection, AutoOpenFindsAPosixRegion) {
  ScopedEnvironment unset("MSHARE_BACKEND", nullptr);
  const std::string region_name = mshare_test::unique_name("auto");
  Options opts;
  opts.size = kPage;
  opts.backend = Backend::Posix;
  Region::create(region_name, opts).detach();
  Region opened = Region::open(region_name);
  EXPECT_EQ(opened.backend(), Backend::Posix);
  opened.detach();
  Region::unlink(region_name);
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::stat(region_name, Backend::Posix), ENOENT,
                      message);
}

// Posix backend internals --------------------------------------------------

class PosixObject {
 public:
  explicit PosixObject(const std::string& region_name)
      : object_("/mshare." + region_name) {
    fd_ = shm_open(object_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  }
  ~PosixObject() {
    if (fd_ >= 0) close(fd_);
    shm_unlink(object_.c_str());
  }
  int fd() const { return fd_; }

 private:
  std::string object_;
  int fd_ = -1;
};

TEST(PosixBackend, RegionIsAnObjectInDevShm) {
  Options opts;
  opts.size = 10000;
  opts.backend = Backend::Posix;
  Region temp = Region::create_temp(opts);
  struct stat st;
  ASSERT_EQ(::stat(("/dev/shm/mshare." + temp.name()).c_str(), &st), 0);
  EXPECT_EQ(static_cast<std::size_t>(st.st_size), kHeaderSize + 3 * kPage);
}

TEST(PosixBackend, DeadCreatorIsReportedAsStaleAfterTheTimeout) {
  const std::string region_name = mshare_test::unique_name("stale");
  PosixObject object(region_name);  // created, never sized nor published
  ASSERT_GE(object.fd(), 0);
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  EXPECT_SYSTEM_ERROR(
      Region::open(region_name, Access::ReadWrite, Backend::Posix, 200ms),
      ETIMEDOUT, message);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 3s);
  EXPECT_NE(message.find("stale"), std::string::npos) << message;
  EXPECT_NE(message.find("/dev/shm/mshare." + region_name), std::string::npos)
      << message;

  Options opts;
  opts.size = kPage;
  opts.backend = Backend::Posix;
  opts.wait_timeout = 100ms;
  EXPECT_SYSTEM_ERROR(Region::open_or_create(region_name, opts), ETIMEDOUT,
                      message);
  // The documented recovery: remove the stale object, then create.
  Region::unlink(region_name, Backend::Posix);
  Region recovered = Region::open_or_create(region_name, opts);
  EXPECT_TRUE(recovered.created());
}

TEST(PosixBackend, LiveCreatorIsReportedAsStillInitialising) {
  const std::string region_name = mshare_test::unique_name("slow");
  PosixObject object(region_name);
  ASSERT_GE(object.fd(), 0);
  ASSERT_EQ(ftruncate(object.fd(), 2 * kHeaderSize), 0);
  ASSERT_EQ(flock(object.fd(), LOCK_EX), 0);
  std::string message;
  EXPECT_SYSTEM_ERROR(
      Region::open(region_name, Access::ReadOnly, Backend::Posix, 100ms),
      ETIMEDOUT, message);
  EXPECT_NE(message.find("still initialising"), std::string::npos) << message;
}

TEST(PosixBackend, ForeignObjectIsRejected) {
  const std::string region_name = mshare_test::unique_name("foreign");
  PosixObject object(region_name);
  ASSERT_GE(object.fd(), 0);
  ASSERT_EQ(ftruncate(object.fd(), 2 * kHeaderSize), 0);
  const std::uint32_t garbage[4] = {1, 0xdeadbeef, 1, 4096};
  ASSERT_EQ(pwrite(object.fd(), garbage, sizeof(garbage), 0),
            static_cast<ssize_t>(sizeof(garbage)));
  std::string message;
  EXPECT_SYSTEM_ERROR(
      Region::open(region_name, Access::ReadOnly, Backend::Posix, 100ms),
      EPROTO, message);
  EXPECT_NE(message.find("not a libmshare region"), std::string::npos)
      << message;
}

// Kernel backend specifics -------------------------------------------------

class KernelBackendTest : public BackendTest {};

TEST_P(KernelBackendTest, RegionOwnsWholeUnitsAndTheRestIsAHole) {
  if (backend() != Backend::Kernel) GTEST_SKIP() << "kernel backend only";
  const std::size_t unit = mshare_unit();
  ASSERT_NE(unit, 0u);
  const std::string region_name = name();
  Region region = Region::create(region_name, options(kPage));
  EXPECT_EQ(region.address() % unit, 0u);
  auto info = Region::stat(region_name, backend());
  EXPECT_EQ(info.address, region.address());
  EXPECT_EQ(info.reserved, unit);
  const std::uintptr_t hole = region.address() + kHeaderSize + kPage;
  Exit exit = run_in_child([&] {
    signal(SIGBUS, SIG_DFL);
    return *reinterpret_cast<volatile char*>(hole);
  });
  EXPECT_EQ(exit.signal, SIGBUS) << exit.describe();
}

TEST_P(KernelBackendTest, GrowthBeyondTheWindowFailsWithEFBIG) {
  if (backend() != Backend::Kernel) GTEST_SKIP() << "kernel backend only";
  Region region = Region::create(name(), options(kPage));
  std::string message;
  EXPECT_SYSTEM_ERROR(region.grow(mshare_unit()), EFBIG, message);
}

// The first address slot the library tries for `name`: FNV-1a of the name
// among the unit-sized slots of [32 TiB, 80 TiB).
std::uintptr_t first_candidate(const std::string& name, std::size_t unit) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  const std::uintptr_t first =
      ((std::uintptr_t{32} << 40) + unit - 1) / unit * unit;
  const std::size_t slots = ((std::uintptr_t{80} << 40) - first) / unit;
  return first + hash % slots * unit;
}

TEST_P(KernelBackendTest, PlacementSkipsAReadOnlyWindowOfThisProcess) {
  if (backend() != Backend::Kernel) GTEST_SKIP() << "kernel backend only";
  const std::size_t unit = mshare_unit();
  const std::string first_name = name("ro");
  Region::create(first_name, options(kPage)).detach();
  // The kernel refuses any mmap inside a read-only window (EACCES).
  Region reader = Region::open(first_name, Access::ReadOnly, backend());

  std::string colliding = name("c");
  while (first_candidate(colliding, unit) != reader.address())
    colliding = name("c");
  Region other = Region::create(colliding, options(kPage));
  EXPECT_NE(other.address(), reader.address());

  Options at = options(kPage);
  at.address = reader.address();
  std::string message;
  EXPECT_SYSTEM_ERROR(Region::create(name("at"), at), EEXIST, message);
  EXPECT_NE(message.find("already in use"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Backends, KernelBackendTest,
                         ::testing::Values(Backend::Kernel),
                         mshare_test::backend_test_name);

}  // namespace
