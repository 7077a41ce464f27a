// Signals (event_loop::add_signal_handler / remove_signal_handler, detail/signals.hpp):
// CPython's SelectorEventLoopSignalTests (Lib/test/test_asyncio/test_unix_events.py,
// 3.13) ported where they test behaviour rather than mocks — the range check, adding,
// replacing, removing, the default action put back, a signal that cannot be caught,
// close() — then what aio promises beyond them: the callback runs through the ready
// queue; loops on several threads each handle their own signals and cannot take each
// other's; aio::run's Ctrl-C gives way to the program's SIGINT handler; a SIGHUP reload
// and a SIGTERM shutdown of a real server; and a storm of signals coalesced without
// losing the last one.
//
// Signals go to this process only (raise, kill(getpid()), pthread_kill). Every test
// puts back the dispositions it touched (the test framework has handlers of its own
// for SIGINT and SIGTERM), and every loop is bounded: a guard timer stops it.
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/gather.hpp>
#include <aio/net/server.hpp>
#include <aio/net/stream_reader.hpp>
#include <aio/net/stream_writer.hpp>
#include <aio/net/streams.hpp>
#include <aio/os_error.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wait_for.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/net_run.hpp"
#include "support/threads.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::trace;
using lines = std::vector<std::string>;

namespace {

// The dispositions of `signals` as they were, put back at the end of the test.
class saved_dispositions {
public:
    explicit saved_dispositions(std::initializer_list<int> signals) {
        for (int sig : signals) {
            struct sigaction old {};
            ::sigaction(sig, nullptr, &old);
            saved_.push_back({sig, old});
        }
    }
    ~saved_dispositions() {
        for (auto& [sig, old] : saved_) ::sigaction(sig, &old, nullptr);
    }
    saved_dispositions(const saved_dispositions&) = delete;
    saved_dispositions& operator=(const saved_dispositions&) = delete;

private:
    std::vector<std::pair<int, struct sigaction>> saved_;
};

void set_disposition(int sig, void (*handler)(int)) {
    struct sigaction a {};
    a.sa_handler = handler;
    sigemptyset(&a.sa_mask);
    ::sigaction(sig, &a, nullptr);
}

bool has_default_action(int sig) {
    struct sigaction current {};
    ::sigaction(sig, nullptr, &current);
    return current.sa_handler == SIG_DFL;
}

// Stops `loop` after `limit` whatever happens, so that a test that fails ends.
aio::timer_handle guard(aio::event_loop& loop, std::chrono::milliseconds limit = 10s) {
    return loop.call_later(limit, [&loop] { loop.stop(); });
}

std::string what_of(const std::exception& e) { return e.what(); }

// What add_signal_handler accepts: a callable of no arguments, move-only ones
// included; not a value, and not a coroutine (it would make a task nobody runs).
template <class F>
concept can_add_signal_handler = requires(aio::event_loop& loop, F f) { loop.add_signal_handler(SIGUSR1, std::move(f)); };
struct move_only_callable {
    std::unique_ptr<int> p;
    void operator()() const {}
};
static_assert(can_add_signal_handler<move_only_callable>);
static_assert(can_add_signal_handler<void (*)()>);
static_assert(!can_add_signal_handler<int>);
static_assert(!can_add_signal_handler<void (*)(int)>);
static_assert(!can_add_signal_handler<aio::task<> (*)()>);
static_assert(!can_add_signal_handler<aio::task<int> (*)()>);

}  // namespace

// --- CPython's SelectorEventLoopSignalTests

// test_check_signal: a number outside range(1, NSIG) is a ValueError.
TEST_CASE("add_signal_handler and remove_signal_handler refuse a signal number outside [1, NSIG) with std::invalid_argument") {
    aio::event_loop loop;
    for (int sig : {0, -1, NSIG, NSIG + 1}) {
        INFO("sig " << sig);
        REQUIRE_THROWS_AS(loop.add_signal_handler(sig, [] {}), std::invalid_argument);
        REQUIRE_THROWS_AS(loop.remove_signal_handler(sig), std::invalid_argument);
    }
    try {
        loop.add_signal_handler(NSIG, [] {});
    } catch (const std::invalid_argument& e) {
        REQUIRE(what_of(e) == "aio::event_loop::add_signal_handler(): sig " + std::to_string(NSIG) +
                                  " out of range(1, " + std::to_string(NSIG) + ")");
    }
}

