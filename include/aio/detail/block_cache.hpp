#pragma once
// A per-thread cache of small blocks: coroutine frames and callback nodes.
//
// A program that runs many short tasks or callbacks allocates and frees blocks of a
// few sizes over and over; the cache hands a freed block back out without a trip
// through malloc, and keeps the memory it reuses warm: freed blocks wait in per-size
// stacks, last freed first out.
//
// Where blocks come from. The first `arena_after` bytes (8 MiB) come from malloc, so a
// small program costs what it would without the cache. Past that, new blocks come from
// 2 MiB slabs of transparent huge pages (slab_arena.hpp): a million frames then cost a
// few hundred page faults and no malloc header each. Both kinds share the stacks.
//
// What it keeps. Cached blocks and slabs with no block out together stay under `limit`
// (16 MiB); past it a block goes back to malloc or to its slab, and an empty slab back
// to the kernel. A block freed on another thread than the one that took it is cached
// there like any other; a slab block given back on another thread than its slab's
// owner goes onto the slab's remote list.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "intrusive_list.hpp"
#include "slab_arena.hpp"

namespace aio::detail {

class block_cache {
public:
    static constexpr std::size_t max_block = 1024;
    static constexpr std::size_t limit = std::size_t{16} << 20;
    // Below a few slabs' worth, 4 KiB pages cost less memory than 2 MiB ones, and the
    // page faults slabs would save (2,000 at most, a few milliseconds) matter little.
    static constexpr std::size_t default_arena_after = std::size_t{8} << 20;
    static constexpr std::uint32_t prefetch_ahead = 8;

    // `arena_after`: bytes of blocks taken from malloc before slabs are used.
    explicit block_cache(std::size_t arena_after = default_arena_after) noexcept : arena_after_(arena_after) {}
    block_cache(const block_cache&) = delete;
    block_cache& operator=(const block_cache&) = delete;
    ~block_cache() {
        for (stack& s : free_) {
            for (std::uint32_t i = 0; i < s.size; ++i) give_back(s.blocks[i]);
            ::operator delete(s.blocks);
        }
        for (lane& l : lanes_) {
            while (slab* s = l.slabs.pop_front()) {
                if (s->take_back_remote()) slab_region::instance().release(s);
                else orphan(s);
            }
        }
        while (slab* s = empty_.pop_front()) slab_region::instance().release(s);
    }

    [[gnu::always_inline]] void* allocate(std::size_t n) {
        if (n > max_block) return ::operator new(n);
        const std::size_t c = size_class(n);
        stack& s = free_[c];
        if (s.size == 0) return fresh(c);
        void* b = s.blocks[--s.size];
        // The blocks to go out next are likely cold: start fetching one a few
        // allocations ahead (all of it: a block may span two lines) for the writes
        // that will follow, so that a run of allocations overlaps its misses.
        if (s.size >= prefetch_ahead) {
            char* next = static_cast<char*>(s.blocks[s.size - prefetch_ahead]);
            __builtin_prefetch(next, 1);
            if (block_size(c) > 48) __builtin_prefetch(next + block_size(c) - 1, 1);
        }
        retained_ -= block_size(c);
        return b;
    }

    [[gnu::always_inline]] void deallocate(void* p, std::size_t n) noexcept {
        if (n > max_block) return ::operator delete(p);
        const std::size_t c = size_class(n);
        stack& s = free_[c];
        if (retained_ + block_size(c) > limit || (s.size == s.capacity && !s.grow())) return give_back(p);
        retained_ += block_size(c);
        s.blocks[s.size++] = p;
    }

    // A block that will be freed on another thread (a node posted to a loop). Past the
    // first `remote_arena_after` bytes of them (2 MiB: a thread that posts now and then
    // costs no slab), from a slab even before this thread's frames use slabs: a malloc
    // block freed on another thread costs both threads a lock on its arena, a slab
    // block goes back to its slab with one compare-and-swap, to be taken back here in
    // bulk.
    static constexpr std::size_t remote_arena_after = std::size_t{2} << 20;
    void* allocate_for_remote(std::size_t n) {
        if (n > max_block) return ::operator new(n);
        const std::size_t c = size_class(n);
        stack& s = free_[c];
        if (s.size == 0) return fresh_for_remote(c);
        retained_ -= block_size(c);
        return s.blocks[--s.size];
    }

