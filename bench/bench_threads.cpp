// Threads: handing work to a loop from other threads, running work on the loop's
// executor, and several loops side by side.
//
// 1. call_soon_threadsafe into a busy loop (asyncio's loop.call_soon_threadsafe), from
//    P producer threads, each posting N callbacks that count down one counter. A task
//    keeps the loop busy with sleep(0) until every callback has run, so the loop never
//    blocks in epoll: the figure is the cross-thread path (post, hand-over to the
//    loop, run) without any wake-up. Timed from opening the
//    producers' start gate until the loop has seen the last callback; per call
//    (counter per_call):
//      aio:  loop.call_soon_threadsafe(f);
//      asio: asio::post(io_context, f), the io_context kept busy by a handler that
//            re-posts itself.
// 2. Waking an idle loop from another thread: the loop blocks in epoll on its own
//    thread; the benchmark thread takes t0, posts a callback that takes t1 on the
//    loop thread, waits until it has run, then sleeps 200 us so that the loop goes
//    back to sleep. Counters median_ns and p99_ns (and max_ns) of t1 - t0:
//      aio:  loop.run_forever() on its own thread + loop.call_soon_threadsafe(f);
//      asio: io_context::run() with a work guard on its own thread + asio::post(io, f),
//            with an I/O object (an idle timer) so that run() too waits in epoll_wait.
//            Without any, asio's run() waits on a condition variable and is woken by
//            a futex, not through epoll: BM_asio_wakeup_idle_condvar, for reference.
// 3. The executor round trip of an empty function (asyncio's
//    `await asyncio.to_thread(f)`), per round trip (counter per_roundtrip):
//      aio:      co_await aio::to_thread([] {});
//      asio:     asio::post(pool, [&] { asio::post(io, done); }) with an
//                asio::thread_pool and an io_context waiting in epoll_wait, as in 2
//                (BM_asio_to_thread_condvar: without the I/O object);
//      baseline: what any such hop costs at least — two threads ping-ponging through
//                epoll_wait + eventfd, each blocking in the kernel until the other
//                writes its eventfd.
// 4. Two loops on two threads against one loop on one thread, each running the same
//    work with aio::run on its own thread, started together and timed until the last
//    ends: (a) one task doing K sleep(0)s, (b) gathering N trivial tasks. Counters
//    one_loop_items_per_s, two_loops_items_per_s and speedup (two loops' items/s over
//    one loop's; 2 would be perfect scaling). aio only: it is about aio's loops sharing
//    nothing. BM_baseline_two_threads_cpu is the machine's own figure: the same
//    harness around integer work that touches no memory.
//
// Setup (threads, loops, pools) is kept out of the timed part: the benchmarks time
// themselves (UseManualTime) — all but the wake-up ones, whose figures are their
// counters; the executor ones make one untimed round trip first, which starts the
// pool's worker. Google Benchmark divides rate counters by the time it reports, here
// the manual time, so aio_bench::report_items's per-item figures hold.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using std::chrono::steady_clock;

double seconds_of(steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }
double ns_of(steady_clock::duration d) { return std::chrono::duration<double, std::nano>(d).count(); }

// Where threads wait to start together: they block in a futex (atomic wait), not
// spinning, which would steal one of the machine's few cores from the loop.
class start_gate {
public:
    void wait() const noexcept { open_.wait(false, std::memory_order_acquire); }
    void open() noexcept {
        open_.store(true, std::memory_order_release);
        open_.notify_all();
    }

private:
    std::atomic<bool> open_{false};
};

// Producer threads that are joined however the benchmark leaves its scope; the gate
// is opened first, so that none is left waiting at it after an error.
class producer_threads {
public:
    explicit producer_threads(start_gate& gate) : gate_(gate) {}
    ~producer_threads() {
        gate_.open();
        for (std::thread& t : threads_) t.join();
    }
    producer_threads(const producer_threads&) = delete;
    producer_threads& operator=(const producer_threads&) = delete;

    template <class F>
    void start(F f) {
        threads_.emplace_back([this, f]() mutable {
            gate_.wait();
            f();
        });
    }

private:
    start_gate& gate_;
    std::vector<std::thread> threads_;
};

