#pragma once
// What the I/O tests check after each test: that no descriptor was left open.

#include <cstddef>
#include <filesystem>

namespace aio_test {

// The descriptors this process has open (the entries of /proc/self/fd; the listing's
// own is counted every time, so a count before and one after compare).
inline std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

}  // namespace aio_test
