// aio::queue, aio::lifo_queue, aio::priority_queue: ordering, maxsize, waiting and
// waking order, join/task_done, shutdown, the cancellation races, move-only items,
// lifetimes, and a hundred thousand waiters.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it. Queue.shutdown() exists only from Python 3.13: the
// shutdown tests carry the 3.13 program too, and their expected lines follow 3.13's
// Lib/asyncio/queues.py step by step (there was no 3.13 interpreter to run them).

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/gather.hpp>
#include <aio/queue.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/handlers.hpp"
#include "support/steps.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::counted;
using aio_test::trace;
using aio_test::yes_no;
using aio_test::log_cancel;
using aio_test::expect_throws;
using lines = std::vector<std::string>;

namespace {

// Logs "<name> got <v>", or "<name> cancelled" (and rethrows).
aio::task<> getter(aio::queue<int>& q, trace& log, std::string name) {
    int v = co_await log_cancel(log, name + " cancelled", q.get());
    log(name + " got " + std::to_string(v));
}

// Logs "put <v> done", or "put <v> cancelled" (and rethrows).
aio::task<> putter(aio::queue<int>& q, trace& log, int v) {
    co_await log_cancel(log, "put " + std::to_string(v) + " cancelled", q.put(v));
    log("put " + std::to_string(v) + " done");
}

template <class Queue>
std::vector<int> drain(Queue& q) {
    std::vector<int> out;
    while (!q.empty()) out.push_back(q.get_nowait());
    return out;
}

}  // namespace

// --- ordering and the non-waiting calls

TEST_CASE("queue gives items in the order they were put") {
    aio::queue<int> q;
    for (int v : {3, 1, 2}) q.put_nowait(v);
    REQUIRE(drain(q) == std::vector<int>{3, 1, 2});
}

TEST_CASE("lifo_queue gives the last item put first") {
    aio::lifo_queue<int> q;
    for (int v : {3, 1, 2}) q.put_nowait(v);
    REQUIRE(drain(q) == std::vector<int>{2, 1, 3});
}

TEST_CASE("priority_queue gives the smallest item first") {
    aio::priority_queue<int> q;
    for (int v : {5, 1, 4, 2, 3, 1}) q.put_nowait(v);
    REQUIRE(drain(q) == std::vector<int>{1, 1, 2, 3, 4, 5});
}

TEST_CASE("priority_queue gives equal priorities in the order they were put") {
    using item = std::pair<int, std::string>;
    struct by_priority {
        bool operator()(const item& a, const item& b) const { return a.first < b.first; }
    };
    aio::priority_queue<item, by_priority> q;
    q.put_nowait({2, "b1"});
    q.put_nowait({1, "a1"});
    q.put_nowait({2, "b2"});
    q.put_nowait({1, "a2"});
    q.put_nowait({2, "b3"});
    q.put_nowait({1, "a3"});
    std::vector<std::string> out;
    while (!q.empty()) out.push_back(q.get_nowait().second);
    REQUIRE(out == std::vector<std::string>{"a1", "a2", "a3", "b1", "b2", "b3"});
}

TEST_CASE("get_nowait on an empty queue throws queue_empty") {
    aio::queue<int> q;
    REQUIRE_THROWS_AS(q.get_nowait(), aio::queue_empty);
    aio::lifo_queue<int> l;
    REQUIRE_THROWS_AS(l.get_nowait(), aio::queue_empty);
    aio::priority_queue<int> p;
    REQUIRE_THROWS_AS(p.get_nowait(), aio::queue_empty);
}

TEST_CASE("put_nowait on a full queue throws queue_full and keeps the queue as it was") {
    aio::queue<int> q(2);
    q.put_nowait(1);
    q.put_nowait(2);
    REQUIRE_THROWS_AS(q.put_nowait(3), aio::queue_full);
    REQUIRE(drain(q) == std::vector<int>{1, 2});
}

