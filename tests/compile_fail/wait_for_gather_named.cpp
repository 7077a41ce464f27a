// wait_for over a gather keeps the gather by reference: awaiting a named one must not
// compile (AIO_COMPILE_FAIL); awaiting it at once must.

#include <aio/gather.hpp>
#include <aio/task.hpp>
#include <aio/wait_for.hpp>

#include <chrono>

using namespace std::chrono_literals;

aio::task<int> one() { co_return 1; }

aio::task<int> program() {
    auto [a, b] = co_await aio::wait_for(aio::gather(one(), one()), 1s);
#ifdef AIO_COMPILE_FAIL
    auto w = aio::wait_for(aio::gather(one(), one()), 1s);  // the gather dies here
    auto [c, d] = co_await w;
    a += c + d;
#endif
    co_return a + b;
}

int main() {}