// Latency statistics in nanoseconds: median_ns, p99_ns, max_ns.
void report_latency_ns(benchmark::State& state, const std::vector<double>& samples_ns) {
    state.counters["median_ns"] = aio_bench::percentile(samples_ns, 50);
    state.counters["p99_ns"] = aio_bench::percentile(samples_ns, 99);
    state.counters["max_ns"] = aio_bench::percentile(samples_ns, 100);
    state.counters["samples"] = static_cast<double>(samples_ns.size());
}

constexpr auto idle_pause = std::chrono::microseconds(200);

// The poster's side of scenario 2, the same for every implementation: `post(f)` must
// run f on the loop thread. The probe outlives the loop thread (the caller joins it
// first), since the loop thread still touches `ran` after the poster has seen it set.
struct wake_probe {
    steady_clock::time_point woke;
    std::atomic<bool> ran{false};

    template <class Post>
    std::vector<double> measure(std::int64_t m, Post post) {
        std::vector<double> samples;
        samples.reserve(static_cast<std::size_t>(m));
        // Round 0 is not recorded: the loop thread may not have reached its wait yet.
        for (std::int64_t i = 0; i <= m; ++i) {
            ran.store(false, std::memory_order_relaxed);
            const auto start = steady_clock::now();
            post([this] {
                woke = steady_clock::now();
                ran.store(true, std::memory_order_release);
                ran.notify_one();
            });
            // Blocking, not spinning: the poster's own wake-up is not measured (t1 is
            // taken on the loop thread), and a spinning poster would hold a core.
            ran.wait(false, std::memory_order_acquire);
            if (i > 0) samples.push_back(ns_of(woke - start));
            std::this_thread::sleep_for(idle_pause);  // the loop goes back to epoll_wait
        }
        return samples;
    }
};

// ==== 1. call_soon_threadsafe into a busy loop

// ---- aio

// `remaining` is touched by the loop thread only (here and in the callbacks).
aio::task<> aio_keep_busy(const std::int64_t& remaining, start_gate& gate, steady_clock::time_point& start,
                          steady_clock::time_point& end) {
    start = steady_clock::now();
    gate.open();
    while (remaining > 0) co_await aio::sleep(std::chrono::seconds(0));
    end = steady_clock::now();
}

void BM_aio_call_soon_threadsafe(benchmark::State& state) {
    const auto producers = state.range(0);
    const auto calls = state.range(1);
    for (auto _ : state) {
        aio::event_loop loop;
        std::int64_t remaining = producers * calls;
        start_gate gate;
        steady_clock::time_point start, end;
        {
            producer_threads threads(gate);
            for (std::int64_t p = 0; p < producers; ++p) {
                threads.start([&loop, &remaining, calls] {
                    for (std::int64_t i = 0; i < calls; ++i) loop.call_soon_threadsafe([&remaining] { --remaining; });
                });
            }
            loop.run_until_complete(aio_keep_busy(remaining, gate, start, end));
        }
        state.SetIterationTime(seconds_of(end - start));
    }
    aio_bench::report_items(state, producers * calls, "per_call");
}

// ---- asio

// The busy loop: a handler that re-posts itself until the producers' handlers have
// all run. Posted from the io_context's own thread, it takes asio's thread-private
// queue, as aio's sleep(0) takes the ready queue.
struct asio_keep_busy {
    asio::io_context* io;
    const std::int64_t* remaining;
    steady_clock::time_point* end;

    void operator()() const {
        if (*remaining > 0)
            asio::post(*io, *this);
        else
            *end = steady_clock::now();
    }
};

void BM_asio_call_soon_threadsafe(benchmark::State& state) {
    const auto producers = state.range(0);
    const auto calls = state.range(1);
    for (auto _ : state) {
        asio::io_context io(1);  // as in aio_bench::asio_run: one thread runs it (others post)
        std::int64_t remaining = producers * calls;
        start_gate gate;
        steady_clock::time_point start, end;
        {
            producer_threads threads(gate);
            for (std::int64_t p = 0; p < producers; ++p) {
                threads.start([&io, &remaining, calls] {
                    for (std::int64_t i = 0; i < calls; ++i) asio::post(io, [&remaining] { --remaining; });
                });
            }
            asio::post(io, [&] {
                start = steady_clock::now();
                gate.open();
                asio_keep_busy{&io, &remaining, &end}();
            });
            io.run();  // returns once the busy handler stops re-posting: every call has run
        }
        state.SetIterationTime(seconds_of(end - start));
    }
    aio_bench::report_items(state, producers * calls, "per_call");
}

