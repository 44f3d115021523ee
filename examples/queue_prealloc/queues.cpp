// SPDX-License-Identifier: LGPL-2.1-or-later
#include "queues.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <new>
#include <sstream>
#include <system_error>

#include "mshare/syscall.h"
#include "units.hpp"

namespace queue_prealloc {
namespace {

using libmshare::Access;
using libmshare::Options;
using libmshare::Region;

bool valid_channel(const std::string& name) {
  if (name.size() < 2 || name.front() != '/' || name.back() == '/')
    return false;
  char previous = 0;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '/';
    if (!ok || (c == '/' && previous == '/')) return false;
    previous = c;
  }
  return true;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::istringstream input(text);
  std::string part;
  while (std::getline(input, part, separator))
    if (!part.empty()) parts.push_back(part);
  return parts;
}

// Makes every page of the queue present in this process's page tables, so
// that running never faults (AOS's PageFaultDataWrite/Read). Writers get
// writable entries, readers readable ones.
void prefault(const Queue& queue) {
  auto* start = static_cast<char*>(queue.region.data());
  const std::size_t length = queue.region.size();
  const int advice = queue.writer ? MADV_POPULATE_WRITE : MADV_POPULATE_READ;
  if (madvise(start, length, advice) == 0) return;
  if (errno != EINVAL)
    throw std::system_error(errno, std::generic_category(),
                            "madvise(MADV_POPULATE_*)");
  // Before Linux 5.14: touch every page. The writer's "store 0 if it is
  // already 0" writes without changing what another process may be
  // initialising.
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (std::size_t offset = 0; offset < length; offset += page) {
    if (queue.writer) {
      char zero = 0;
      __atomic_compare_exchange_n(start + offset, &zero, 0, true,
                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    } else {
      (void)__atomic_load_n(start + offset, __ATOMIC_RELAXED);
    }
  }
}

Queue open_queue(const Channel& channel, const std::string& app,
                 const std::string& name_space, std::uintptr_t address) {
  const std::string name = region_name(name_space, channel.name);
  if (libmshare::kHeaderSize + channel.size > queue_stride())
    throw Error("queue " + channel.name + ": " + std::to_string(channel.size) +
                " bytes do not fit in " + std::to_string(queue_stride()) +
                " between queues");
  Queue queue;
  queue.channel = channel;
  queue.writer = std::find(channel.writers.begin(), channel.writers.end(),
                           app) != channel.writers.end();

  Options options;
  options.size = channel.size;
  options.address = address;
  // The creator allocates all of it now: ENOMEM at start, never SIGBUS
  // later.
  options.populate = true;
  options.initialize = [](void* data, std::size_t size) {
    new (data) QueueHeader{kQueueMagic, size, getpid()};
  };
  try {
    // Exactly one of the processes racing here creates the queue; the
    // others wait until it is published and compare sizes (EINVAL).
    queue.region = Region::open_or_create(name, options);
  } catch (const std::system_error& error) {
    std::string message = "queue " + channel.name + ": " + error.what();
    if (error.code().value() == EINVAL)
      message += " (did the queue's size in the configuration change?)";
    throw Error(message);
  }
  queue.created = queue.region.created();
  if (!queue.writer) {
    // Readers map read-only, so a stray write faults in the reader instead
    // of corrupting the writers' messages. Creating needs write access: a
    // reader that came first attaches again, read-only.
    queue.region.detach();
    try {
      queue.region = Region::open(name, Access::ReadOnly);
    } catch (const std::system_error& error) {
      throw Error("queue " + channel.name + ": " + error.what());
    }
  }
  const auto* header = queue.region.as<QueueHeader>();
  if (queue.region.size() != channel.size || header->magic != kQueueMagic ||
      header->size != channel.size)
    throw Error("queue " + channel.name + ": region \"" + name +
                "\" does not hold a queue of " + std::to_string(channel.size) +
                " bytes");
  queue.creator = static_cast<pid_t>(header->creator);
  prefault(queue);
  return queue;
}

}  // namespace

std::vector<Channel> read_config(const std::string& path) {
  std::ifstream input(path);
  if (!input) throw Error(path + ": cannot open the configuration");
  std::vector<Channel> channels;
  std::string line;
  for (int number = 1; std::getline(input, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::istringstream fields(line);
    std::string name;
    std::string size;
    std::string writers;
    std::string extra;
    if (!(fields >> name)) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (!(fields >> size >> writers) || (fields >> extra))
      throw Error(where + "expected \"CHANNEL SIZE WRITER[,WRITER...]\"");
    if (!valid_channel(name))
      throw Error(where + "bad channel name \"" + name + "\"");
    Channel channel;
    channel.name = name;
    auto bytes = examples::parse_size(size);
    if (!bytes || *bytes < sizeof(QueueHeader))
      throw Error(where + "bad size \"" + size + "\"");
    channel.size = *bytes;
    channel.writers = split(writers, ',');
    for (const Channel& other : channels)
      if (other.name == name)
        throw Error(where + "channel " + name + " is listed twice");
    channels.push_back(std::move(channel));
  }
  if (channels.empty()) throw Error(path + ": no channels");
  return channels;
}

std::string region_name(const std::string& name_space,
                        const std::string& channel) {
  std::string name = name_space + channel;
  std::replace(name.begin(), name.end(), '/', '.');
  return name;
}

std::size_t queue_stride() {
  if (libmshare::Region::default_backend() == libmshare::Backend::Kernel)
    return mshare_unit();
  return std::size_t{1} << 30;
}

std::vector<Queue> open_queues(const std::vector<Channel>& channels,
                               const std::string& app,
                               const std::string& name_space,
                               std::uintptr_t base_address) {
  std::vector<Queue> queues;
  const std::size_t stride = queue_stride();
  for (std::size_t i = 0; i < channels.size(); ++i)
    queues.push_back(
        open_queue(channels[i], app, name_space, base_address + i * stride));
  return queues;
}

int remove_queues(const std::vector<Channel>& channels,
                  const std::string& name_space) {
  int removed = 0;
  for (const Channel& channel : channels) {
    try {
      Region::unlink(region_name(name_space, channel.name));
      ++removed;
    } catch (const std::system_error& error) {
      if (error.code().value() != ENOENT) throw;
    }
  }
  return removed;
}

}  // namespace queue_prealloc
