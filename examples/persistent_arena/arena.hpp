// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A linked list kept in a persistent arena: nodes and their labels are
// allocated from the arena and linked with absolute pointers, which stay
// valid because every process maps the arena at the same address.
#ifndef PERSISTENT_ARENA_ARENA_HPP
#define PERSISTENT_ARENA_ARENA_HPP

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "mshare/region.hpp"

namespace persistent_arena {

// Where arenas go unless told otherwise: 6 TiB, well away from shared
// objects, stacks and the heap, and a multiple of 512 GiB as the kernel
// backend needs.
inline constexpr std::uintptr_t kDefaultAddress = 0x60000000000;

struct Node {
  Node* next;
  std::uint64_t index;
  const char* label;  // "node INDEX", allocated after the node
};

// At the start of the arena's data.
struct ArenaHeader {
  std::uint64_t magic;
  std::uint64_t used;  // bytes allocated, this header included
  Node* head;
  Node* tail;
  std::uint64_t count;
};
inline constexpr std::uint64_t kArenaMagic = 0x616e657261746d63;  // "cmtarena"

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bytes of arena that `nodes` more nodes take at most.
std::size_t bytes_for(std::uint64_t nodes);
// Bytes an empty arena takes.
std::size_t empty_size();

// Writes an empty list into a fresh arena.
void format(void* data, std::size_t size);
// Appends `nodes` nodes; the arena must have room (Error otherwise).
// Returns the first new node.
Node* append(libmshare::Region& arena, std::uint64_t nodes);
// Keeps the first `nodes` nodes; returns the bytes the list now uses, so
// that the arena can shrink to them.
std::size_t truncate(libmshare::Region& arena, std::uint64_t nodes);

// What walking the list found; `error` is empty if every pointer led
// inside the arena to the node or label expected.
struct Walk {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;  // of the indices
  const Node* first = nullptr;
  const Node* last = nullptr;
  std::string error;
};
Walk walk(const libmshare::Region& arena);

}  // namespace persistent_arena

#endif  // PERSISTENT_ARENA_ARENA_HPP