TEST_CASE("qsize empty full and maxsize report the queue's state") {
    aio::queue<int> q(2);
    REQUIRE(q.maxsize() == 2);
    REQUIRE(q.qsize() == 0);
    REQUIRE(q.empty());
    REQUIRE_FALSE(q.full());
    q.put_nowait(1);
    REQUIRE(q.qsize() == 1);
    REQUIRE_FALSE(q.empty());
    REQUIRE_FALSE(q.full());
    q.put_nowait(2);
    REQUIRE(q.full());
    aio::queue<int> unbounded;
    REQUIRE(unbounded.maxsize() == 0);
    for (int i = 0; i < 1000; ++i) unbounded.put_nowait(i);
    REQUIRE_FALSE(unbounded.full());
}

TEST_CASE("get and put do not suspend when the queue has an item or a free slot") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q(1);
        auto t = aio::create_task(aio_test::ticker(log, 2));
        co_await q.put(7);
        int v = co_await q.get();
        log("got " + std::to_string(v));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"got 7", "tick0", "tick1"});
}

// --- waiting and waking order

TEST_CASE("lifo_queue and priority_queue make putters wait while full and give items in their own order") {
    auto program = []() -> aio::task<std::string> {
        std::string out;
        aio::lifo_queue<int> l(2);
        l.put_nowait(1);
        l.put_nowait(2);
        auto lp = aio::create_task([](aio::lifo_queue<int>& l) -> aio::task<> { co_await l.put(3); }(l));
        co_await aio::sleep(0s);
        out += std::to_string(l.get_nowait());  // 2; wakes the putter
        co_await aio::sleep(0s);
        co_await lp;
        for (int i = 0; i < 2; ++i) out += std::to_string(co_await l.get());  // 3, then 1
        out += " ";
        aio::priority_queue<int> p(2);
        p.put_nowait(5);
        p.put_nowait(3);
        auto pp = aio::create_task([](aio::priority_queue<int>& p) -> aio::task<> { co_await p.put(1); }(p));
        co_await aio::sleep(0s);
        out += std::to_string(co_await p.get());  // 3; wakes the putter
        co_await pp;
        for (int i = 0; i < 2; ++i) out += std::to_string(co_await p.get());  // 1, then 5
        co_return out;
    };
    REQUIRE(aio::run(program()) == "231 315");
}

// import asyncio
// log = []
// async def getter(q, name):
//     log.append(f"{name} waits")
//     v = await q.get()
//     log.append(f"{name} got {v}")
// async def putter(q, v):
//     log.append(f"put {v} waits")
//     await q.put(v)
//     log.append(f"put {v} done")
// async def main():
//     q = asyncio.Queue(maxsize=2)
//     gs = [asyncio.create_task(getter(q, f"g{i}")) for i in range(3)]
//     await asyncio.sleep(0)
//     for v in range(6):
//         asyncio.create_task(putter(q, v))
//     await asyncio.sleep(0)
//     log.append(f"qsize {q.qsize()} full {q.full()}")
//     await asyncio.gather(*gs)
//     log.append(f"qsize {q.qsize()}")
//     for i in range(3):
//         log.append(f"main got {await q.get()}")
//     await asyncio.sleep(0)
//     log.append(f"qsize {q.qsize()}")
// asyncio.run(main())
// print(log)
TEST_CASE("getters and putters of a bounded queue wait and wake in FIFO order as in asyncio") {
    trace log;
    auto waiting_getter = [&](aio::queue<int>& q, std::string name) -> aio::task<> {
        log(name + " waits");
        int v = co_await q.get();
        log(name + " got " + std::to_string(v));
    };
    auto waiting_putter = [&](aio::queue<int>& q, int v) -> aio::task<> {
        log("put " + std::to_string(v) + " waits");
        co_await q.put(v);
        log("put " + std::to_string(v) + " done");
    };
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q(2);
        std::vector<aio::task_handle<void>> gs;
        for (int i = 0; i < 3; ++i) gs.push_back(aio::create_task(waiting_getter(q, "g" + std::to_string(i))));
        co_await aio::sleep(0s);
        for (int v = 0; v < 6; ++v) aio::create_task(waiting_putter(q, v));
        co_await aio::sleep(0s);
        log("qsize " + std::to_string(q.qsize()) + " full " + yes_no(q.full()));
        for (auto& g : gs) co_await g;
        log("qsize " + std::to_string(q.qsize()));
        for (int i = 0; i < 3; ++i) {
            int v = co_await q.get();
            log("main got " + std::to_string(v));
        }
        co_await aio::sleep(0s);
        log("qsize " + std::to_string(q.qsize()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"g0 waits", "g1 waits", "g2 waits", "put 0 waits", "put 0 done", "put 1 waits",
                                "put 1 done", "put 2 waits", "put 3 waits", "put 4 waits", "put 5 waits",
                                "qsize 2 full True", "g0 got 0", "g1 got 1", "put 2 done", "put 3 done",
                                "g2 got 2", "put 4 done", "qsize 2", "main got 3", "main got 4", "put 5 done",
                                "main got 5", "qsize 0"});
}

