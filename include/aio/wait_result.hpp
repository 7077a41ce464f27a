#pragma once
// aio::wait's vocabulary: when it returns (aio::first_completed, first_exception,
// all_completed: asyncio's return_when) and what it returns (the handles split into
// done and pending).

#include <cstdint>
#include <vector>

namespace aio {

// When co_await aio::wait(...) returns (asyncio's return_when).
enum class return_when : std::uint8_t {
    first_completed,  // as soon as any task has ended
    first_exception,  // as soon as any task has failed (cancelled does not count), else when all have ended
    all_completed,    // when every task has ended
};
inline constexpr return_when first_completed = return_when::first_completed;
inline constexpr return_when first_exception = return_when::first_exception;
inline constexpr return_when all_completed = return_when::all_completed;

// asyncio's (done, pending): the handles split by whether their task has ended, each
// part in the order of the handles given to aio::wait.
template <class Handle>
struct wait_result {
    std::vector<Handle> done;
    std::vector<Handle> pending;
};

}  // namespace aio
