#pragma once
// A value that counts its constructions and destructions, to prove that coroutine
// frames and results are destroyed exactly once. The counts are atomic: a value may
// be made on a worker thread and destroyed on the loop's.

#include <atomic>

namespace aio_test {

struct counted {
    static inline std::atomic<int> constructed = 0;
    static inline std::atomic<int> destroyed = 0;
    static int alive() { return constructed - destroyed; }
    static void reset() { constructed = destroyed = 0; }

    int value = 0;
    counted() { ++constructed; }
    explicit counted(int v) : value(v) { ++constructed; }
    counted(const counted& other) : value(other.value) { ++constructed; }
    counted(counted&& other) noexcept : value(other.value) { ++constructed; }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) noexcept = default;
    ~counted() { ++destroyed; }
};

}  // namespace aio_test