// import asyncio
// log = []
// async def getter(q, name):
//     v = await q.get()
//     log.append(f"{name} got {v}")
// async def main():
//     q = asyncio.Queue()
//     a = asyncio.create_task(getter(q, "a"))
//     b = asyncio.create_task(getter(q, "b"))
//     await asyncio.sleep(0)
//     q.put_nowait(1)
//     log.append(f"main took {q.get_nowait()}")
//     await asyncio.sleep(0)
//     log.append(f"qsize {q.qsize()}")
//     q.put_nowait(2)
//     q.put_nowait(3)
//     await asyncio.gather(a, b)
// asyncio.run(main())
// print(log)
TEST_CASE("a woken getter whose item was taken meanwhile waits again at the back of the line as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q;
        auto a = aio::create_task(getter(q, log, "a"));
        auto b = aio::create_task(getter(q, log, "b"));
        co_await aio::sleep(0s);
        q.put_nowait(1);
        log("main took " + std::to_string(q.get_nowait()));
        co_await aio::sleep(0s);
        log("qsize " + std::to_string(q.qsize()));
        q.put_nowait(2);
        q.put_nowait(3);
        co_await a;
        co_await b;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"main took 1", "qsize 0", "b got 2", "a got 3"});
}

// --- join and task_done

// import asyncio
// log = []
// async def worker(q, name):
//     while True:
//         v = await q.get()
//         log.append(f"{name} works on {v}")
//         await asyncio.sleep(0)
//         log.append(f"{name} done {v}")
//         q.task_done()
// async def main():
//     q = asyncio.Queue()
//     for v in range(4):
//         q.put_nowait(v)
//     ws = [asyncio.create_task(worker(q, f"w{i}")) for i in range(2)]
//     await q.join()
//     log.append("joined")
//     await q.join()
//     log.append("joined again")
//     for w in ws:
//         w.cancel()
//     try:
//         q.task_done()
//     except ValueError as e:
//         log.append(f"ValueError {e}")
// asyncio.run(main())
// print(log)
TEST_CASE("join returns once every item put has been marked done as in asyncio") {
    trace log;
    auto worker = [&](aio::queue<int>& q, std::string name) -> aio::task<> {
        for (;;) {
            int v = co_await q.get();
            log(name + " works on " + std::to_string(v));
            co_await aio::sleep(0s);
            log(name + " done " + std::to_string(v));
            q.task_done();
        }
    };
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q;
        for (int v = 0; v < 4; ++v) q.put_nowait(v);
        std::vector<aio::task_handle<void>> ws;
        for (int i = 0; i < 2; ++i) ws.push_back(aio::create_task(worker(q, "w" + std::to_string(i))));
        co_await q.join();
        log("joined");
        co_await q.join();
        log("joined again");
        for (auto& w : ws) w.cancel();
        try {
            q.task_done();
        } catch (const aio::invalid_state_error& e) {
            log(std::string("invalid_state_error ") + e.what());
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"w0 works on 0", "w1 works on 1", "w0 done 0", "w0 works on 2", "w1 done 1",
                                "w1 works on 3", "w0 done 2", "w1 done 3", "joined", "joined again",
                                "invalid_state_error aio queue: task_done() called too many times"});
}

