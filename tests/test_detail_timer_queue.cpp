// The timer queue in include/aio/detail/timer_queue.hpp: deadline then arming order, removal, late timers, batch pops, sweeps.

#include <aio/detail/timer_queue.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "support/catch.hpp"

namespace {

using aio::detail::timer_node;

// A timer for the queue: the node first, so that the tagged word is the node's address.
// Tracked timers are tagged with the low bit; untracked ones are cancelled by marking
// them, and count how often the queue let go of them.
struct test_timer {
    timer_node node;
    int id = 0;
    bool cancelled = false;
    int forgotten = 0;
};

struct test_traits {
    static bool tracked(std::uintptr_t tagged) noexcept { return (tagged & 1) == 0; }
    static timer_node* node_of(std::uintptr_t tagged) noexcept { return reinterpret_cast<timer_node*>(tagged); }
    static bool cancelled(std::uintptr_t tagged) noexcept { return timer_of(tagged)->cancelled; }
    static void forget(std::uintptr_t tagged) noexcept { ++timer_of(tagged)->forgotten; }
    static test_timer* timer_of(std::uintptr_t tagged) noexcept { return reinterpret_cast<test_timer*>(tagged & ~std::uintptr_t{1}); }
};

using queue = aio::detail::basic_timer_queue<test_traits>;
constexpr std::int64_t any_time = std::numeric_limits<std::int64_t>::max();

std::uintptr_t tag(test_timer& t) { return reinterpret_cast<std::uintptr_t>(&t); }
std::uintptr_t untracked(test_timer& t) { return reinterpret_cast<std::uintptr_t>(&t) | 1; }
int id_of(const queue::entry& e) { return test_traits::timer_of(e.tagged)->id; }

// Cancels an untracked timer as its owner would: mark it, then tell the queue.
void cancel(queue& q, test_timer& t) {
    t.cancelled = true;
    q.cancelled_untracked();
}

queue::entry pop(queue& q) {
    queue::entry e{};
    REQUIRE(q.pop(any_time, e));
    return e;
}

std::vector<std::unique_ptr<test_timer>> make_timers(int n) {
    std::vector<std::unique_ptr<test_timer>> timers;
    for (int i = 0; i < n; ++i) {
        timers.push_back(std::make_unique<test_timer>());
        timers.back()->id = i;
    }
    return timers;
}

}  // namespace

TEST_CASE("the timer queue pops timers in deadline order") {
    queue q;
    REQUIRE(q.empty());
    auto timers = make_timers(6);
    const std::int64_t deadlines[] = {50, 10, 40, 20, 60, 30};
    for (int i = 0; i < 6; ++i) q.push(deadlines[i], tag(*timers[static_cast<std::size_t>(i)]));
    REQUIRE(q.size() == 6);
    REQUIRE(q.next_deadline() == 10);
    std::vector<std::int64_t> popped;
    while (!q.empty()) {
        queue::entry e = pop(q);
        popped.push_back(e.deadline);
        REQUIRE(deadlines[id_of(e)] == e.deadline);
        REQUIRE(test_traits::timer_of(e.tagged)->node.slot == timer_node::idle);
    }
    REQUIRE(popped == std::vector<std::int64_t>{10, 20, 30, 40, 50, 60});
}

TEST_CASE("the timer queue pops only timers due by the limit") {
    queue q;
    auto timers = make_timers(3);
    q.push(300, tag(*timers[0]));
    q.push(100, tag(*timers[1]));
    q.push(200, tag(*timers[2]));
    queue::entry e{};
    REQUIRE_FALSE(q.pop(99, e));
    REQUIRE(q.pop(250, e));
    REQUIRE(id_of(e) == 1);
    REQUIRE(q.pop(250, e));
    REQUIRE(id_of(e) == 2);
    REQUIRE_FALSE(q.pop(250, e));
    REQUIRE(q.size() == 1);
    REQUIRE(q.next_deadline() == 300);
}

