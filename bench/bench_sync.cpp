// The synchronisation primitives — asyncio.Queue, asyncio.Lock and asyncio.Event
// — against their usual asio stand-ins. asio has no queue, lock or event for
// coroutines; each stand-in below is the idiom asio programs use instead.
//
// queue (counter per_item): one iteration runs a fresh loop in which a producer
// task puts N ints 0..N-1 into a queue and a consumer task gets them (the producer
// is started first); reported per item moved (one put + one get). Two capacities:
//   unbounded (second argument 0): puts never wait; the producer runs ahead and the
//       consumer drains the queue — the pure cost of a put and a get;
//   maxsize 1 (second argument 1): every item is a hand-off — the producer waits on
//       the full queue, the consumer on the empty one — so each item also costs
//       both tasks a wake-up through the scheduler.
//   aio:  aio::queue<int> q(maxsize); co_await q.put(i) / co_await q.get().
//   asio: asio::experimental::channel<void(asio::error_code, int)>, the
//         single-threaded channel (one io_context thread, as aio's one loop), with
//         co_await async_send(error_code{}, i, use_awaitable) and
//         co_await async_receive(use_awaitable), between two co_spawn'd
//         coroutines. Capacity 1 for maxsize 1 (a channel's capacity is its
//         buffer, as maxsize is the queue's; capacity 0 would be a rendezvous,
//         which no asyncio queue is); a channel has no unbounded mode, so the
//         unbounded case gets capacity N: the buffer never fills, as the queue
//         never does. Unlike aio (which always wakes a waiter through the ready
//         queue), a channel completes a waiting peer by dispatch, which may resume
//         it inline.
//   Both check that the consumer got N items summing to N(N-1)/2.
//
// lock: reported per acquisition (counter per_acquire).
//   uncontended: one task acquires and releases the lock N times — the cost of a
//       free acquire + release pair, nobody waiting;
//   contended: T = 10 tasks each do K rounds of acquire → yield once to the
//       scheduler (asyncio.sleep(0)) → release, so that every release finds the
//       nine others queued and hands the lock over: each acquisition costs a
//       queued wait, a wake-up through the scheduler and the holder's yield.
//   aio:  auto guard = co_await l.scoped() (asyncio's `async with lock:`), released
//         by the guard at the end of the scope; yield = co_await aio::sleep(0s).
//   asio: asio has no async mutex. The common idiom is a channel of capacity 1
//         used as a binary semaphore: acquire =
//         co_await async_send(error_code{}, token, use_awaitable), which completes at
//         once while the one slot is free and otherwise queues the coroutine
//         (FIFO, like asyncio's lock); release = try_receive(...), which empties
//         the slot and, if a sender is queued, moves its message into the slot
//         and completes it — the lock handed to the oldest waiter. try_receive
//         rather than co_await async_receive: release() is synchronous in
//         asyncio and aio, and a receive that may suspend would add a coroutine
//         round trip the others do not pay. A strand is no substitute: it
//         serialises handlers, not a coroutine's stretch across a co_await (the
//         yield here), so it would not exclude the other tasks from the critical
//         section. Yield = co_await asio::post(use_awaitable) (as bench_sleep0).
//         The channel is channel<void(asio::error_code, bool)> carrying a dummy
//         bool: asio 1.22's channel_traits make channel<void(asio::error_code)>
//         ambiguous (two partial specialisations match), so it does not compile.
//   Both check mutual exclusion (never two holders: a holder count is checked
//   inside the critical section) and that every acquisition happened.
//
// event (counter per_waiter): one iteration runs a fresh loop in which W = 10,000
// tasks start and wait on one event; once every one is waiting, the event is set
// and the loop runs until every one has resumed and ended. Timed from spawning the
// first waiter to the last one's end, per waiter: spawn cost included — a waiter
// must exist and be suspended before set() can wake it, and timing set() alone
// (pausing the timer around the spawn, inside one loop run) would cost Google
// Benchmark's microsecond pause/resume and disturb what it brackets. The figure is
// thus task spawn + suspension on the event + wake-up + resumption + end;
// bench_cancel's spawn_sleepers gives a feel for the spawn part alone.
//   aio:  aio::create_task of W waiters (handles kept in a vector reserved once per
//         iteration), each doing co_await ev.wait(); the main task sleeps 0 once
//         (every waiter has run to its wait), calls ev.set() — which appends every
//         waiter to the ready queue — and sleeps 0 until all have resumed.
//   asio: the usual asio event: a steady_timer that expires at
//         time_point::max(), on which W co_spawn'd coroutines do
//         co_await timer.async_wait(redirect_error(use_awaitable, ec)); "set" is
//         timer.cancel(), which completes every wait with operation_aborted.
//         redirect_error, not plain use_awaitable, so that the wake-up is not an
//         exception per waiter (aio's and asyncio's waits return normally).
//         io_context::run_one() until all wait, then cancel(), then run().
//   Both check that every waiter was waiting before the set and resumed after it.