TEST_CASE("task_done called more times than items were put throws invalid_state_error") {
    aio::queue<int> q;
    REQUIRE_THROWS_AS(q.task_done(), aio::invalid_state_error);
    q.put_nowait(1);
    (void)q.get_nowait();
    q.task_done();
    REQUIRE_THROWS_AS(q.task_done(), aio::invalid_state_error);
}

TEST_CASE("every task waiting in join wakes when the last item is done") {
    trace log;
    auto joiner = [&](aio::queue<int>& q, std::string name) -> aio::task<> {
        co_await q.join();
        log(name + " joined");
    };
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q;
        q.put_nowait(1);
        auto a = aio::create_task(joiner(q, "a"));
        auto b = aio::create_task(joiner(q, "b"));
        co_await aio::sleep(0s);
        (void)q.get_nowait();
        log("done");
        q.task_done();
        co_await a;
        co_await b;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"done", "a joined", "b joined"});
}

// --- cancellation

// import asyncio
// log = []
// async def getter(q, name):
//     try:
//         v = await q.get()
//         log.append(f"{name} got {v}")
//     except asyncio.CancelledError:
//         log.append(f"{name} cancelled")
//         raise
// async def main():
//     q = asyncio.Queue()
//     a = asyncio.create_task(getter(q, "a"))
//     b = asyncio.create_task(getter(q, "b"))
//     await asyncio.sleep(0)
//     a.cancel()
//     await asyncio.sleep(0)
//     q.put_nowait(1)
//     log.append(f"qsize {q.qsize()}")
//     await b
//     log.append(f"qsize {q.qsize()}")
// asyncio.run(main())
// print(log)
TEST_CASE("a waiting getter that is cancelled leaves the line and takes nothing as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q;
        auto a = aio::create_task(getter(q, log, "a"));
        auto b = aio::create_task(getter(q, log, "b"));
        co_await aio::sleep(0s);
        a.cancel();
        co_await aio::sleep(0s);
        q.put_nowait(1);
        log("qsize " + std::to_string(q.qsize()));
        co_await b;
        log("qsize " + std::to_string(q.qsize()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"a cancelled", "qsize 1", "b got 1", "qsize 0"});
}

// import asyncio
// log = []
// async def getter(q, name):
//     try:
//         v = await q.get()
//         log.append(f"{name} got {v}")
//     except asyncio.CancelledError:
//         log.append(f"{name} cancelled")
//         raise
// async def main():
//     q = asyncio.Queue()
//     a = asyncio.create_task(getter(q, "a"))
//     b = asyncio.create_task(getter(q, "b"))
//     await asyncio.sleep(0)
//     q.put_nowait(1)
//     a.cancel()
//     await asyncio.sleep(0)
//     log.append(f"qsize {q.qsize()}")
//     await asyncio.sleep(0)
//     log.append(f"qsize {q.qsize()} a cancelled {a.cancelled()}")
//     await b
// asyncio.run(main())
// print(log)
TEST_CASE("a woken getter cancelled before its turn passes the item on to the next getter as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q;
        auto a = aio::create_task(getter(q, log, "a"));
        auto b = aio::create_task(getter(q, log, "b"));
        co_await aio::sleep(0s);
        q.put_nowait(1);
        a.cancel();
        co_await aio::sleep(0s);
        log("qsize " + std::to_string(q.qsize()));
        co_await aio::sleep(0s);
        log("qsize " + std::to_string(q.qsize()) + " a cancelled " + yes_no(a.cancelled()));
        co_await b;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"a cancelled", "qsize 1", "b got 1", "qsize 0 a cancelled True"});
}