// test_add_signal_handler: the handler goes in; the callback runs once the signal comes.
TEST_CASE("add_signal_handler installs a handler for the signal, and the callback runs when it is delivered") {
    saved_dispositions saved{SIGHUP};
    aio::event_loop loop;
    int calls = 0;
    loop.add_signal_handler(SIGHUP, [&] {
        ++calls;
        loop.stop();
    });
    REQUIRE_FALSE(has_default_action(SIGHUP));
    auto g = guard(loop);
    loop.call_soon([] { ::raise(SIGHUP); });
    loop.run_forever();
    REQUIRE(calls == 1);
    REQUIRE(loop.remove_signal_handler(SIGHUP));
}

// test_add_signal_handler_install_error2/3: sigaction says EINVAL -> RuntimeError
// "sig N cannot be caught", and nothing stays registered.
TEST_CASE("SIGKILL and SIGSTOP cannot be caught: aio::runtime_error naming the signal, and nothing is left registered") {
    aio::event_loop loop;
    for (int sig : {SIGKILL, SIGSTOP}) {
        INFO("sig " << sig);
        std::string message;
        try {
            loop.add_signal_handler(sig, [] {});
        } catch (const aio::runtime_error& e) {
            message = e.what();
        }
        const std::string name = sig == SIGKILL ? "SIGKILL" : "SIGSTOP";
        REQUIRE(message.find("sig " + std::to_string(sig) + " (" + name + ") cannot be caught") != std::string::npos);
        REQUIRE(message.find("Invalid argument") != std::string::npos);  // sigaction's EINVAL
        REQUIRE_FALSE(loop.remove_signal_handler(sig));
        // The slot was given back: another loop is refused by the kernel, not by aio.
        aio::event_loop other;
        REQUIRE_THROWS_WITH(other.add_signal_handler(sig, [] {}), Catch::Contains("cannot be caught"));
    }
}

// test_remove_signal_handler: True, and the signal's action is SIG_DFL again (not what
// it was before the handler went in, as asyncio does).
TEST_CASE("remove_signal_handler returns true, then false, and gives the signal its default action") {
    saved_dispositions saved{SIGUSR1, SIGUSR2};
    set_disposition(SIGUSR1, SIG_IGN);
    aio::event_loop loop;
    loop.add_signal_handler(SIGUSR1, [] {});
    REQUIRE(loop.remove_signal_handler(SIGUSR1));
    REQUIRE(has_default_action(SIGUSR1));
    REQUIRE_FALSE(loop.remove_signal_handler(SIGUSR1));
    REQUIRE_FALSE(loop.remove_signal_handler(SIGUSR2));  // never added
    REQUIRE_FALSE(loop.remove_signal_handler(SIGKILL));  // valid, never handled
}

// test_close: close() removes every handler.
TEST_CASE("closing a loop removes its handlers and gives their signals the default action") {
    saved_dispositions saved{SIGUSR1, SIGUSR2};
    aio_test::counted::reset();
    {
        aio::event_loop loop;
        loop.add_signal_handler(SIGUSR1, [c = aio_test::counted()] {});
        loop.add_signal_handler(SIGUSR2, [c = aio_test::counted()] {});
        REQUIRE(aio_test::counted::alive() == 2);
        loop.close();
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(has_default_action(SIGUSR1));
        REQUIRE(has_default_action(SIGUSR2));
        REQUIRE_FALSE(loop.remove_signal_handler(SIGUSR1));
        // The slots are free for another loop.
        aio::event_loop other;
        other.add_signal_handler(SIGUSR1, [] {});
        REQUIRE(other.remove_signal_handler(SIGUSR1));
    }
    {
        // Destroying a loop without close() does the same.
        auto loop = std::make_unique<aio::event_loop>();
        loop->add_signal_handler(SIGUSR1, [c = aio_test::counted()] {});
        loop.reset();
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(has_default_action(SIGUSR1));
    }
}

TEST_CASE("add_signal_handler on a closed loop throws aio::runtime_error") {
    aio::event_loop loop;
    loop.close();
    REQUIRE_THROWS_WITH(loop.add_signal_handler(SIGUSR1, [] {}), "Event loop is closed");
    REQUIRE(has_default_action(SIGUSR1));
}

// --- the callback and the ready queue

