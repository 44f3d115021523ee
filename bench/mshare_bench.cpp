// SPDX-License-Identifier: GPL-2.0
//
// mshare_bench: what sharing page tables saves, beside what programs use
// instead, measured in one run.
//
// For each backend, populated size S and number N of attaching processes:
// a creator populates a region of S bytes and exits; N processes attach it
// one after another, each reading every page once; while all N are
// attached the parent reads PageTables and MemFree from /proc/meminfo;
// then they detach one after another.  N idle processes forked the same
// way are measured too, and what they cost is subtracted.
//
// The console gets a progress line per cell, then a table, the ratios
// against POSIX shm with 4 KiB pages, the targets and the CSV, each
// between "### NAME BEGIN" and "### NAME END" lines: the console is the
// only way out of the guest (scripts/bench.sh extracts them).
//
//   mshare_bench [--backends=LIST] [--procs=LIST] [--sizes=LIST]
//                [--samples=K] [--repeats=R] [--timed-readers=K]
//                [--csv=FILE] [--tap]
#include <fcntl.h>
#include <getopt.h>
#include <linux/mshare.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include <mshare/region.hpp>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kGiB = std::size_t{1} << 30;
constexpr std::size_t kHugePage = 2 * kMiB;
constexpr std::uintptr_t kUnit = std::uintptr_t{512} << 30;
// mshare's window, at 2 TiB as in the original proposal.
constexpr std::uintptr_t kMshareBase = std::uintptr_t{2} << 40;
// hugetlb at a 1 GiB-aligned address in the first 512 GiB, where every
// process already has the upper tables: its best case.
constexpr std::uintptr_t kHugetlbBase = std::uintptr_t{64} << 30;

[[noreturn]] void fail(const std::string& what, int error = errno) {
  throw std::system_error(error, std::generic_category(), what);
}

// The guest's clocksource is refined-jiffies (the kernel finds the TSCs
// of TCG's vCPUs unsynchronized), so clock_gettime() ticks in 4 ms steps.
// The TSC itself is QEMU's host-based counter, the same on every vCPU:
// time with it, at the rate the kernel calibrated against the PIT.
double tsc_per_ns = 0;
std::string tsc_source;

void calibrate_tsc(double given_mhz) {
  if (given_mhz > 0) {
    tsc_per_ns = given_mhz / 1000;
    tsc_source = "given";
    return;
  }
  int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
  char record[1024];
  double mhz = 0;
  while (fd >= 0) {
    ssize_t n = read(fd, record, sizeof(record) - 1);
    if (n < 0 && errno == EPIPE) continue;  // overwritten records
    if (n <= 0) break;
    record[n] = 0;
    const char* text = std::strchr(record, ';');
    double value;
    if (text &&
        (std::sscanf(text + 1, "tsc: Detected %lf MHz", &value) == 1 ||
         std::sscanf(text + 1,
                     "tsc: Refined TSC clocksource calibration: %lf MHz",
                     &value) == 1))
      mhz = value;
  }
  if (fd >= 0) close(fd);
  if (mhz > 0) {
    tsc_per_ns = mhz / 1000;
    tsc_source = "the guest kernel's calibration";
    return;
  }
  timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  std::uint64_t t0 = __rdtsc();
  usleep(2000000);
  clock_gettime(CLOCK_MONOTONIC, &b);
  std::uint64_t t1 = __rdtsc();
  double ns = double(b.tv_sec - a.tv_sec) * 1e9 + double(b.tv_nsec - a.tv_nsec);
  tsc_per_ns = double(t1 - t0) / ns;
  tsc_source = "measured over 2 s";
}

std::uint64_t now_ns() { return std::uint64_t(double(__rdtsc()) / tsc_per_ns); }

long minor_faults() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

std::size_t round_up(std::size_t value, std::size_t unit) {
  return (value + unit - 1) / unit * unit;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY);
  if (fd < 0) fail("open " + path);
  ssize_t done = write(fd, value.data(), value.size());
  int error = errno;
  close(fd);
  if (done != ssize_t(value.size()))
    fail("write " + value + " to " + path, error);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A sysctl or sysfs setting changed for a while and restored after.
class Setting {
 public:
  Setting(std::string path, const std::string& value) : path_(std::move(path)) {
    old_ = trim(read_text(path_));
    // "always [never] ..." lists the choices with the current one in [].
    auto open = old_.find('['), close = old_.find(']');
    if (open != std::string::npos && close != std::string::npos)
      old_ = old_.substr(open + 1, close - open - 1);
    write_text(path_, value);
  }
  Setting(const Setting&) = delete;
  Setting& operator=(const Setting&) = delete;
  ~Setting() {
    try {
      write_text(path_, old_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "restoring %s: %s\n", path_.c_str(), e.what());
    }
  }

 private:
  std::string path_, old_;
};

// /proc/meminfo after page-table frees and per-CPU counters have settled.
struct Meminfo {
  long mem_free = 0, mem_available = 0, mem_total = 0, page_tables = 0;
  long huge_free = 0, huge_total = 0, huge_size = 0, shmem_huge = 0;

  long huge_used_kib() const { return (huge_total - huge_free) * huge_size; }
  // Memory in use beyond MemFree: hugetlb pages come out of a pool.
  long used_kib() const { return mem_total - mem_free + huge_used_kib(); }
};

Meminfo meminfo() {
  // Page tables of exited processes are freed after an RCU grace period,
  // and PageTables folds per-CPU deltas only every second: wait, then
  // fold them now.
  usleep(300000);
  try {
    write_text("/proc/sys/vm/stat_refresh", "1");
  } catch (const std::exception&) {
  }
  Meminfo m;
  std::ifstream in("/proc/meminfo");
  std::string key;
  long value;
  while (in >> key >> value) {
    if (key == "MemFree:") m.mem_free = value;
    if (key == "MemTotal:") m.mem_total = value;
    if (key == "MemAvailable:") m.mem_available = value;
    if (key == "PageTables:") m.page_tables = value;
    if (key == "HugePages_Total:") m.huge_total = value;
    if (key == "HugePages_Free:") m.huge_free = value;
    if (key == "Hugepagesize:") m.huge_size = value;
    if (key == "ShmemHugePages:") m.shmem_huge = value;
    in.ignore(256, '\n');
  }
  return m;
}

long vmpte_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmPTE:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// The creator writes page index + 1 in the first word of every page; an
// attacher that reads them all knows it saw the right memory.
void mark_pages(void* data, std::size_t size) {
  auto* words = static_cast<std::uint64_t*>(data);
  for (std::size_t page = 0; page < size / kPage; ++page)
    words[page * (kPage / 8)] = page + 1;
}

std::uint64_t expected_sum(std::size_t size) {
  std::uint64_t pages = size / kPage;
  return pages * (pages + 1) / 2;
}

__attribute__((noinline)) std::uint64_t read_every_page(
    const volatile std::uint64_t* words, std::size_t size) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < size / 8; i += kPage / 8) sum += words[i];
  return sum;
}

// One thread: two allocating at once contend on the zone lock, and under
// TCG on a busy host a vCPU holding it can be descheduled while the other
// spins (measured: 256 MiB took 5.5 s or 30 s with two threads).
void populate_write(void* p, std::size_t size, const char* what) {
  if (madvise(p, size, MADV_POPULATE_WRITE) != 0)
    fail(std::string("MADV_POPULATE_WRITE ") + what);
}

int usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

// --- Backends ------------------------------------------------------------
//
// create() runs in a child that exits afterwards, attach() and detach() in
// attacher children, setup(), destroy() and teardown() in the parent.

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual void setup(std::size_t size) { size_ = size; }
  virtual void create() = 0;
  // Attach read-only; returns where the S populated bytes start.
  virtual const void* attach() = 0;
  virtual void detach() = 0;
  virtual void destroy() = 0;
  virtual void teardown() {}
  // Several regions of one backend at once need their own names (and, for
  // mshare, their own 512 GiB windows).
  void set_instance(int instance) { instance_ = instance; }

 protected:
  // Unique per backend too: regions of several backends live at once, and
  // libmshare's kernel backend shares msharefs with mshare, its POSIX one
  // /dev/shm with shm-4k and shm-thp.
  std::string region_name() const {
    return "bench." + std::to_string(getpid_of_parent_) + "." + name() + "." +
           std::to_string(instance_);
  }
  std::size_t size_ = 0;
  int instance_ = 0;
  pid_t getpid_of_parent_ = getpid();
};

// mshare(2) called directly: the window at 2 TiB (the next 512 GiB for
// the next instance).
class MshareBackend : public Backend {
 public:
  const char* name() const override { return "mshare"; }
  void create() override {
    void* p =
        mmap(reinterpret_cast<void*>(base()), size_, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) fail("mmap in the window");
    populate_write(p, size_, "mshare");
    mark_pages(p, size_);
    if (syscall(__NR_mshare, region_name().c_str(), base(), kUnit,
                O_CREAT | O_EXCL | O_RDWR, 0600) != 0)
      fail("mshare create");
  }
  const void* attach() override {
    if (syscall(__NR_mshare, region_name().c_str(), base(), kUnit, O_RDONLY,
                0) != 0)
      fail("mshare attach");
    return reinterpret_cast<const void*>(base());
  }
  void detach() override {
    if (munmap(reinterpret_cast<void*>(base()), kUnit) != 0)
      fail("munmap window");
  }
  void destroy() override {
    if (syscall(__NR_mshare_unlink, region_name().c_str()) != 0)
      fail("mshare_unlink");
  }