    // Whether new blocks now come from slabs.
    bool uses_slabs() const noexcept { return slabs_on_; }

private:
    // The freed blocks of one size class, last freed first out. An array rather than a
    // list threaded through the blocks: handing out a block then reads no cold memory,
    // where a list must read the block (a cache miss, when blocks are freed in another
    // order than they were taken, as timers are) to find the next one.
    struct stack {
        void** blocks = nullptr;
        std::uint32_t size = 0;
        std::uint32_t capacity = 0;

        bool grow() noexcept {
            const std::uint32_t more = capacity ? capacity * 2 : 64;
            auto** bigger = static_cast<void**>(::operator new(more * sizeof(void*), std::nothrow));
            if (!bigger) return false;
            for (std::uint32_t i = 0; i < size; ++i) bigger[i] = blocks[i];
            ::operator delete(blocks);
            blocks = bigger;
            capacity = more;
            return true;
        }
    };

    // The slabs of one block size: `current` hands out blocks; the others are visited
    // in turn, a few at a time, for blocks given back since.
    using slab_list = intrusive_list<slab, &slab::links>;
    struct lane {
        slab* current = nullptr;
        slab* hand = nullptr;  // where the next look for given-back blocks starts
        slab_list slabs;       // every slab of this size, `current` among them
    };
    static constexpr std::uint32_t visits_per_miss = 8;

    // Class c holds blocks of at least 8c bytes: from malloc, `operator new(8c)` (for
    // which malloc hands out what a request of the block's own size would get); from a
    // slab, 8c rounded up to 16 (16-byte multiples keep every block aligned as operator
    // new's are). Frames are multiples of 8 bytes, so a frame's class fits it exactly.
    static constexpr std::size_t size_class(std::size_t n) noexcept { return n == 0 ? 1 : (n + 7) / 8; }
    static constexpr std::size_t block_size(std::size_t c) noexcept { return 8 * c; }
    static constexpr std::size_t slab_block_size(std::size_t c) noexcept { return (8 * c + 15) / 16 * 16; }

    // The paths past an empty or full stack stay out of line, so that allocate and
    // deallocate stay small enough to inline into every frame's operator new and delete.
    [[gnu::noinline]] void* fresh(std::size_t c) { return slabs_on_ ? from_slab(c) : from_malloc(c); }
    [[gnu::noinline]] void* fresh_for_remote(std::size_t c) {
        if (slabs_on_ || remote_malloced_ > remote_arena_after) return from_slab(c);
        remote_malloced_ += block_size(c);
        return from_malloc(c);
    }

    void* from_malloc(std::size_t c) {
        malloced_ += block_size(c);
        if (malloced_ > arena_after_) slabs_on_ = true;  // from the next block on
        return ::operator new(block_size(c));
    }

    void* from_slab(std::size_t c) {
        lane& l = lanes_[slab_block_size(c) / 16];
        if (l.current) {
            if (void* b = l.current->take()) return b;
        }
        if (void* b = from_other_slab(l)) return b;
        return ::operator new(block_size(c));  // no slab to be had: malloc, as before slabs
    }

    // `current` is full: take back what other threads freed there, else look for room
    // in a few of the lane's other slabs, visited in turn from where the last look
    // stopped, else in a new slab; null if no slab can be had.
    void* from_other_slab(lane& l) noexcept {
        if (slab* s = l.current) {
            s->take_back_remote();
            if (s->has_room()) return s->take();
        }
        for (std::uint32_t i = 0; i < visits_per_miss && l.hand; ++i) {
            slab* s = l.hand;
            l.hand = after(l, s);
            if (s == l.current) continue;
            s->take_back_remote();
            if (s->has_room()) {
                l.current = s;
                return s->take();
            }
        }
        slab* s = new_slab(l);
        if (!s) return nullptr;
        l.current = s;
        return s->take();
    }

    // The slab after `s` in its lane, going round; null if `s` is the only one.
    static slab* after(const lane& l, const slab* s) noexcept {
        slab* n = l.slabs.next(s);
        if (!n) n = l.slabs.front();
        return n == s ? nullptr : n;
    }

    slab* new_slab(lane& l) noexcept {
        void* memory = empty_.pop_front();
        if (memory) {
            retained_ -= slab_bytes;
        } else if (!(memory = slab_region::instance().acquire())) {
            return nullptr;
        }
        slab* s = new (memory) slab(id_, static_cast<std::uint32_t>(16 * (&l - lanes_)));
        l.slabs.push_back(s);
        if (!l.hand) l.hand = s;
        return s;
    }