// loop.call_soon(lambda: (print("raise"), signal.raise_signal(signal.SIGUSR1),
//                         loop.call_soon(print, "queued after the raise")))
// -> raise / queued after the raise / signal / called from the signal's callback
TEST_CASE("the callback runs through the ready queue, after the callbacks already queued, and may use the loop") {
    saved_dispositions saved{SIGUSR1};
    aio::event_loop loop;
    trace log;
    loop.add_signal_handler(SIGUSR1, [&] {
        log("signal");
        // Not inside the OS handler: it may allocate, schedule and make tasks.
        loop.call_soon([&] { log("called from the signal's callback"); });
        auto body = [](trace& log, aio::event_loop& loop) -> aio::task<> {
            co_await aio::sleep(0s);
            log("task made by the signal's callback");
            loop.stop();
        };
        (void)loop.create_task(body(log, loop));
    });
    auto g = guard(loop);
    loop.call_soon([&] {
        log("raise");
        ::raise(SIGUSR1);  // delivered now, to this thread: the callback waits for its turn
        log("raise returned");
        loop.call_soon([&] { log("queued after the raise"); });
    });
    loop.run_forever();
    REQUIRE(log.events == lines{"raise", "raise returned", "queued after the raise", "signal",
                                "called from the signal's callback", "task made by the signal's callback"});
}

TEST_CASE("a signal delivered before the loop runs is handled once it runs") {
    saved_dispositions saved{SIGUSR1};
    aio::event_loop loop;
    int calls = 0;
    loop.add_signal_handler(SIGUSR1, [&] {
        ++calls;
        loop.stop();
    });
    ::raise(SIGUSR1);
    ::raise(SIGUSR1);  // before the loop has looked: one callback for both
    REQUIRE(calls == 0);
    auto g = guard(loop);
    loop.run_forever();
    REQUIRE(calls == 1);
}

TEST_CASE("adding a handler for a signal the loop handles replaces the previous one, whose callable is destroyed") {
    saved_dispositions saved{SIGUSR1};
    aio_test::counted::reset();
    aio::event_loop loop;
    trace log;
    loop.add_signal_handler(SIGUSR1, [&log, c = aio_test::counted()] { log("first"); });
    REQUIRE(aio_test::counted::alive() == 1);
    loop.add_signal_handler(SIGUSR1, [&] {
        log("second");
        loop.stop();
    });
    REQUIRE(aio_test::counted::alive() == 0);
    auto g = guard(loop);
    loop.call_soon([] { ::raise(SIGUSR1); });
    loop.run_forever();
    REQUIRE(log.events == lines{"second"});
}

TEST_CASE("a move-only callable is accepted, and destroyed when its handler is removed") {
    saved_dispositions saved{SIGUSR1};
    aio::event_loop loop;
    auto owned = std::make_unique<int>(7);
    std::weak_ptr<int> watch;
    auto shared = std::make_shared<int>(1);
    watch = shared;
    int seen = 0;
    loop.add_signal_handler(SIGUSR1, [&seen, &loop, p = std::move(owned), s = std::move(shared)] {
        seen = *p;
        loop.stop();
    });
    auto g = guard(loop);
    loop.call_soon([] { ::raise(SIGUSR1); });
    loop.run_forever();
    REQUIRE(seen == 7);
    REQUIRE_FALSE(watch.expired());
    REQUIRE(loop.remove_signal_handler(SIGUSR1));
    REQUIRE(watch.expired());
}

TEST_CASE("a callback may remove its own handler: it finishes, its callable goes after, and the default action is back") {
    saved_dispositions saved{SIGUSR1};
    aio::event_loop loop;
    auto state = std::make_shared<std::string>("alive");
    std::weak_ptr<std::string> watch = state;
    std::string seen;
    bool removed = false;
    loop.add_signal_handler(SIGUSR1, [&, state] {
        removed = loop.remove_signal_handler(SIGUSR1);
        seen = *state;  // still there: it goes once the callback returns
        loop.stop();
    });
    state.reset();
    auto g = guard(loop);
    loop.call_soon([] { ::raise(SIGUSR1); });
    loop.run_forever();
    REQUIRE(removed);
    REQUIRE(seen == "alive");
    REQUIRE(watch.expired());
    REQUIRE(has_default_action(SIGUSR1));
}