 private:
  std::uintptr_t base() const { return kMshareBase + instance_ * kUnit; }
};

// libmshare's Region over either of its backends.
class LibmshareBackend : public Backend {
 public:
  LibmshareBackend(libmshare::Backend backend, const char* name)
      : backend_(backend), name_(name) {}
  const char* name() const override { return name_; }
  void create() override {
    libmshare::Options options;
    options.size = size_;
    options.populate = true;
    options.backend = backend_;
    libmshare::Region region =
        libmshare::Region::create(region_name(), options);
    mark_pages(region.data(), size_);
  }
  const void* attach() override {
    region_ = libmshare::Region::open(region_name(),
                                      libmshare::Access::ReadOnly, backend_);
    return region_.data();
  }
  void detach() override { region_.detach(); }
  void destroy() override {
    libmshare::Region::unlink(region_name(), backend_);
  }

 private:
  libmshare::Backend backend_;
  const char* name_;
  libmshare::Region region_;
};

// POSIX shm in /dev/shm, with 4 KiB pages or transparent huge pages.
class ShmBackend : public Backend {
 public:
  explicit ShmBackend(bool thp) : thp_(thp) {}
  const char* name() const override { return thp_ ? "shm-thp" : "shm-4k"; }
  void setup(std::size_t size) override {
    Backend::setup(size);
    // /dev/shm is a tmpfs mount whose own huge= option decides, unless
    // shmem_enabled is "force" (or "deny").
    if (thp_)
      thp_setting_ = std::make_unique<Setting>(
          "/sys/kernel/mm/transparent_hugepage/shmem_enabled", "force");
  }
  void create() override {
    int fd = shm_open(object().c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) fail("shm_open create");
    if (ftruncate(fd, off_t(size_)) != 0) fail("ftruncate");
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) fail("mmap shm");
    populate_write(p, size_, "shm");
    mark_pages(p, size_);
    munmap(p, size_);
    close(fd);
  }
  const void* attach() override {
    int fd = shm_open(object().c_str(), O_RDONLY, 0);
    if (fd < 0) fail("shm_open");
    mapping_ = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (mapping_ == MAP_FAILED) fail("mmap shm");
    return mapping_;
  }
  void detach() override {
    if (munmap(mapping_, size_) != 0) fail("munmap shm");
  }
  void destroy() override {
    if (shm_unlink(object().c_str()) != 0) fail("shm_unlink");
  }
  void teardown() override { thp_setting_.reset(); }

 private:
  std::string object() const { return "/" + region_name(); }
  bool thp_;
  void* mapping_ = nullptr;
  std::unique_ptr<Setting> thp_setting_;
};

// A hugetlb file with 2 MiB pages mapped MAP_SHARED over whole 1 GiB-aligned
// gigabytes: the kernel then shares the PMD tables between processes.
class HugetlbBackend : public Backend {
 public:
  const char* name() const override { return "hugetlb-2m"; }
  void setup(std::size_t size) override {
    Backend::setup(size);
    span_ = round_up(size, kGiB);
    long pages = long(size / kHugePage);
    pool_ = std::make_unique<Setting>("/proc/sys/vm/nr_hugepages",
                                      std::to_string(pages));
    Meminfo m = meminfo();
    if (m.huge_free < pages)
      fail("only " + std::to_string(m.huge_free) + " of " +
               std::to_string(pages) + " huge pages could be reserved",
           ENOMEM);
    // The default huge page size, checked to be 2 MiB.
    if (m.huge_size != long(kHugePage / 1024))
      fail("huge pages are " + std::to_string(m.huge_size) + " KiB", EINVAL);
    fd_ = memfd_create("bench-hugetlb", MFD_HUGETLB);
    if (fd_ < 0) fail("memfd_create(MFD_HUGETLB)");
    if (ftruncate(fd_, off_t(span_)) != 0) fail("ftruncate hugetlb");
  }
  void create() override {
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) fail("mmap hugetlb");
    populate_write(p, size_, "hugetlb");
    mark_pages(p, size_);
    munmap(p, size_);
  }
  const void* attach() override {
    // The whole span, so that every 1 GiB is covered and shareable; the
    // part past the populated bytes reserves nothing and is never read.
    void* p = mmap(reinterpret_cast<void*>(kHugetlbBase), span_, PROT_READ,
                   MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE, fd_, 0);
    if (p == MAP_FAILED) fail("mmap hugetlb at 64 GiB");
    return p;
  }
  void detach() override {
    if (munmap(reinterpret_cast<void*>(kHugetlbBase), span_) != 0)
      fail("munmap hugetlb");
  }
  void destroy() override {
    close(fd_);
    fd_ = -1;
  }
  void teardown() override { pool_.reset(); }

 private:
  std::size_t span_ = 0;
  int fd_ = -1;
  std::unique_ptr<Setting> pool_;
};

const std::vector<std::string> kBackendNames = {
    "mshare",  "libmshare-kernel", "shm-4k",
    "shm-thp", "hugetlb-2m",       "libmshare-posix"};

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "mshare") return std::make_unique<MshareBackend>();
  if (name == "libmshare-kernel")
    return std::make_unique<LibmshareBackend>(libmshare::Backend::Kernel,
                                              "libmshare-kernel");
  if (name == "libmshare-posix")
    return std::make_unique<LibmshareBackend>(libmshare::Backend::Posix,
                                              "libmshare-posix");
  if (name == "shm-4k") return std::make_unique<ShmBackend>(false);
  if (name == "shm-thp") return std::make_unique<ShmBackend>(true);
  if (name == "hugetlb-2m") return std::make_unique<HugetlbBackend>();
  return nullptr;
}

// --- Processes -------------------------------------------------------------

// Idle: everything but the attach, read and detach.  AttachLoop: attach
// and detach again and again, without reading, to time the attach alone.
enum class Role { Idle, Reader, AttachLoop };
constexpr int kAttachLoops = 50;
// The CPU an AttachLoop process runs on (-1: wherever it is put).
int attach_loop_cpu = -1;

struct AttachReport {
  int stage = 0;  // 0: fine; else where it failed
  int error = 0;
  std::uint64_t attach_ns = 0, read_ns = 0;
  std::uint64_t loop_min_ns = 0, loop_median_ns = 0;  // AttachLoop
  long faults = 0;
  int sum_ok = 0;
};

struct DetachReport {
  pid_t pid = 0;
  int error = 0;
  std::uint64_t detach_ns = 0;
};

void write_all(int fd, const void* data, std::size_t len) {
  if (write(fd, data, len) != ssize_t(len)) _exit(90);
}

// A freshly forked process takes a copy-on-write fault on the first write
// to each page of its stack and heap, each worth tens of microseconds
// under TCG: take them before anything is timed.
__attribute__((noinline)) void warm_up() {
  volatile char stack[64 * 1024];
  for (std::size_t i = 0; i < sizeof(stack); i += kPage) stack[i] = 0;
  std::string heap(4 * kPage, 'x');
  std::free(std::malloc(2 * kPage));
}

// An attacher (or an idle process of the same kind, doing all of it but
// the attach, read and detach): report after attaching, wait for the
// token, detach, report, exit.
[[noreturn]] void attacher(Backend& backend, Role role, std::size_t size,
                           int report_fd, int go_fd) {
  AttachReport a;
  const void* data = nullptr;
  warm_up();
  std::uint64_t t0 = now_ns(), t1 = t0, t2 = t0;
  long f1 = 0;
  try {
    if (role == Role::AttachLoop) {
      if (attach_loop_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(attach_loop_cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0)
          fail("sched_setaffinity");
      }
      // Once untimed, so that first touches of this process's own memory
      // (copy-on-write after fork) fall outside the timed ones.
      std::vector<std::uint64_t> times;
      times.reserve(kAttachLoops);
      a.stage = 1;
      backend.attach();
      backend.detach();
      for (int i = 0; i < kAttachLoops; ++i) {
        std::uint64_t start = now_ns();
        backend.attach();
        times.push_back(now_ns() - start);
        backend.detach();
      }
      std::sort(times.begin(), times.end());
      a.loop_min_ns = times.front();
      a.loop_median_ns = times[times.size() / 2];
      t0 = now_ns();
    }
    a.stage = 1;
    if (role == Role::Reader) data = backend.attach();
    t1 = now_ns();
    f1 = minor_faults();
    a.stage = 2;
    if (role == Role::Reader) {
      auto sum = read_every_page(
          static_cast<const volatile std::uint64_t*>(data), size);
      a.sum_ok = sum == expected_sum(size);
    } else {
      a.sum_ok = 1;
    }
    t2 = now_ns();
    a.faults = minor_faults() - f1;
    a.stage = 0;
  } catch (const std::system_error& e) {
    a.error = e.code().value();
    std::fprintf(stderr, "attacher %d: %s\n", int(getpid()), e.what());
  } catch (const std::exception& e) {
    a.error = EIO;
    std::fprintf(stderr, "attacher %d: %s\n", int(getpid()), e.what());
  }
  a.attach_ns = t1 - t0;
  a.read_ns = t2 - t1;
  write_all(report_fd, &a, sizeof(a));
  if (a.stage != 0) _exit(1);

  char token;
  if (read(go_fd, &token, 1) != 1) _exit(2);
  DetachReport d;
  d.pid = getpid();
  std::uint64_t t3 = now_ns();
  try {
    if (role == Role::Reader) backend.detach();
  } catch (const std::system_error& e) {
    d.error = e.code().value();
  }
  d.detach_ns = now_ns() - t3;
  write_all(report_fd, &d, sizeof(d));
  _exit(d.error ? 3 : 0);
}

