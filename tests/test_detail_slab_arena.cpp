// The slabs in include/aio/detail/slab_arena.hpp, as the block cache uses them: blocks
// from 2 MiB huge-page slabs past a threshold, slabs reused and given back to the kernel,
// blocks freed on other threads and after their owner has exited.

#include <aio/detail/block_cache.hpp>
#include <aio/detail/slab_arena.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "support/catch.hpp"

using aio::detail::block_cache;
using aio::detail::slab;
using aio::detail::slab_bytes;
using aio::detail::slab_region;

namespace {

// Pages of `s` the kernel holds in memory.
std::size_t resident_pages(const slab* s) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> in(slab_bytes / page);
    REQUIRE(::mincore(const_cast<slab*>(s), slab_bytes, in.data()) == 0);
    std::size_t n = 0;
    for (unsigned char c : in) n += c & 1;
    return n;
}

std::vector<void*> take(block_cache& cache, std::size_t count, std::size_t size) {
    std::vector<void*> blocks;
    blocks.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        void* b = cache.allocate(size);
        std::memset(b, 0xab, size);  // the block is the caller's: every byte writable
        blocks.push_back(b);
    }
    return blocks;
}

// Frees a block as a frame's operator delete does: through the calling thread's cache
// (made for it on first use), or, where AddressSanitizer bypasses the caches, straight
// to its slab or to malloc.
void free_block(void* b, std::size_t size) {
    if constexpr (aio::detail::bypass_block_cache) {
        if (slab_region::contains(b)) aio::detail::free_remote(slab::of(b), b);
        else ::operator delete(b);
    } else {
        aio::detail::deallocate_block(b, size);
    }
}

// Blocks of `size` bytes in one slab.
std::size_t per_slab(std::size_t size) { return (slab_bytes - slab::header_bytes) / ((size + 15) / 16 * 16); }

}  // namespace

TEST_CASE("below its threshold the block cache takes blocks from malloc; past it, from 2 MiB slabs, 16-byte aligned and packed") {
    block_cache cache{4096};
    std::vector<void*> early = take(cache, 4096 / 112, 112);
    REQUIRE_FALSE(cache.uses_slabs());
    for (void* b : early) REQUIRE_FALSE(slab_region::contains(b));

    std::vector<void*> late = take(cache, 100, 112);
    REQUIRE(cache.uses_slabs());
    REQUIRE_FALSE(slab_region::contains(late[0]));  // the block that crossed the threshold
    for (std::size_t i = 1; i < late.size(); ++i) {
        REQUIRE(slab_region::contains(late[i]));
        REQUIRE(reinterpret_cast<std::uintptr_t>(late[i]) % 16 == 0);
        REQUIRE(reinterpret_cast<std::uintptr_t>(slab::of(late[i])) % slab_bytes == 0);
    }
    // A 112-byte frame costs 112 bytes: no malloc header, no rounding up.
    REQUIRE(static_cast<char*>(late[2]) - static_cast<char*>(late[1]) == 112);
    REQUIRE(slab::of(late[1])->block_size == 112);
    for (void* b : early) cache.deallocate(b, 112);
    for (void* b : late) cache.deallocate(b, 112);
}

TEST_CASE("a slab block freed on its own thread is the next one handed out") {
    block_cache cache{0};
    std::vector<void*> blocks = take(cache, 3, 200);
    cache.deallocate(blocks[1], 200);
    void* again = cache.allocate(200);
    REQUIRE(again == blocks[1]);
    cache.deallocate(again, 200);
    cache.deallocate(blocks[0], 200);
    cache.deallocate(blocks[2], 200);
}

TEST_CASE("a cache keeps at most its limit of freed blocks and empty slabs; the other slabs go back to the kernel, and kept memory is reused first") {
    // 12 slabs' worth of 496-byte blocks, 24 MiB, against a limit of 16 MiB.
    const std::size_t size = 496;
    const std::size_t count = 12 * per_slab(size);
    std::set<const slab*> slabs;
    {
        block_cache cache{0};
        void* first = cache.allocate(size);  // from malloc: it crossed the threshold
        std::vector<void*> blocks = take(cache, count, size);
        for (void* b : blocks) slabs.insert(slab::of(b));
        REQUIRE(slabs.size() == 12);
        const std::size_t free_before = slab_region::instance().free_slabs();
        for (void* b : blocks) cache.deallocate(b, size);

        const std::size_t given_back = slab_region::instance().free_slabs() - free_before;
        std::size_t resident = 0;
        for (const slab* s : slabs) resident += resident_pages(s) != 0;
        REQUIRE(given_back >= 1);
        REQUIRE(resident == slabs.size() - given_back);  // a slab given back holds no memory
        // What is kept: the limit's worth of cached blocks (the slabs they lie in), the
        // slab new blocks come from, and one partly given back.
        REQUIRE(resident <= block_cache::limit / slab_bytes + 2);

        // Taken again, the blocks come from kept memory, not from new slabs.
        std::vector<void*> again = take(cache, 8 * per_slab(size), size);
        std::size_t in_old = 0;
        for (void* b : again) in_old += slabs.count(slab::of(b));
        REQUIRE(in_old == again.size());
        for (void* b : again) cache.deallocate(b, size);
        cache.deallocate(first, size);
    }
    // The cache is gone: every slab it had is back with the kernel.
    for (const slab* s : slabs) REQUIRE(resident_pages(s) == 0);
}

