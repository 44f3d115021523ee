// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The message-queue memory of a robotics runtime, allocated for every
// channel before anything runs (the pattern of AOS's starterd and
// MemoryMappedQueue): whichever process comes first creates a queue, the
// others wait until it is published and check its size; writers map it
// read-write, readers read-only; every page is prefaulted at start so the
// memory in use is fixed and known.
#ifndef QUEUE_PREALLOC_QUEUES_HPP
#define QUEUE_PREALLOC_QUEUES_HPP

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "mshare/region.hpp"

namespace queue_prealloc {

struct Channel {
  std::string name;                  // "/robot/imu"
  std::size_t size = 0;              // bytes of queue memory
  std::vector<std::string> writers;  // applications that send on it
};

// A bad configuration line, or a queue that cannot be opened as configured.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads "CHANNEL SIZE WRITER[,WRITER...]" lines; '#' starts a comment.
// SIZE takes K, M or G. Channel names are absolute paths of letters,
// digits, '_' and '-'.
std::vector<Channel> read_config(const std::string& path);

// Where the queues go: channel i of the configuration at base + i * stride,
// so that every process agrees on every address without asking anyone,
// and no two queues can land at the same address (regions placed by the
// library independently in several processes could). The stride is the
// kernel backend's sharing unit (a region owns whole units) or 1 GiB on
// the POSIX fallback; a queue must fit in it.
inline constexpr std::uintptr_t kDefaultBaseAddress = 0x80000000000;  // 8 TiB
std::size_t queue_stride();

// "/robot/imu" in namespace "aos" is the region "aos.robot.imu".
std::string region_name(const std::string& name_space,
                        const std::string& channel);

// The start of every queue, written by its creator before anyone else can
// see the queue.
struct QueueHeader {
  std::uint64_t magic;
  std::uint64_t size;
  std::int64_t creator;  // pid
};
inline constexpr std::uint64_t kQueueMagic = 0x716d656d2d736f61;  // "aos-memq"

struct Queue {
  Channel channel;
  libmshare::Region region;
  bool writer = false;   // mapped read-write (else read-only)
  bool created = false;  // this process created it
  pid_t creator = 0;     // whoever did
};

// Opens or creates the queue of every channel for application `app`, at
// base_address + i * queue_stride(): read-write where `app` is a writer,
// read-only elsewhere, every page prefaulted. Throws Error naming the
// channel (a size that differs from an existing queue's included).
std::vector<Queue> open_queues(const std::vector<Channel>& channels,
                               const std::string& app,
                               const std::string& name_space,
                               std::uintptr_t base_address);

// Removes the queues of `channels`; returns how many existed.
int remove_queues(const std::vector<Channel>& channels,
                  const std::string& name_space);

}  // namespace queue_prealloc

#endif  // QUEUE_PREALLOC_QUEUES_HPP