// Read exactly len bytes, giving up when @alive says no child can write.
bool receive(int fd, void* buf, std::size_t len,
             const std::function<bool()>& alive) {
  std::size_t got = 0;
  while (got < len) {
    pollfd p = {fd, POLLIN, 0};
    int ready = poll(&p, 1, 1000);
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) {
      if (!alive()) {
        // It may have written just before going.
        if (poll(&p, 1, 0) != 1) return false;
      } else {
        continue;
      }
    }
    ssize_t n = read(fd, static_cast<char*>(buf) + got, len - got);
    if (n <= 0) return false;
    got += std::size_t(n);
  }
  return true;
}

void check_child(pid_t pid, const std::string& what) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    fail(what + " failed", EIO);
}

// Run @fn in a child and wait for it.
void in_child(const std::function<void()>& fn, const std::string& what) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    int status = 0;
    try {
      fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", what.c_str(), e.what());
      status = 1;
    }
    _exit(status);
  }
  check_child(pid, what);
}

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (pipe(fd) != 0) fail("pipe");
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
};

// One round: N processes attach, each reading every page, and stay
// attached while the parent measures; then they detach.  The first
// `timed` attach one after another, alone on the machine, and detach the
// same way: their times are the ones reported.  The others (when N is
// larger) attach as many at a time as there are CPUs, and detach all at
// once: their faults count, their times do not.
struct Round {
  Meminfo before, attached;
  long vmpte = -1;                     // of the first process
  std::vector<AttachReport> attaches;  // timed
  std::vector<long> faults;            // every attacher's
  std::vector<DetachReport> detaches;  // timed
};

Round run_round(Backend& backend, std::size_t size, int n, Role role, int timed,
                bool snapshots = true) {
  if (timed <= 0 || timed > n) timed = n;
  const int batch = usable_cpus();
  Round round;
  Pipe reports, go_timed, go_rest;
  std::vector<pid_t> attached, detached;
  auto all_alive = [&] {
    for (pid_t pid : attached)
      if (waitpid(pid, nullptr, WNOHANG) != 0) return false;
    return true;
  };
  auto spawn = [&](const Pipe& go) {
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) fail("fork attacher " + std::to_string(attached.size()));
    if (pid == 0) {
      close(reports.fd[0]);
      close(go_timed.fd[1]);
      close(go_rest.fd[1]);
      attacher(backend, role, size, reports.fd[1], go.fd[0]);
    }
    attached.push_back(pid);
  };
  auto collect_attach = [&](bool is_timed) {
    AttachReport a;
    if (!receive(reports.fd[0], &a, sizeof(a), all_alive))
      fail("an attacher died", EIO);
    if (a.stage != 0)
      fail("an attacher failed at stage " + std::to_string(a.stage), a.error);
    if (!a.sum_ok) fail("an attacher read the wrong data", EIO);
    round.faults.push_back(a.faults);
    if (is_timed) round.attaches.push_back(a);
  };
  auto collect_detach = [&](bool is_timed) {
    DetachReport d;
    if (!receive(reports.fd[0], &d, sizeof(d), all_alive))
      fail("an attacher died before detaching", EIO);
    if (d.error) fail("detach", d.error);
    // Reaped at the end: waiting for each exit would serialise them.
    attached.erase(std::find(attached.begin(), attached.end(), d.pid));
    detached.push_back(d.pid);
    if (is_timed) round.detaches.push_back(d);
  };
  if (snapshots) round.before = meminfo();
  try {
    for (int i = 0; i < timed; ++i) {
      spawn(go_timed);
      collect_attach(true);
    }
    for (int i = timed; i < n; i += batch) {
      const int k = std::min(batch, n - i);
      for (int j = 0; j < k; ++j) spawn(go_rest);
      for (int j = 0; j < k; ++j) collect_attach(false);
    }
    if (snapshots) {
      round.attached = meminfo();
      round.vmpte = vmpte_kib(attached.front());
    }
    for (int i = 0; i < timed; ++i) {
      if (write(go_timed.fd[1], "g", 1) != 1) fail("write token");
      collect_detach(true);
    }
    for (int i = timed; i < n; ++i)
      if (write(go_rest.fd[1], "g", 1) != 1) fail("write token");
    for (int i = timed; i < n; ++i) collect_detach(false);
    for (pid_t pid : detached) check_child(pid, "attacher");
  } catch (...) {
    for (pid_t pid : attached) kill(pid, SIGKILL);
    for (pid_t pid : attached) waitpid(pid, nullptr, 0);
    for (pid_t pid : detached) waitpid(pid, nullptr, 0);
    throw;
  }
  return round;
}

// --- Results -----------------------------------------------------------------

struct Spread {
  double median = NAN, p10 = NAN, p90 = NAN;
};

Spread spread(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    std::size_t i = std::size_t(std::lround(q * double(v.size() - 1)));
    return v[i];
  };
  s.median = v.size() % 2 ? v[v.size() / 2]
                          : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  s.p10 = at(0.1);
  s.p90 = at(0.9);
  return s;
}

struct Row {
  std::string backend;
  std::size_t size_mib = 0;
  int n = 0;
  int repeats = 0;
  int samples = 0;       // timed reads
  long region_pt = 0;    // KiB the region keeps with nobody attached
  long attach_pt = 0;    // KiB N attachers add beyond N idle processes
  long vmpte = 0;        // KiB in one attacher's own tables beyond an idle one
  long region_mem = 0;   // KiB
  long attach_mem = 0;   // KiB beyond N idle processes
  long region_huge = 0;  // KiB of the region in huge pages
  Spread faults, attach_us, read_ms, detach_us;
  std::vector<double> attach_samples;  // microseconds, every timed attacher
  long faults_max = 0;
  std::string note;

  long total_pt() const { return region_pt + attach_pt; }
  long total_mem() const { return region_mem + attach_mem; }
};

struct Environment {
  std::string kernel, cpu, fault_around, thp, shmem_thp, clocksource;
  long mem_total_kib = 0;
  long cpus = 0;
};

Environment environment() {
  Environment env;
  utsname u;
  uname(&u);
  env.kernel = std::string(u.release) + " " + u.version;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0 && env.cpu.empty())
      env.cpu = trim(line.substr(line.find(':') + 2));
  env.cpus = sysconf(_SC_NPROCESSORS_ONLN);
  env.mem_total_kib = meminfo().mem_total;
  env.fault_around = trim(read_text("/sys/kernel/debug/fault_around_bytes"));
  if (env.fault_around.empty()) env.fault_around = "65536 (default)";
  env.clocksource = trim(read_text(
      "/sys/devices/system/clocksource/clocksource0/current_clocksource"));
  env.thp = trim(read_text("/sys/kernel/mm/transparent_hugepage/enabled"));
  env.shmem_thp =
      trim(read_text("/sys/kernel/mm/transparent_hugepage/shmem_enabled"));
  return env;
}

void print_environment(std::FILE* out, const Environment& env) {
  std::fprintf(out, "# kernel: %s\n", env.kernel.c_str());
  std::fprintf(out, "# cpu: %ld x %s\n", env.cpus, env.cpu.c_str());
  std::fprintf(out, "# guest memory: %ld MiB\n", env.mem_total_kib / 1024);
  std::fprintf(out, "# fault_around_bytes: %s\n", env.fault_around.c_str());
  std::fprintf(out,
               "# timer: TSC at %.3f MHz (%s); the guest clocksource is %s\n",
               tsc_per_ns * 1000, tsc_source.c_str(), env.clocksource.c_str());
  std::fprintf(
      out, "# THP enabled: %s; shmem_enabled: %s (set to force for shm-thp)\n",
      env.thp.c_str(), env.shmem_thp.c_str());
}

