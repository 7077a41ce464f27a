// The loop's machinery in include/aio/detail: the timer heap (deadline order, ties in
// arming order, removal from the middle), the ready queue (FIFO across growth and
// wrap-around, withdrawal), the tasks' waiter lists and the block cache.

#include <aio/detail/block_cache.hpp>
#include <aio/detail/ready_queue.hpp>
#include <aio/detail/task_state.hpp>
#include <aio/detail/timer_heap.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "support/catch.hpp"

namespace {

using aio::detail::timer_node;

// A timer for the heap: the node first, so that the tagged word is the node's address.
struct test_timer {
    timer_node node;
    int id = 0;
};

struct node_of {
    timer_node* operator()(std::uintptr_t tagged) const noexcept { return reinterpret_cast<timer_node*>(tagged); }
};

using heap = aio::detail::basic_timer_heap<node_of>;

std::uintptr_t tag(test_timer& t) { return reinterpret_cast<std::uintptr_t>(&t); }
int id_of(const heap::entry& e) { return reinterpret_cast<test_timer*>(e.tagged)->id; }

std::vector<std::unique_ptr<test_timer>> make_timers(int n) {
    std::vector<std::unique_ptr<test_timer>> timers;
    for (int i = 0; i < n; ++i) {
        timers.push_back(std::make_unique<test_timer>());
        timers.back()->id = i;
    }
    return timers;
}

}  // namespace

TEST_CASE("the timer heap pops timers in deadline order") {
    heap h;
    REQUIRE(h.empty());
    auto timers = make_timers(6);
    const std::int64_t deadlines[] = {50, 10, 40, 20, 60, 30};
    for (int i = 0; i < 6; ++i) h.push(deadlines[i], tag(*timers[static_cast<std::size_t>(i)]));
    REQUIRE(h.size() == 6);
    REQUIRE(h.top_deadline() == 10);
    std::vector<std::int64_t> popped;
    while (!h.empty()) {
        heap::entry e = h.pop();
        popped.push_back(e.deadline);
        REQUIRE(deadlines[id_of(e)] == e.deadline);
        REQUIRE(reinterpret_cast<test_timer*>(e.tagged)->node.heap_index == timer_node::idle);
    }
    REQUIRE(popped == std::vector<std::int64_t>{10, 20, 30, 40, 50, 60});
}

TEST_CASE("the timer heap pops equal deadlines in arming order") {
    heap h;
    auto timers = make_timers(300);
    // Three deadlines, interleaved, pushed in id order.
    for (auto& t : timers) h.push(100 * (t->id % 3), tag(*t));
    std::vector<int> ids;
    while (!h.empty()) ids.push_back(id_of(h.pop()));
    std::vector<int> expected;
    for (int d = 0; d < 3; ++d)
        for (int i = 0; i < 300; ++i)
            if (i % 3 == d) expected.push_back(i);
    REQUIRE(ids == expected);
}

TEST_CASE("the timer heap records each timer's position and forgets it once popped or removed") {
    heap h;
    auto timers = make_timers(100);
    for (auto& t : timers) h.push(1000 - t->id, tag(*t));
    for (auto& t : timers) REQUIRE(t->node.heap_index < h.size());
    h.remove(&timers[50]->node);
    REQUIRE(timers[50]->node.heap_index == timer_node::idle);
    heap::entry e = h.pop();
    REQUIRE(id_of(e) == 99);
    REQUIRE(timers[99]->node.heap_index == timer_node::idle);
    REQUIRE(h.size() == 98);
}

TEST_CASE("removing timers from the middle of the timer heap keeps heap order") {
    heap h;
    auto timers = make_timers(1000);
    std::mt19937 rng(7);
    std::vector<std::int64_t> deadline(1000);
    for (auto& t : timers) {
        deadline[static_cast<std::size_t>(t->id)] = std::uniform_int_distribution<std::int64_t>(0, 499)(rng);
        h.push(deadline[static_cast<std::size_t>(t->id)], tag(*t));
    }
    // Remove every third timer, wherever it sits in the heap.
    std::vector<std::pair<std::int64_t, int>> expected;
    for (auto& t : timers) {
        if (t->id % 3 == 1) h.remove(&t->node);
        else expected.emplace_back(deadline[static_cast<std::size_t>(t->id)], t->id);
    }
    std::sort(expected.begin(), expected.end());  // ties: lower id = armed first
    REQUIRE(h.size() == expected.size());
    std::vector<std::pair<std::int64_t, int>> popped;
    while (!h.empty()) {
        heap::entry e = h.pop();
        popped.emplace_back(e.deadline, id_of(e));
    }
    REQUIRE(popped == expected);
}