// ==== 2. Waking an idle loop from another thread

// ---- aio

void BM_aio_wakeup_idle(benchmark::State& state) {
    std::vector<double> samples;
    for (auto _ : state) {
        aio::event_loop loop;
        wake_probe probe;
        std::thread runner([&] { loop.run_forever(); });
        try {
            samples = probe.measure(state.range(0), [&](auto f) { loop.call_soon_threadsafe(std::move(f)); });
        } catch (...) {
            loop.call_soon_threadsafe([&] { loop.stop(); });
            runner.join();
            throw;
        }
        loop.call_soon_threadsafe([&] { loop.stop(); });  // stop() belongs to the loop thread
        runner.join();
    }
    report_latency_ns(state, samples);
}

// ---- asio

// An idle io_context waits in epoll_wait only once its reactor has started, which
// any I/O object does (here a timer that is never armed); without one, run() waits
// on a condition variable and a post wakes it with a futex — the _condvar variants,
// which are not what a loop asleep in epoll costs, but asio as the brief literally
// sets it up.
std::optional<asio::steady_timer> start_reactor(asio::io_context& io, bool reactor) {
    std::optional<asio::steady_timer> timer;
    if (reactor) timer.emplace(io);
    return timer;
}

void asio_wakeup_idle(benchmark::State& state, bool reactor) {
    std::vector<double> samples;
    for (auto _ : state) {
        asio::io_context io(1);
        const auto io_object = start_reactor(io, reactor);
        wake_probe probe;
        auto guard = asio::make_work_guard(io);  // idle, run() waits instead of returning
        std::thread runner([&] { io.run(); });
        try {
            samples = probe.measure(state.range(0), [&](auto f) { asio::post(io, std::move(f)); });
        } catch (...) {
            guard.reset();
            runner.join();
            throw;
        }
        guard.reset();
        runner.join();
    }
    report_latency_ns(state, samples);
}

void BM_asio_wakeup_idle(benchmark::State& state) { asio_wakeup_idle(state, true); }
void BM_asio_wakeup_idle_condvar(benchmark::State& state) { asio_wakeup_idle(state, false); }

// ==== 3. The executor round trip

// ---- aio

aio::task<steady_clock::duration> aio_to_thread_many(std::int64_t k) {
    co_await aio::to_thread([] {});  // untimed: starts the executor's worker
    const auto start = steady_clock::now();
    for (std::int64_t i = 0; i < k; ++i) co_await aio::to_thread([] {});
    co_return steady_clock::now() - start;
}

void BM_aio_to_thread(benchmark::State& state) {
    for (auto _ : state) state.SetIterationTime(seconds_of(aio::run(aio_to_thread_many(state.range(0)))));
    aio_bench::report_items(state, state.range(0), "per_roundtrip");
}

// ---- asio

// One hop at a time: to the pool, back to the io_context, again — k + 1 times, the
// first one untimed (as aio's).
struct asio_round_trips {
    asio::io_context& io;
    asio::thread_pool& pool;
    asio::executor_work_guard<asio::io_context::executor_type> guard;  // the io_context waits while a hop is away
    std::int64_t k;
    std::int64_t done = 0;
    steady_clock::time_point start, end;

    void go() {
        asio::post(pool, [this] { asio::post(io, [this] { back(); }); });
    }
    void back() {
        ++done;
        if (done == 1) start = steady_clock::now();
        if (done <= k) {
            go();
        } else {
            end = steady_clock::now();
            guard.reset();
        }
    }
};

