// A timeout scope's run() refers to the scope (and maybe to its argument): it is
// awaitable only in the expression that makes it. Awaiting a named one must not compile
// (AIO_COMPILE_FAIL); awaiting it at once must.

#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/timeout.hpp>

#include <chrono>

using namespace std::chrono_literals;

aio::task<int> one() { co_return 1; }

aio::task<int> program() {
    auto limit = aio::timeout(1s);
    int v = co_await limit.run(one());
#ifdef AIO_COMPILE_FAIL
    auto again = aio::timeout(1s);
    auto w = again.run(one());
    v += co_await w;
#endif
    co_return v;
}

int main() {}