TEST_CASE("a delivery whose callback has not run yet is dropped when the handler is removed") {
    saved_dispositions saved{SIGUSR1};
    aio::event_loop loop;
    int calls = 0;
    loop.add_signal_handler(SIGUSR1, [&] { ++calls; });
    auto g = guard(loop, 10s);
    loop.call_soon([&] {
        ::raise(SIGUSR1);
        loop.call_soon([&] {
            // The entry is queued now (this iteration took it), behind this callback.
            REQUIRE(loop.remove_signal_handler(SIGUSR1));
            loop.call_soon([&] { loop.stop(); });
        });
    });
    loop.run_forever();
    REQUIRE(calls == 0);
}

TEST_CASE("an exception from a callback goes to the exception handler, and the handler stays in place") {
    saved_dispositions saved{SIGUSR1};
    aio::event_loop loop;
    std::vector<std::string> messages;
    loop.set_exception_handler([&](aio::event_loop&, const aio::exception_context& c) { messages.push_back(c.message); });
    int calls = 0;
    loop.add_signal_handler(SIGUSR1, [&] {
        if (++calls == 2) {
            loop.stop();
            return;
        }
        throw std::runtime_error("boom");
    });
    auto g = guard(loop);
    loop.call_soon([&] { ::raise(SIGUSR1); });
    loop.call_later(1ms, [] { ::raise(SIGUSR1); });
    loop.run_forever();
    REQUIRE(calls == 2);
    REQUIRE(messages == std::vector<std::string>{"Exception in callback (the handler of SIGUSR1)"});
}

TEST_CASE("a handler counts as something that can wake the loop: a task waiting for the signal is not a deadlock") {
    saved_dispositions saved{SIGUSR2};
    aio::event_loop loop;
    aio::event got;
    loop.add_signal_handler(SIGUSR2, [&] { got.set(); });
    std::thread sender([] {
        std::this_thread::sleep_for(20ms);
        ::kill(::getpid(), SIGUSR2);
    });
    auto main_task = [](aio::event& got) -> aio::task<int> {
        co_await aio::wait_for(got.wait(), 10s);
        co_return 1;
    };
    REQUIRE(loop.run_until_complete(main_task(got)) == 1);
    sender.join();
    // Without a handler, the same wait is a deadlock.
    REQUIRE(loop.remove_signal_handler(SIGUSR2));
    got.clear();
    auto waits = [](aio::event& got) -> aio::task<> { co_await got.wait(); };
    REQUIRE_THROWS_WITH(loop.run_until_complete(waits(got)), Catch::Contains("deadlock"));
}

// --- several loops

TEST_CASE("two loops in two threads each run the callback of their own signal, whichever thread it is delivered to") {
    saved_dispositions saved{SIGUSR1, SIGUSR2};
    constexpr int rounds = 3;  // the third delivery stops the loop
    struct side {
        std::atomic<int> calls{0};
        std::atomic<bool> ready{false};
        pthread_t thread{};
    };
    side one, two;
    auto run_side = [](side& s, int sig) {
        aio::event_loop loop;
        s.thread = ::pthread_self();
        loop.add_signal_handler(sig, [&s, &loop] {
            if (++s.calls == rounds) loop.stop();
        });
        auto g = guard(loop, 20s);
        loop.call_soon([&s] { s.ready = true; });
        loop.run_forever();
        loop.close();
    };
    std::thread a([&] { run_side(one, SIGUSR1); });
    std::thread b([&] { run_side(two, SIGUSR2); });
    REQUIRE(aio_test::eventually([&] { return one.ready && two.ready; }));

    ::kill(::getpid(), SIGUSR1);  // to the process: any thread may take it
    REQUIRE(aio_test::eventually([&] { return one.calls == 1; }));
    REQUIRE(two.calls == 0);
    ::kill(::getpid(), SIGUSR2);
    REQUIRE(aio_test::eventually([&] { return two.calls == 1; }));
    REQUIRE(one.calls == 1);
    // Delivered to the other loop's thread, a signal still wakes the loop handling it.
    ::pthread_kill(two.thread, SIGUSR1);
    REQUIRE(aio_test::eventually([&] { return one.calls == 2; }));
    ::pthread_kill(one.thread, SIGUSR2);
    REQUIRE(aio_test::eventually([&] { return two.calls == 2; }));
    REQUIRE(one.calls == 2);
    // The third of each stops its loop, which closes and gives its signal back.
    ::kill(::getpid(), SIGUSR1);
    a.join();
    ::kill(::getpid(), SIGUSR2);
    b.join();
    REQUIRE(one.calls == rounds);
    REQUIRE(two.calls == rounds);
    REQUIRE(has_default_action(SIGUSR1));
    REQUIRE(has_default_action(SIGUSR2));
}

