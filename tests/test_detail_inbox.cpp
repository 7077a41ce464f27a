// The loop's inbox in include/aio/detail/inbox.hpp: posts from many threads, each thread's order kept, wake-ups coalesced.

#include <aio/detail/inbox.hpp>
#include <aio/event_loop.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <new>
#include <thread>
#include <vector>

#include "support/catch.hpp"

using aio::detail::inbox;
using aio::detail::inbox_node;

namespace {

struct numbered : inbox_node {
    int thread = 0;
    int index = 0;
};

std::vector<numbered*> drain_all(inbox& box) {
    std::vector<numbered*> taken;
    box.drain([&](std::size_t n) { taken.reserve(taken.size() + n); },
              [&](inbox_node* node) noexcept { taken.push_back(static_cast<numbered*>(node)); });
    return taken;
}

}  // namespace

TEST_CASE("the inbox hands out nodes posted by one thread in the order they were posted") {
    inbox box;
    REQUIRE(box.empty());
    numbered nodes[5];
    for (int i = 0; i < 5; ++i) {
        nodes[i].index = i;
        box.post(&nodes[i]);
    }
    REQUIRE_FALSE(box.empty());
    auto taken = drain_all(box);
    REQUIRE(taken.size() == 5);
    for (int i = 0; i < 5; ++i) REQUIRE(taken[i] == &nodes[i]);
    REQUIRE(box.empty());
    REQUIRE(drain_all(box).empty());
}

TEST_CASE("nodes posted by many threads at once all arrive, each thread's in its order") {
    constexpr int threads = 4;
    constexpr int per_thread = 20'000;
    inbox box;
    std::vector<std::vector<numbered>> nodes(threads, std::vector<numbered>(per_thread));
    std::atomic<int> ready{0};
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t) {
        posters.emplace_back([&, t] {
            ++ready;
            while (ready < threads) std::this_thread::yield();
            for (int i = 0; i < per_thread; ++i) {
                nodes[t][i].thread = t;
                nodes[t][i].index = i;
                box.post(&nodes[t][i]);
            }
        });
    }
    // Drain while they post: the consumer takes batches concurrently with the producers.
    std::vector<int> next(threads, 0);
    std::size_t total = 0;
    auto check = [&](const std::vector<numbered*>& batch) {
        for (numbered* n : batch) {
            REQUIRE(n->index == next[n->thread]);
            ++next[n->thread];
        }
        total += batch.size();
    };
    while (total < std::size_t{threads} * per_thread) check(drain_all(box));
    for (auto& p : posters) p.join();
    check(drain_all(box));
    REQUIRE(total == std::size_t{threads} * per_thread);
    for (int t = 0; t < threads; ++t) REQUIRE(next[t] == per_thread);
}

TEST_CASE("only the first post after the loop said it will sleep asks for a wake-up") {
    inbox box;
    numbered a, b, c;
    using posted = inbox::posted;
    REQUIRE(box.post(&a) == posted::queued);  // the loop is not asleep: no wake-up
    REQUIRE_FALSE(box.prepare_to_sleep());    // something is posted: do not sleep
    drain_all(box);
    REQUIRE(box.prepare_to_sleep());
    REQUIRE(box.post(&b) == posted::queued_wake);  // the loop may be asleep: wake it
    REQUIRE(box.post(&c) == posted::queued);       // it has been woken already: coalesced
    box.woke();
    REQUIRE(drain_all(box).size() == 2);
}

TEST_CASE("nodes drained when there was no room to queue them are kept, in order, for the next drain") {
    inbox box;
    numbered nodes[3];
    for (auto& n : nodes) box.post(&n);
    std::vector<numbered*> taken;
    REQUIRE_THROWS_AS(box.drain([](std::size_t) { throw std::bad_alloc(); },
                                [&](inbox_node* node) noexcept { taken.push_back(static_cast<numbered*>(node)); }),
                      std::bad_alloc);
    REQUIRE(taken.empty());
    REQUIRE_FALSE(box.empty());
    REQUIRE_FALSE(box.prepare_to_sleep());  // kept nodes are work: the loop must not sleep
    numbered later;
    box.post(&later);
    taken = drain_all(box);
    REQUIRE(taken == std::vector<numbered*>{&nodes[0], &nodes[1], &nodes[2], &later});
}

TEST_CASE("a closed inbox hands what it held to close() and refuses every later post") {
    inbox box;
    numbered a, b, late;
    box.post(&a);
    box.post(&b);
    std::vector<numbered*> discarded;
    box.close([&](inbox_node* node) noexcept { discarded.push_back(static_cast<numbered*>(node)); });
    REQUIRE(discarded == std::vector<numbered*>{&a, &b});
    REQUIRE(box.closed());
    REQUIRE(box.post(&late) == inbox::posted::refused);
    REQUIRE(drain_all(box).empty());
    box.close([&](inbox_node*) noexcept { FAIL("closed twice"); });
}

TEST_CASE("posts racing close() are each either discarded by it or refused, never lost") {
    constexpr int threads = 4;
    constexpr int per_thread = 20'000;
    inbox box;
    std::vector<std::vector<numbered>> nodes(threads, std::vector<numbered>(per_thread));
    std::atomic<int> refused{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t)
        posters.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            for (auto& n : nodes[t])
                if (box.post(&n) == inbox::posted::refused) refused.fetch_add(1);
        });
    go = true;
    std::size_t taken = drain_all(box).size();
    std::size_t discarded = 0;
    box.close([&](inbox_node*) noexcept { ++discarded; });
    for (auto& p : posters) p.join();
    REQUIRE(taken + discarded + static_cast<std::size_t>(refused.load()) == std::size_t{threads} * per_thread);
}

TEST_CASE("a loop runs what other threads post to it, in the iteration after it arrives, and wakes for it") {
    using namespace std::chrono_literals;
    aio::event_loop loop;
    auto& core = aio::detail::loop_access::core(loop);
    constexpr int threads = 3;
    constexpr int per_thread = 1'000;
    struct counted_node : aio::detail::inbox_node {
        std::atomic<int>* ran;
        aio::detail::loop_core* loop;
        int total;
    };
    std::atomic<int> ran{0};
    std::vector<std::vector<counted_node>> nodes(threads, std::vector<counted_node>(per_thread));
    for (auto& per : nodes) {
        for (auto& n : per) {
            n.ran = &ran;
            n.loop = &core;
            n.total = threads * per_thread;
            n.run = [](aio::detail::ready_item* item) noexcept {
                auto* self = static_cast<counted_node*>(item);
                if (self->ran->fetch_add(1) + 1 == self->total) self->loop->stopping = true;
            };
        }
    }
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t) {
        posters.emplace_back([&, t] {
            while (!core.running_elsewhere()) std::this_thread::yield();
            for (int i = 0; i < per_thread; ++i) {
                core.post(&nodes[t][i]);
                if (i % 100 == 0) std::this_thread::sleep_for(1ms);  // let the loop fall asleep now and then
            }
        });
    }
    loop.run_forever();  // nothing else can wake it: only the posts do
    for (auto& p : posters) p.join();
    REQUIRE(ran == threads * per_thread);
}
