#include <aio/run.hpp>
#include <aio/task.hpp>

#include "support/catch.hpp"

TEST_CASE("co_await of a lazy task returns its value") {
    auto child = []() -> aio::task<int> { co_return 7; };
    auto parent = [&]() -> aio::task<int> { co_return co_await child() * 6; };
    REQUIRE(aio::run(parent()) == 42);
}
