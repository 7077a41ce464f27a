// Signals: how soon a signal reaches an idle loop's callback, and what a storm of
// signals costs and coalesces to.
//
// 1. Waking an idle loop with a signal: the loop blocks in epoll on its own thread;
//    the benchmark thread takes t0 and sends SIGUSR1 to the process (kill(getpid()));
//    the callback takes t1 on the loop's thread; the benchmark thread waits until it
//    has run, then sleeps 200 us so that the loop goes back to sleep. Counters
//    median_ns and p99_ns (and max_ns) of t1 - t0:
//      aio:  loop.add_signal_handler(SIGUSR1, f), loop.run_forever() on its thread;
//      asio: asio::signal_set(io, SIGUSR1).async_wait(f), re-armed by f, io.run() on
//            its thread.
// 2. A storm: the benchmark thread sends 10,000 SIGUSR1 back to back, storing the
//    count before each kill; timed until the callback has seen the last count.
//    Counters per_signal (ns of storm per signal sent) and callbacks (how many times
//    the callback ran for the 10,000: the kernel coalesces a signal already pending,
//    and each library coalesces what arrives before it looks).
//
// kill(getpid()) goes to the process; the kernel gives it to the main thread (the one
// sending here) when it can, so the OS handler mostly runs on the sender, which then
// wakes the loop's thread: the hop every signal-driven program pays.

#include <aio/aio.hpp>

#include <asio.hpp>
#include <benchmark/benchmark.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}

void report_latencies(benchmark::State& state, std::vector<std::int64_t>& samples) {
    if (samples.empty()) return;
    std::sort(samples.begin(), samples.end());
    state.counters["median_ns"] = static_cast<double>(samples[samples.size() / 2]);
    state.counters["p99_ns"] = static_cast<double>(samples[samples.size() * 99 / 100]);
    state.counters["max_ns"] = static_cast<double>(samples.back());
}

// What the loop thread shares with the benchmark thread.
struct shared_state {
    std::atomic<std::int64_t> t1{0};
    std::atomic<int> seen{0};    // the last `sent` value the callback saw
    std::atomic<int> sent{0};
    std::atomic<int> calls{0};
    std::atomic<bool> ready{false};
    void on_signal() {
        t1.store(now_ns());
        calls.fetch_add(1);
        seen.store(sent.load());
    }
};

// Spins (yielding) until `p` holds, at most a few seconds.
template <class P>
bool wait_until(P p) {
    const auto end = steady::now() + std::chrono::seconds(5);
    while (!p())
        if (steady::now() > end) return false;
        else std::this_thread::yield();
    return true;
}

// --- aio

struct aio_side {
    shared_state s;
    aio::event_loop* loop = nullptr;
    std::thread thread;
    aio_side() {
        thread = std::thread([this] {
            aio::event_loop l;
            loop = &l;
            l.add_signal_handler(SIGUSR1, [this] { s.on_signal(); });
            l.call_soon([this] { s.ready = true; });
            l.run_forever();
            l.close();
        });
        wait_until([&] { return s.ready.load(); });
    }
    ~aio_side() {
        loop->call_soon_threadsafe([l = loop] { l->stop(); });
        thread.join();
    }
};

// --- asio

struct asio_side {
    shared_state s;
    asio::io_context io;
    asio::signal_set signals{io, SIGUSR1};
    std::thread thread;
    std::function<void(const asio::error_code&, int)> handler;
    asio_side() {
        handler = [this](const asio::error_code& ec, int) {
            if (ec) return;
            s.on_signal();
            signals.async_wait(handler);
        };
        signals.async_wait(handler);
        thread = std::thread([this] { io.run(); });
        // run() is waiting once a posted no-op has run.
        asio::post(io, [this] { s.ready = true; });
        wait_until([&] { return s.ready.load(); });
    }
    ~asio_side() {
        asio::post(io, [this] {
            signals.cancel();
            io.stop();
        });
        thread.join();
    }
};

// A SIGUSR1 still on its way when the handler goes would meet the default action (the
// process ends): let every one land first.
void settle() {
    wait_until([] {
        sigset_t pending;
        ::sigpending(&pending);
        return !sigismember(&pending, SIGUSR1);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

template <class Side>
void wakeup(benchmark::State& state) {
    Side side;
    std::vector<std::int64_t> samples;
    for (auto _ : state) {
        const int before = side.s.calls.load();
        const std::int64_t t0 = now_ns();
        ::kill(::getpid(), SIGUSR1);
        if (!wait_until([&] { return side.s.calls.load() != before; })) {
            state.SkipWithError("the callback never ran");
            break;
        }
        samples.push_back(side.s.t1.load() - t0);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    report_latencies(state, samples);
    settle();
}

template <class Side>
void storm(benchmark::State& state) {
    constexpr int signals = 10'000;
    Side side;
    double callbacks = 0;
    std::int64_t rounds = 0;
    for (auto _ : state) {
        side.s.sent = 0;
        side.s.seen = 0;
        const int calls_before = side.s.calls.load();
        const auto t0 = steady::now();
        for (int i = 1; i <= signals; ++i) {
            side.s.sent.store(i);
            ::kill(::getpid(), SIGUSR1);
        }
        if (!wait_until([&] { return side.s.seen.load() == signals; })) {
            state.SkipWithError("the last signal was lost");
            break;
        }
        state.SetIterationTime(std::chrono::duration<double>(steady::now() - t0).count());
        callbacks += side.s.calls.load() - calls_before;
        ++rounds;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let stragglers land
    }
    settle();
    if (rounds == 0) return;
    state.counters["callbacks"] = callbacks / static_cast<double>(rounds);
    state.counters["per_signal"] =
        benchmark::Counter(static_cast<double>(signals) * static_cast<double>(rounds),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_aio_signal_wakeup_idle(benchmark::State& state) { wakeup<aio_side>(state); }
void BM_asio_signal_wakeup_idle(benchmark::State& state) { wakeup<asio_side>(state); }
void BM_aio_signal_storm(benchmark::State& state) { storm<aio_side>(state); }
void BM_asio_signal_storm(benchmark::State& state) { storm<asio_side>(state); }

BENCHMARK(BM_aio_signal_wakeup_idle)->Iterations(2000);
BENCHMARK(BM_asio_signal_wakeup_idle)->Iterations(2000);
BENCHMARK(BM_aio_signal_storm)->UseManualTime()->Iterations(20);
BENCHMARK(BM_asio_signal_storm)->UseManualTime()->Iterations(20);

}  // namespace

BENCHMARK_MAIN();
