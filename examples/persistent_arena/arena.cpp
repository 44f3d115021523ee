// SPDX-License-Identifier: LGPL-2.1-or-later
#include "arena.hpp"

#include <cstdio>
#include <cstring>
#include <new>

namespace persistent_arena {
namespace {

constexpr std::size_t kAlign = 16;
// "node 18446744073709551615" and its NUL fit in this.
constexpr std::size_t kLabelBytes = 32;

constexpr std::size_t align(std::size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

ArenaHeader& header_of(const libmshare::Region& arena) {
  auto& header = *arena.as<ArenaHeader>();
  if (arena.size() < sizeof(ArenaHeader) || header.magic != kArenaMagic)
    throw Error("region \"" + arena.name() + "\" holds no arena");
  return header;
}

// A bump allocator over the arena's data.
void* allocate(libmshare::Region& arena, std::size_t bytes) {
  ArenaHeader& header = header_of(arena);
  const std::size_t length = align(bytes);
  if (header.used + length > arena.size())
    throw Error("arena \"" + arena.name() + "\" is full (" +
                std::to_string(arena.size()) + " bytes): grow it first");
  void* block = arena.as<char>() + header.used;
  header.used += length;
  return block;
}

bool inside(const libmshare::Region& arena, const void* pointer,
            std::size_t bytes) {
  const auto* start = arena.as<const char>();
  const auto* p = static_cast<const char*>(pointer);
  return p >= start && p + bytes <= start + arena.size();
}

}  // namespace

std::size_t bytes_for(std::uint64_t nodes) {
  return nodes * (align(sizeof(Node)) + kLabelBytes);
}

std::size_t empty_size() { return align(sizeof(ArenaHeader)); }

void format(void* data, std::size_t size) {
  if (size < empty_size()) throw Error("arena too small for its header");
  new (data) ArenaHeader{kArenaMagic, empty_size(), nullptr, nullptr, 0};
}

Node* append(libmshare::Region& arena, std::uint64_t nodes) {
  ArenaHeader& header = header_of(arena);
  if (header.used + bytes_for(nodes) > arena.size())
    throw Error("arena \"" + arena.name() + "\" has room for fewer than " +
                std::to_string(nodes) + " more nodes: grow it first");
  Node* first = nullptr;
  for (std::uint64_t i = 0; i < nodes; ++i) {
    auto* node = new (allocate(arena, sizeof(Node))) Node{};
    node->index = header.count;
    auto* label = static_cast<char*>(allocate(arena, kLabelBytes));
    std::snprintf(label, kLabelBytes, "node %llu",
                  static_cast<unsigned long long>(node->index));
    node->label = label;
    if (header.tail != nullptr)
      header.tail->next = node;
    else
      header.head = node;
    header.tail = node;
    ++header.count;
    if (first == nullptr) first = node;
  }
  return first;
}

std::size_t truncate(libmshare::Region& arena, std::uint64_t nodes) {
  ArenaHeader& header = header_of(arena);
  if (nodes > header.count)
    throw Error("arena \"" + arena.name() + "\" has only " +
                std::to_string(header.count) + " nodes");
  if (nodes == 0) {
    header.head = header.tail = nullptr;
    header.count = 0;
    header.used = empty_size();
    return header.used;
  }
  Node* last = header.head;
  for (std::uint64_t i = 1; i < nodes; ++i) last = last->next;
  last->next = nullptr;
  header.tail = last;
  header.count = nodes;
  // Nodes and labels were allocated in order: the kept ones end with the
  // last one's label.
  header.used = static_cast<std::size_t>(last->label + kLabelBytes -
                                         arena.as<const char>());
  return header.used;
}

Walk walk(const libmshare::Region& arena) {
  Walk result;
  const ArenaHeader& header = header_of(arena);
  for (const Node* node = header.head; node != nullptr; node = node->next) {
    char expected[kLabelBytes];
    std::snprintf(expected, sizeof(expected), "node %llu",
                  static_cast<unsigned long long>(result.count));
    if (!inside(arena, node, sizeof(Node)) ||
        !inside(arena, node->label, kLabelBytes) ||
        node->index != result.count ||
        std::strncmp(node->label, expected, kLabelBytes) != 0 ||
        result.count == header.count) {
      char where[32];
      std::snprintf(where, sizeof(where), "%p", static_cast<const void*>(node));
      result.error = "node " + std::to_string(result.count) + " at " + where +
                     " is not the node expected";
      return result;
    }
    if (result.first == nullptr) result.first = node;
    result.last = node;
    result.sum += node->index;
    ++result.count;
  }
  if (result.count != header.count || result.last != header.tail)
    result.error = "the list holds " + std::to_string(result.count) +
                   " nodes, the header says " + std::to_string(header.count);
  return result;
}

}  // namespace persistent_arena
