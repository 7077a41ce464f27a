// aio::handle and aio::timer_handle: what call_soon / call_later / call_at return —
// cancel(), cancelled(), when(), copies, and handles that outlive their loop.
// Cancelled timers release their callbacks at once and never pile up in the loop.

#include <aio/event_loop.hpp>
#include <aio/handle.hpp>
#include <aio/detail/loop_core.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::counted;
using aio_test::trace;
using lines = std::vector<std::string>;

TEST_CASE("a default handle is empty and cancel() does nothing") {
    aio::handle h;
    REQUIRE_FALSE(static_cast<bool>(h));
    REQUIRE_FALSE(h.cancelled());
    h.cancel();
    REQUIRE_FALSE(h.cancelled());
    aio::timer_handle t;
    REQUIRE_FALSE(static_cast<bool>(t));
    t.cancel();
    REQUIRE_FALSE(t.cancelled());
}

TEST_CASE("cancelling a call_soon handle before its turn skips the callback") {
    trace log;
    aio::event_loop loop;
    loop.call_soon([&] { log("a"); });
    aio::handle b = loop.call_soon([&] { log("b"); });
    loop.call_soon([&] {
        log("c");
        loop.stop();
    });
    REQUIRE(static_cast<bool>(b));
    REQUIRE_FALSE(b.cancelled());
    b.cancel();
    REQUIRE(b.cancelled());
    loop.run_forever();
    REQUIRE(log.events == lines{"a", "c"});
}