TEST_CASE("the timer queue pops equal deadlines in arming order") {
    queue q;
    auto timers = make_timers(300);
    // Three deadlines, interleaved, pushed in id order.
    for (auto& t : timers) q.push(100 * (t->id % 3), tag(*t));
    std::vector<int> ids;
    while (!q.empty()) ids.push_back(id_of(pop(q)));
    std::vector<int> expected;
    for (int d = 0; d < 3; ++d)
        for (int i = 0; i < 300; ++i)
            if (i % 3 == d) expected.push_back(i);
    REQUIRE(ids == expected);
}

TEST_CASE("the timer queue keeps arming order for a deadline armed again while it is being popped") {
    queue q;
    auto timers = make_timers(4);
    q.push(1000, tag(*timers[0]));
    q.push(1000, tag(*timers[1]));
    q.push(5000, tag(*timers[2]));
    REQUIRE(id_of(pop(q)) == 0);
    q.push(1000, tag(*timers[3]));  // the deadline just popped: after the one still waiting
    REQUIRE(id_of(pop(q)) == 1);
    REQUIRE(id_of(pop(q)) == 3);
    REQUIRE(id_of(pop(q)) == 2);
}

TEST_CASE("timers armed for a deadline already passed leave first, in deadline then arming order") {
    queue q;
    auto timers = make_timers(6);
    q.push(1000, tag(*timers[0]));
    q.push(2000, tag(*timers[1]));
    REQUIRE(id_of(pop(q)) == 0);  // the queue has moved past 1000
    q.push(500, tag(*timers[2]));
    q.push(100, tag(*timers[3]));
    q.push(500, tag(*timers[4]));
    q.push(1000, tag(*timers[5]));  // not late: equal to the last deadline popped
    REQUIRE(q.next_deadline() == 100);
    std::vector<int> ids;
    while (!q.empty()) ids.push_back(id_of(pop(q)));
    REQUIRE(ids == std::vector<int>{3, 2, 4, 5, 1});
}

TEST_CASE("negative and extreme deadlines keep their order in the timer queue") {
    queue q;
    auto timers = make_timers(5);
    const std::int64_t deadlines[] = {std::numeric_limits<std::int64_t>::max(), 0, -5,
                                      std::numeric_limits<std::int64_t>::min(), 7};
    for (int i = 0; i < 5; ++i) q.push(deadlines[i], tag(*timers[static_cast<std::size_t>(i)]));
    std::vector<int> ids;
    while (!q.empty()) ids.push_back(id_of(pop(q)));
    REQUIRE(ids == std::vector<int>{3, 2, 1, 4, 0});
}

TEST_CASE("the timer queue records where each timer is filed and forgets it once popped or removed") {
    queue q;
    auto timers = make_timers(100);
    for (auto& t : timers) q.push(1000 - t->id, tag(*t));
    for (auto& t : timers) REQUIRE(t->node.slot < queue::first_free_state);
    q.remove(&timers[50]->node);
    REQUIRE(timers[50]->node.slot == timer_node::idle);
    queue::entry e = pop(q);
    REQUIRE(id_of(e) == 99);
    REQUIRE(timers[99]->node.slot == timer_node::idle);
    REQUIRE(q.size() == 98);
}

TEST_CASE("removing timers from the middle of the timer queue keeps deadline order") {
    queue q;
    auto timers = make_timers(1000);
    std::mt19937 rng(7);
    std::vector<std::int64_t> deadline(1000);
    for (auto& t : timers) {
        deadline[static_cast<std::size_t>(t->id)] = std::uniform_int_distribution<std::int64_t>(0, 499)(rng);
        q.push(deadline[static_cast<std::size_t>(t->id)], tag(*t));
    }
    // Remove every third timer, wherever it is filed.
    std::vector<std::pair<std::int64_t, int>> expected;
    for (auto& t : timers) {
        if (t->id % 3 == 1) q.remove(&t->node);
        else expected.emplace_back(deadline[static_cast<std::size_t>(t->id)], t->id);
    }
    std::sort(expected.begin(), expected.end());  // ties: lower id = armed first
    REQUIRE(q.size() == expected.size());
    std::vector<std::pair<std::int64_t, int>> popped;
    while (!q.empty()) {
        queue::entry e = pop(q);
        popped.emplace_back(e.deadline, id_of(e));
    }
    REQUIRE(popped == expected);
}

