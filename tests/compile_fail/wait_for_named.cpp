// wait_for over an awaitable it keeps by reference (a queue's get()) is
// awaitable only in the expression that makes it: with AIO_COMPILE_FAIL defined, this
// file awaits a named one and must not compile; without it, it must.

#include <aio/gather.hpp>
#include <aio/queue.hpp>
#include <aio/task.hpp>
#include <aio/wait_for.hpp>

#include <chrono>

using namespace std::chrono_literals;

aio::task<int> one() { co_return 1; }

aio::task<int> program(aio::queue<int>& q) {
    int v = co_await aio::wait_for(q.get(), 1s);
    auto [a] = co_await aio::wait_for(aio::gather(one()), 1s);  // a gather is moved in
    // A movable awaitable is kept by value: the result is a task, and may be stored.
    auto stored = aio::wait_for(one(), 1s);
    v += co_await std::move(stored);
#ifdef AIO_COMPILE_FAIL
    auto w = aio::wait_for(q.get(), 1s);  // q.get()'s awaitable dies here
    v += co_await w;
#endif
    co_return v + a;
}

int main() {}