TEST_CASE("add_signal_handler and remove_signal_handler from a thread other than the running loop's throw aio::runtime_error") {
    saved_dispositions saved{SIGUSR1};
    aio::event_loop loop;
    std::atomic<bool> running{false};
    loop.call_soon([&] { running = true; });
    auto g = guard(loop, 20s);
    std::thread runner([&] { loop.run_forever(); });
    REQUIRE(aio_test::eventually([&] { return running.load(); }));
    REQUIRE_THROWS_WITH(loop.add_signal_handler(SIGUSR1, [] {}), Catch::Contains("called from a thread other than"));
    REQUIRE_THROWS_WITH(loop.remove_signal_handler(SIGUSR1), Catch::Contains("called from a thread other than"));
    loop.call_soon_threadsafe([&] { loop.stop(); });
    runner.join();
    REQUIRE(has_default_action(SIGUSR1));
}

TEST_CASE("a second loop cannot take a signal the first handles, until the first removes it") {
    saved_dispositions saved{SIGUSR1};
    aio::event_loop first, second;
    int first_calls = 0;
    first.add_signal_handler(SIGUSR1, [&] { ++first_calls; });
    REQUIRE_THROWS_AS(second.add_signal_handler(SIGUSR1, [] {}), aio::runtime_error);
    REQUIRE_THROWS_WITH(second.add_signal_handler(SIGUSR1, [] {}),
                        Catch::Contains("SIGUSR1 (" + std::to_string(SIGUSR1) + ") is handled by another event loop"));
    REQUIRE_FALSE(second.remove_signal_handler(SIGUSR1));  // not second's to remove
    // The refusal left the first loop's handler alone.
    auto g1 = guard(first);
    first.call_soon([&] { ::raise(SIGUSR1); });
    first.call_later(1ms, [&] { first.stop(); });
    first.run_forever();
    REQUIRE(first_calls == 1);
    REQUIRE(first.remove_signal_handler(SIGUSR1));
    second.add_signal_handler(SIGUSR1, [] {});
    REQUIRE(second.remove_signal_handler(SIGUSR1));
}

// --- aio::run and Ctrl-C

namespace {
// SIGINT with its default action, as in a program (the test framework has its own
// handler, which aio::run would rightly leave alone).
struct default_sigint {
    saved_dispositions saved{SIGINT};
    default_sigint() { set_disposition(SIGINT, SIG_DFL); }
};
}  // namespace

TEST_CASE("inside aio::run, the program's SIGINT handler replaces run's Ctrl-C: every SIGINT reaches it, main is not cancelled") {
    default_sigint scope;
    auto main_task = []() -> aio::task<int> {
        int calls = 0;
        aio::get_running_loop().add_signal_handler(SIGINT, [&calls] { ++calls; });
        for (int expected = 1; expected <= 2; ++expected) {
            ::raise(SIGINT);  // twice: run's own handling would end the process at the second
            for (int i = 0; i < 1000 && calls < expected; ++i) co_await aio::sleep(1ms);
        }
        co_return calls;
    };
    REQUIRE(aio::run(main_task()) == 2);
    REQUIRE(has_default_action(SIGINT));  // the loop's close() removed the handler
}

TEST_CASE("removing the program's SIGINT handler inside aio::run brings run's Ctrl-C back") {
    default_sigint scope;
    trace log;
    auto main_task = [](trace& log) -> aio::task<> {
        aio::event_loop& loop = aio::get_running_loop();
        // run's own handling is not the program's to remove (asyncio: False).
        log(std::string("remove before add: ") + (loop.remove_signal_handler(SIGINT) ? "True" : "False"));
        loop.add_signal_handler(SIGINT, [] {});
        log(std::string("remove after add: ") + (loop.remove_signal_handler(SIGINT) ? "True" : "False"));
        ::raise(SIGINT);
        try {
            co_await aio::sleep(10s);
        } catch (const aio::cancelled_error&) {
            log("main cancelled");
            throw;
        }
    };
    try {
        aio::run(main_task(log));
        log("run returned");
    } catch (const aio::keyboard_interrupt&) {
        log("keyboard_interrupt");
    }
    REQUIRE(log.events == lines{"remove before add: False", "remove after add: True", "main cancelled", "keyboard_interrupt"});
    REQUIRE(has_default_action(SIGINT));
}

