// SPDX-License-Identifier: LGPL-2.1-or-later
//
// What a publisher's memory pool holds, and the registry its subscribers
// announce themselves in (the bookkeeping a zero-copy middleware such as
// Agnocast keeps in its kernel module).
#ifndef GROWING_POOL_POOL_HPP
#define GROWING_POOL_POOL_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace growing_pool {

// Where pools go unless POOL_ADDRESS says otherwise: Agnocast assumes the
// memory from 0x40000000000 (4 TiB) up is free. A multiple of 512 GiB, as
// the kernel backend needs.
inline constexpr std::uintptr_t kDefaultPoolAddress = 0x40000000000;
// The first size of a pool unless MEMPOOL_SIZE says otherwise.
inline constexpr std::size_t kDefaultPoolSize = 64 << 10;

// A published message; its text follows it in the pool.
struct Message {
  // The next message, set once that one is complete: subscribers follow
  // these raw pointers, wherever in the pool the message was allocated.
  std::atomic<const Message*> next;
  std::uint64_t sequence;
  std::uint64_t length;  // bytes of text

  const char* text() const { return reinterpret_cast<const char*>(this + 1); }
};

// At the start of the pool's data; written only by the publisher.
struct PoolHeader {
  std::uint64_t magic;
  std::atomic<const Message*> first;
  std::atomic<std::uint32_t> closed;  // set after the last message
  std::uint64_t used;                 // bytes handed out, header included
};
inline constexpr std::uint64_t kPoolMagic = 0x6c6f6f702d627573;  // "sub-pool"

// Read-write for everyone: subscribers register and acknowledge here,
// since they map the pool read-only.
inline constexpr unsigned kMaxSubscribers = 16;
struct Registry {
  std::atomic<std::uint32_t> subscribers;
  struct Slot {
    std::atomic<std::int64_t> pid;
    std::atomic<std::uint64_t> seen;  // sequence of the last message read
  } slots[kMaxSubscribers];
};

inline std::string registry_name(const std::string& topic) {
  return topic + ".registry";
}

// The text of message `sequence`: its length varies, and a subscriber can
// check every byte it reads.
inline std::string message_text(std::uint64_t sequence) {
  std::string text = "message " + std::to_string(sequence) + " ";
  text.append(100 + (sequence * 37) % 400,
              static_cast<char>('a' + sequence % 26));
  return text;
}

}  // namespace growing_pool

#endif  // GROWING_POOL_POOL_HPP