TEST_CASE("blocks freed on another thread go back to their slab and are handed out again by its owner") {
    const std::size_t size = 64;
    block_cache cache{0};
    void* first = cache.allocate(size);  // from malloc: it crossed the threshold
    std::vector<void*> blocks = take(cache, per_slab(size), size);  // one slab, full
    const slab* s = slab::of(blocks.front());
    for (void* b : blocks) REQUIRE(slab::of(b) == s);

    std::thread other([&] {
        for (void* b : blocks) aio::detail::free_remote(slab::of(b), b);
    });
    other.join();
    REQUIRE(s->used == blocks.size());  // the owner has not looked yet

    const std::size_t committed = slab_region::instance().committed_slabs();
    std::vector<void*> again = take(cache, blocks.size(), size);
    for (void* b : again) REQUIRE(slab::of(b) == s);
    REQUIRE(slab_region::instance().committed_slabs() == committed);
    REQUIRE(std::set<void*>(again.begin(), again.end()) == std::set<void*>(blocks.begin(), blocks.end()));
    for (void* b : again) cache.deallocate(b, size);
    cache.deallocate(first, size);
}

TEST_CASE("a slab whose owner thread has exited goes back to the kernel when its last block is freed, on any thread") {
    const std::size_t size = 160;
    std::vector<void*> blocks;
    std::thread owner([&] {
        block_cache cache{0};
        void* first = cache.allocate(size);  // from malloc: it crossed the threshold
        blocks = take(cache, 1000, size);
        cache.deallocate(first, size);
        // A few freed on another thread while the owner still lives: taken back when it exits.
        std::thread helper([&] {
            for (std::size_t i = 0; i < 10; ++i) aio::detail::free_remote(slab::of(blocks[i]), blocks[i]);
        });
        helper.join();
    });  // the cache dies with its thread, 990 blocks still out
    owner.join();
    const slab* s = slab::of(blocks.back());
    REQUIRE(s->remote.load() == slab::orphaned());
    REQUIRE(resident_pages(s) > 0);

    // The rest freed on two threads at once; the one that frees the last gives the slab back.
    std::thread a([&] {
        for (std::size_t i = 10; i < 500; ++i) free_block(blocks[i], size);
    });
    std::thread b([&] {
        for (std::size_t i = 500; i < 999; ++i) aio::detail::free_remote(slab::of(blocks[i]), blocks[i]);
    });
    a.join();
    b.join();
    REQUIRE(resident_pages(s) > 0);
    REQUIRE(s->orphan_used.load() == 1);
    aio::detail::free_remote(slab::of(blocks[999]), blocks[999]);
    REQUIRE(resident_pages(s) == 0);
}

TEST_CASE("threads that allocate, hand blocks to each other and free them keep every block whole and give every slab back") {
    constexpr int threads = 4;
    constexpr std::size_t rounds = 20;
    constexpr std::size_t per_round = 5000;
    std::mutex mutex;
    std::vector<std::vector<unsigned char*>> mailboxes(threads);
    std::atomic<int> bad{0};
    std::vector<std::thread> workers;
    std::set<const slab*> seen;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            block_cache cache{0};
            std::set<const slab*> mine;
            for (std::size_t r = 0; r < rounds; ++r) {
                std::vector<unsigned char*> made;
                for (std::size_t i = 0; i < per_round; ++i) {
                    const std::size_t size = 16 + 16 * ((i + r) % 8);
                    auto* b = static_cast<unsigned char*>(cache.allocate(size));
                    b[0] = static_cast<unsigned char>(size / 16);  // the block's size, read back by its freer
                    std::memset(b + 1, t, size - 1);
                    made.push_back(b);
                    if (slab_region::contains(b)) mine.insert(slab::of(b));
                }
                // Half go to the next thread, half are freed here.
                std::vector<unsigned char*> received;
                {
                    std::lock_guard lock(mutex);
                    auto& next = mailboxes[(t + 1) % threads];
                    next.insert(next.end(), made.begin(), made.begin() + per_round / 2);
                    received.swap(mailboxes[t]);
                }
                for (std::size_t i = per_round / 2; i < made.size(); ++i) {
                    if (made[i][1] != t) ++bad;
                    cache.deallocate(made[i], made[i][0] * std::size_t{16});
                }
                for (unsigned char* b : received) {
                    const std::size_t size = b[0] * std::size_t{16};
                    for (std::size_t j = 1; j < size; ++j)
                        if (b[j] != b[1]) ++bad;
                    cache.deallocate(b, size);
                }
            }
            std::lock_guard lock(mutex);
            seen.insert(mine.begin(), mine.end());
        });
    }
    for (std::thread& w : workers) w.join();
    // What was left in the mailboxes is freed after every owner has exited, on a thread
    // whose cache keeps them until it exits too.
    std::thread last([&] {
        for (auto& box : mailboxes)
            for (unsigned char* b : box) free_block(b, b[0] * std::size_t{16});
    });
    last.join();
    REQUIRE(bad == 0);
    REQUIRE_FALSE(seen.empty());
    for (const slab* s : seen) REQUIRE(resident_pages(s) == 0);
}