TEST_CASE("removing the last and the first timer of the timer heap works") {
    heap h;
    auto timers = make_timers(3);
    h.push(1, tag(*timers[0]));
    h.remove(&timers[0]->node);
    REQUIRE(h.empty());
    h.push(3, tag(*timers[0]));
    h.push(1, tag(*timers[1]));
    h.push(2, tag(*timers[2]));
    h.remove(&timers[1]->node);  // the top
    REQUIRE(h.top_deadline() == 2);
    REQUIRE(id_of(h.pop()) == 2);
    REQUIRE(id_of(h.pop()) == 0);
    REQUIRE(h.empty());
}

TEST_CASE("the timer heap matches a sorted reference under random pushes, pops and removals") {
    heap h;
    auto timers = make_timers(5000);
    std::set<std::pair<std::int64_t, std::uint64_t>> reference;  // (deadline, arming order)
    std::vector<std::uint64_t> armed_at(timers.size());
    std::vector<std::int64_t> deadline_of(timers.size());
    std::vector<int> idle;   // timers not in the heap
    std::vector<int> inside;  // timers in the heap
    for (int i = static_cast<int>(timers.size()) - 1; i >= 0; --i) idle.push_back(i);
    std::uint64_t order = 0;
    std::mt19937 rng(12345);
    for (int step = 0; step < 100'000; ++step) {
        const int op = std::uniform_int_distribution<int>(0, 9)(rng);
        if (op < 5 && !idle.empty()) {
            const int id = idle.back();
            idle.pop_back();
            const auto d = std::uniform_int_distribution<std::int64_t>(0, 200)(rng);  // many ties
            auto u = static_cast<std::size_t>(id);
            armed_at[u] = order++;
            deadline_of[u] = d;
            h.push(d, tag(*timers[u]));
            reference.emplace(d, armed_at[u]);
            inside.push_back(id);
        } else if (op < 8 && !inside.empty()) {
            heap::entry e = h.pop();
            const auto u = static_cast<std::size_t>(id_of(e));
            REQUIRE(!reference.empty());
            REQUIRE(*reference.begin() == std::make_pair(e.deadline, armed_at[u]));
            reference.erase(reference.begin());
            inside.erase(std::find(inside.begin(), inside.end(), static_cast<int>(u)));
            idle.push_back(static_cast<int>(u));
        } else if (!inside.empty()) {
            const auto k = std::uniform_int_distribution<std::size_t>(0, inside.size() - 1)(rng);
            const int id = inside[k];
            const auto u = static_cast<std::size_t>(id);
            h.remove(&timers[u]->node);
            REQUIRE(timers[u]->node.heap_index == timer_node::idle);
            reference.erase({deadline_of[u], armed_at[u]});
            inside[k] = inside.back();
            inside.pop_back();
            idle.push_back(id);
        }
        REQUIRE(h.size() == reference.size());
        if (!reference.empty()) REQUIRE(h.top_deadline() == reference.begin()->first);
    }
    while (!h.empty()) {
        heap::entry e = h.pop();
        REQUIRE(*reference.begin() == std::make_pair(e.deadline, armed_at[static_cast<std::size_t>(id_of(e))]));
        reference.erase(reference.begin());
    }
    REQUIRE(reference.empty());
}

TEST_CASE("clearing the timer heap visits every timer and leaves each idle") {
    heap h;
    auto timers = make_timers(100);
    for (auto& t : timers) h.push(t->id % 10, tag(*t));
    std::vector<int> visited;
    h.clear([&](const heap::entry& e) { visited.push_back(id_of(e)); });
    REQUIRE(h.empty());
    std::sort(visited.begin(), visited.end());
    REQUIRE(visited.size() == 100);
    for (int i = 0; i < 100; ++i) REQUIRE(visited[static_cast<std::size_t>(i)] == i);
    for (auto& t : timers) REQUIRE(t->node.heap_index == timer_node::idle);
    // The heap is reusable.
    h.push(5, tag(*timers[0]));
    REQUIRE(id_of(h.pop()) == 0);
}