// import asyncio
// log = []
// async def putter(q, v):
//     try:
//         await q.put(v)
//         log.append(f"put {v} done")
//     except asyncio.CancelledError:
//         log.append(f"put {v} cancelled")
//         raise
// async def main():
//     q = asyncio.Queue(maxsize=1)
//     q.put_nowait(0)
//     a = asyncio.create_task(putter(q, 1))
//     b = asyncio.create_task(putter(q, 2))
//     await asyncio.sleep(0)
//     log.append(f"main got {q.get_nowait()}")
//     a.cancel()
//     await asyncio.sleep(0)
//     await asyncio.sleep(0)
//     log.append(f"qsize {q.qsize()} a cancelled {a.cancelled()}")
//     log.append(f"main got {q.get_nowait()}")
//     await b
// asyncio.run(main())
// print(log)
TEST_CASE("a woken putter cancelled before its turn passes the free slot on to the next putter as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q(1);
        q.put_nowait(0);
        auto a = aio::create_task(putter(q, log, 1));
        auto b = aio::create_task(putter(q, log, 2));
        co_await aio::sleep(0s);
        log("main got " + std::to_string(q.get_nowait()));
        a.cancel();
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        log("qsize " + std::to_string(q.qsize()) + " a cancelled " + yes_no(a.cancelled()));
        log("main got " + std::to_string(q.get_nowait()));
        co_await b;
    };
    aio::run(program());
    REQUIRE(log.events ==
            lines{"main got 0", "put 1 cancelled", "put 2 done", "qsize 1 a cancelled True", "main got 2"});
}

TEST_CASE("a task cancelled while running gets cancelled_error at the get where it would wait") {
    auto program = []() -> aio::task<std::string> {
        aio::queue<int> q;
        aio::current_task().cancel();
        try {
            co_await q.get();
        } catch (const aio::cancelled_error&) {
            aio::current_task().uncancel();
            q.put_nowait(5);
            co_return "cancelled, qsize " + std::to_string(q.qsize());
        }
        co_return "not cancelled";
    };
    REQUIRE(aio::run(program()) == "cancelled, qsize 1");
}

TEST_CASE("a cancelled put stores nothing and destroys its item") {
    counted::reset();
    auto program = []() -> aio::task<int> {
        aio::queue<counted> q(1);
        q.put_nowait(counted(1));
        auto p = aio::create_task([](aio::queue<counted>& q) -> aio::task<> { co_await q.put(counted(2)); }(q));
        co_await aio::sleep(0s);
        p.cancel();
        co_await aio::sleep(0s);
        const bool cancelled = p.cancelled();
        counted c = q.get_nowait();
        co_return cancelled && q.empty() ? c.value : -1;
    };
    REQUIRE(aio::run(program()) == 1);
    REQUIRE(counted::alive() == 0);
}

// --- shutdown (Python 3.13)

