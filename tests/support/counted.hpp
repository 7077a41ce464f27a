#pragma once
// A value that counts its constructions and destructions, to prove that coroutine
// frames and results are destroyed exactly once.

namespace aio_test {

struct counted {
    static inline int constructed = 0;
    static inline int destroyed = 0;
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
