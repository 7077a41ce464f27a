// The ready queue in include/aio/detail/ready_queue.hpp: FIFO across growth and wrap-around, withdrawal, tagged entries.

#include <aio/detail/ready_queue.hpp>

#include <cstdint>
#include <deque>

#include "support/catch.hpp"

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