// Python 3.13:
// import asyncio
// log = []
// async def getter(q, name):
//     try:
//         while True:
//             v = await q.get()
//             log.append(f"{name} got {v}")
//     except asyncio.QueueShutDown:
//         log.append(f"{name} shut down")
// async def putter(q, v):
//     try:
//         await q.put(v)
//         log.append(f"put {v} done")
//     except asyncio.QueueShutDown:
//         log.append(f"put {v} shut down")
// async def main():
//     q = asyncio.Queue(maxsize=2)
//     q.put_nowait(1)
//     q.put_nowait(2)
//     p = asyncio.create_task(putter(q, 3))
//     await asyncio.sleep(0)
//     q.shutdown()
//     log.append(f"qsize {q.qsize()}")
//     try:
//         q.put_nowait(4)
//     except asyncio.QueueShutDown:
//         log.append("put_nowait shut down")
//     g = asyncio.create_task(getter(q, "g"))
//     await asyncio.gather(p, g)
//     try:
//         q.get_nowait()
//     except asyncio.QueueShutDown:
//         log.append("get_nowait shut down")
// asyncio.run(main())
// print(log)
TEST_CASE("after shutdown puts raise queue_shutdown and gets take the items left then raise it") {
    trace log;
    auto draining_getter = [&](aio::queue<int>& q, std::string name) -> aio::task<> {
        try {
            for (;;) {
                int v = co_await q.get();
                log(name + " got " + std::to_string(v));
            }
        } catch (const aio::queue_shutdown&) {
            log(name + " shut down");
        }
    };
    auto shut_out_putter = [&](aio::queue<int>& q, int v) -> aio::task<> {
        try {
            co_await q.put(v);
            log("put " + std::to_string(v) + " done");
        } catch (const aio::queue_shutdown&) {
            log("put " + std::to_string(v) + " shut down");
        }
    };
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q(2);
        q.put_nowait(1);
        q.put_nowait(2);
        auto p = aio::create_task(shut_out_putter(q, 3));
        co_await aio::sleep(0s);
        q.shutdown();
        log("qsize " + std::to_string(q.qsize()));
        try {
            q.put_nowait(4);
        } catch (const aio::queue_shutdown&) {
            log("put_nowait shut down");
        }
        auto g = aio::create_task(draining_getter(q, "g"));
        co_await aio::gather(p, g);
        try {
            (void)q.get_nowait();
        } catch (const aio::queue_shutdown&) {
            log("get_nowait shut down");
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"qsize 2", "put_nowait shut down", "put 3 shut down", "g got 1", "g got 2",
                                "g shut down", "get_nowait shut down"});
}

// Python 3.13:
// import asyncio
// log = []
// async def getter(q, name):
//     try:
//         while True:
//             v = await q.get()
//             log.append(f"{name} got {v}")
//     except asyncio.QueueShutDown:
//         log.append(f"{name} shut down")
// async def main():
//     q = asyncio.Queue()
//     gs = [asyncio.create_task(getter(q, f"g{i}")) for i in range(2)]
//     await asyncio.sleep(0)
//     q.put_nowait(1)
//     q.shutdown()
//     await asyncio.gather(*gs)
// asyncio.run(main())
// print(log)
TEST_CASE("shutdown wakes every waiting getter and each raises queue_shutdown once the queue is empty") {
    trace log;
    auto draining_getter = [&](aio::queue<int>& q, std::string name) -> aio::task<> {
        try {
            for (;;) {
                int v = co_await q.get();
                log(name + " got " + std::to_string(v));
            }
        } catch (const aio::queue_shutdown&) {
            log(name + " shut down");
        }
    };
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q;
        auto g0 = aio::create_task(draining_getter(q, "g0"));
        auto g1 = aio::create_task(draining_getter(q, "g1"));
        co_await aio::sleep(0s);
        q.put_nowait(1);
        q.shutdown();
        co_await aio::gather(g0, g1);
    };
    aio::run(program());
    REQUIRE(log.events == lines{"g0 got 1", "g0 shut down", "g1 shut down"});
}