const char* kCsvHeader =
    "backend,size_mib,n,repeats,samples,region_pt_kib,attach_pt_kib,"
    "total_pt_kib,pt_per_attacher_kib,vmpte_kib,faults_med,faults_max,"
    "attach_us_med,attach_us_p10,attach_us_p90,read_ms_med,read_ms_p10,"
    "read_ms_p90,detach_us_med,detach_us_p10,detach_us_p90,region_mem_kib,"
    "attach_mem_kib,total_mem_kib,region_huge_kib,note";

void print_csv(std::FILE* out, const std::vector<Row>& rows) {
  std::fprintf(out, "%s\n", kCsvHeader);
  for (const Row& r : rows) {
    std::fprintf(
        out,
        "%s,%zu,%d,%d,%d,%ld,%ld,%ld,%.2f,%ld,%.0f,%ld,%.1f,%.1f,%.1f,"
        "%.3f,%.3f,%.3f,%.1f,%.1f,%.1f,%ld,%ld,%ld,%ld,%s\n",
        r.backend.c_str(), r.size_mib, r.n, r.repeats, r.samples, r.region_pt,
        r.attach_pt, r.total_pt(), double(r.attach_pt) / r.n, r.vmpte,
        r.faults.median, r.faults_max, r.attach_us.median, r.attach_us.p10,
        r.attach_us.p90, r.read_ms.median, r.read_ms.p10, r.read_ms.p90,
        r.detach_us.median, r.detach_us.p10, r.detach_us.p90, r.region_mem,
        r.attach_mem, r.total_mem(), r.region_huge, r.note.c_str());
  }
}

std::string spread_text(const Spread& s, const char* fmt) {
  if (std::isnan(s.median)) return "-";
  char buf[96];
  std::string f = std::string(fmt) + " [" + fmt + "-" + fmt + "]";
  std::snprintf(buf, sizeof(buf), f.c_str(), s.median, s.p10, s.p90);
  return buf;
}

void print_table(std::FILE* out, const std::vector<Row>& rows) {
  std::fprintf(out, "%-16s %5s %4s %12s %10s %8s %22s %26s %22s %9s\n",
               "backend", "MiB", "N", "PT total KiB", "PT/att KiB", "faults",
               "attach us med[p10-p90]", "1st read ms med[p10-p90]",
               "detach us med[p10-p90]", "mem MiB");
  for (const Row& r : rows) {
    std::fprintf(
        out, "%-16s %5zu %4d %12ld %10.1f %8.0f %22s %26s %22s %9.1f%s%s\n",
        r.backend.c_str(), r.size_mib, r.n, r.total_pt(),
        double(r.attach_pt) / r.n, r.faults.median,
        spread_text(r.attach_us, "%.0f").c_str(),
        spread_text(r.read_ms, "%.1f").c_str(),
        spread_text(r.detach_us, "%.0f").c_str(), double(r.total_mem()) / 1024,
        r.note.empty() ? "" : "  ", r.note.c_str());
  }
}

const Row* find_row(const std::vector<Row>& rows, const std::string& backend,
                    std::size_t size_mib, int n) {
  for (const Row& r : rows)
    if (r.backend == backend && r.size_mib == size_mib && r.n == n) return &r;
  return nullptr;
}

// The row with the largest N measured for a backend and size.
const Row* largest_n(const std::vector<Row>& rows, const std::string& backend,
                     std::size_t size_mib) {
  const Row* best = nullptr;
  for (const Row& r : rows)
    if (r.backend == backend && r.size_mib == size_mib &&
        (!best || r.n > best->n))
      best = &r;
  return best;
}

// POSIX shm's page tables at N when that cell was not measured: each of its
// attachers pays the same (the measured cells show it), so N times the
// per-attacher cost at the largest N measured.
double shm_pt_derived(const std::vector<Row>& rows, std::size_t size_mib,
                      int n) {
  const Row* r = largest_n(rows, "shm-4k", size_mib);
  if (!r) return NAN;
  return double(r->region_pt) + double(r->attach_pt) / r->n * n;
}

// POSIX shm with 4 KiB pages divided by each backend, at every size and N.
void print_ratios(std::FILE* out, const std::vector<Row>& rows,
                  const std::vector<std::string>& backends,
                  const std::vector<std::size_t>& sizes,
                  const std::vector<int>& procs) {
  struct Measure {
    const char* title;
    bool derive;  // fill in shm-4k's page tables where not measured
    std::function<double(const Row&)> value;
  };
  const Measure measures[] = {
      {"page-table bytes (total)", true,
       [](const Row& r) { return double(r.total_pt()); }},
      {"first full read time (median)", false,
       [](const Row& r) { return r.read_ms.median; }},
      {"attach time (median)", false,
       [](const Row& r) { return r.attach_us.median; }},
      {"detach time (median)", false,
       [](const Row& r) { return r.detach_us.median; }},
  };
  bool derived_any = false;
  for (const Measure& m : measures) {
    std::fprintf(out, "shm-4k / backend: %s\n%5s %4s", m.title, "MiB", "N");
    for (const auto& b : backends) std::fprintf(out, " %16s", b.c_str());
    std::fprintf(out, "\n");
    for (std::size_t size : sizes)
      for (int n : procs) {
        const Row* base = find_row(rows, "shm-4k", size, n);
        double ref = base ? m.value(*base) : NAN;
        const char* mark = "";
        if (!base && m.derive) {
          ref = shm_pt_derived(rows, size, n);
          mark = "*";
        }
        if (std::isnan(ref)) continue;
        std::string line;
        bool any = false;
        for (const auto& b : backends) {
          const Row* r = find_row(rows, b, size, n);
          double v = r ? m.value(*r) : NAN;
          char cellbuf[32];
          if (b == "shm-4k" && !base)
            std::snprintf(cellbuf, sizeof(cellbuf), " %16s", "-");
          else if (!r || std::isnan(v))
            std::snprintf(cellbuf, sizeof(cellbuf), " %16s", "-");
          else if (v <= 0)
            std::snprintf(cellbuf, sizeof(cellbuf), " %15s%1s", "inf", mark);
          else
            std::snprintf(cellbuf, sizeof(cellbuf), " %15.2f%1s", ref / v,
                          mark);
          if (r && b != "shm-4k") any = true;
          if (*mark && r && b != "shm-4k") derived_any = true;
          line += cellbuf;
        }
        if (any || base)
          std::fprintf(out, "%5zu %4d%s\n", size, n, line.c_str());
      }
    std::fprintf(out, "\n");
  }
  if (derived_any)
    std::fprintf(
        out,
        "* shm-4k not measured at that N: its page tables taken as N x "
        "its per-attacher cost at the largest N measured (arithmetic)\n");
  std::fprintf(out,
               "inf: the backend added no page tables (or took no measurable "
               "time) there\n");
}

// The targets, at the largest size and N.
// What the paired runs say about targets 4 and 5 (NAN: not run).
struct PairedSummary {
  int rounds = 0;
  Spread attach_small, attach_big;  // mshare, microseconds
  // mshare: the fastest attach of each loop process (all rounds and CPUs)
  std::vector<double> loop_small, loop_big;
  double read_ratio = NAN, read_lo = NAN, read_hi = NAN;  // shm/mshare, big
};