TEST_CASE("a callback cancelled by an earlier callback of the same iteration does not run") {
    trace log;
    aio::event_loop loop;
    aio::handle b;
    loop.call_soon([&] {
        log("a");
        b.cancel();
    });
    b = loop.call_soon([&] { log("b"); });
    loop.call_soon([&] {
        log("c");
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(log.events == lines{"a", "c"});
}

// import asyncio
// log = []
// loop = asyncio.new_event_loop()
// when = loop.time() + 0.005
// holder = {}
// def a():
//     log.append("a")
//     holder['b'].cancel()
// holder['a'] = loop.call_at(when, a)
// holder['b'] = loop.call_at(when, lambda: log.append("b"))
// loop.call_at(when, lambda: log.append("c"))
// loop.call_later(0.05, loop.stop)
// loop.run_forever()
// loop.close()
// print(log)
TEST_CASE("a timer cancelled by a callback of the same iteration is skipped although already due, as in asyncio") {
    trace log;
    aio::event_loop loop;
    const auto when = loop.time() + 5ms;
    aio::timer_handle b;
    loop.call_at(when, [&] {
        log("a");
        b.cancel();
    });
    b = loop.call_at(when, [&] { log("b"); });
    loop.call_at(when, [&] { log("c"); });
    loop.call_later(50ms, [&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(log.events == lines{"a", "c"});
    REQUIRE(b.cancelled());
}

TEST_CASE("cancelling a timer handle removes the timer: it never fires") {
    trace log;
    aio::event_loop loop;
    aio::timer_handle t = loop.call_later(1ms, [&] { log("timer"); });
    REQUIRE_FALSE(t.cancelled());
    t.cancel();
    REQUIRE(t.cancelled());
    t.cancel();  // twice is harmless
    REQUIRE(t.cancelled());
    loop.call_later(10ms, [&] {
        log("stop");
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(log.events == lines{"stop"});
}

TEST_CASE("cancelling a timer releases what its callback captured before the loop's next iteration") {
    counted::reset();
    aio::event_loop loop;
    aio::timer_handle t;
    {
        counted c(7);
        t = loop.call_later(1h, [c] {});
    }
    REQUIRE(counted::alive() == 1);
    t.cancel();
    REQUIRE(t.cancelled());
    REQUIRE(counted::alive() == 1);  // not inside cancel(): its caller may be what the callback owns
    int alive_then = -1;
    loop.call_soon([&] {
        alive_then = counted::alive();
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(alive_then == 0);  // the handle still holds the node, not the callback
}

TEST_CASE("an object that only its own timer's callback keeps alive survives cancelling it from its own method") {
    struct session {
        std::string name = std::string(64, 's');
        aio::timer_handle idle;
        std::string stop() {
            idle.cancel();
            return name;  // still alive: the callback goes at the loop's next iteration
        }
    };
    aio::event_loop loop;
    session* raw = nullptr;
    {
        auto s = std::make_shared<session>();
        raw = s.get();
        s->idle = loop.call_later(1h, [s] { (void)s->stop(); });
    }
    std::string stopped;
    loop.call_soon([&] { stopped = raw->stop(); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(stopped == std::string(64, 's'));  // and LeakSanitizer sees the session go
}

TEST_CASE("a callback that holds its own timer's only handle survives the sweep its cancellation sets off") {
    struct state {
        aio::timer_handle self;
    };
    aio::event_loop loop;
    std::vector<aio::timer_handle> others;
    for (int i = 0; i < 40; ++i) others.push_back(loop.call_later(1h, [] {}));
    for (int i = 0; i < 32; ++i) others[static_cast<std::size_t>(i)].cancel();  // not yet worth a sweep
    auto s = std::make_shared<state>();
    s->self = loop.call_later(1h, [pad = std::string(100, 'x'), s] {});
    state* raw = s.get();
    s.reset();
    raw->self.cancel();  // the 33rd: a sweep inside cancel() drops the queue's reference
    REQUIRE(aio::detail::loop_access::core(loop).timers.size() < 40);
    loop.close();  // the callback, the state and its handle go here, once
}

TEST_CASE("closing a loop whose timers' callbacks cancel other timers as they are destroyed") {
    struct cancel_all_on_destroy {
        std::shared_ptr<std::vector<aio::timer_handle>> handles;
        ~cancel_all_on_destroy() {
            if (handles)
                for (auto& h : *handles) h.cancel();
        }
    };
    counted::reset();
    {
        aio::event_loop loop;
        auto handles = std::make_shared<std::vector<aio::timer_handle>>();
        loop.call_later(1h, [] {}).cancel();  // only the queue holds it
        loop.call_later(1h, [g = cancel_all_on_destroy{handles}] {});
        for (int i = 0; i < 40; ++i) handles->push_back(loop.call_later(1h, [c = counted(i)] {}));
        handles.reset();
        loop.close();  // the first callback's destructor cancels the other 40 while the loop lets go of them
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a callback that holds its own handle is destroyed once it has run, or when its loop closes") {
    counted::reset();
    {
        aio::event_loop loop;
        auto ran = std::make_shared<aio::timer_handle>();
        *ran = loop.call_later(1ms, [ran, c = counted(1)] {});
        auto never = std::make_shared<aio::timer_handle>();
        *never = loop.call_later(1h, [never, c = counted(2)] {});
        ran.reset();
        never.reset();
        REQUIRE(counted::alive() == 2);
        loop.call_later(20ms, [&] { loop.stop(); });
        loop.run_forever();
        REQUIRE(counted::alive() == 1);  // the one that ran
    }
    REQUIRE(counted::alive() == 0);  // the one the closing loop let go of
}

TEST_CASE("a callback cancelled while it waits its turn in the ready queue never runs and is released") {
    counted::reset();
    trace log;
    aio::event_loop loop;
    const auto when = loop.time() + 2ms;
    std::vector<aio::timer_handle> later;
    loop.call_at(when, [&] {
        log("first");
        for (auto& h : later) h.cancel();  // fired with it, queued behind it
    });
    {
        counted c(1);
        for (int i = 0; i < 100; ++i) later.push_back(loop.call_at(when, [&log, c] { log("later"); }));
    }
    loop.call_soon([] { std::this_thread::sleep_for(5ms); });  // all of them due at once
    loop.call_later(30ms, [&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(log.events == lines{"first"});
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a hundred thousand timers armed and cancelled one at a time never pile up") {
    aio::event_loop loop;
    auto& queue = aio::detail::loop_access::core(loop).timers;
    aio::timer_handle keep = loop.call_later(1h, [] {});
    std::size_t most = 0;
    for (int i = 0; i < 100'000; ++i) {
        aio::timer_handle t = loop.call_later(10s + i * 1us, [] { FAIL("fired"); });
        t.cancel();
        most = std::max(most, queue.size());
    }
    REQUIRE(most < 100);
    keep.cancel();
}

TEST_CASE("timers armed, cancelled and cancelling each other at random fire in deadline order, once, unless cancelled first") {
    for (unsigned seed = 1; seed <= 4; ++seed) {
        counted::reset();
        aio::event_loop loop;
        std::mt19937 rng(seed);
        constexpr int n = 3000;
        const auto base = loop.time() + 2ms;
        std::vector<aio::timer_handle> handles(n);
        std::vector<std::chrono::nanoseconds> offset(n);
        std::vector<int> fired;
        std::vector<char> cancelled(n, 0), has_fired(n, 0);
        auto cancel = [&](int j) {
            if (!has_fired[static_cast<std::size_t>(j)]) cancelled[static_cast<std::size_t>(j)] = 1;
            handles[static_cast<std::size_t>(j)].cancel();
        };
        {
            counted c(0);
            for (int i = 0; i < n; ++i) {
                // Many ties: offsets over 700 distinct values in the next millisecond.
                offset[static_cast<std::size_t>(i)] = std::chrono::nanoseconds(std::uniform_int_distribution<int>(0, 699)(rng) * 1400);
                handles[static_cast<std::size_t>(i)] = loop.call_at(base + offset[static_cast<std::size_t>(i)], [&, i, c] {
                    REQUIRE_FALSE(cancelled[static_cast<std::size_t>(i)]);
                    fired.push_back(i);
                    has_fired[static_cast<std::size_t>(i)] = 1;
                    if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) cancel(std::uniform_int_distribution<int>(0, n - 1)(rng));
                });
            }
            // Far-future timers, most of them cancelled: sweeps run among the others.
            for (int i = 0; i < 2000; ++i) {
                auto far = loop.call_later(1h + i * 1us, [c] { FAIL("fired"); });
                if (i % 5) far.cancel();
            }
        }
        for (int i = 0; i < n; ++i)
            if (std::uniform_int_distribution<int>(0, 9)(rng) < 3) cancel(i);
        loop.call_soon([] { std::this_thread::sleep_for(5ms); });  // every timer due at once
        loop.call_at(base + 20ms, [&] { loop.stop(); });
        loop.run_forever();

        std::vector<int> expected;
        for (int i = 0; i < n; ++i)
            if (!cancelled[static_cast<std::size_t>(i)]) expected.push_back(i);
        std::stable_sort(expected.begin(), expected.end(), [&](int a, int b) {
            return offset[static_cast<std::size_t>(a)] < offset[static_cast<std::size_t>(b)];
        });
        REQUIRE(fired == expected);
        // The callables that ran or were cancelled are gone; the 400 far-future ones
        // left armed are the loop's until it closes.
        REQUIRE(counted::alive() == 400);
        loop.close();
        handles.clear();
        REQUIRE(counted::alive() == 0);
    }
}

TEST_CASE("timer_handle::when() is the deadline passed to call_at, or now plus the delay for call_later") {
    aio::event_loop loop;
    const auto deadline = loop.time() + 123ms;
    aio::timer_handle at = loop.call_at(deadline, [] {});
    REQUIRE(at.when() == deadline);
    const auto before = loop.time();
    aio::timer_handle later = loop.call_later(2s, [] {});
    const auto after = loop.time();
    REQUIRE(later.when() >= before + 2s);
    REQUIRE(later.when() <= after + 2s);
    at.cancel();
    later.cancel();
    REQUIRE(at.when() == deadline);  // still known after cancel
}

TEST_CASE("copies of a handle share the cancellation") {
    trace log;
    aio::event_loop loop;
    aio::timer_handle t = loop.call_later(1ms, [&] { log("timer"); });
    aio::timer_handle copy = t;
    aio::handle base = t;
    copy.cancel();
    REQUIRE(t.cancelled());
    REQUIRE(base.cancelled());
    aio::handle s = loop.call_soon([&] { log("soon"); });
    aio::handle moved = std::move(s);
    REQUIRE_FALSE(static_cast<bool>(s));
    moved.cancel();
    loop.call_later(10ms, [&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(log.events.empty());
}

TEST_CASE("dropping a handle does not cancel the callback") {
    trace log;
    aio::event_loop loop;
    { aio::handle h = loop.call_soon([&] { log("soon"); }); }
    { aio::timer_handle t = loop.call_later(1ms, [&] { log("timer"); }); }
    loop.call_later(10ms, [&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(log.events == lines{"soon", "timer"});
}

// import asyncio
// log = []
// loop = asyncio.new_event_loop()
// h = loop.call_soon(lambda: log.append("ran"))
// t = loop.call_later(0.001, lambda: log.append("timer"))
// loop.call_later(0.05, loop.stop)
// loop.run_forever()
// h.cancel(); t.cancel()
// log.append(f"{h.cancelled()} {t.cancelled()}")
// loop.close()
// print(log)
TEST_CASE("cancel() after the callback ran marks the handle cancelled and does nothing else, as in asyncio") {
    trace log;
    aio::event_loop loop;
    aio::handle h = loop.call_soon([&] { log("ran"); });
    aio::timer_handle t = loop.call_later(1ms, [&] { log("timer"); });
    loop.call_later(50ms, [&] { loop.stop(); });
    loop.run_forever();
    h.cancel();
    t.cancel();
    log(std::string(h.cancelled() ? "True" : "False") + " " + (t.cancelled() ? "True" : "False"));
    loop.close();
    REQUIRE(log.events == lines{"ran", "timer", "True True"});
}

TEST_CASE("a callback may cancel its own handle while it runs") {
    int runs = 0;
    aio::event_loop loop;
    aio::timer_handle self;
    self = loop.call_later(1ms, [&] {
        ++runs;
        self.cancel();
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(runs == 1);
    REQUIRE(self.cancelled());
}

TEST_CASE("a handle that outlives its loop is safe to cancel and drop, and its callback is destroyed once") {
    counted::reset();
    aio::handle soon;
    aio::timer_handle timer;
    {
        aio::event_loop loop;
        counted c(1);
        soon = loop.call_soon([c] {});
        timer = loop.call_later(1h, [c] {});
        REQUIRE(counted::alive() == 3);
    }
    // The loop is gone; the handles still hold their callbacks.
    REQUIRE_FALSE(timer.cancelled());
    timer.cancel();
    soon.cancel();
    REQUIRE(timer.cancelled());
    REQUIRE(soon.cancelled());
    soon = {};
    timer = {};
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("cancelling many timers in any order leaves the others firing in deadline order") {
    trace log;
    aio::event_loop loop;
    std::vector<aio::timer_handle> timers;
    const auto base = loop.time() + 2ms;
    for (int i = 0; i < 200; ++i) {
        // Deadlines in a scrambled order: i * 7 mod 200 microseconds after `base`.
        const int offset = (i * 7) % 200;
        timers.push_back(loop.call_at(base + std::chrono::microseconds(offset),
                                      [&log, offset] { log(std::to_string(offset)); }));
    }
    std::vector<std::string> expected;
    for (int i = 0; i < 200; ++i) {
        const int offset = (i * 7) % 200;
        if (offset % 3 == 0) timers[static_cast<std::size_t>(i)].cancel();
    }
    for (int offset = 0; offset < 200; ++offset)
        if (offset % 3 != 0) expected.push_back(std::to_string(offset));
    loop.call_soon([] { std::this_thread::sleep_for(5ms); });  // every timer is due at once
    loop.call_later(30ms, [&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(log.events == expected);
}