#include <aio/aio.hpp>
#include <aio/event.hpp>
#include <aio/lock.hpp>
#include <aio/queue.hpp>

#include <benchmark/benchmark.h>

#include <asio/experimental/channel.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;

constexpr std::int64_t lock_tasks = 10;  // contended lock: T tasks

struct consumed {
    std::int64_t count = 0;
    std::int64_t sum = 0;
};

bool consumed_all(const consumed& c, std::int64_t n) { return c.count == n && c.sum == n * (n - 1) / 2; }

// ---- aio: queue

aio::task<> aio_producer(aio::queue<int>& q, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) co_await q.put(static_cast<int>(i));
}

aio::task<> aio_consumer(aio::queue<int>& q, std::int64_t n, consumed& out) {
    for (std::int64_t i = 0; i < n; ++i) {
        out.sum += co_await q.get();
        ++out.count;
    }
}

aio::task<consumed> aio_queue_main(std::int64_t n, std::int64_t maxsize) {
    aio::queue<int> q(static_cast<std::size_t>(maxsize));
    consumed out;
    auto producer = aio::create_task(aio_producer(q, n));
    auto consumer = aio::create_task(aio_consumer(q, n, out));
    co_await producer;
    co_await consumer;
    co_return out;
}

void BM_aio_queue(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    const std::int64_t maxsize = state.range(1);
    for (auto _ : state) {
        if (!consumed_all(aio::run(aio_queue_main(n, maxsize)), n)) {
            state.SkipWithError("the consumer did not get every item");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_item");
}

// ---- asio: queue

using int_channel = asio::experimental::channel<void(asio::error_code, int)>;

asio::awaitable<void> asio_producer(int_channel& ch, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) co_await ch.async_send(asio::error_code{}, static_cast<int>(i), asio::use_awaitable);
}

asio::awaitable<void> asio_consumer(int_channel& ch, std::int64_t n, consumed& out) {
    for (std::int64_t i = 0; i < n; ++i) {
        out.sum += co_await ch.async_receive(asio::use_awaitable);
        ++out.count;
    }
}

void BM_asio_queue(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    const std::int64_t maxsize = state.range(1);
    const auto capacity = static_cast<std::size_t>(maxsize == 0 ? n : maxsize);
    for (auto _ : state) {
        consumed out;
        std::exception_ptr error;
        {
            asio::io_context io(1);  // as in aio_bench::asio_run
            int_channel ch(io, capacity);
            auto on_end = [&error](std::exception_ptr e) {
                if (e && !error) error = e;
            };
            asio::co_spawn(io, asio_producer(ch, n), on_end);
            asio::co_spawn(io, asio_consumer(ch, n, out), on_end);
            io.run();
        }
        if (error || !consumed_all(out, n)) {
            state.SkipWithError(error ? "a coroutine failed" : "the consumer did not get every item");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_item");
}

// ---- aio: lock

aio::task<std::int64_t> aio_lock_uncontended(std::int64_t n) {
    aio::lock l;
    std::int64_t acquired = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        auto guard = co_await l.scoped();
        ++acquired;
    }
    co_return l.locked() ? -1 : acquired;
}

void BM_aio_lock_uncontended(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        if (aio::run(aio_lock_uncontended(n)) != n) {
            state.SkipWithError("not every acquisition happened");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_acquire");
}

struct lock_stats {
    std::int64_t holders = 0;     // tasks inside the critical section now
    std::int64_t acquired = 0;    // acquisitions so far
    std::int64_t violations = 0;  // times a holder found another one inside
};

bool lock_ok(const lock_stats& s, std::int64_t expected) {
    return s.violations == 0 && s.holders == 0 && s.acquired == expected;
}

aio::task<> aio_lock_worker(aio::lock& l, std::int64_t k, lock_stats& s) {
    for (std::int64_t i = 0; i < k; ++i) {
        auto guard = co_await l.scoped();
        if (++s.holders != 1) ++s.violations;
        ++s.acquired;
        co_await aio::sleep(0s);
        --s.holders;
    }
}

aio::task<lock_stats> aio_lock_contended(std::int64_t k) {
    aio::lock l;
    lock_stats s;
    std::vector<aio::task_handle<>> workers;
    workers.reserve(static_cast<std::size_t>(lock_tasks));
    for (std::int64_t t = 0; t < lock_tasks; ++t) workers.push_back(aio::create_task(aio_lock_worker(l, k, s)));
    for (auto& w : workers) co_await w;
    co_return s;
}

void BM_aio_lock_contended(benchmark::State& state) {
    const std::int64_t k = state.range(0);
    for (auto _ : state) {
        if (!lock_ok(aio::run(aio_lock_contended(k)), lock_tasks * k)) {
            state.SkipWithError("mutual exclusion broken or an acquisition missing");
            break;
        }
    }
    aio_bench::report_items(state, lock_tasks * k, "per_acquire");
}

// ---- asio: lock (a channel of capacity 1 as a binary semaphore)

// (void(asio::error_code) alone does not compile with asio 1.22: see the top.)
using lock_channel = asio::experimental::channel<void(asio::error_code, bool)>;

// Acquire: co_await ch.async_send(asio::error_code{}, true, asio::use_awaitable),
// written out at each use (a helper coroutine would add a frame per acquisition).

// Release; returns false if the lock was not held (the slot was empty).
bool asio_release(lock_channel& ch) {
    return ch.try_receive([](asio::error_code, bool) {});
}

asio::awaitable<std::int64_t> asio_lock_uncontended(std::int64_t n) {
    lock_channel ch(co_await asio::this_coro::executor, 1);
    std::int64_t acquired = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        co_await ch.async_send(asio::error_code{}, true, asio::use_awaitable);
        ++acquired;
        if (!asio_release(ch)) co_return -1;
    }
    co_return acquired;
}

void BM_asio_lock_uncontended(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        if (aio_bench::asio_run(asio_lock_uncontended(n)) != n) {
            state.SkipWithError("not every acquisition happened");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_acquire");
}

asio::awaitable<void> asio_lock_worker(lock_channel& ch, std::int64_t k, lock_stats& s) {
    for (std::int64_t i = 0; i < k; ++i) {
        co_await ch.async_send(asio::error_code{}, true, asio::use_awaitable);
        if (++s.holders != 1) ++s.violations;
        ++s.acquired;
        co_await asio::post(asio::use_awaitable);
        --s.holders;
        if (!asio_release(ch)) ++s.violations;
    }
}

void BM_asio_lock_contended(benchmark::State& state) {
    const std::int64_t k = state.range(0);
    for (auto _ : state) {
        lock_stats s;
        std::int64_t failed = 0;
        {
            asio::io_context io(1);
            lock_channel ch(io, 1);
            for (std::int64_t t = 0; t < lock_tasks; ++t) {
                asio::co_spawn(io, asio_lock_worker(ch, k, s), [&failed](std::exception_ptr e) { failed += e != nullptr; });
            }
            io.run();
        }
        if (failed != 0 || !lock_ok(s, lock_tasks * k)) {
            state.SkipWithError("mutual exclusion broken or an acquisition missing");
            break;
        }
    }
    aio_bench::report_items(state, lock_tasks * k, "per_acquire");
}

// ---- aio: event

struct event_stats {
    std::int64_t waiting = 0;  // waiters that reached their wait
    std::int64_t early = 0;    // waiters that resumed before the set (must stay 0)
    std::int64_t resumed = 0;  // waiters that resumed after the set
    bool set = false;
};

aio::task<> aio_waiter(aio::event& ev, event_stats& s) {
    ++s.waiting;
    co_await ev.wait();
    ++(s.set ? s.resumed : s.early);
}

aio::task<> aio_event_main(std::vector<aio::task_handle<>>& waiters, std::int64_t w, event_stats& s) {
    aio::event ev;
    for (std::int64_t i = 0; i < w; ++i) waiters.push_back(aio::create_task(aio_waiter(ev, s)));
    co_await aio::sleep(0s);  // every waiter has run to its wait
    s.set = true;
    ev.set();
    // One sleep(0) suffices (set() queued every waiter ahead of this task); bounded
    // so that a wrong wake-up order shows as an error, not a hang.
    for (int round = 0; round < 8 && s.resumed < w; ++round) co_await aio::sleep(0s);
}

void BM_aio_event(benchmark::State& state) {
    const std::int64_t w = state.range(0);
    for (auto _ : state) {
        event_stats s;
        std::int64_t not_done = 0;
        {
            std::vector<aio::task_handle<>> waiters;
            waiters.reserve(static_cast<std::size_t>(w));
            aio::run(aio_event_main(waiters, w, s));
            for (auto& h : waiters) not_done += !h.done();
        }
        if (s.waiting != w || s.early != 0 || s.resumed != w || not_done != 0) {
            state.SkipWithError("not every waiter waited, then resumed after the set");
            break;
        }
    }
    aio_bench::report_items(state, w, "per_waiter");
}

// ---- asio: event (a never-expiring steady_timer, "set" = cancel())

asio::awaitable<void> asio_waiter(asio::steady_timer& timer, event_stats& s) {
    asio::error_code ec;
    ++s.waiting;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    ++(s.set && ec == asio::error::operation_aborted ? s.resumed : s.early);
}

void BM_asio_event(benchmark::State& state) {
    const std::int64_t w = state.range(0);
    for (auto _ : state) {
        event_stats s;
        std::int64_t ended = 0;
        {
            asio::io_context io(1);
            asio::steady_timer timer(io, asio::steady_timer::time_point::max());
            for (std::int64_t i = 0; i < w; ++i) {
                asio::co_spawn(io, asio_waiter(timer, s), [&ended](std::exception_ptr e) { ended += e == nullptr; });
            }
            // A handler that bumps `waiting` also starts that coroutine's wait before
            // run_one() returns; nothing here blocks (the timer never expires).
            while (s.waiting < w && io.run_one() > 0) {
            }
            s.set = true;
            timer.cancel();
            io.run();
        }
        if (s.waiting != w || s.early != 0 || s.resumed != w || ended != w) {
            state.SkipWithError("not every waiter waited, then resumed after the set");
            break;
        }
    }
    aio_bench::report_items(state, w, "per_waiter");
}

}  // namespace

BENCHMARK(BM_aio_queue)->Args({100'000, 0})->Args({100'000, 1})->UseRealTime();
BENCHMARK(BM_asio_queue)->Args({100'000, 0})->Args({100'000, 1})->UseRealTime();
BENCHMARK(BM_aio_lock_uncontended)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_lock_uncontended)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_aio_lock_contended)->Arg(10'000)->UseRealTime();
BENCHMARK(BM_asio_lock_contended)->Arg(10'000)->UseRealTime();
BENCHMARK(BM_aio_event)->Arg(10'000)->UseRealTime();
BENCHMARK(BM_asio_event)->Arg(10'000)->UseRealTime();

BENCHMARK_MAIN();