    // A block the cache does not keep: back to malloc, or to its slab.
    [[gnu::noinline]] void give_back(void* p) noexcept {
        if (!slab_region::contains(p)) return ::operator delete(p);
        slab* s = slab::of(p);
        if (s->owner != id_) return free_remote(s, p);
        if (!s->give_back(p)) return;
        lane& l = lanes_[s->block_size / 16];
        if (s == l.current) return;
        // None of its blocks is out: keep it for reuse, or give it back to the kernel.
        if (l.hand == s) l.hand = after(l, s);
        l.slabs.unlink(s);
        if (retained_ + slab_bytes <= limit) {
            empty_.push_back(s);
            retained_ += slab_bytes;
        } else {
            slab_region::instance().release(s);
        }
    }

    static std::uint64_t next_id() noexcept {
        static std::atomic<std::uint64_t> ids{0};
        return ids.fetch_add(1, std::memory_order_relaxed) + 1;
    }

    static constexpr std::size_t classes = max_block / 8 + 1;
    stack free_[classes] = {};
    std::size_t retained_ = 0;  // bytes kept for reuse: cached blocks and empty slabs (the stacks add 8 per block)
    std::size_t malloced_ = 0;  // bytes taken from malloc before slabs were on
    std::size_t remote_malloced_ = 0;  // of those, for blocks another thread frees
    std::size_t arena_after_;
    bool slabs_on_ = false;
    std::uint64_t id_ = next_id();
    lane lanes_[max_block / 16 + 1] = {};
    slab_list empty_;  // slabs with no block out, of any size
};

// The calling thread's cache; after the thread has begun to exit, none (plain new/delete).
// The common case is one thread-local load and a test, inlined into every frame's
// operator new and delete; making the cache (and knowing it is gone) is out of line.
inline thread_local block_cache* thread_cache = nullptr;  // constant-initialised: no guard
inline thread_local bool thread_cache_gone = false;

[[gnu::noinline]] inline block_cache* make_thread_block_cache() noexcept {
    if (thread_cache_gone) return nullptr;
    struct owner {
        block_cache* cache = new (std::nothrow) block_cache;
        ~owner() {
            thread_cache = nullptr;
            thread_cache_gone = true;
            delete cache;
        }
    };
    thread_local owner o;
    thread_cache = o.cache;
    return o.cache;
}

[[gnu::always_inline]] inline block_cache* thread_block_cache() noexcept {
    block_cache* c = thread_cache;
    return c ? c : make_thread_block_cache();
}

// Under AddressSanitizer the cache is bypassed: ASan must see every block freed, or a
// use of a freed frame would go unnoticed while its block sits in the cache.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool bypass_block_cache = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool bypass_block_cache = true;
#else
inline constexpr bool bypass_block_cache = false;
#endif
#else
inline constexpr bool bypass_block_cache = false;
#endif

// Called from every frame's and callback's operator new and delete: always inlined, as
// are the cache's own allocate and deallocate (the compiler's estimate would call them
// out of line in some callers, at some 20 instructions a call).
[[gnu::always_inline]] inline void* allocate_block(std::size_t n) {
    if constexpr (bypass_block_cache) return ::operator new(n);
    block_cache* cache = thread_block_cache();
    return cache ? cache->allocate(n) : ::operator new(n);
}

// allocate_block for a block that another thread will free (see allocate_for_remote).
inline void* allocate_remote_block(std::size_t n) {
    if constexpr (bypass_block_cache) return ::operator new(n);
    block_cache* cache = thread_block_cache();
    return cache ? cache->allocate_for_remote(n) : ::operator new(n);
}

// A block freed on a thread whose cache is gone (or never came): to its slab or to malloc.
[[gnu::noinline]] inline void deallocate_uncached(void* p, std::size_t n) noexcept {
    if (n <= block_cache::max_block && slab_region::contains(p)) free_remote(slab::of(p), p);
    else ::operator delete(p);
}

[[gnu::always_inline]] inline void deallocate_block(void* p, std::size_t n) noexcept {
    if constexpr (bypass_block_cache) return ::operator delete(p);
    block_cache* cache = thread_block_cache();
    if (cache) cache->deallocate(p, n);
    else deallocate_uncached(p, n);
}

// The same, out of line, for rare paths (a zombie's frame), which it keeps small.
[[gnu::noinline]] inline void deallocate_block_out_of_line(void* p, std::size_t n) noexcept { deallocate_block(p, n); }

}  // namespace aio::detail