TEST_CASE("the ready queue is FIFO") {
    aio::detail::ready_queue q;
    REQUIRE(q.empty());
    REQUIRE(q.size() == 0);
    for (std::uintptr_t i = 1; i <= 10; ++i) q.push(i * 4);
    REQUIRE(q.size() == 10);
    REQUIRE(q.front() == 4);
    for (std::uintptr_t i = 1; i <= 10; ++i) REQUIRE(q.pop() == i * 4);
    REQUIRE(q.empty());
}

TEST_CASE("the ready queue keeps its order when it grows across the wrap-around") {
    aio::detail::ready_queue q;
    std::deque<std::uintptr_t> reference;
    std::uintptr_t next = 1;
    // Push and pop unevenly so that the head moves around the ring while it grows.
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 37 + round * 3; ++i) {
            q.push(next * 4);
            reference.push_back(next * 4);
            ++next;
        }
        for (int i = 0; i < 31 + round * 2 && !reference.empty(); ++i) {
            REQUIRE(q.front() == reference.front());
            REQUIRE(q.pop() == reference.front());
            reference.pop_front();
        }
        REQUIRE(q.size() == reference.size());
    }
    while (!reference.empty()) {
        REQUIRE(q.pop() == reference.front());
        reference.pop_front();
    }
    REQUIRE(q.empty());
}

TEST_CASE("withdrawing a ready queue entry blanks it, even after the queue has grown") {
    aio::detail::ready_queue q;
    for (std::uintptr_t i = 1; i <= 40; ++i) q.push(i * 4);
    for (int i = 0; i < 30; ++i) q.pop();  // head is now at position 30
    const std::uint64_t pos = q.push(1000);
    for (std::uintptr_t i = 1; i <= 200; ++i) q.push(4000 + i * 4);  // grows, the ring wraps
    q.withdraw(pos, 999);                                          // a different entry there: no effect
    q.withdraw(pos, 1000);
    q.withdraw(pos, 1000);  // twice is harmless
    for (int i = 0; i < 10; ++i) REQUIRE(q.pop() != 0);
    REQUIRE(q.pop() == 0);  // the withdrawn entry
    for (std::uintptr_t i = 1; i <= 200; ++i) REQUIRE(q.pop() == 4000 + i * 4);
    REQUIRE(q.empty());
    q.withdraw(pos, 1000);  // already popped: no effect
    const std::uint64_t later = q.push(8);
    REQUIRE(later > pos);
    REQUIRE(q.pop() == 8);
}

TEST_CASE("ready queue entries carry their tag and pointer") {
    alignas(4) static int object = 0;
    using namespace aio::detail;
    std::uintptr_t e = entry_of(&object, tag_task);
    REQUIRE((e & tag_mask) == tag_task);
    REQUIRE(pointer_of<int>(e) == &object);
    REQUIRE(pointer_of<int>(entry_of(&object, tag_sleep)) == &object);
    REQUIRE((entry_of(&object, tag_item) & tag_mask) == tag_item);
}

TEST_CASE("a task's waiter list keeps its waiters in the order they came and unlinks any of them") {
    using aio::detail::waiter;
    waiter* head = nullptr;
    waiter w[5];
    for (auto& x : w) {
        REQUIRE_FALSE(x.linked());
        aio::detail::push_waiter(head, &x);
        REQUIRE(x.linked());
    }
    aio::detail::unlink_waiter(head, &w[0]);  // the head
    aio::detail::unlink_waiter(head, &w[2]);  // the middle
    aio::detail::unlink_waiter(head, &w[4]);  // the tail
    REQUIRE_FALSE(w[0].linked());
    std::vector<waiter*> order;
    while (waiter* x = head) {
        order.push_back(x);
        aio::detail::unlink_waiter(head, x);
    }
    REQUIRE(order == std::vector<waiter*>{&w[1], &w[3]});
    REQUIRE(head == nullptr);
}

TEST_CASE("the block cache hands a freed block of the same size class back out") {
    aio::detail::block_cache cache;
    void* a = cache.allocate(100);
    cache.deallocate(a, 100);
    void* b = cache.allocate(104);  // same size class (89..104 bytes)
    REQUIRE(b == a);
    void* big = cache.allocate(4096);  // above the cached sizes: plain operator new
    cache.deallocate(big, 4096);
    cache.deallocate(b, 104);
}
