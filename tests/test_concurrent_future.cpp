// aio::concurrent_future: set_result / set_exception, result() with and without a
// timeout, exception(), cancel(), done callbacks, move-only and void results, and
// threads that wait on one future — concurrent.futures.Future's behaviour.
//
// No timing is measured: a timeout is only ever checked to run out on a future that
// nothing completes, and every other wait is bounded by a generous one.

#include <aio/concurrent_future.hpp>
#include <aio/errors.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/threads.hpp"
#include "support/steps.hpp"

using namespace std::chrono_literals;
using aio_test::boom;
using aio_test::counted;
using aio_test::eventually;

namespace {

std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a pending concurrent_future is neither done nor cancelled") {
    aio::concurrent_future<int> f;
    REQUIRE_FALSE(f.done());
    REQUIRE_FALSE(f.cancelled());
}

TEST_CASE("set_result completes the future once and result() returns a copy of the value each time") {
    aio::concurrent_future<std::string> f;
    REQUIRE(f.set_result("forty-two"));
    REQUIRE(f.done());
    REQUIRE_FALSE(f.cancelled());
    REQUIRE(f.result() == "forty-two");
    REQUIRE(f.result() == "forty-two");
    REQUIRE(f.result(0s) == "forty-two");
    REQUIRE(f.exception() == nullptr);
    // Done: it can be neither set again nor failed.
    REQUIRE_FALSE(f.set_result("other"));
    REQUIRE_FALSE(f.set_exception(std::make_exception_ptr(boom("late"))));
    REQUIRE(f.result() == "forty-two");
}

TEST_CASE("copies of a concurrent_future share one state") {
    aio::concurrent_future<int> f;
    aio::concurrent_future<int> g = f;
    REQUIRE(g.set_result(7));
    REQUIRE(f.done());
    REQUIRE(f.result() == 7);
    aio::concurrent_future<int> h;
    h = g;
    REQUIRE(h.result() == 7);
}

TEST_CASE("result waits for a value that another thread sets") {
    aio::concurrent_future<int> f;
    std::thread setter([f]() mutable {
        std::this_thread::sleep_for(5ms);
        f.set_result(11);
    });
    REQUIRE(f.result() == 11);
    setter.join();
}

TEST_CASE("result with a timeout throws aio::timeout_error while the future stays pending") {
    aio::concurrent_future<int> f;
    REQUIRE_THROWS_AS(f.result(10ms), aio::timeout_error);
    REQUIRE_THROWS_AS(f.exception(10ms), aio::timeout_error);
    REQUIRE_THROWS_AS(f.result(0s), aio::timeout_error);
    REQUIRE_FALSE(f.done());  // a timeout leaves it pending
    std::thread setter([f]() mutable {
        std::this_thread::sleep_for(5ms);
        f.set_result(3);
    });
    REQUIRE(f.result(30s) == 3);  // a value that arrives within the timeout is returned
    setter.join();
}

TEST_CASE("exception() returns the exception the future ended with, and result() rethrows it") {
    aio::concurrent_future<int> f;
    REQUIRE(f.set_exception(std::make_exception_ptr(boom("failed"))));
    REQUIRE(f.done());
    REQUIRE_FALSE(f.cancelled());
    std::exception_ptr e = f.exception();
    REQUIRE(e != nullptr);
    REQUIRE(what_of(e) == "failed");
    REQUIRE(what_of(f.exception(0s)) == "failed");
    REQUIRE_THROWS_AS(f.result(), boom);
    REQUIRE_THROWS_AS(f.result(), boom);  // every time
    REQUIRE_FALSE(f.set_result(1));
    REQUIRE_FALSE(f.cancel());  // finished
}

TEST_CASE("exception() waits for another thread to fail the future") {
    aio::concurrent_future<int> f;
    std::thread failer([f]() mutable {
        std::this_thread::sleep_for(5ms);
        f.set_exception(std::make_exception_ptr(boom("from a thread")));
    });
    REQUIRE(what_of(f.exception()) == "from a thread");
    failer.join();
}