void asio_to_thread(benchmark::State& state, bool reactor) {
    for (auto _ : state) {
        asio::io_context io(1);
        const auto io_object = start_reactor(io, reactor);  // the hop back wakes epoll_wait, as aio's
        asio::thread_pool pool;  // asio's default size (twice the cores): only one thread is ever busy
        asio_round_trips trips{io, pool, asio::make_work_guard(io), state.range(0), 0, {}, {}};
        asio::post(io, [&] { trips.go(); });
        io.run();
        state.SetIterationTime(seconds_of(trips.end - trips.start));
    }
    aio_bench::report_items(state, state.range(0), "per_roundtrip");
}

void BM_asio_to_thread(benchmark::State& state) { asio_to_thread(state, true); }
void BM_asio_to_thread_condvar(benchmark::State& state) { asio_to_thread(state, false); }

// ---- baseline: two threads, two eventfds, two epoll sets

// An eventfd in an epoll set of its own: signal() from one thread, wait() from another.
class eventfd_channel {
public:
    eventfd_channel() : event_(::eventfd(0, EFD_CLOEXEC)), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        if (event_ < 0 || epoll_ < 0 || ::epoll_ctl(epoll_, EPOLL_CTL_ADD, event_, &ev) != 0) ok_ = false;
    }
    ~eventfd_channel() {
        if (event_ >= 0) ::close(event_);
        if (epoll_ >= 0) ::close(epoll_);
    }
    eventfd_channel(const eventfd_channel&) = delete;
    eventfd_channel& operator=(const eventfd_channel&) = delete;

    bool ok() const noexcept { return ok_; }
    void signal() const noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto written = ::write(event_, &one, sizeof one);
    }
    // Blocks in epoll_wait, as a loop with nothing to do would, then consumes the count.
    void wait() const noexcept {
        epoll_event ev;
        while (::epoll_wait(epoll_, &ev, 1, -1) < 0 && errno == EINTR) {
        }
        std::uint64_t count;
        [[maybe_unused]] auto got = ::read(event_, &count, sizeof count);
    }

private:
    int event_;
    int epoll_;
    bool ok_ = true;
};

void BM_baseline_eventfd_pingpong(benchmark::State& state) {
    const std::int64_t k = state.range(0);
    for (auto _ : state) {
        eventfd_channel to_a, to_b;
        if (!to_a.ok() || !to_b.ok()) {
            state.SkipWithError("eventfd/epoll setup failed");
            break;
        }
        std::thread b([&] {
            for (std::int64_t i = 0; i <= k; ++i) {
                to_b.wait();
                to_a.signal();
            }
        });
        // Round 0 is untimed: thread b may not have reached its first wait.
        to_b.signal();
        to_a.wait();
        const auto start = steady_clock::now();
        for (std::int64_t i = 0; i < k; ++i) {
            to_b.signal();
            to_a.wait();
        }
        const auto end = steady_clock::now();
        b.join();
        state.SetIterationTime(seconds_of(end - start));
    }
    aio_bench::report_items(state, k, "per_roundtrip");
}

// ==== 4. Two loops on two threads against one

aio::task<std::int64_t> aio_yield_many(std::int64_t k) {
    for (std::int64_t i = 0; i < k; ++i) co_await aio::sleep(std::chrono::seconds(0));
    co_return k;
}

aio::task<int> aio_child(int i) { co_return i; }

aio::task<std::int64_t> aio_gather_ints(std::int64_t n) {
    std::vector<aio::task<int>> children;
    children.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) children.push_back(aio_child(static_cast<int>(i)));
    std::vector<int> results = co_await aio::gather(std::move(children));
    co_return static_cast<std::int64_t>(results.size());
}

// The machine's own scaling, for reading the speed-ups above: the same two-thread
// harness around plain integer work that shares nothing (no memory, no loop). On a
// shared or virtual machine two threads do not always get two cores' worth.
std::int64_t cpu_chain(std::int64_t n) {
    std::uint64_t x = 1;
    for (std::int64_t i = 0; i < n; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        benchmark::DoNotOptimize(x);
    }
    return n;
}

