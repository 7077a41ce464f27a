#include <aio/event_loop.hpp>
#include <aio/handle.hpp>

#include <chrono>

#include "support/catch.hpp"

using namespace std::chrono_literals;

TEST_CASE("a cancelled call_soon callback is skipped") {
    aio::event_loop loop;
    bool ran = false;
    aio::handle h = loop.call_soon([&] { ran = true; });
    REQUIRE_FALSE(h.cancelled());
    h.cancel();
    REQUIRE(h.cancelled());
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    REQUIRE_FALSE(ran);
}

TEST_CASE("a timer handle tells when it is due") {
    aio::event_loop loop;
    auto when = loop.time() + 5s;
    aio::timer_handle h = loop.call_at(when, [] {});
    REQUIRE(h.when() == when);
    h.cancel();
}

TEST_CASE("cancelling a handle after its callback ran changes nothing") {
    aio::event_loop loop;
    int runs = 0;
    aio::timer_handle h = loop.call_later(0ms, [&] {
        ++runs;
        loop.stop();
    });
    loop.run_forever();
    h.cancel();
    h.cancel();
    REQUIRE(runs == 1);
}

TEST_CASE("copies of a handle share the callback") {
    aio::event_loop loop;
    bool ran = false;
    aio::handle a = loop.call_soon([&] { ran = true; });
    aio::handle b = a;
    b.cancel();
    REQUIRE(a.cancelled());
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    REQUIRE_FALSE(ran);
    aio::handle empty;
    REQUIRE_FALSE(empty);
    REQUIRE_NOTHROW(empty.cancel());
}

TEST_CASE("a timer cancelled from a callback of the same iteration does not fire") {
    aio::event_loop loop;
    bool fired = false;
    aio::timer_handle later;
    auto base = loop.time();
    loop.call_at(base, [&] { later.cancel(); });
    later = loop.call_at(base, [&] { fired = true; });
    loop.call_at(base + 2ms, [&] { loop.stop(); });
    loop.run_forever();
    REQUIRE_FALSE(fired);
}
