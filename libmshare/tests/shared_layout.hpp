// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Data layouts the tests and the helper process agree on.
#ifndef LIBMSHARE_TESTS_SHARED_LAYOUT_HPP
#define LIBMSHARE_TESTS_SHARED_LAYOUT_HPP

#include <atomic>
#include <cstdint>

namespace mshare_test {

inline constexpr unsigned char kGrowthMarker = 0x5a;

struct RaceLayout {
  std::atomic<std::uint64_t> attached;
};

struct ListNode {
  ListNode* next;
  std::uint64_t value;
};

// A linked list built with absolute pointers into the region itself.
struct ListLayout {
  ListNode* head;
  std::uint64_t seen_count;
  std::uint64_t seen_sum;
};

// The nodes follow the layout.
inline ListNode* list_nodes(ListLayout* layout) {
  return reinterpret_cast<ListNode*>(layout + 1);
}

}  // namespace mshare_test

#endif  // LIBMSHARE_TESTS_SHARED_LAYOUT_HPP
