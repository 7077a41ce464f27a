// aio::create_task, aio::current_task and aio::all_tasks: scheduling of a new task
// (API rule 2), misuse, lifetimes, task names — checked against CPython 3.11.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::counted;
using aio_test::trace;
using lines = std::vector<std::string>;

namespace {

aio::task<int> one() { co_return 1; }

aio::task<int> holder(counted c) {
    co_await aio::sleep(0s);
    co_return c.value;
}

aio::task<> forever() { co_await aio::sleep(24h); }

aio::task<> steps(int n) {
    for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
}

std::vector<std::string> names_of(const std::vector<aio::any_task_handle>& tasks) {
    std::vector<std::string> names;
    for (const auto& t : tasks) names.push_back(t.name());
    return names;
}

}  // namespace

// import asyncio
// log = []
// async def child(name):
//     log.append(f"{name} start")
//     await asyncio.sleep(0)
//     log.append(f"{name} end")
// async def main():
//     loop = asyncio.get_running_loop()
//     loop.call_soon(lambda: log.append("soon 1"))
//     t1 = asyncio.create_task(child("t1"))
//     loop.call_soon(lambda: log.append("soon 2"))
//     t2 = asyncio.create_task(child("t2"))
//     log.append("main after create")
//     await asyncio.sleep(0)
//     log.append("main after yield")
//     await t1
//     await t2
//     log.append("main end")
// asyncio.run(main())
// print(log)
TEST_CASE("create_task does not run the task until the creator yields, and queues it behind earlier work, as in asyncio") {
    trace log;
    auto child = [&](std::string name) -> aio::task<> {
        log(name + " start");
        co_await aio::sleep(0s);
        log(name + " end");
    };
    auto program = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        loop.call_soon([&] { log("soon 1"); });
        auto t1 = aio::create_task(child("t1"));
        loop.call_soon([&] { log("soon 2"); });
        auto t2 = aio::create_task(child("t2"));
        log("main after create");
        co_await aio::sleep(0s);
        log("main after yield");
        co_await t1;
        co_await t2;
        log("main end");
    };
    aio::run(program());
    REQUIRE(log.events == lines{"main after create", "soon 1", "t1 start", "soon 2", "t2 start", "main after yield",
                                "t1 end", "t2 end", "main end"});
}

TEST_CASE("create_task with no running loop throws aio::runtime_error and destroys the task") {
    counted::reset();
    REQUIRE_THROWS_AS(aio::create_task(holder(counted(1))), aio::runtime_error);
    REQUIRE(counted::alive() == 0);
    REQUIRE_THROWS_AS(aio::get_running_loop(), aio::runtime_error);
}

TEST_CASE("create_task of a moved-from or already awaited task throws aio::invalid_state_error") {
    auto program = []() -> aio::task<> {
        aio::task<int> t = one();
        aio::task<int> moved = std::move(t);
        REQUIRE_THROWS_AS(aio::create_task(std::move(t)), aio::invalid_state_error);
        REQUIRE_THROWS_AS(aio::create_task(aio::task<int>{}), aio::invalid_state_error);
        int v = co_await moved;
        REQUIRE(v == 1);
        REQUIRE_THROWS_AS(aio::create_task(std::move(moved)), aio::invalid_state_error);
    };
    aio::run(program());
}

