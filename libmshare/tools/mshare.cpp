// SPDX-License-Identifier: LGPL-2.1-or-later
//
// mshare: list, inspect, create and remove libmshare regions.
#include <getopt.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "mshare/region.hpp"

namespace {

using libmshare::Backend;
using libmshare::Region;
using libmshare::RegionInfo;

// Exit statuses scripts can rely on.
enum ExitStatus {
  kOk = 0,
  kFailure = 1,      // anything not listed below
  kUsage = 2,        // bad command line, name, size, mode or address
  kNotFound = 3,     // no such region
  kExists = 4,       // region exists, or its address range is in use
  kPermission = 5,   // EACCES / EPERM
  kUnsupported = 6,  // the requested backend is not available
};

constexpr const char kUsageText[] =
    "Usage: mshare [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  ls                 list regions (name, backend, start, size, mode, "
    "owner)\n"
    "  stat NAME          show one region\n"
    "  create NAME SIZE   create a region and leave it for others to open\n"
    "  rm NAME            remove a region's name (attached processes keep it)\n"
    "\n"
    "Options:\n"
    "  -b, --backend=auto|kernel|posix  backend (default auto: "
    "MSHARE_BACKEND,\n"
    "                                   else kernel if msharefs is mounted)\n"
    "      --bytes                      print sizes in bytes\n"
    "  -m, --mode=OCTAL                 create: permission bits (default "
    "0600)\n"
    "  -a, --address=ADDR               create: start address (default: "
    "chosen)\n"
    "  -p, --populate                   create: allocate all memory now\n"
    "  -H, --huge-pages                 create: advise transparent huge pages\n"
    "  -h, --help                       show this help\n"
    "  -V, --version                    show the version\n"
    "\n"
    "SIZE is a number of bytes with an optional suffix K, M, G or T (powers\n"
    "of 1024; KiB and KB mean the same).\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error, 3 no such region,\n"
    "4 region exists or address in use, 5 permission denied, 6 backend not\n"
    "available.\n";

struct Command {
  Backend backend = Backend::Auto;
  bool bytes = false;
  libmshare::Options options;
  std::vector<std::string> args;
};

struct UsageError {
  std::string message;
};

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  if (digits == 0) return std::nullopt;
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (value > (UINT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  std::string_view suffix = text.substr(digits);
  int shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      case 't':
      case 'T':
        shift = 40;
        break;
      case 'b':
      case 'B':
        shift = 0;
        break;
      default:
        return std::nullopt;
    }
    suffix.remove_prefix(1);
    if (shift != 0 && (suffix == "iB" || suffix == "B")) suffix = {};
    if (!suffix.empty()) return std::nullopt;
  }
  if (shift != 0 && value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

std::string format_size(std::uint64_t bytes, bool exact) {
  if (exact || bytes < 1024) return std::to_string(bytes) + (exact ? "" : " B");
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < sizeof(units) / sizeof(units[0])) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f %s", value, units[unit]);
  return buffer;
}

std::string format_address(std::uintptr_t address) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "0x%" PRIxPTR, address);
  return buffer;
}

std::string format_mode(mode_t mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof(buffer), "%04o", static_cast<unsigned>(mode));
  return buffer;
}

std::string format_owner(const RegionInfo& info) {
  return std::to_string(info.uid) + ":" + std::to_string(info.gid);
}

Backend parse_backend(std::string_view text) {
  if (text == "auto") return Backend::Auto;
  if (text == "kernel") return Backend::Kernel;
  if (text == "posix") return Backend::Posix;
  throw UsageError{"unknown backend '" + std::string(text) +
                   "' (expected auto, kernel or posix)"};
}

void expect_args(const Command& command, std::size_t count,
                 const char* synopsis) {
  if (command.args.size() != count + 1)
    throw UsageError{std::string("usage: mshare ") + synopsis};
}

int run_ls(const Command& command) {
  expect_args(command, 0, "ls");
  std::vector<RegionInfo> regions = Region::list(command.backend);
  std::printf("%-24s %-7s %-16s %12s %5s %s\n", "NAME", "BACKEND", "START",
              "SIZE", "MODE", "OWNER");
  for (const RegionInfo& info : regions) {
    std::string size = info.readable ? format_size(info.size, command.bytes)
                                     : std::string("?");
    std::string start = info.address ? format_address(info.address) : "?";
    std::printf("%-24s %-7s %-16s %12s %5s %s\n", info.name.c_str(),
                libmshare::to_string(info.backend), start.c_str(), size.c_str(),
                format_mode(info.mode).c_str(), format_owner(info).c_str());
  }
  return kOk;
}