int print_targets(std::FILE* out, const std::vector<Row>& rows,
                  const std::vector<std::size_t>& sizes,
                  const std::vector<int>& procs, const PairedSummary& paired) {
  const std::size_t big = sizes.back(), small = sizes.front();
  const int nmax = procs.back(), nmin = procs.front();
  const Row* m = find_row(rows, "mshare", big, nmax);
  const Row* s1 = find_row(rows, "shm-4k", big, nmin);
  const Row* s = find_row(rows, "shm-4k", big, nmax);
  const Row* h = find_row(rows, "hugetlb-2m", big, nmax);
  int met = 0, missed = 0;
  auto verdict = [&](bool ok) {
    ok ? ++met : ++missed;
    return ok ? "met" : "MISSED";
  };
  std::fprintf(out, "targets at %zu MiB, N=%d\n", big, nmax);
  if (m) {
    double one = s1 ? double(s1->total_pt()) / nmin : double(big) * 1024 / 512;
    double ratio = m->total_pt() / one;
    std::fprintf(out,
                 "1. mshare page tables with %d sharers: %ld KiB = %.3f x one "
                 "process's %.0f KiB (%s) (target <= 1.05): %s\n",
                 nmax, m->total_pt(), ratio, one,
                 s1 ? "shm-4k, N=1, measured" : "size/512",
                 verdict(ratio <= 1.05));
  }
  if (m) {
    double shm = s ? double(s->total_pt()) : shm_pt_derived(rows, big, nmax);
    const Row* sl = largest_n(rows, "shm-4k", big);
    if (!std::isnan(shm)) {
      double ratio = shm / std::max(1L, m->total_pt());
      std::string how = s ? "measured"
                          : "derived: " + std::to_string(nmax) + " x " +
                                std::to_string(sl->attach_pt / sl->n) +
                                " KiB per attacher, measured up to N=" +
                                std::to_string(sl->n);
      std::fprintf(out,
                   "2. shm-4k page tables / mshare's at N=%d: %.0f KiB (%s) / "
                   "%ld KiB = %.1fx (target >= 400): %s\n",
                   nmax, shm, how.c_str(), m->total_pt(), ratio,
                   verdict(ratio >= 400));
      if (!s && sl) {
        const Row* ms = find_row(rows, "mshare", big, sl->n);
        if (ms)
          std::fprintf(out,
                       "   largest N measured for both: N=%d, %ld / %ld KiB = "
                       "%.1fx\n",
                       sl->n, sl->total_pt(), ms->total_pt(),
                       double(sl->total_pt()) / std::max(1L, ms->total_pt()));
      }
    }
  }
  {
    long worst = -1;
    int where = 0;
    for (const Row& r : rows)
      if (r.backend == "mshare" && r.size_mib == big && r.faults_max > worst) {
        worst = r.faults_max;
        where = r.n;
      }
    const Row* ms = find_row(rows, "mshare", small, nmin);
    const Row* mb = find_row(rows, "mshare", big, nmin);
    if (worst >= 0 && ms && mb)
      std::fprintf(
          out,
          "3. mshare attacher minor faults reading all %zu MiB: at "
          "most %ld (at N=%d); median %.0f at %zu MiB, %.0f at %zu "
          "MiB (target 0 or a small constant): %s\n",
          big, worst, where, mb->faults.median, big, ms->faults.median, small,
          verdict(worst <= 16 && mb->faults.median <= ms->faults.median + 2));
  }
  // Targets 4 and 5 compare times.  The grid's cells ran minutes apart
  // and the emulator's speed drifts with the host's load; the paired runs
  // alternate the attachers being compared, so they decide when present.
  // An attach takes about a millisecond, and a busy host's scheduling only
  // ever adds to it: the fastest of a loop of attaches in one process
  // decides, with the first attaches' lower deciles (p10) and medians
  // shown beside it.
  if (small != big) {
    std::vector<double> a_small, a_big;
    for (const Row& r : rows) {
      if (r.backend != "mshare") continue;
      auto& v = r.size_mib == small ? a_small : a_big;
      if (r.size_mib == small || r.size_mib == big)
        v.insert(v.end(), r.attach_samples.begin(), r.attach_samples.end());
    }
    Spread gs = spread(a_small), gb = spread(a_big);
    // Loop processes are either fast or about 1.6x slower for all their
    // attaches, whatever the backend or size (an emulator effect), so the
    // lowest over a few processes depends on whether one of them happened
    // to be fast: the median over the processes of each one's fastest
    // attach decides, with the lowest shown beside it.
    double loop_small = NAN, loop_big = NAN, low_small = NAN, low_big = NAN;
    if (!paired.loop_small.empty() && !paired.loop_big.empty()) {
      loop_small = spread(paired.loop_small).median;
      loop_big = spread(paired.loop_big).median;
      low_small =
          *std::min_element(paired.loop_small.begin(), paired.loop_small.end());
      low_big =
          *std::min_element(paired.loop_big.begin(), paired.loop_big.end());
    }
    const bool use_loop = !std::isnan(loop_small);
    const bool use_paired = !std::isnan(paired.attach_small.p10) &&
                            !std::isnan(paired.attach_big.p10);
    const double decide = use_loop ? loop_big / loop_small
                          : use_paired
                              ? paired.attach_big.p10 / paired.attach_small.p10
                              : gb.p10 / gs.p10;
    if (!std::isnan(decide)) {
      std::fprintf(out,
                   "4. mshare attach time, %zu MiB vs %zu MiB (target within "
                   "1.2x): ",
                   big, small);
      if (use_loop)
        std::fprintf(
            out,
            "attach alone (fastest of %d in one process, median of "
            "%zu + %zu processes): %.0f vs %.0f us = %.2fx, lowest of the "
            "processes' fastest %.0f vs %.0f us = %.2fx; ",
            kAttachLoops, paired.loop_big.size(), paired.loop_small.size(),
            loop_big, loop_small, loop_big / loop_small, low_big, low_small,
            low_big / low_small);
      if (use_paired)
        std::fprintf(out,
                     "first attach of a process, paired runs: p10 %.0f vs "
                     "%.0f us = %.2fx (medians %.0f vs %.0f us); ",
                     paired.attach_big.p10, paired.attach_small.p10,
                     paired.attach_big.p10 / paired.attach_small.p10,
                     paired.attach_big.median, paired.attach_small.median);
      if (!std::isnan(gb.p10) && !std::isnan(gs.p10))
        std::fprintf(out,
                     "grid, all %zu + %zu timed attachers: p10 %.0f vs %.0f us "
                     "= %.2fx (medians %.0f vs %.0f us); ",
                     a_big.size(), a_small.size(), gb.p10, gs.p10,
                     gb.p10 / gs.p10, gb.median, gs.median);
      std::fprintf(out, "%s\n", verdict(decide <= 1.2 && decide >= 1 / 1.2));
    }
  }
  {
    double worst = INFINITY, best = 0;
    int worst_n = 0, count = 0;
    for (int n : procs) {
      const Row* a = find_row(rows, "mshare", big, n);
      const Row* b = find_row(rows, "shm-4k", big, n);
      if (!a || !b || !(a->read_ms.median > 0) || std::isnan(b->read_ms.median))
        continue;
      double ratio = b->read_ms.median / a->read_ms.median;
      ++count;
      best = std::max(best, ratio);
      if (ratio < worst) {
        worst = ratio;
        worst_n = n;
      }
    }
    const bool use_paired = !std::isnan(paired.read_ratio);
    if (count || use_paired) {
      std::fprintf(out,
                   "5. first full read of %zu MiB, shm-4k time / mshare time "
                   "(target >= 10x): ",
                   big);
      if (use_paired)
        std::fprintf(
            out, "paired runs %.1fx (median over %d rounds; %.1fx-%.1fx); ",
            paired.read_ratio, paired.rounds, paired.read_lo, paired.read_hi);
      if (count)
        std::fprintf(out,
                     "grid %.1fx-%.1fx over the %d N measured for both "
                     "(lowest at N=%d); ",
                     worst, best, count, worst_n);
      std::fprintf(out, "%s\n",
                   verdict(use_paired ? paired.read_ratio >= 10 : worst >= 10));
    }
  }
  if (m && h) {
    std::fprintf(out,
                 "6. page tables each attacher adds at N=%d: mshare %.3f KiB, "
                 "hugetlb-2m %.3f KiB (target: mshare <= hugetlb): %s\n"
                 "   with the region's own tables spread over the %d: mshare "
                 "%.2f KiB (4 KiB pages: %ld KiB once), hugetlb-2m %.2f KiB "
                 "(2 MiB pages, %ld KiB once; a %zu MiB hugetlb pool)\n",
                 nmax, double(m->attach_pt) / nmax, double(h->attach_pt) / nmax,
                 verdict(m->attach_pt <= h->attach_pt), nmax,
                 double(m->total_pt()) / nmax, m->region_pt,
                 double(h->total_pt()) / nmax, h->total_pt(), big);
  }
  // The motivating case, as arithmetic on the measured costs.
  const Row* sl = largest_n(rows, "shm-4k", big);
  if (m && sl) {
    const double gib = 300e9 / double(kGiB), procs_big = 1500;
    const double big_gib = double(big) / 1024;
    double shm_per_gib = double(sl->attach_pt) * 1024 / sl->n / big_gib;
    double region_per_gib = double(m->region_pt) * 1024 / big_gib;
    double attacher = double(m->attach_pt) * 1024 / nmax;
    double shm_total = shm_per_gib * gib * procs_big;
    double mshare_total = region_per_gib * gib + attacher * procs_big;
    std::fprintf(
        out,
        "extrapolation to 1500 processes x 300 GB (%.1f GiB), arithmetic on "
        "the costs measured at %zu MiB, not a measurement:\n"
        "  POSIX shm 4 KiB: %.0f bytes per attacher per GiB x %.1f GiB x 1500 "
        "= %.1f GB of page tables\n"
        "  mshare: %.0f bytes per GiB once x %.1f GiB + %.0f bytes per "
        "attacher x 1500 = %.3f GB (%.0fx less)\n",
        gib, big, shm_per_gib, gib, shm_total / 1e9, region_per_gib, gib,
        attacher, mshare_total / 1e9, shm_total / mshare_total);
  }
  std::fprintf(out, "targets met: %d, missed: %d\n", met, missed);
  return missed;
}

// --- Options ---------------------------------------------------------------

struct Config {
  std::vector<std::string> backends = kBackendNames;
  std::vector<int> procs = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  std::vector<std::size_t> sizes = {64, 256, 1024};  // MiB
  int samples = 5;         // at least this many timed attachers per cell
  int repeats = 1;         // at least this many rounds per cell
  int timed = 0;           // attachers timed per round; 0: all
  int paired = 5;          // rounds of the paired runs; 0: none
  double cell_budget = 0;  // seconds; 0: no limit
  double deadline = 0;     // seconds from the start; 0: none
  double tsc_mhz = 0;      // 0: from the kernel log, else measured
  std::string csv;
  bool tap = false;
};