TEST_CASE("run's Ctrl-C handling does not keep the loop alive: a main task that waits on nothing is a deadlock") {
    default_sigint scope;
    auto main_task = []() -> aio::task<> {
        aio::event never;
        co_await never.wait();
    };
    REQUIRE_THROWS_WITH(aio::run(main_task()), Catch::Contains("deadlock"));
    REQUIRE(has_default_action(SIGINT));
}

// --- programs

namespace {
std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string value;
    std::getline(in, value);
    return value;
}
void write_file(const std::filesystem::path& path, const std::string& value) {
    std::ofstream(path, std::ios::trunc) << value << '\n';
}

// A worker that uses the configuration until it sees `until`: the values it saw, in order.
aio::task<std::vector<std::string>> config_user(const std::string& config, std::string until) {
    std::vector<std::string> seen;
    for (int i = 0; i < 5000; ++i) {
        if (seen.empty() || seen.back() != config) seen.push_back(config);
        if (config == until) break;
        co_await aio::sleep(1ms);
    }
    co_return seen;
}
}  // namespace

// The daemon idiom: SIGHUP re-reads the configuration while the workers keep running.
TEST_CASE("a SIGHUP handler re-reads a configuration file while tasks keep running on it") {
    saved_dispositions saved{SIGHUP};
    const std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("aio_test_signals_" + std::to_string(::getpid()) + ".conf");
    write_file(path, "workers=1");
    auto body = [&]() -> aio::task<> {
        std::string config = read_file(path);
        int reloads = 0;
        aio::get_running_loop().add_signal_handler(SIGHUP, [&] {
            config = read_file(path);
            ++reloads;
        });
        auto a = aio::create_task(config_user(config, "workers=4"));
        auto b = aio::create_task(config_user(config, "workers=4"));
        co_await aio::sleep(5ms);
        write_file(path, "workers=4");
        ::kill(::getpid(), SIGHUP);
        auto [seen_a, seen_b] = co_await aio::gather(a, b);
        REQUIRE(seen_a == std::vector<std::string>{"workers=1", "workers=4"});
        REQUIRE(seen_b == std::vector<std::string>{"workers=1", "workers=4"});
        REQUIRE(reloads == 1);
    };
    aio_test::run_bounded(body);
    std::filesystem::remove(path);
    REQUIRE(has_default_action(SIGHUP));
}

namespace {
// One request a connection: a line in, after a pause a line out ("done: <line>").
struct slow_service {
    int in_flight = 0;
    aio::event request_started;

    aio::task<> handle(aio::stream_reader reader, aio::stream_writer writer) {
        ++in_flight;
        request_started.set();
        std::string line = co_await reader.readline();
        co_await aio::sleep(10ms);  // the work
        writer.write("done: " + line);
        co_await writer.drain();
        --in_flight;  // answered
        writer.close();
        co_await writer.wait_closed();
    }
};
}  // namespace

// The service idiom: on SIGTERM stop accepting, let the requests in flight finish,
// then return from main.
TEST_CASE("SIGTERM shuts a server down gracefully: no new connections, the request in flight gets its full response") {
    saved_dispositions saved{SIGTERM};
    trace log;
    auto body = [&]() -> aio::task<> {
        slow_service service;
        aio::server srv = co_await aio::start_server(
            [&service](aio::stream_reader r, aio::stream_writer w) { return service.handle(std::move(r), std::move(w)); },
            "127.0.0.1", 0);
        const std::uint16_t port = srv.sockets().at(0).port();
        aio::event terminate;
        aio::get_running_loop().add_signal_handler(SIGTERM, [&] {
            log("SIGTERM: closing the server");
            srv.close();
            terminate.set();
        });
        aio::event go_on;
        auto client = [&]() -> aio::task<std::string> {
            aio::stream_pair conn = co_await aio::open_connection("127.0.0.1", port);
            aio::stream_reader& reader = conn.first;
            aio::stream_writer& writer = conn.second;
            writer.write("GET /sl");  // half a request
            co_await writer.drain();
            co_await service.request_started.wait();
            ::kill(::getpid(), SIGTERM);
            co_await go_on.wait();
            writer.write("ow\n");  // the rest, after the server has closed
            co_await writer.drain();
            std::string response = co_await reader.read();  // to EOF
            writer.close();
            co_await writer.wait_closed();
            co_return response;
        };
        auto in_flight = aio::create_task(client());
        co_await terminate.wait();
        REQUIRE_FALSE(srv.is_serving());
        bool refused = false;
        try {
            aio::stream_pair late = co_await aio::open_connection("127.0.0.1", port);
            late.second.close();
        } catch (const aio::connection_refused_error&) {
            refused = true;
        }
        log(std::string("new connection refused: ") + (refused ? "yes" : "no"));
        REQUIRE(service.in_flight == 1);
        go_on.set();
        co_await srv.wait_closed();  // the server's last connection has ended
        log("server closed, in flight: " + std::to_string(service.in_flight));
        std::string response = co_await in_flight;
        log("client got: " + response);
    };
    aio_test::run_checked(body);
    REQUIRE(log.events == lines{"SIGTERM: closing the server", "new connection refused: yes", "server closed, in flight: 0",
                                "client got: done: GET /slow\n"});
    REQUIRE(has_default_action(SIGTERM));
}