TEST_CASE("cancel() is true for a pending or cancelled future and false for a finished one") {
    SECTION("pending") {
        aio::concurrent_future<int> f;
        REQUIRE(f.cancel());
        REQUIRE(f.cancelled());
        REQUIRE(f.done());
        REQUIRE(f.cancel());  // cancelled already: still true
        REQUIRE(f.cancelled());
        REQUIRE_THROWS_AS(f.result(), aio::cancelled_error);
        REQUIRE_THROWS_AS(f.result(0s), aio::cancelled_error);
        REQUIRE_THROWS_AS(f.exception(), aio::cancelled_error);
        REQUIRE_FALSE(f.set_result(1));  // a cancelled future cannot be completed
        REQUIRE_FALSE(f.set_exception(std::make_exception_ptr(boom("late"))));
        REQUIRE_THROWS_AS(f.result(), aio::cancelled_error);
    }
    SECTION("finished with a value") {
        aio::concurrent_future<int> f;
        f.set_result(5);
        REQUIRE_FALSE(f.cancel());
        REQUIRE_FALSE(f.cancelled());
        REQUIRE(f.result() == 5);
    }
    SECTION("finished with an exception") {
        aio::concurrent_future<int> f;
        f.set_exception(std::make_exception_ptr(boom("x")));
        REQUIRE_FALSE(f.cancel());
        REQUIRE_FALSE(f.cancelled());
        REQUIRE_THROWS_AS(f.result(), boom);
    }
}

TEST_CASE("a thread blocked in result() wakes with aio::cancelled_error when another thread cancels") {
    aio::concurrent_future<int> f;
    std::atomic<bool> waiting{false};
    std::atomic<int> outcome{0};  // 1: cancelled_error, 2: anything else
    std::thread waiter([f, &waiting, &outcome]() mutable {
        waiting = true;
        try {
            f.result(30s);
            outcome = 2;
        } catch (const aio::cancelled_error&) {
            outcome = 1;
        } catch (...) {
            outcome = 2;
        }
    });
    REQUIRE(eventually([&] { return waiting.load(); }));
    REQUIRE(f.cancel());
    waiter.join();
    REQUIRE(outcome == 1);
}

