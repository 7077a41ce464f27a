// wait_for over an event's wait() keeps that immovable awaitable by reference: awaiting
// a named wait_for must not compile (AIO_COMPILE_FAIL); awaiting it at once must. A
// gather can be moved, so wait_for keeps it by value and a named one is fine.

#include <aio/event.hpp>
#include <aio/gather.hpp>
#include <aio/task.hpp>
#include <aio/wait_for.hpp>

#include <chrono>
#include <utility>

using namespace std::chrono_literals;

aio::task<int> one() { co_return 1; }

aio::task<int> program(aio::event& e) {
    co_await aio::wait_for(e.wait(), 1s);
    auto stored = aio::wait_for(aio::gather(one(), one()), 1s);
    auto [a, b] = co_await std::move(stored);
#ifdef AIO_COMPILE_FAIL
    auto w = aio::wait_for(e.wait(), 1s);  // e.wait()'s awaiter dies here
    co_await w;
#endif
    co_return a + b;
}

int main() {}
