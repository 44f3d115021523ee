// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A board of messages linked by raw pointers, written by one process and
// read by another that opens the region by name.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <system_error>

#include <mshare/region.hpp>

struct Message {
  Message* next;  // a plain pointer: valid in every process
  char text[32];
};

struct Board {
  Message* first;
  Message slots[8];
};

static int read_board(const std::string& name) {
  libmshare::Region region =
      libmshare::Region::open(name, libmshare::Access::ReadOnly);
  const Board* board = region.as<Board>();
  int count = 0;
  for (const Message* m = board->first; m != nullptr; m = m->next) {
    std::printf("reader %d: %s\n", static_cast<int>(getpid()), m->text);
    ++count;
  }
  return count == 3 ? 0 : 1;
}

int main() {
  try {
    libmshare::Options options;
    options.size = sizeof(Board);
    // Removed again when `region` is destroyed in this process.
    libmshare::Region region = libmshare::Region::create_temp(options);
    Board* board = new (region.data()) Board{};
    const char* texts[] = {"first", "second", "third"};
    Message** link = &board->first;
    for (int i = 0; i < 3; ++i) {
      Message* slot = &board->slots[2 - i];  // any order: pointers link them
      std::snprintf(slot->text, sizeof(slot->text), "%s", texts[i]);
      *link = slot;
      link = &slot->next;
    }
    std::printf("%s region %s at %p, %zu bytes\n",
                libmshare::to_string(region.backend()), region.name().c_str(),
                region.data(), region.size());

    const std::string name = region.name();
    std::fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
      // The child inherited the mapping; drop it and open by name like an
      // unrelated program would.
      region.detach();
      int status = 1;
      try {
        status = read_board(name);
      } catch (const std::system_error& error) {
        std::fprintf(stderr, "reader: %s\n", error.what());
      }
      std::fflush(stdout);
      _exit(status);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  } catch (const std::system_error& error) {
    std::fprintf(stderr, "example: %s\n", error.what());
    return 1;
  }
}
