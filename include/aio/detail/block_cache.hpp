#pragma once
// A per-thread cache of freed small blocks: coroutine frames and callback nodes.
//
// A program that runs many short tasks or callbacks allocates and frees blocks of a
// few sizes over and over; the cache hands a freed block back out without a trip
// through malloc, and keeps the memory it reuses warm. Blocks are ordinary
// `::operator new` blocks, so one freed on another thread is simply cached there.
// Size classes follow malloc's own chunk sizes (16k + 8 usable bytes), so a cached
// block costs no more memory than malloc would; the cache holds at most
// `limit` bytes per thread and frees the rest.

#include <cstddef>
#include <cstdint>
#include <new>

namespace aio::detail {

class block_cache {
public:
    static constexpr std::size_t max_block = 1024;
    static constexpr std::size_t limit = std::size_t{16} << 20;
    static constexpr std::uint32_t prefetch_ahead = 8;

    block_cache() = default;
    block_cache(const block_cache&) = delete;
    block_cache& operator=(const block_cache&) = delete;
    ~block_cache() {
        for (stack& s : free_) {
            for (std::uint32_t i = 0; i < s.size; ++i) ::operator delete(s.blocks[i]);
            ::operator delete(s.blocks);
        }
    }

    void* allocate(std::size_t n) {
        if (n > max_block) return ::operator new(n);
        std::size_t c = size_class(n);
        stack& s = free_[c];
        if (s.size == 0) return ::operator new(block_size(c));
        void* b = s.blocks[--s.size];
        // The blocks to go out next are likely cold: start fetching one a few
        // allocations ahead (all of it: a block may span two lines) for the writes
        // that will follow, so that a run of allocations overlaps its misses.
        if (s.size >= prefetch_ahead) {
            char* next = static_cast<char*>(s.blocks[s.size - prefetch_ahead]);
            __builtin_prefetch(next, 1);
            if (block_size(c) > 48) __builtin_prefetch(next + block_size(c) - 1, 1);
        }
        cached_ -= block_size(c);
        return b;
    }

    void deallocate(void* p, std::size_t n) noexcept {
        if (n > max_block) return ::operator delete(p);
        std::size_t c = size_class(n);
        stack& s = free_[c];
        if (cached_ + block_size(c) > limit || (s.size == s.capacity && !s.grow())) return ::operator delete(p);
        cached_ += block_size(c);
        s.blocks[s.size++] = p;
    }

private:
    // The freed blocks of one size, last freed first out. An array rather than a list
    // threaded through the blocks: handing out a block then reads no cold memory,
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

    // Class c holds blocks of 16c + 8 bytes: exactly what malloc gives a request of
    // that size (its chunks are 16-byte multiples with an 8-byte header).
    static constexpr std::size_t size_class(std::size_t n) noexcept { return n <= 8 ? 0 : (n - 8 + 15) / 16; }
    static constexpr std::size_t block_size(std::size_t c) noexcept { return 16 * c + 8; }

    static constexpr std::size_t classes = (max_block - 8 + 15) / 16 + 1;
    stack free_[classes] = {};
    std::size_t cached_ = 0;  // bytes in cached blocks (the stacks add 8 per block)
};

// The calling thread's cache; after the thread has begun to exit, none (plain new/delete).
inline block_cache* thread_block_cache() noexcept {
    struct owner {
        block_cache* cache = new (std::nothrow) block_cache;
        ~owner() {
            delete cache;
            cache = nullptr;
        }
    };
    thread_local owner o;
    return o.cache;
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

inline void* allocate_block(std::size_t n) {
    if constexpr (bypass_block_cache) return ::operator new(n);
    block_cache* cache = thread_block_cache();
    return cache ? cache->allocate(n) : ::operator new(n);
}

inline void deallocate_block(void* p, std::size_t n) noexcept {
    if constexpr (bypass_block_cache) return ::operator delete(p);
    block_cache* cache = thread_block_cache();
    if (cache) cache->deallocate(p, n);
    else ::operator delete(p);
}

}  // namespace aio::detail