TEST_CASE("removing the only, the first and a late timer of the timer queue works") {
    queue q;
    auto timers = make_timers(4);
    q.push(1, tag(*timers[0]));
    q.remove(&timers[0]->node);
    REQUIRE(q.empty());
    q.push(3, tag(*timers[0]));
    q.push(1, tag(*timers[1]));
    q.push(2, tag(*timers[2]));
    q.remove(&timers[1]->node);  // the earliest
    REQUIRE(q.next_deadline() <= 2);
    REQUIRE(id_of(pop(q)) == 2);
    q.push(0, tag(*timers[3]));  // late
    q.remove(&timers[3]->node);
    REQUIRE(q.size() == 1);
    REQUIRE(id_of(pop(q)) == 0);
    REQUIRE(q.empty());
}

TEST_CASE("timers armed and cancelled by the thousand beside one long timer leave only that timer") {
    // One long timer keeps its bucket alive while many others come and go in it.
    queue q;
    auto timers = make_timers(2);
    q.push(1'000'000, tag(*timers[0]));
    for (int i = 0; i < 100'000; ++i) {
        q.push(1'000'001 + i % 7, tag(*timers[1]));
        q.remove(&timers[1]->node);
    }
    REQUIRE(q.size() == 1);
    REQUIRE(id_of(pop(q)) == 0);
    REQUIRE(q.empty());
}

TEST_CASE("the timer queue matches a sorted reference under random pushes, pops, batch pops and removals") {
    auto run = [](std::int64_t spread, unsigned seed) {
        queue q;
        auto timers = make_timers(5000);
        std::set<std::pair<std::int64_t, std::uint64_t>> reference;  // (deadline, arming order)
        std::vector<std::uint64_t> armed_at(timers.size());
        std::vector<std::int64_t> deadline_of(timers.size());
        std::vector<int> idle;    // timers not in the queue
        std::vector<int> inside;  // timers in the queue
        for (int i = static_cast<int>(timers.size()) - 1; i >= 0; --i) idle.push_back(i);
        std::uint64_t order = 0;
        std::int64_t now = 0;  // pops take what is due by now; pushes mostly arm from now on
        std::mt19937 rng(seed);
        // A timer the queue handed out: the earliest in the reference, and idle.
        auto take = [&](const queue::entry& e) {
            const auto u = static_cast<std::size_t>(id_of(e));
            REQUIRE(*reference.begin() == std::make_pair(e.deadline, armed_at[u]));
            REQUIRE(timers[u]->node.slot == timer_node::idle);
            reference.erase(reference.begin());
            inside.erase(std::find(inside.begin(), inside.end(), static_cast<int>(u)));
            idle.push_back(static_cast<int>(u));
        };
        for (int step = 0; step < 100'000; ++step) {
            const int op = std::uniform_int_distribution<int>(0, 11)(rng);
            if (op < 5 && !idle.empty()) {
                const int id = idle.back();
                idle.pop_back();
                // Mostly now + delay; sometimes a deadline already passed.
                const std::int64_t base = op == 0 ? now - spread : now;
                const auto d = base + std::uniform_int_distribution<std::int64_t>(0, spread)(rng);
                auto u = static_cast<std::size_t>(id);
                armed_at[u] = order++;
                deadline_of[u] = d;
                q.push(d, tag(*timers[u]));
                reference.emplace(d, armed_at[u]);
                inside.push_back(id);
            } else if (op < 7) {
                queue::entry e{};
                const bool due = !reference.empty() && reference.begin()->first <= now;
                REQUIRE(q.pop(now, e) == due);
                if (due) take(e);
            } else if (op < 8) {
                std::vector<queue::entry> out;
                std::size_t room = 0;
                q.pop_due(now, [&](std::size_t n) { room += n; }, [&](const queue::entry& e) noexcept { out.push_back(e); });
                REQUIRE(out.size() <= room);
                for (const queue::entry& e : out) {
                    REQUIRE(e.deadline <= now);
                    take(e);
                }
                if (!reference.empty()) REQUIRE(reference.begin()->first > now);
            } else if (op < 10 && !inside.empty()) {
                const auto k = std::uniform_int_distribution<std::size_t>(0, inside.size() - 1)(rng);
                const int id = inside[k];
                const auto u = static_cast<std::size_t>(id);
                q.remove(&timers[u]->node);
                REQUIRE(timers[u]->node.slot == timer_node::idle);
                reference.erase({deadline_of[u], armed_at[u]});
                inside[k] = inside.back();
                inside.pop_back();
                idle.push_back(id);
            } else {
                now += std::uniform_int_distribution<std::int64_t>(0, spread / 4 + 1)(rng);
            }
            REQUIRE(q.size() == reference.size());
            if (!reference.empty()) REQUIRE(q.next_deadline() <= reference.begin()->first);
        }
        while (!q.empty()) {
            queue::entry e = pop(q);
            REQUIRE(*reference.begin() == std::make_pair(e.deadline, armed_at[static_cast<std::size_t>(id_of(e))]));
            reference.erase(reference.begin());
        }
        REQUIRE(reference.empty());
    };
    SECTION("deadlines close together, with many ties") { run(200, 12345); }
    SECTION("deadlines spread over two digits: whole buckets sorted") { run(std::int64_t{1} << 16, 4242); }
    SECTION("deadlines spread over many digits") { run(std::int64_t{1} << 40, 777); }
}

