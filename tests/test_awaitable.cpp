// aio/awaitable.hpp: the aio::awaitable concept and aio::await_result_t.

#include <aio/awaitable.hpp>
#include <aio/event.hpp>
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <string>
#include <type_traits>

#include "support/catch.hpp"

using namespace std::chrono_literals;

static_assert(aio::awaitable<aio::task<int>>);
static_assert(aio::awaitable<aio::task_handle<std::string>>);
static_assert(aio::awaitable<aio::sleep_awaitable>);
static_assert(aio::awaitable<aio::event::wait_awaiter>);
static_assert(!aio::awaitable<int>);
static_assert(!aio::awaitable<std::string>);
static_assert(std::is_same_v<aio::await_result_t<aio::task<int>>, int>);
static_assert(std::is_same_v<aio::await_result_t<aio::task_handle<std::string>>, std::string>);
static_assert(std::is_same_v<aio::await_result_t<aio::sleep_awaitable>, void>);

namespace {

// A user's template over any awaitable: awaits it twice over, as two fresh ones.
template <aio::awaitable A, class Make>
aio::task<aio::await_result_t<A>> first_of_two(Make make) {
    auto a = co_await make();
    (void)co_await make();
    co_return a;
}

aio::task<int> seven() { co_return 7; }

}  // namespace

TEST_CASE("a template constrained with aio::awaitable takes a task and gives its result type") {
    auto program = []() -> aio::task<int> { co_return co_await first_of_two<aio::task<int>>([] { return seven(); }); };
    REQUIRE(aio::run(program()) == 7);
}