TEST_CASE("dropping every handle does not stop a task") {
    trace log;
    auto worker = [&]() -> aio::task<> {
        for (int i = 0; i < 3; ++i) {
            log("worker" + std::to_string(i));
            co_await aio::sleep(0s);
        }
        log("worker end");
    };
    auto program = [&]() -> aio::task<> {
        { auto dropped = aio::create_task(worker()); }
        aio::create_task(worker(), "never held");
        for (int i = 0; i < 6; ++i) co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(log.events == lines{"worker0", "worker0", "worker1", "worker1", "worker2", "worker2", "worker end",
                                "worker end"});
}

TEST_CASE("a task whose handles are all dropped destroys its frame once it ends") {
    counted::reset();
    auto program = []() -> aio::task<> {
        aio::create_task(holder(counted(1)));
        {
            auto h = aio::create_task(holder(counted(2)));
            auto copy = h;
        }
        REQUIRE(counted::alive() == 2);
        co_await aio::sleep(0s);  // both start and suspend
        REQUIRE(counted::alive() == 2);
        co_await aio::sleep(0s);  // both end
        REQUIRE(counted::alive() == 0);
    };
    aio::run(program());
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("create_task from inside a lazy child schedules on the running loop") {
    trace log;
    auto worker = [&]() -> aio::task<> {
        log("worker");
        co_return;
    };
    auto spawner = [&]() -> aio::task<aio::task_handle<>> {
        auto h = aio::create_task(worker());
        log("spawned");
        co_return h;
    };
    auto program = [&]() -> aio::task<> {
        auto h = co_await spawner();
        log("back in main");
        co_await h;
        log("main end");
    };
    aio::run(program());
    REQUIRE(log.events == lines{"spawned", "back in main", "worker", "main end"});
}

TEST_CASE("create_task from a callback schedules the task behind what is already queued") {
    trace log;
    auto worker = [&]() -> aio::task<> {
        log("worker");
        co_return;
    };
    auto program = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        aio::task_handle<> h;
        loop.call_soon([&] {
            h = aio::create_task(worker());
            log("created");
        });
        loop.call_soon([&] { log("queued before"); });
        co_await aio::sleep(0s);
        log("main");
        co_await aio::sleep(0s);
        REQUIRE(h.done());
    };
    aio::run(program());
    REQUIRE(log.events == lines{"created", "queued before", "main", "worker"});
}

TEST_CASE("event_loop::create_task before the loop runs schedules the task for its first iteration") {
    trace log;
    aio::event_loop loop;
    auto worker = [&]() -> aio::task<int> {
        log("worker");
        co_return 5;
    };
    auto program = [&]() -> aio::task<> {
        log("main");
        co_return;
    };
    aio::task_handle<int> h = loop.create_task(worker());
    REQUIRE_FALSE(h.done());
    loop.run_until_complete(program());
    REQUIRE(log.events == lines{"worker", "main"});
    REQUIRE(h.done());
    REQUIRE(h.result() == 5);
}

TEST_CASE("current_task() is empty outside a task") {
    REQUIRE_FALSE(static_cast<bool>(aio::current_task()));
    bool in_callback_empty = false;
    bool in_done_callback_empty = false;
    auto program = [&]() -> aio::task<> {
        aio::get_running_loop().call_soon([&] { in_callback_empty = !aio::current_task(); });
        auto h = aio::create_task(one());
        h.add_done_callback([&](const aio::task_handle<int>&) { in_done_callback_empty = !aio::current_task(); });
        co_await h;
        co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(in_callback_empty);
    REQUIRE(in_done_callback_empty);
    REQUIRE_FALSE(static_cast<bool>(aio::current_task()));
}

TEST_CASE("current_task() names the running task, also inside a lazy child awaited inline") {
    std::vector<std::string> seen;
    auto child = [&]() -> aio::task<> {
        seen.push_back("child in " + aio::current_task().name());
        co_await aio::sleep(0s);
        seen.push_back("child after sleep in " + aio::current_task().name());
    };
    auto worker = [&]() -> aio::task<> {
        seen.push_back("worker " + aio::current_task().name());
        co_await child();
    };
    auto program = [&]() -> aio::task<> {
        aio::any_task_handle me = aio::current_task();
        REQUIRE(static_cast<bool>(me));
        REQUIRE_FALSE(me.done());
        seen.push_back("main " + me.name());
        auto w = aio::create_task(worker(), "worker");
        REQUIRE(aio::current_task() == me);
        co_await child();
        co_await w;
        REQUIRE(aio::current_task() == me);
    };
    aio::run(program());
    REQUIRE(seen == lines{"main Task-1", "child in Task-1", "worker worker", "child in worker",
                          "child after sleep in Task-1", "child after sleep in worker"});
}

TEST_CASE("all_tasks() lists the pending tasks in creation order") {
    auto program = []() -> aio::task<> {
        REQUIRE(names_of(aio::all_tasks()) == lines{"Task-1"});
        auto a = aio::create_task(steps(1), "a");
        auto b = aio::create_task(forever(), "b");
        auto c = aio::create_task(steps(3), "c");
        auto d = aio::create_task(forever(), "d");
        REQUIRE(names_of(aio::all_tasks()) == lines{"Task-1", "a", "b", "c", "d"});
        co_await a;
        REQUIRE(names_of(aio::all_tasks()) == lines{"Task-1", "b", "c", "d"});
        d.cancel();
        co_await c;
        REQUIRE(names_of(aio::all_tasks()) == lines{"Task-1", "b"});
        auto tasks = aio::all_tasks();
        REQUIRE(tasks[1] == b);
        b.cancel();
    };
    aio::run(program());
    REQUIRE_THROWS_AS(aio::all_tasks(), aio::runtime_error);
}

TEST_CASE("tasks are named Task-N in creation order unless named") {
    std::vector<std::string> names;
    auto child = [&]() -> aio::task<> {
        names.push_back(aio::current_task().name());
        co_return;
    };
    auto program = [&]() -> aio::task<> {
        names.push_back(aio::current_task().name());
        auto a = aio::create_task(child());
        auto b = aio::create_task(child());
        auto c = aio::create_task(child());
        REQUIRE(a.name() == "Task-2");
        REQUIRE(b.name() == "Task-3");
        REQUIRE(c.name() == "Task-4");
        co_await a;
        co_await b;
        co_await c;
    };
    aio::run(program());
    REQUIRE(names == lines{"Task-1", "Task-2", "Task-3", "Task-4"});
}

// import asyncio
// log = []
// async def child():
//     log.append(asyncio.current_task().get_name())
// async def main():
//     a = asyncio.get_running_loop().create_task(child(), name="custom")
//     b = asyncio.create_task(child())
//     b.set_name("renamed")
//     await a
//     await b
//     log.append(a.get_name())
//     log.append(b.get_name())
//     asyncio.current_task().set_name("main renamed")
//     log.append(asyncio.current_task().get_name())
// asyncio.run(main())
// print(log)
TEST_CASE("create_task(t, name) and set_name give a task a custom name, as in asyncio") {
    std::vector<std::string> names;
    auto child = [&]() -> aio::task<> {
        names.push_back(aio::current_task().name());
        co_return;
    };
    auto program = [&]() -> aio::task<> {
        auto a = aio::create_task(child(), "custom");
        auto b = aio::create_task(child());
        b.set_name("renamed");
        co_await a;
        co_await b;
        names.push_back(a.name());
        names.push_back(b.name());
        aio::current_task().set_name("main renamed");
        names.push_back(aio::current_task().name());
    };
    aio::run(program());
    REQUIRE(names == lines{"custom", "renamed", "custom", "renamed", "main renamed"});
}

TEST_CASE("create_task on a closed loop throws aio::runtime_error and destroys the task") {
    counted::reset();
    aio::event_loop loop;
    loop.close();
    REQUIRE_THROWS_AS(loop.create_task(holder(counted(1))), aio::runtime_error);
    REQUIRE(counted::alive() == 0);
}