int run_stat(const Command& command) {
  expect_args(command, 1, "stat NAME");
  RegionInfo info = Region::stat(command.args[1], command.backend);
  auto field = [](const char* label, const std::string& value) {
    std::printf("%-9s %s\n", label, value.c_str());
  };
  field("name:", info.name);
  field("backend:", libmshare::to_string(info.backend));
  field("start:", info.address ? format_address(info.address) : "?");
  field("data:", info.address
                     ? format_address(info.address + libmshare::kHeaderSize)
                     : "?");
  field("size:", info.readable ? format_size(info.size, command.bytes) : "?");
  field("reserved:", format_size(info.reserved, command.bytes));
  field("mode:", format_mode(info.mode));
  field("owner:", format_owner(info));
  return kOk;
}

int run_create(Command& command) {
  expect_args(command, 2,
              "create NAME SIZE [--mode OCTAL] [--address ADDR] "
              "[--populate] [--huge-pages]");
  std::optional<std::uint64_t> size = parse_size(command.args[2]);
  if (!size || *size == 0)
    throw UsageError{"invalid size '" + command.args[2] + "'"};
  command.options.size = static_cast<std::size_t>(*size);
  command.options.backend = command.backend;
  Region region = Region::create(command.args[1], command.options);
  std::printf("%s %s %s %s\n", region.name().c_str(),
              libmshare::to_string(region.backend()),
              format_address(region.address()).c_str(),
              format_size(region.size(), command.bytes).c_str());
  return kOk;
}

int run_rm(const Command& command) {
  expect_args(command, 1, "rm NAME");
  Region::unlink(command.args[1], command.backend);
  return kOk;
}

int exit_status_for(int error) {
  switch (error) {
    case ENOENT:
      return kNotFound;
    case EEXIST:
      return kExists;
    case EACCES:
    case EPERM:
      return kPermission;
    case EOPNOTSUPP:
      return kUnsupported;
    case EINVAL:
    case ENAMETOOLONG:
      return kUsage;
    default:
      return kFailure;
  }
}

Command parse_command_line(int argc, char** argv, bool& help, bool& version) {
  enum { kBytesOption = 256 };
  static const option long_options[] = {
      {"backend", required_argument, nullptr, 'b'},
      {"bytes", no_argument, nullptr, kBytesOption},
      {"mode", required_argument, nullptr, 'm'},
      {"address", required_argument, nullptr, 'a'},
      {"populate", no_argument, nullptr, 'p'},
      {"huge-pages", no_argument, nullptr, 'H'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  Command command;
  opterr = 0;
  int option;
  while ((option = getopt_long(argc, argv, "b:m:a:pHhV", long_options,
                               nullptr)) != -1) {
    switch (option) {
      case 'b':
        command.backend = parse_backend(optarg);
        break;
      case kBytesOption:
        command.bytes = true;
        break;
      case 'm': {
        char* end = nullptr;
        errno = 0;
        unsigned long mode = std::strtoul(optarg, &end, 8);
        if (errno != 0 || *optarg == '\0' || *end != '\0' || mode > 0777)
          throw UsageError{std::string("invalid mode '") + optarg + "'"};
        command.options.mode = static_cast<mode_t>(mode);
        break;
      }
      case 'a': {
        char* end = nullptr;
        errno = 0;
        unsigned long long address = std::strtoull(optarg, &end, 0);
        if (errno != 0 || *optarg == '\0' || *end != '\0')
          throw UsageError{std::string("invalid address '") + optarg + "'"};
        command.options.address = static_cast<std::uintptr_t>(address);
        break;
      }
      case 'p':
        command.options.populate = true;
        break;
      case 'H':
        command.options.huge_pages = true;
        break;
      case 'h':
        help = true;
        break;
      case 'V':
        version = true;
        break;
      default:
        throw UsageError{std::string("unknown or incomplete option '") +
                         argv[optind - 1] + "'"};
    }
  }
  for (int i = optind; i < argc; ++i) command.args.emplace_back(argv[i]);
  return command;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool help = false;
    bool version = false;
    Command command = parse_command_line(argc, argv, help, version);
    if (help) {
      std::fputs(kUsageText, stdout);
      return kOk;
    }
    if (version) {
      std::puts("mshare " LIBMSHARE_VERSION);
      return kOk;
    }
    if (command.args.empty()) throw UsageError{"missing command"};
    const std::string& name = command.args[0];
    if (name == "ls") return run_ls(command);
    if (name == "stat") return run_stat(command);
    if (name == "create") return run_create(command);
    if (name == "rm") return run_rm(command);
    throw UsageError{"unknown command '" + name + "'"};
  } catch (const UsageError& error) {
    std::fprintf(stderr, "mshare: %s\nTry 'mshare --help'.\n",
                 error.message.c_str());
    return kUsage;
  } catch (const std::system_error& error) {
    std::fprintf(stderr, "mshare: %s\n", error.what());
    return exit_status_for(error.code().value());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mshare: %s\n", error.what());
    return kFailure;
  }
}