// Runs job(n) on `count` threads at once; the wall time from opening their gate until
// the last one ends. False if one of them did not do n items.
template <class Job>
bool run_on_threads(int count, std::int64_t n, Job job, double& seconds) {
    start_gate gate;
    std::vector<steady_clock::time_point> ends(static_cast<std::size_t>(count));
    std::atomic<bool> all_done{true};
    steady_clock::time_point start;
    {
        producer_threads threads(gate);
        for (int l = 0; l < count; ++l) {
            threads.start([&, l] {
                bool done = false;
                try {
                    done = job(n) == n;
                } catch (...) {
                }
                ends[static_cast<std::size_t>(l)] = steady_clock::now();
                if (!done) all_done.store(false);
            });
        }
        start = steady_clock::now();
        gate.open();
    }
    seconds = seconds_of(*std::max_element(ends.begin(), ends.end()) - start);
    return all_done.load();
}

// One thread, then two, each iteration (alternating keeps both exposed to the same
// drift of a shared machine).
template <class Job>
void loops_scaling(benchmark::State& state, Job job) {
    const std::int64_t n = state.range(0);
    double one_total = 0, two_total = 0;
    for (auto _ : state) {
        double one = 0, two = 0;
        if (!run_on_threads(1, n, job, one) || !run_on_threads(2, n, job, two)) {
            state.SkipWithError("a thread did not finish its work");
            break;
        }
        one_total += one;
        two_total += two;
        state.SetIterationTime(one + two);
    }
    const auto iterations = static_cast<double>(state.iterations());
    if (one_total <= 0 || two_total <= 0) return;
    const double one_rate = iterations * static_cast<double>(n) / one_total;
    const double two_rate = iterations * 2.0 * static_cast<double>(n) / two_total;
    state.counters["one_loop_items_per_s"] = one_rate;
    state.counters["two_loops_items_per_s"] = two_rate;
    state.counters["speedup"] = two_rate / one_rate;
}

// Each thread: aio::run on a loop of its own.
void BM_aio_two_loops_sleep0(benchmark::State& state) {
    loops_scaling(state, [](std::int64_t k) { return aio::run(aio_yield_many(k)); });
}
void BM_aio_two_loops_gather(benchmark::State& state) {
    loops_scaling(state, [](std::int64_t n) { return aio::run(aio_gather_ints(n)); });
}
void BM_baseline_two_threads_cpu(benchmark::State& state) { loops_scaling(state, cpu_chain); }

}  // namespace

// 100,000 calls per producer thread, from 1 and from 4 threads.
BENCHMARK(BM_aio_call_soon_threadsafe)->Args({1, 100'000})->Args({4, 100'000})->UseManualTime();
BENCHMARK(BM_asio_call_soon_threadsafe)->Args({1, 100'000})->Args({4, 100'000})->UseManualTime();
// 2000 wake-ups is the scenario; 200 is compare.py --quick's smoke size.
BENCHMARK(BM_aio_wakeup_idle)->Arg(2000)->Arg(200)->Iterations(1)->UseRealTime();
BENCHMARK(BM_asio_wakeup_idle)->Arg(2000)->Arg(200)->Iterations(1)->UseRealTime();
BENCHMARK(BM_asio_wakeup_idle_condvar)->Arg(2000)->Iterations(1)->UseRealTime();
// 10,000 round trips; 1000 is --quick's size (a round trip takes microseconds).
BENCHMARK(BM_aio_to_thread)->Arg(10'000)->Arg(1'000)->UseManualTime();
BENCHMARK(BM_asio_to_thread)->Arg(10'000)->Arg(1'000)->UseManualTime();
BENCHMARK(BM_asio_to_thread_condvar)->Arg(10'000)->UseManualTime();
BENCHMARK(BM_baseline_eventfd_pingpong)->Arg(10'000)->Arg(1'000)->UseManualTime();
// 1,000,000 sleeps and 100,000 tasks per loop; the smaller sizes are --quick's.
BENCHMARK(BM_aio_two_loops_sleep0)->Arg(1'000'000)->Arg(100'000)->UseManualTime();
BENCHMARK(BM_aio_two_loops_gather)->Arg(100'000)->Arg(10'000)->UseManualTime();
// About as long per thread as the sleep(0) work (some 10 ms, 1 ms for --quick).
BENCHMARK(BM_baseline_two_threads_cpu)->Arg(10'000'000)->Arg(1'000'000)->UseManualTime();

BENCHMARK_MAIN();