template <typename T>
std::vector<T> parse_list(const char* text, const char* what) {
  std::vector<T> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 0);
    if (item.empty() || *end || v <= 0)
      throw std::invalid_argument(std::string("bad ") + what + ": " + item);
    values.push_back(T(v));
  }
  if (values.empty()) throw std::invalid_argument(std::string("no ") + what);
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

double parse_number(const char* text, const char* what) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (*end || v < 0) throw std::invalid_argument(std::string("bad ") + what);
  return v;
}

void usage(std::FILE* out, const char* argv0) {
  std::fprintf(
      out,
      "usage: %s [options]\n"
      "  --backends=LIST    of mshare libmshare-kernel shm-4k shm-thp "
      "hugetlb-2m\n"
      "                     libmshare-posix, or all (the default)\n"
      "  --procs=LIST       attaching processes (default 1,2,4,...,512)\n"
      "  --sizes=LIST       populated MiB (default 64,256,1024)\n"
      "  --samples=K        at least K timed attachers per cell (default 5)\n"
      "  --repeats=R        at least R rounds per cell (default 1)\n"
      "  --timed=K          time the first K attachers of a round, one at a\n"
      "                     time; the others attach as many at a time as\n"
      "                     there are CPUs, untimed (default 0: time all)\n"
      "  --paired=K         K rounds of mshare and shm-4k attachers in\n"
      "                     rotation at the smallest and largest size, for\n"
      "                     time ratios free of drift (default 5; 0: none)\n"
      "  --cell-budget=S    skip a cell (and larger N at that size) when the\n"
      "                     previous one says it would take over S seconds\n"
      "  --deadline=S       start no cell after S seconds\n"
      "  --tsc-mhz=F        TSC rate (default: kernel log, else measured)\n"
      "  --csv=FILE         also write the CSV to FILE\n"
      "  --tap              end with a TAP result for the test runner\n",
      argv0);
}