TEST_CASE("done callbacks run once, on the thread that completes the future, in the order they were added") {
    aio::concurrent_future<int> f;
    std::vector<int> order;  // appended by the completing thread, read after it is joined
    std::vector<std::thread::id> threads;
    std::vector<int> seen;
    for (int i = 1; i <= 3; ++i) {
        f.add_done_callback([&, i](aio::concurrent_future<int>& done) {
            order.push_back(i);
            threads.push_back(std::this_thread::get_id());
            seen.push_back(done.result());  // done: no wait
        });
    }
    REQUIRE(order.empty());
    std::thread::id completer_id;
    std::thread completer([&] {
        completer_id = std::this_thread::get_id();
        f.set_result(9);
    });
    completer.join();
    REQUIRE(order == std::vector<int>{1, 2, 3});
    REQUIRE(threads == std::vector<std::thread::id>(3, completer_id));
    REQUIRE(seen == std::vector<int>{9, 9, 9});

    // Added once the future is done: runs at once, on this thread, before add_done_callback returns.
    f.add_done_callback([&](aio::concurrent_future<int>&) {
        order.push_back(4);
        threads.push_back(std::this_thread::get_id());
    });
    REQUIRE(order == std::vector<int>{1, 2, 3, 4});
    REQUIRE(threads.back() == std::this_thread::get_id());

    // Nothing runs them again.
    REQUIRE_FALSE(f.set_result(10));
    REQUIRE_FALSE(f.cancel());
    REQUIRE(order == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("done callbacks run on the thread that cancels the future, which they see cancelled") {
    aio::concurrent_future<int> f;
    std::vector<std::thread::id> threads;
    bool saw_cancelled = false;
    f.add_done_callback([&](aio::concurrent_future<int>& done) {
        threads.push_back(std::this_thread::get_id());
        saw_cancelled = done.cancelled();
    });
    std::thread::id canceller_id;
    std::thread canceller([&] {
        canceller_id = std::this_thread::get_id();
        f.cancel();
    });
    canceller.join();
    REQUIRE(threads == std::vector<std::thread::id>{canceller_id});
    REQUIRE(saw_cancelled);
    REQUIRE(f.cancel());  // cancelled again: true, and the callback does not run twice
    REQUIRE(threads.size() == 1);
}

TEST_CASE("an exception thrown by a done callback is dropped and the later callbacks still run") {
    aio::concurrent_future<int> f;
    std::vector<int> order;
    f.add_done_callback([&](aio::concurrent_future<int>&) {
        order.push_back(1);
        throw boom("in a callback");
    });
    f.add_done_callback([&](aio::concurrent_future<int>&) { order.push_back(2); });
    REQUIRE(f.set_result(1));
    REQUIRE(order == std::vector<int>{1, 2});
    REQUIRE_NOTHROW(f.add_done_callback([&](aio::concurrent_future<int>&) { throw boom("at once"); }));
    REQUIRE(f.result() == 1);
}

TEST_CASE("result() gives a move-only value in place, the same object to every caller") {
    aio::concurrent_future<std::unique_ptr<int>> f;
    std::thread setter([f]() mutable { f.set_result(std::make_unique<int>(5)); });
    const std::unique_ptr<int>& p = f.result();
    setter.join();
    REQUIRE(p);
    REQUIRE(*p == 5);
    REQUIRE(f.result().get() == p.get());
    REQUIRE(f.result(0s).get() == p.get());
    REQUIRE(f.exception() == nullptr);
    REQUIRE(f.done());
}

TEST_CASE("a result timeout of hours::max() or a fractional duration waits as asked") {
    aio::concurrent_future<int> f;
    std::thread setter([f]() mutable {
        std::this_thread::sleep_for(20ms);
        f.set_result(3);
    });
    REQUIRE(f.result(std::chrono::hours::max()) == 3);  // no overflow into the past
    setter.join();
    aio::concurrent_future<int> g;
    REQUIRE_THROWS_AS(g.result(std::chrono::duration<double>(0.01)), aio::timeout_error);
}

TEST_CASE("a moved-from concurrent_future still refers to the state: moving copies") {
    aio::concurrent_future<int> f;
    aio::concurrent_future<int> g = std::move(f);
    g.set_result(4);
    REQUIRE(f.done());  // NOLINT: a move copies
    REQUIRE(f.result() == 4);
}

TEST_CASE("a move-only future that failed rethrows its exception every time") {
    aio::concurrent_future<std::unique_ptr<int>> f;
    f.set_exception(std::make_exception_ptr(boom("no pointer")));
    REQUIRE_THROWS_AS(f.result(), boom);
    REQUIRE_THROWS_AS(f.result(), boom);
}

TEST_CASE("a concurrent_future<void> completes with set_result() and fails with set_exception") {
    aio::concurrent_future<void> f;
    std::thread setter([f]() mutable { f.set_result(); });
    REQUIRE_NOTHROW(f.result());
    setter.join();
    REQUIRE(f.done());
    REQUIRE(f.exception() == nullptr);
    REQUIRE_FALSE(f.set_result());
    REQUIRE_FALSE(f.cancel());

    aio::concurrent_future<void> g;
    REQUIRE(g.set_exception(std::make_exception_ptr(boom("void failed"))));
    REQUIRE_THROWS_AS(g.result(), boom);
    REQUIRE(what_of(g.exception()) == "void failed");

    aio::concurrent_future<void> h;
    REQUIRE_THROWS_AS(h.result(1ms), aio::timeout_error);
    REQUIRE(h.cancel());
    REQUIRE_THROWS_AS(h.result(), aio::cancelled_error);
}

TEST_CASE("many threads waiting on one future all wake with its value") {
    constexpr int waiters = 8;
    aio::concurrent_future<int> f;
    std::atomic<int> started{0};
    std::vector<int> results(waiters, 0);  // each thread its own slot, read after join
    std::vector<std::thread> threads;
    for (int i = 0; i < waiters; ++i) {
        threads.emplace_back([f, i, &started, &results]() mutable {
            ++started;
            try {
                results[i] = f.result(30s);
            } catch (...) {
                results[i] = -1;
            }
        });
    }
    REQUIRE(eventually([&] { return started == waiters; }));
    REQUIRE(f.set_result(7));
    for (auto& t : threads) t.join();
    REQUIRE(results == std::vector<int>(waiters, 7));
}

TEST_CASE("many threads waiting on one future all wake when it is cancelled") {
    constexpr int waiters = 8;
    aio::concurrent_future<int> f;
    std::atomic<int> started{0};
    std::atomic<int> cancelled{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < waiters; ++i) {
        threads.emplace_back([f, &started, &cancelled]() mutable {
            ++started;
            try {
                f.result(30s);
            } catch (const aio::cancelled_error&) {
                ++cancelled;
            } catch (...) {
            }
        });
    }
    REQUIRE(eventually([&] { return started == waiters; }));
    REQUIRE(f.cancel());
    for (auto& t : threads) t.join();
    REQUIRE(cancelled == waiters);
}

TEST_CASE("threads racing to complete and cancel one future: exactly one wins and every callback runs once") {
    for (int round = 0; round < 200; ++round) {
        aio::concurrent_future<int> f;
        std::atomic<int> callbacks{0};
        f.add_done_callback([&](aio::concurrent_future<int>&) { ++callbacks; });
        std::atomic<int> wins{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> threads;
        for (int i = 0; i < 4; ++i) {
            threads.emplace_back([f, i, &wins, &go]() mutable {
                while (!go) std::this_thread::yield();
                bool won = false;
                if (i % 2 == 0) won = f.set_result(i);
                else won = f.cancel();
                if (won) ++wins;
            });
        }
        go = true;
        for (auto& t : threads) t.join();
        INFO("round " << round);
        REQUIRE(callbacks == 1);
        // set_result wins once, or cancel wins (cancel is true for every canceller then).
        if (f.cancelled()) {
            REQUIRE_THROWS_AS(f.result(), aio::cancelled_error);
        } else {
            REQUIRE(wins == 1);
            REQUIRE(f.result() % 2 == 0);
        }
    }
}

TEST_CASE("a concurrent_future destroys its value exactly once, and copies of it handed out are the caller's") {
    counted::reset();
    {
        aio::concurrent_future<counted> f;
        REQUIRE(f.set_result(counted(3)));
        REQUIRE(counted::alive() == 1);  // the future's own
        {
            counted a = f.result();
            counted b = f.result();
            REQUIRE(a.value == 3);
            REQUIRE(b.value == 3);
            REQUIRE(counted::alive() == 3);
        }
        REQUIRE(counted::alive() == 1);
        REQUIRE_FALSE(f.set_result(counted(4)));  // refused: the argument is the caller's
        REQUIRE(counted::alive() == 1);
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a done callback's captures are destroyed once it has run") {
    counted::reset();
    {
        aio::concurrent_future<int> f;
        int ran = 0;
        f.add_done_callback([&ran, held = counted(1)](aio::concurrent_future<int>&) { ++ran; });
        REQUIRE(counted::alive() == 1);
        f.set_result(1);
        REQUIRE(ran == 1);
        REQUIRE(counted::alive() == 0);  // the future lives on; the callback is gone
        f.add_done_callback([&ran, held = counted(2)](aio::concurrent_future<int>&) { ++ran; });
        REQUIRE(ran == 2);
        REQUIRE(counted::alive() == 0);
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a done callback of a future that never completes is destroyed with the future") {
    counted::reset();
    int ran = 0;
    {
        aio::concurrent_future<int> f;
        f.add_done_callback([&ran, held = counted(1)](aio::concurrent_future<int>&) { ++ran; });
        REQUIRE(counted::alive() == 1);
    }
    REQUIRE(ran == 0);
    REQUIRE(counted::alive() == 0);
}