TEST_CASE("taking out every due timer at once hands them out in deadline then arming order") {
    queue q;
    auto timers = make_timers(20'000);
    std::vector<std::pair<std::int64_t, int>> expected;
    for (auto& t : timers) {
        // Shuffled deadlines over three bytes, each shared by a few timers.
        const std::int64_t d = 1'000'000 + (t->id * 7919) % 5000 * 3;
        expected.emplace_back(d, t->id);
        if (t->id % 3) q.push(d, untracked(*t));
        else q.push(d, tag(*t));
    }
    // Some removed first, leaving holes.
    for (auto& t : timers)
        if (t->id % 3 == 0 && t->id % 7 == 0) q.remove(&t->node);
    std::erase_if(expected, [](const auto& p) { return p.second % 3 == 0 && p.second % 7 == 0; });
    std::stable_sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    const std::int64_t limit = expected[expected.size() / 2].first;
    std::vector<std::pair<std::int64_t, int>> out;
    std::size_t room = 0;
    q.pop_due(limit, [&](std::size_t n) { room += n; },
              [&](const queue::entry& e) noexcept { out.emplace_back(e.deadline, id_of(e)); });
    REQUIRE(room == out.size());
    const auto due = static_cast<std::size_t>(std::count_if(expected.begin(), expected.end(), [&](const auto& p) { return p.first <= limit; }));
    REQUIRE(out == std::vector<std::pair<std::int64_t, int>>(expected.begin(), expected.begin() + static_cast<std::ptrdiff_t>(due)));
    for (auto& [d, id] : out)
        if (id % 3 == 0) REQUIRE(timers[static_cast<std::size_t>(id)]->node.slot == timer_node::idle);
    REQUIRE(q.size() == expected.size() - due);
    q.pop_due(std::numeric_limits<std::int64_t>::max(), [](std::size_t) {},
              [&](const queue::entry& e) noexcept { out.emplace_back(e.deadline, id_of(e)); });
    REQUIRE(out == expected);
    REQUIRE(q.empty());
}

TEST_CASE("a batch of due timers that cannot be handed out stays in the queue") {
    queue q;
    auto timers = make_timers(100);
    for (auto& t : timers) q.push(1000 + t->id % 50, untracked(*t));
    std::vector<int> out;
    int calls = 0;
    auto refuse_second = [&](std::size_t) {
        if (++calls == 2) throw std::bad_alloc();
    };
    REQUIRE_THROWS_AS(q.pop_due(2000, refuse_second, [&](const queue::entry& e) noexcept { out.push_back(id_of(e)); }),
                      std::bad_alloc);
    REQUIRE(q.size() == 100 - out.size());
    q.pop_due(2000, [](std::size_t) {}, [&](const queue::entry& e) noexcept { out.push_back(id_of(e)); });
    REQUIRE(out.size() == 100);
    std::vector<int> expected;
    for (int d = 0; d < 50; ++d) {
        expected.push_back(d);
        expected.push_back(d + 50);
    }
    REQUIRE(out == expected);
}

TEST_CASE("the timer queue never touches an untracked timer and mixes it in deadline order with tracked ones") {
    queue q;
    auto timers = make_timers(6);
    for (auto& t : timers) t->node = {12345, 678};  // what the queue must leave alone
    for (auto& t : timers) {
        const std::int64_t d = 1000 - 100 * t->id;
        if (t->id % 2) q.push(d, untracked(*t));
        else q.push(d, tag(*t));
    }
    for (auto& t : timers)
        if (t->id % 2) REQUIRE((t->node.slot == 12345 && t->node.index == 678));
    std::vector<int> ids;
    while (!q.empty()) {
        const queue::entry e = pop(q);
        ids.push_back(id_of(e));
        if (e.tagged & 1) q.landed(false);
    }
    REQUIRE(ids == std::vector<int>{5, 4, 3, 2, 1, 0});
    for (auto& t : timers)
        if (t->id % 2) REQUIRE((t->node.slot == 12345 && t->node.index == 678 && t->forgotten == 0));
}

TEST_CASE("cancelled untracked timers stay queued until they outnumber the others, then leave at once") {
    queue q;
    auto timers = make_timers(100);
    for (auto& t : timers) q.push(1000 + t->id, untracked(*t));
    for (int i = 0; i < 50; ++i) cancel(q, *timers[static_cast<std::size_t>(i)]);
    REQUIRE(q.size() == 100);  // half cancelled: not yet worth a sweep
    REQUIRE(q.stale() == 50);
    cancel(q, *timers[50]);
    REQUIRE(q.size() == 49);  // 51 of 100: all of them swept
    REQUIRE(q.stale() == 0);
    for (auto& t : timers) REQUIRE(t->forgotten == (t->cancelled ? 1 : 0));
    std::vector<int> ids;
    while (!q.empty()) {
        ids.push_back(id_of(pop(q)));
        q.landed(false);
    }
    std::vector<int> expected;
    for (int i = 51; i < 100; ++i) expected.push_back(i);
    REQUIRE(ids == expected);
}

TEST_CASE("a few cancelled untracked timers are not worth a sweep, even when they are all there is") {
    queue q;
    auto timers = make_timers(10);
    for (auto& t : timers) q.push(1000 + t->id, untracked(*t));
    for (auto& t : timers) cancel(q, *t);
    REQUIRE(q.size() == 10);
    q.tidy();  // what the loop does before it waits: now they go
    REQUIRE(q.empty());
    for (auto& t : timers) REQUIRE(t->forgotten == 1);
}

TEST_CASE("a cancelled untracked timer popped before the sweep is left to its owner") {
    queue q;
    auto timers = make_timers(101);
    for (auto& t : timers) q.push(100 * (t->id + 1), untracked(*t));
    REQUIRE(id_of(pop(q)) == 0);  // in flight: out of the queue, not yet with its owner
    for (int i = 0; i <= 50; ++i) cancel(q, *timers[static_cast<std::size_t>(i)]);
    // 51 cancelled, but one of them is in flight: only 50 of the 100 queued entries
    // are known to be cancelled, not enough for a sweep.
    REQUIRE(q.size() == 100);
    q.landed(true);  // its owner finds it cancelled and drops it
    REQUIRE(q.stale() == 50);
    REQUIRE(timers[0]->forgotten == 0);
    cancel(q, *timers[51]);  // 51 of 100 now
    REQUIRE(q.size() == 49);
    for (int i = 1; i <= 51; ++i) REQUIRE(timers[static_cast<std::size_t>(i)]->forgotten == 1);
    REQUIRE(id_of(pop(q)) == 52);
}

TEST_CASE("tidying the timer queue sweeps cancelled timers that make up half of it") {
    queue q;
    auto timers = make_timers(4);
    q.push(10, untracked(*timers[0]));
    q.push(20, untracked(*timers[1]));
    q.push(5, tag(*timers[2]));
    q.push(0, tag(*timers[3]));
    (void)pop(q);  // timers[3]: the rest of the queue is no longer late
    q.push(1, untracked(*timers[3]));  // late
    cancel(q, *timers[0]);
    REQUIRE(q.size() == 4);
    q.tidy();
    REQUIRE(q.size() == 4);  // one in four
    cancel(q, *timers[3]);   // two in four: a sweep when asked to tidy
    REQUIRE(q.size() == 4);
    q.tidy();
    REQUIRE(q.size() == 2);
    REQUIRE(q.next_deadline() <= 5);
    REQUIRE(id_of(pop(q)) == 2);
    REQUIRE(timers[2]->node.slot == timer_node::idle);
    REQUIRE(id_of(pop(q)) == 1);
}

TEST_CASE("sweeping cancelled timers keeps the positions of tracked timers and the late heap's order") {
    queue q;
    auto timers = make_timers(400);
    std::mt19937 rng(99);
    for (auto& t : timers) {
        const auto d = std::uniform_int_distribution<std::int64_t>(1000, 5000)(rng);
        q.push(d, t->id % 2 ? untracked(*t) : tag(*t));
    }
    (void)pop(q);  // move past the earliest, then arm late timers of both kinds
    auto late = make_timers(40);
    for (auto& t : late) {
        t->id += 1000;
        q.push(t->id % 97, t->id % 2 ? untracked(*t) : tag(*t));
    }
    std::vector<test_timer*> cancelled;
    for (auto* group : {&timers, &late})
        for (auto& t : *group)
            if (t->id % 2 && t->id % 3) {
                cancel(q, *t);
                cancelled.push_back(t.get());
            }
    q.tidy();
    REQUIRE(q.stale() <= q.size() / 2);
    // Remove tracked timers through the positions the sweeps left them.
    for (auto* group : {&timers, &late})
        for (auto& t : *group)
            if (t->id % 2 == 0 && t->id % 5 == 0 && t->node.slot != timer_node::idle) q.remove(&t->node);
    std::vector<std::pair<std::int64_t, int>> late_out, rest_out;
    while (!q.empty()) {
        const queue::entry e = pop(q);
        test_timer* t = test_traits::timer_of(e.tagged);
        REQUIRE_FALSE((t->id % 2 == 0 && t->id % 5 == 0));  // removed
        if (t->id >= 1000) {
            REQUIRE(rest_out.empty());  // late timers leave first
            late_out.emplace_back(e.deadline, t->id);
        } else {
            rest_out.emplace_back(e.deadline, t->id);
        }
        if (e.tagged & 1) {
            REQUIRE(t->forgotten == 0);  // a swept timer is never popped
            q.landed(t->cancelled);
            ++t->forgotten;
        }
    }
    REQUIRE(std::is_sorted(late_out.begin(), late_out.end(), [](auto& a, auto& b) { return a.first < b.first; }));
    REQUIRE(std::is_sorted(rest_out.begin(), rest_out.end(), [](auto& a, auto& b) { return a.first < b.first; }));
    REQUIRE(rest_out.size() + late_out.size() > 200);
    for (test_timer* t : cancelled) REQUIRE(t->forgotten == 1);  // swept or popped, once
    REQUIRE(q.stale() == 0);
}

TEST_CASE("clearing the timer queue visits every timer and leaves each idle") {
    queue q;
    auto timers = make_timers(100);
    for (auto& t : timers) q.push(t->id % 10 + 1000, tag(*t));
    (void)pop(q);
    q.push(5, tag(*timers[0]));  // late
    std::vector<int> visited;
    q.clear([&](const queue::entry& e) { visited.push_back(id_of(e)); });
    REQUIRE(q.empty());
    std::sort(visited.begin(), visited.end());
    REQUIRE(visited.size() == 100);
    for (int i = 0; i < 100; ++i) REQUIRE(visited[static_cast<std::size_t>(i)] == i);
    for (auto& t : timers) REQUIRE(t->node.slot == timer_node::idle);
    // The queue is reusable.
    q.push(5, tag(*timers[0]));
    REQUIRE(id_of(pop(q)) == 0);
}