// Python 3.13:
// import asyncio
// log = []
// async def joiner(q):
//     await q.join()
//     log.append("joined")
// async def main():
//     q = asyncio.Queue()
//     for v in range(3):
//         q.put_nowait(v)
//     log.append(f"got {q.get_nowait()}")
//     j = asyncio.create_task(joiner(q))
//     await asyncio.sleep(0)
//     q.shutdown(immediate=True)
//     log.append(f"qsize {q.qsize()} empty {q.empty()}")
//     try:
//         q.get_nowait()
//     except asyncio.QueueShutDown:
//         log.append("get_nowait shut down")
//     await asyncio.sleep(0)
//     log.append(f"join done {j.done()}")
//     q.task_done()
//     await j
//     log.append("end")
// asyncio.run(main())
// print(log)
TEST_CASE("shutdown immediate drops the items left counting each as done") {
    trace log;
    auto joiner = [&](aio::queue<int>& q) -> aio::task<> {
        co_await q.join();
        log("joined");
    };
    auto program = [&]() -> aio::task<> {
        aio::queue<int> q;
        for (int v = 0; v < 3; ++v) q.put_nowait(v);
        log("got " + std::to_string(q.get_nowait()));
        auto j = aio::create_task(joiner(q));
        co_await aio::sleep(0s);
        q.shutdown(true);
        log("qsize " + std::to_string(q.qsize()) + " empty " + yes_no(q.empty()));
        try {
            (void)q.get_nowait();
        } catch (const aio::queue_shutdown&) {
            log("get_nowait shut down");
        }
        co_await aio::sleep(0s);
        log("join done " + yes_no(j.done()));
        q.task_done();
        co_await j;
        log("end");
    };
    aio::run(program());
    REQUIRE(log.events ==
            lines{"got 0", "qsize 0 empty True", "get_nowait shut down", "join done False", "joined", "end"});
}

TEST_CASE("shutdown immediate makes a waiting get raise queue_shutdown and ends join when nothing is left undone") {
    auto program = []() -> aio::task<std::string> {
        aio::queue<int> q(1);
        q.put_nowait(1);
        auto p = aio::create_task([](aio::queue<int>& q) -> aio::task<bool> {
            co_return co_await expect_throws<aio::queue_shutdown>(q.put(2));
        }(q));
        auto j = aio::create_task([](aio::queue<int>& q) -> aio::task<> { co_await q.join(); }(q));
        co_await aio::sleep(0s);
        q.shutdown(aio::immediate);
        co_await j;
        const bool put_shut_down = co_await p;
        const bool get_shut_down = co_await expect_throws<aio::queue_shutdown>(q.get());
        co_return yes_no(put_shut_down) + " " + yes_no(get_shut_down);
    };
    REQUIRE(aio::run(program()) == "True True");
}

// --- items: move-only types and lifetimes

TEST_CASE("move-only items pass through every kind of queue, waiting or not") {
    auto program = []() -> aio::task<int> {
        aio::queue<std::unique_ptr<int>> q(1);
        auto consumer = aio::create_task([](aio::queue<std::unique_ptr<int>>& q) -> aio::task<int> {
            int sum = 0;
            for (int i = 0; i < 3; ++i) {
                std::unique_ptr<int> p = co_await q.get();
                sum += *p;
            }
            co_return sum;
        }(q));
        for (int i = 1; i <= 3; ++i) co_await q.put(std::make_unique<int>(i));
        int total = co_await consumer;

        aio::lifo_queue<std::unique_ptr<int>> l;
        l.put_nowait(std::make_unique<int>(10));
        l.put_nowait(std::make_unique<int>(20));
        total += *l.get_nowait() * 2;  // 20: the last put
        std::unique_ptr<int> first = co_await l.get();
        total += *first;

        struct by_value {
            bool operator()(const std::unique_ptr<int>& a, const std::unique_ptr<int>& b) const { return *a < *b; }
        };
        aio::priority_queue<std::unique_ptr<int>, by_value> pq;
        pq.put_nowait(std::make_unique<int>(300));
        pq.put_nowait(std::make_unique<int>(100));
        total += *pq.get_nowait();
        co_return total;
    };
    REQUIRE(aio::run(program()) == 6 + 40 + 10 + 100);
}