// --- coalescing

TEST_CASE("a storm of 10,000 signals from another thread is coalesced, and the last one is never lost") {
    saved_dispositions saved{SIGUSR1};
    constexpr int signals = 10'000;
    aio::event_loop loop;
    std::atomic<int> sent{0};
    int calls = 0;
    int last_seen = 0;
    loop.add_signal_handler(SIGUSR1, [&] {
        ++calls;
        last_seen = sent.load();
        if (last_seen == signals) loop.stop();
    });
    auto g = guard(loop, 30s);
    std::thread storm([&] {
        for (int i = 1; i <= signals; ++i) {
            sent.store(i);  // before the kill: the callback after the last kill must see 10,000
            ::kill(::getpid(), SIGUSR1);
        }
    });
    loop.run_forever();
    storm.join();
    // The callback saw the last value, but the last kill's own delivery may still be on
    // its way: let it land before the handler goes and SIGUSR1 is fatal again.
    REQUIRE(aio_test::eventually([] {
        sigset_t pending;
        ::sigpending(&pending);
        return !sigismember(&pending, SIGUSR1);
    }));
    REQUIRE(last_seen == signals);
    REQUIRE(calls >= 1);
    REQUIRE(calls <= signals);
}

// --- the review's cases: a signal on another thread racing the handler's removal and
// the loop's close

TEST_CASE("signals from another thread while loops add, remove and close their handlers over and over never reach a dead loop") {
    // SIGWINCH: its default action is to ignore it, so a delivery between two loops is harmless.
    saved_dispositions saved{SIGWINCH};
    std::atomic<bool> done{false};
    std::atomic<int> sent{0};
    std::thread storm([&] {
        while (!done.load() && sent.load() < 2'000'000) {
            ::kill(::getpid(), SIGWINCH);
            sent.fetch_add(1);
        }
    });
    int calls = 0;
    for (int round = 0; round < 300; ++round) {
        auto loop = std::make_unique<aio::event_loop>();
        loop->add_signal_handler(SIGWINCH, [&calls] { ++calls; });
        auto stop_soon = loop->call_later(0ms, [&loop] { loop->stop(); });
        loop->run_forever();
        if (round % 3 == 0) REQUIRE(loop->remove_signal_handler(SIGWINCH));
        if (round % 3 == 1) loop->close();
        loop.reset();  // round % 3 == 2: the destructor lets the signal go
        REQUIRE(has_default_action(SIGWINCH));
    }
    done.store(true);
    storm.join();
    REQUIRE(sent.load() > 0);
}

TEST_CASE("the OS handler leaves errno as the interrupted code had it") {
    saved_dispositions saved{SIGWINCH};
    aio::event_loop loop;
    int calls = 0;
    loop.add_signal_handler(SIGWINCH, [&calls] { ++calls; });
    // Saturate the loop's wake-up eventfd is not possible from here; what can be checked
    // is that a delivery in this thread (raise runs the handler before it returns) does
    // not change errno whatever it was.
    for (int value : {EDOM, EINTR, EAGAIN, 0}) {
        errno = value;
        ::raise(SIGWINCH);
        const int after = errno;
        REQUIRE(after == value);
    }
    auto stop_soon = loop.call_later(0ms, [&loop] { loop.stop(); });
    loop.run_forever();
    REQUIRE(calls == 1);
}
