// The machinery under the loop: the timer heap and the ready queue.
#include <aio/detail/ready_queue.hpp>
#include <aio/detail/timer_heap.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "support/catch.hpp"

namespace {

struct plain_node_of {
    aio::detail::timer_node* operator()(std::uintptr_t tagged) const noexcept {
        return reinterpret_cast<aio::detail::timer_node*>(tagged);
    }
};
using heap = aio::detail::basic_timer_heap<plain_node_of>;

std::uintptr_t tag(aio::detail::timer_node& n) { return reinterpret_cast<std::uintptr_t>(&n); }

}  // namespace

TEST_CASE("the timer heap pops in deadline order with ties in arming order") {
    std::vector<aio::detail::timer_node> nodes(6);
    heap h;
    h.push(30, tag(nodes[0]));
    h.push(10, tag(nodes[1]));
    h.push(20, tag(nodes[2]));
    h.push(10, tag(nodes[3]));
    h.push(30, tag(nodes[4]));
    h.push(10, tag(nodes[5]));
    std::vector<std::uintptr_t> order;
    while (!h.empty()) order.push_back(h.pop().tagged);
    REQUIRE(order == std::vector<std::uintptr_t>{tag(nodes[1]), tag(nodes[3]), tag(nodes[5]), tag(nodes[2]),
                                                 tag(nodes[0]), tag(nodes[4])});
    for (auto& n : nodes) REQUIRE(n.heap_index == aio::detail::timer_node::idle);
}

TEST_CASE("the timer heap matches a sorted reference under random pushes, pops and removals") {
    std::mt19937 rng(12345);
    const int n = 20'000;
    std::vector<aio::detail::timer_node> nodes(n);
    std::vector<std::pair<std::int64_t, int>> reference;  // (deadline, arming order)
    heap h;
    for (int i = 0; i < n; ++i) {
        std::int64_t deadline = rng() % 5'000;  // many ties
        h.push(deadline, tag(nodes[i]));
        reference.emplace_back(deadline, i);
    }
    // Remove a random third from the middle of the heap.
    std::vector<bool> removed(n, false);
    for (int i = 0; i < n; ++i)
        if (rng() % 3 == 0) {
            h.remove(&nodes[i]);
            removed[i] = true;
            REQUIRE(nodes[i].heap_index == aio::detail::timer_node::idle);
        }
    std::erase_if(reference, [&](const auto& r) { return removed[r.second]; });
    std::sort(reference.begin(), reference.end());
    REQUIRE(h.size() == reference.size());
    for (const auto& [deadline, index] : reference) {
        REQUIRE(h.top_deadline() == deadline);
        auto e = h.pop();
        REQUIRE(e.deadline == deadline);
        REQUIRE(e.tagged == tag(nodes[index]));
    }
    REQUIRE(h.empty());
}

TEST_CASE("the timer heap clears every entry and leaves the nodes idle") {
    std::vector<aio::detail::timer_node> nodes(100);
    heap h;
    for (int i = 0; i < 100; ++i) h.push(i * 7 % 13, tag(nodes[i]));
    int seen = 0;
    h.clear([&](const heap::entry&) { ++seen; });
    REQUIRE(seen == 100);
    REQUIRE(h.empty());
    for (auto& n : nodes) REQUIRE(n.heap_index == aio::detail::timer_node::idle);
}

TEST_CASE("the ready queue is FIFO across growth and wrap-around") {
    aio::detail::ready_queue q;
    std::uintptr_t next_in = 8, next_out = 8;
    // Interleave pushes and pops so that the ring wraps before it grows.
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 40 + round * 10; ++i) {
            q.push(next_in);
            next_in += 8;
        }
        for (int i = 0; i < 30 + round * 5; ++i) {
            REQUIRE(q.pop() == next_out);
            next_out += 8;
        }
    }
    while (!q.empty()) {
        REQUIRE(q.pop() == next_out);
        next_out += 8;
    }
    REQUIRE(next_out == next_in);
}

TEST_CASE("a withdrawn ready queue entry pops as zero") {
    aio::detail::ready_queue q;
    q.push(8);
    auto position = q.push(16);
    q.push(24);
    q.withdraw(position, 16);
    q.withdraw(position, 99);  // a different entry at that position is left alone
    REQUIRE(q.size() == 3);
    REQUIRE(q.pop() == 8);
    REQUIRE(q.pop() == 0);
    REQUIRE(q.pop() == 24);
    q.withdraw(position, 16);  // already popped: nothing happens
    REQUIRE(q.empty());
}