Config parse(int argc, char** argv) {
  static const option opts[] = {
      {"backends", required_argument, nullptr, 'b'},
      {"procs", required_argument, nullptr, 'n'},
      {"sizes", required_argument, nullptr, 's'},
      {"samples", required_argument, nullptr, 'k'},
      {"repeats", required_argument, nullptr, 'r'},
      {"timed", required_argument, nullptr, 't'},
      {"paired", required_argument, nullptr, 'P'},
      {"cell-budget", required_argument, nullptr, 'B'},
      {"deadline", required_argument, nullptr, 'D'},
      {"tsc-mhz", required_argument, nullptr, 'M'},
      {"csv", required_argument, nullptr, 'c'},
      {"tap", no_argument, nullptr, 'T'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  Config config;
  int c;
  while ((c = getopt_long(argc, argv, "b:n:s:k:r:c:h", opts, nullptr)) != -1) {
    switch (c) {
      case 'b': {
        config.backends.clear();
        std::stringstream in(optarg);
        std::string item;
        while (std::getline(in, item, ',')) {
          if (item == "all") {
            config.backends = kBackendNames;
            break;
          }
          if (!make_backend(item))
            throw std::invalid_argument("unknown backend " + item);
          config.backends.push_back(item);
        }
        break;
      }
      case 'n':
        config.procs = parse_list<int>(optarg, "process count");
        break;
      case 's':
        config.sizes = parse_list<std::size_t>(optarg, "size");
        break;
      case 'k':
        config.samples = std::max(1, int(parse_number(optarg, "samples")));
        break;
      case 'r':
        config.repeats = std::max(1, int(parse_number(optarg, "repeats")));
        break;
      case 'P':
        config.paired = int(parse_number(optarg, "paired rounds"));
        break;
      case 't':
        config.timed = int(parse_number(optarg, "timed attachers"));
        break;
      case 'B':
        config.cell_budget = parse_number(optarg, "cell budget");
        break;
      case 'D':
        config.deadline = parse_number(optarg, "deadline");
        break;
      case 'M':
        config.tsc_mhz = parse_number(optarg, "TSC rate");
        break;
      case 'c':
        config.csv = optarg;
        break;
      case 'T':
        config.tap = true;
        break;
      case 'h':
        usage(stdout, argv[0]);
        std::exit(0);
      default:
        usage(stderr, argv[0]);
        std::exit(2);
    }
  }
  if (optind != argc) throw std::invalid_argument("unexpected arguments");
  return config;
}

// --- Running -----------------------------------------------------------------

struct Run {
  explicit Run(const Config& c) : config(c) {}
  const Config& config;
  std::uint64_t start = now_ns();
  std::vector<Row> rows;
  std::vector<std::string> skipped;  // cells not measured, and why
  std::vector<std::string> failures;
  // N idle processes, per N: forked from this same process, they cost the
  // same own page tables whatever the backend.
  std::map<int, Round> idle;
  // Regions of the grid kept populated for the paired runs at the end, and
  // the time those runs are expected to need.
  struct Kept {
    std::string backend;
    std::size_t size_mib;
    std::unique_ptr<Backend> impl;
  };
  std::vector<Kept> kept;
  double paired_reserve = 0;

  // When cells must stop for the whole run to end by the deadline.
  double cutoff() const { return config.deadline - paired_reserve; }

  double elapsed() const { return double(now_ns() - start) / 1e9; }
  void skip(const std::string& why) {
    skipped.push_back(why);
    std::printf("# skipped: %s\n", why.c_str());
    std::fflush(stdout);
  }
};

int timed_for(const Config& config, int n) {
  return config.timed > 0 ? std::min(n, config.timed) : n;
}

int repeats_for(const Config& config, int n) {
  const int timed = timed_for(config, n);
  return std::max(config.repeats, (config.samples + timed - 1) / timed);
}

std::string procs_from(const std::vector<int>& procs, std::size_t i) {
  std::string text = "N=" + std::to_string(procs[i]);
  if (i + 1 < procs.size()) text += ".." + std::to_string(procs.back());
  return text;
}

// Every N for one backend and size, while the time allows.  The cell
// budget holds only for backends whose attachers each build their own
// page tables: their cost is linear in N, and emulating that work is what
// takes the time.
void run_size(Backend& backend, std::size_t size_mib, Run& run) {
  const Config& config = run.config;
  const std::size_t size = size_mib * kMiB;
  const std::string cell =
      std::string(backend.name()) + " " + std::to_string(size_mib) + " MiB ";
  Meminfo empty = meminfo();
  in_child([&] { backend.create(); }, std::string(backend.name()) + " create");
  Meminfo created = meminfo();
  const long region_pt = created.page_tables - empty.page_tables;
  const long region_mem = created.used_kib() - empty.used_kib();
  const long region_huge = (created.shmem_huge - empty.shmem_huge) +
                           (created.huge_used_kib() - empty.huge_used_kib());

  double seconds_per_attacher = 0;  // from the last cell
  bool own_tables = false;          // the last cell's attachers had them
  for (std::size_t i = 0; i < config.procs.size(); ++i) {
    const int n = config.procs[i];
    const int repeats = repeats_for(config, n);
    const double estimate = seconds_per_attacher * n * repeats;
    if (config.deadline > 0 && run.elapsed() + estimate > run.cutoff()) {
      run.skip(cell + procs_from(config.procs, i) + ": past the deadline of " +
               std::to_string(int(config.deadline)) + " s");
      return;
    }
    if (own_tables && config.cell_budget > 0 && estimate > config.cell_budget) {
      char why[160];
      std::snprintf(why, sizeof(why),
                    ": would take ~%.0f s (%.2f s per attacher measured at "
                    "N=%d, each building its own page tables), over the %.0f "
                    "s cell budget",
                    estimate, seconds_per_attacher, config.procs[i - 1],
                    config.cell_budget);
      run.skip(cell + procs_from(config.procs, i) + why);
      return;
    }
    Row row;
    row.backend = backend.name();
    row.size_mib = size_mib;
    row.n = n;
    row.repeats = repeats;
    row.region_pt = region_pt;
    row.region_mem = region_mem;
    row.region_huge = region_huge;
    if (!run.idle.count(n))
      run.idle[n] = run_round(backend, size, n, Role::Idle, config.timed);
    const Round& quiet = run.idle.at(n);
    const long idle_pt = quiet.attached.page_tables - quiet.before.page_tables;
    const long idle_mem = quiet.attached.used_kib() - quiet.before.used_kib();

    std::vector<double> faults, attach_us, read_ms, detach_us, pts, mems;
    const std::uint64_t t0 = now_ns();
    for (int r = 0; r < repeats; ++r) {
      Round round = run_round(backend, size, n, Role::Reader, config.timed);
      pts.push_back(double(round.attached.page_tables -
                           round.before.page_tables - idle_pt));
      mems.push_back(double(round.attached.used_kib() -
                            round.before.used_kib() - idle_mem));
      row.vmpte = round.vmpte - quiet.vmpte;
      for (long f : round.faults) {
        faults.push_back(double(f));
        row.faults_max = std::max(row.faults_max, f);
      }
      for (const auto& a : round.attaches) {
        attach_us.push_back(double(a.attach_ns) / 1e3);
        read_ms.push_back(double(a.read_ns) / 1e6);
      }
      for (const auto& d : round.detaches)
        detach_us.push_back(double(d.detach_ns) / 1e3);
    }
    const double seconds = double(now_ns() - t0) / 1e9;
    // Two settled meminfo reads per round are not per attacher.
    seconds_per_attacher =
        std::max(0.0, seconds - repeats * 0.6) / (double(n) * repeats);
    if (config.paired > 0 && row.backend == "shm-4k" &&
        size_mib == config.sizes.back() && i == 0)
      // One shm-4k and six mshare attachers per round, with a settle each.
      run.paired_reserve =
          config.paired * (1.3 * seconds_per_attacher + 7 * 0.5) + 10;
    row.samples = int(read_ms.size());
    if (timed_for(config, n) < n)
      row.note = "times: first " + std::to_string(timed_for(config, n)) +
                 " attachers of each round (the rest attached concurrently)";
    row.attach_pt = std::lround(spread(pts).median);
    own_tables = 2 * row.attach_pt / n >= long(size / 512 / 1024);
    row.attach_mem = std::lround(spread(mems).median);
    row.faults = spread(faults);
    row.attach_us = spread(attach_us);
    row.attach_samples = attach_us;
    row.read_ms = spread(read_ms);
    row.detach_us = spread(detach_us);
    run.rows.push_back(row);
    std::printf(
        "# %-16s %5zu MiB N=%-4d PT %8ld KiB (%7.1f/att) faults %6.0f attach "
        "%8.0f us read %9.2f ms detach %8.0f us  [%.1f s, %.0f s total]\n",
        row.backend.c_str(), size_mib, n, row.total_pt(),
        double(row.attach_pt) / n, row.faults.median, row.attach_us.median,
        row.read_ms.median, row.detach_us.median, seconds, run.elapsed());
    std::fflush(stdout);
  }
}

bool mshare_present() {
  struct statfs st;
  return statfs(MSHARE_MOUNT_POINT, &st) == 0 && st.f_type == MSHARE_MAGIC;
}

// Every N of one backend at one size.
void run_column(const std::string& name, std::size_t size_mib, Run& run) {
  const Config& config = run.config;
  const std::string cell = name + " " + std::to_string(size_mib) + " MiB";
  if ((name == "mshare" || name == "libmshare-kernel") && !mshare_present()) {
    run.failures.push_back(cell + ": this kernel has no mshare");
    return;
  }
  if (config.deadline > 0 && run.elapsed() > run.cutoff()) {
    run.skip(cell + ": past the deadline of " +
             std::to_string(int(config.deadline)) + " s");
    return;
  }
  const std::size_t size = size_mib * kMiB;
  // The data once, and at worst one process's tables per attacher.
  const long need_kib = long(
      (size + std::size_t(config.procs.back()) * (size / 512 + 64 * 1024)) /
      1024);
  const long have_kib = meminfo().mem_available;
  if (need_kib > have_kib * 9 / 10) {
    run.skip(cell + ": needs " + std::to_string(need_kib / 1024) +
             " MiB, the guest has " + std::to_string(have_kib / 1024) +
             " MiB available");
    return;
  }
  auto backend = make_backend(name);
  backend->set_instance(
      int(std::find(config.sizes.begin(), config.sizes.end(), size_mib) -
          config.sizes.begin()));
  // Kept populated for the paired runs at the end.
  const bool keep =
      config.paired > 0 && (name == "mshare" || name == "shm-4k") &&
      (size_mib == config.sizes.front() || size_mib == config.sizes.back());
  try {
    backend->setup(size);
    try {
      run_size(*backend, size_mib, run);
    } catch (...) {
      try {
        backend->destroy();
      } catch (...) {
      }
      throw;
    }
    if (keep) {
      run.kept.push_back({name, size_mib, std::move(backend)});
      return;
    }
    backend->destroy();
    backend->teardown();
  } catch (const std::exception& e) {
    backend->teardown();
    run.failures.push_back(cell + ": " + e.what());
    std::printf("# error: %s\n", run.failures.back().c_str());
  }
  std::fflush(stdout);
}

// Paired runs, at the end: mshare and POSIX shm with 4 KiB pages at the
// smallest and the largest size, their regions from the grid kept
// populated, one attacher at a time in rotation.  Cells of the grid run minutes
// apart, and on a shared host the emulator's speed drifts between them; here
// each ratio compares attachers that ran seconds apart.  mshare's attachers are
// cheap and its attach takes well under a millisecond, which a busy host
// disturbs easily: they run three times per round.
struct Paired {
  struct Combo {
    std::string backend;
    std::size_t size_mib;
    int per_round;
    Backend* impl;
    std::vector<int> round;  // of each sample
    std::vector<double> attach_us, read_ms, detach_us;
    // Per CPU, per round: the fastest and the median of kAttachLoops
    // attaches in one process on that CPU.
    std::map<int, std::vector<double>> loop_min_us, loop_median_us;
  };
  std::vector<Combo> combos;
  int rounds = 0;

  Combo* find(const std::string& backend, std::size_t size_mib) {
    for (auto& c : combos)
      if (c.backend == backend && c.size_mib == size_mib) return &c;
    return nullptr;
  }
};

// Ratios a/b: per round, a's median over b's median in that round; their
// median and range over the rounds.
struct RatioRange {
  double median = NAN, lo = NAN, hi = NAN;
};

RatioRange paired_ratio(const Paired::Combo& a, const Paired::Combo& b,
                        std::vector<double> Paired::Combo::*what, int rounds) {
  std::vector<double> r;
  for (int k = 0; k < rounds; ++k) {
    std::vector<double> va, vb;
    for (std::size_t i = 0; i < a.round.size(); ++i)
      if (a.round[i] == k) va.push_back((a.*what)[i]);
    for (std::size_t i = 0; i < b.round.size(); ++i)
      if (b.round[i] == k) vb.push_back((b.*what)[i]);
    double ma = spread(va).median, mb = spread(vb).median;
    if (mb > 0 && !std::isnan(ma)) r.push_back(ma / mb);
  }
  RatioRange out;
  if (r.empty()) return out;
  out.median = spread(r).median;
  out.lo = *std::min_element(r.begin(), r.end());
  out.hi = *std::max_element(r.begin(), r.end());
  return out;
}

void run_paired(Run& run, Paired& paired, int rounds) {
  for (auto& k : run.kept) {
    if (rounds <= 0) break;
    Paired::Combo c;
    c.backend = k.backend;
    c.size_mib = k.size_mib;
    c.per_round = k.backend == "mshare" ? 3 : 1;
    c.impl = k.impl.get();
    paired.combos.push_back(std::move(c));
  }
  try {
    for (int r = 0; r < rounds && !paired.combos.empty(); ++r) {
      for (std::size_t k = 0; k < paired.combos.size(); ++k) {
        auto& c = paired.combos[(k + std::size_t(r)) % paired.combos.size()];
        for (int j = 0; j < c.per_round; ++j) {
          // Let the last attacher's deferred frees (RCU) finish first.
          usleep(300000);
          Round round =
              run_round(*c.impl, c.size_mib * kMiB, 1, Role::Reader, 0, false);
          c.round.push_back(r);
          c.attach_us.push_back(double(round.attaches[0].attach_ns) / 1e3);
          c.read_ms.push_back(double(round.attaches[0].read_ns) / 1e6);
          c.detach_us.push_back(double(round.detaches[0].detach_ns) / 1e3);
        }
        for (int cpu = 0; cpu < usable_cpus(); ++cpu) {
          usleep(300000);
          attach_loop_cpu = cpu;
          Round loop = run_round(*c.impl, c.size_mib * kMiB, 1,
                                 Role::AttachLoop, 0, false);
          attach_loop_cpu = -1;
          c.loop_min_us[cpu].push_back(double(loop.attaches[0].loop_min_ns) /
                                       1e3);
          c.loop_median_us[cpu].push_back(
              double(loop.attaches[0].loop_median_ns) / 1e3);
        }
      }
      paired.rounds = r + 1;
    }
  } catch (const std::exception& e) {
    run.failures.push_back(std::string("paired runs: ") + e.what());
    std::printf("# error: %s\n", run.failures.back().c_str());
  }
  for (auto& k : run.kept) {
    try {
      k.impl->destroy();
      k.impl->teardown();
    } catch (const std::exception& e) {
      run.failures.push_back(std::string("cleanup: ") + e.what());
    }
  }
  run.kept.clear();
  if (paired.rounds)
    std::printf("# paired runs: %d rounds, done at %.0f s\n", paired.rounds,
                run.elapsed());
  std::fflush(stdout);
}

void print_paired(std::FILE* out, Paired& paired) {
  if (paired.rounds == 0) {
    std::fprintf(out, "no paired runs\n");
    return;
  }
  std::fprintf(out,
               "%d rounds; in each, the attachers below one after another "
               "(mshare's three times), in rotation\n",
               paired.rounds);
  std::fprintf(out, "%-10s %5s %7s %26s %28s %26s\n", "backend", "MiB",
               "samples", "attach us med[p10-p90]", "1st read ms med[p10-p90]",
               "detach us med[p10-p90]");
  for (auto& c : paired.combos)
    std::fprintf(out, "%-10s %5zu %7zu %26s %28s %26s\n", c.backend.c_str(),
                 c.size_mib, c.read_ms.size(),
                 spread_text(spread(c.attach_us), "%.0f").c_str(),
                 spread_text(spread(c.read_ms), "%.1f").c_str(),
                 spread_text(spread(c.detach_us), "%.0f").c_str());
  std::vector<std::size_t> sizes;
  for (auto& c : paired.combos)
    if (std::find(sizes.begin(), sizes.end(), c.size_mib) == sizes.end())
      sizes.push_back(c.size_mib);
  std::fprintf(out,
               "ratios: per round, one median over the other; the median "
               "and range of that over the rounds\n");
  auto line = [&](const char* what, const Paired::Combo& a,
                  const Paired::Combo& b,
                  std::vector<double> Paired::Combo::*field) {
    RatioRange r = paired_ratio(a, b, field, paired.rounds);
    std::fprintf(out, "%-28s %s %4zu MiB / %s %4zu MiB: %8.2fx (%.2fx-%.2fx)\n",
                 what, a.backend.c_str(), a.size_mib, b.backend.c_str(),
                 b.size_mib, r.median, r.lo, r.hi);
  };
  for (std::size_t size : sizes) {
    auto* m = paired.find("mshare", size);
    auto* s = paired.find("shm-4k", size);
    if (!m || !s) continue;
    line("first full read", *s, *m, &Paired::Combo::read_ms);
    line("attach", *s, *m, &Paired::Combo::attach_us);
    line("detach", *s, *m, &Paired::Combo::detach_us);
  }
  if (sizes.size() == 2)
    for (const char* b : {"mshare", "shm-4k"}) {
      auto* big = paired.find(b, sizes[1]);
      auto* small = paired.find(b, sizes[0]);
      if (big && small) line("attach", *big, *small, &Paired::Combo::attach_us);
    }
  std::fprintf(out,
               "attach alone: each round, on each CPU, one process attaches "
               "and detaches %d times (after one untimed); its fastest and "
               "median attach, then their medians [range] over the rounds\n",
               kAttachLoops);
  for (auto& c : paired.combos)
    for (auto& [cpu, mins] : c.loop_min_us)
      std::fprintf(out,
                   "%-10s %5zu MiB cpu %d: fastest %6.0f us [%.0f-%.0f], "
                   "median %6.0f us\n",
                   c.backend.c_str(), c.size_mib, cpu, spread(mins).median,
                   *std::min_element(mins.begin(), mins.end()),
                   *std::max_element(mins.begin(), mins.end()),
                   spread(c.loop_median_us[cpu]).median);
}

int run_all(const Config& config) {
  calibrate_tsc(config.tsc_mhz);
  Run run{config};
  Environment env = environment();
  std::printf("### ENV BEGIN\n");
  print_environment(stdout, env);
  std::printf("### ENV END\n");
  std::fflush(stdout);

  // The heap grows here, not in the children, so that attachers and idle
  // processes start with the same page tables.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 64 << 20);

  // The idle baselines first: every cell then starts with the guest past
  // its first minute, and the baselines are measured in the same state.
  try {
    auto any = make_backend("shm-4k");
    for (int n : config.procs)
      run.idle[n] = run_round(*any, 0, n, Role::Idle, config.timed);
    std::printf("# idle baselines measured, %.0f s\n", run.elapsed());
  } catch (const std::exception& e) {
    run.failures.push_back(std::string("idle baselines: ") + e.what());
  }
  if (config.paired > 0) run.paired_reserve = config.paired * 10.0 + 20;
  // The largest size first, for every backend: when the deadline stops the
  // run early, what is missing is a smaller size, not a whole backend.
  std::vector<std::size_t> order = {config.sizes.back()};
  order.insert(order.end(), config.sizes.begin(), config.sizes.end() - 1);
  for (std::size_t size_mib : order)
    for (const std::string& name : config.backends)
      run_column(name, size_mib, run);
  auto rank = [&](const Row& r) {
    return std::make_tuple(
        std::find(config.backends.begin(), config.backends.end(), r.backend) -
            config.backends.begin(),
        r.size_mib, r.n);
  };
  std::stable_sort(
      run.rows.begin(), run.rows.end(),
      [&](const Row& a, const Row& b) { return rank(a) < rank(b); });
  Paired paired;
  run_paired(run, paired, config.paired);
  PairedSummary summary;
  summary.rounds = paired.rounds;
  {
    const std::size_t small = config.sizes.front(), big = config.sizes.back();
    auto* mb = paired.find("mshare", big);
    auto* ms = paired.find("mshare", small);
    auto* sb = paired.find("shm-4k", big);
    if (mb && ms && small != big && paired.rounds > 0) {
      summary.attach_small = spread(ms->attach_us);
      summary.attach_big = spread(mb->attach_us);
      for (auto& [cpu, v] : ms->loop_min_us)
        summary.loop_small.insert(summary.loop_small.end(), v.begin(), v.end());
      for (auto& [cpu, v] : mb->loop_min_us)
        summary.loop_big.insert(summary.loop_big.end(), v.begin(), v.end());
    }
    if (mb && sb && paired.rounds > 0) {
      RatioRange r =
          paired_ratio(*sb, *mb, &Paired::Combo::read_ms, paired.rounds);
      summary.read_ratio = r.median;
      summary.read_lo = r.lo;
      summary.read_hi = r.hi;
    }
  }

  // The idle baseline was measured once, early: check that it still holds.
  std::string idle_check;
  if (!run.idle.empty()) {
    const int n = run.idle.rbegin()->first;
    const Round& early = run.idle.rbegin()->second;
    try {
      auto any = make_backend("shm-4k");
      Round late = run_round(*any, 0, n, Role::Idle, config.timed);
      char text[200];
      std::snprintf(
          text, sizeof(text),
          "# idle baseline: %d idle processes add %ld KiB of page tables "
          "(%.1f KiB each); %ld KiB when measured again at the end\n",
          n, early.attached.page_tables - early.before.page_tables,
          double(early.attached.page_tables - early.before.page_tables) / n,
          late.attached.page_tables - late.before.page_tables);
      idle_check = text;
    } catch (const std::exception& e) {
      run.failures.push_back(std::string("idle check: ") + e.what());
    }
  }

  std::printf("### TABLE BEGIN\n");
  print_environment(stdout, env);
  std::printf(
      "# PT: PageTables growth (region + attachers, beyond idle processes); "
      "faults: minor faults of one attacher's first full read; mem: MemFree "
      "drop (+ hugetlb pool pages used)\n");
  std::printf("%s", idle_check.c_str());
  for (const auto& why : run.skipped)
    std::printf("# not measured: %s\n", why.c_str());
  print_table(stdout, run.rows);
  std::printf("### TABLE END\n### PAIRED BEGIN\n");
  print_paired(stdout, paired);
  std::printf("### PAIRED END\n### RATIOS BEGIN\n");
  print_ratios(stdout, run.rows, config.backends, config.sizes, config.procs);
  std::printf("### RATIOS END\n### TARGETS BEGIN\n");
  print_targets(stdout, run.rows, config.sizes, config.procs, summary);
  std::printf("### TARGETS END\n### CSV BEGIN\n");
  print_environment(stdout, env);
  std::printf("%s", idle_check.c_str());
  for (const auto& why : run.skipped)
    std::printf("# not measured: %s\n", why.c_str());
  print_csv(stdout, run.rows);
  std::printf("### CSV END\n");
  if (!config.csv.empty()) {
    std::FILE* f = std::fopen(config.csv.c_str(), "w");
    if (!f) fail("open " + config.csv);
    print_environment(f, env);
    std::fprintf(f, "%s", idle_check.c_str());
    for (const auto& why : run.skipped)
      std::fprintf(f, "# not measured: %s\n", why.c_str());
    print_csv(f, run.rows);
    std::fclose(f);
  }
  for (const auto& f : run.failures) std::printf("# failed: %s\n", f.c_str());
  std::printf("# %zu cells measured in %.0f s\n", run.rows.size(),
              run.elapsed());

  const std::size_t expected =
      config.backends.size() * config.sizes.size() * config.procs.size();
  const bool ok = run.failures.empty() && run.rows.size() == expected;
  if (config.tap)
    std::printf("1..1\n%s 1 bench quick run produced %zu rows (%zu expected)\n",
                ok ? "ok" : "not ok", run.rows.size(), expected);
  std::fflush(stdout);
  // Cells skipped for time are expected under emulation; failures are not.
  return run.failures.empty() ? (ok || !config.tap ? 0 : 1) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_all(parse(argc, argv));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "mshare_bench: %s\n", e.what());
    usage(stderr, argv[0]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mshare_bench: %s\n", e.what());
    return 1;
  }
}