TEST_CASE("items are destroyed exactly once whether got, left in the queue or dropped by shutdown") {
    counted::reset();
    auto program = []() -> aio::task<int> {
        int sum = 0;
        {
            aio::queue<counted> q;
            for (int i = 1; i <= 4; ++i) co_await q.put(counted(i));
            sum += (co_await q.get()).value;
            sum += q.get_nowait().value;
        }  // two left in the queue
        {
            struct by_value {
                bool operator()(const counted& a, const counted& b) const { return a.value < b.value; }
            };
            aio::priority_queue<counted, by_value> pq;
            for (int i = 1; i <= 3; ++i) pq.put_nowait(counted(i));
            sum += pq.get_nowait().value;
            pq.shutdown(aio::immediate);  // drops two
        }
        {
            aio::lifo_queue<counted> l(1);
            auto g = aio::create_task([](aio::lifo_queue<counted>& l) -> aio::task<int> {
                counted c = co_await l.get();
                co_return c.value;
            }(l));
            co_await aio::sleep(0s);
            co_await l.put(counted(10));
            sum += co_await g;
        }
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 1 + 2 + 1 + 10);
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a queue destroyed while a task waits on it lets the task go") {
    auto program = []() -> aio::task<bool> {
        auto q = std::make_unique<aio::queue<int>>();
        auto g = aio::create_task([](aio::queue<int>& q) -> aio::task<> { co_await q.get(); }(*q));
        co_await aio::sleep(0s);
        q.reset();
        g.cancel();
        co_return co_await expect_throws<aio::cancelled_error>(g);
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("tasks still waiting on a queue when the loop ends are cancelled and destroyed cleanly") {
    counted::reset();
    aio::queue<counted> q(1);
    auto program = [&]() -> aio::task<> {
        q.put_nowait(counted(1));
        for (int i = 0; i < 3; ++i)
            aio::create_task([](aio::queue<counted>& q, int v) -> aio::task<> { co_await q.put(counted(v)); }(q, i));
        aio::create_task([](aio::queue<counted>& q) -> aio::task<> { co_await q.join(); }(q));
        co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(q.qsize() == 1);
    REQUIRE(counted::alive() == 1);
}

// --- scale

TEST_CASE("100,000 waiting getters are woken in order and cancelled without overflowing the stack") {
    constexpr int n = 100000;
    auto program = []() -> aio::task<int> {
        aio::queue<int> q;
        int in_order = 0;  // consumers that got the item of their rank
        auto consumer = [](aio::queue<int>& q, int& in_order, int rank) -> aio::task<> {
            int v = co_await q.get();
            if (v == rank) ++in_order;
            q.task_done();
        };
        for (int i = 0; i < n; ++i) aio::create_task(consumer(q, in_order, i));
        co_await aio::sleep(0s);
        for (int i = 0; i < n; ++i) q.put_nowait(i);
        co_await q.join();
        const int result = in_order;
        // A second crowd, left waiting: aio::run cancels every one of them at the end.
        for (int i = 0; i < n; ++i) aio::create_task(consumer(q, in_order, i));
        co_await aio::sleep(0s);
        co_return result;
    };
    REQUIRE(aio::run(program()) == n);
}

TEST_CASE("100,000 waiting getters are all woken by shutdown without overflowing the stack") {
    constexpr int n = 100000;
    auto program = []() -> aio::task<int> {
        aio::queue<int> q;
        int shut_out = 0;
        std::vector<aio::task_handle<void>> handles;
        handles.reserve(n);
        for (int i = 0; i < n; ++i)
            handles.push_back(aio::create_task([](aio::queue<int>& q, int& shut_out) -> aio::task<> {
                try {
                    co_await q.get();
                } catch (const aio::queue_shutdown&) {
                    ++shut_out;
                }
            }(q, shut_out)));
        co_await aio::sleep(0s);
        q.shutdown();
        for (auto& h : handles) co_await h;
        co_return shut_out;
    };
    REQUIRE(aio::run(program()) == n);
}
