#pragma once
// Slabs: 2 MiB-aligned runs of equal blocks, backed by transparent huge pages.
//
// A thread's block cache (block_cache.hpp) takes its blocks from slabs once it has
// handed out more than a threshold of them, so that a million coroutine frames cost a
// few hundred page faults (one per 2 MiB page) rather than one per 4 KiB page, and no
// malloc header each. Slabs are carved from one range of addresses the process
// reserves on first use (`slab_region`), so "is this block a slab's?" is a range check
// and a block's slab is its address rounded down to 2 MiB.
//
// Ownership. A slab belongs to the cache that carved it, which alone hands out its
// blocks and takes back the ones freed on its own thread. A block freed on any other
// thread goes onto the slab's `remote` list with one compare-and-swap; the owner takes
// the whole list back in one exchange when it next looks for free blocks there. When
// the owning thread exits, its slabs with blocks still out are orphaned: `remote` is
// set to `orphaned`, and from then on each free, on whatever thread, counts down
// `orphan_used`; the one that reaches zero gives the slab back.
//
// Given-back slabs are decommitted (MADV_DONTNEED: their memory returns to the kernel)
// and reused, by any thread, before fresh address range is used. The region is a fixed
// size, so slabs cannot grow without bound: past it, or where the kernel refuses the
// mappings, blocks come from malloc as before.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include <sys/mman.h>

#include "intrusive_list.hpp"

namespace aio::detail {

inline constexpr std::size_t slab_bytes = std::size_t{2} << 20;

// The header at the start of every slab; its blocks follow.
struct slab {
    static constexpr std::size_t header_bytes = 64;
    // `remote`'s value once the owner has exited.
    static void* orphaned() noexcept { return reinterpret_cast<void*>(std::uintptr_t{1}); }

    std::uint64_t owner = 0;  // the owning cache's id
    std::uint32_t block_size = 0;
    std::uint32_t capacity = 0;  // blocks that fit
    std::uint32_t carved = 0;    // blocks handed out at least once: the rest were never touched
    std::uint32_t used = 0;      // blocks out, as the owner counts them (remote frees not yet taken back included)
    void* free = nullptr;        // blocks the owner took back, linked through their first word
    std::atomic<void*> remote{nullptr};
    std::atomic<std::uint32_t> orphan_used{0};
    list_links<slab> links;  // in the owner's list of slabs of its size, or of empty slabs

    slab(std::uint64_t owner_id, std::uint32_t size) noexcept
        : owner(owner_id), block_size(size), capacity(static_cast<std::uint32_t>((slab_bytes - header_bytes) / size)) {}

    static slab* of(const void* block) noexcept {
        return reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(block) & ~(slab_bytes - 1));
    }
    void* carve() noexcept { return reinterpret_cast<char*>(this) + header_bytes + std::size_t{carved++} * block_size; }
    bool has_room() const noexcept { return free != nullptr || carved < capacity; }

    // Owner only: a block back from the free list or the untouched end, or null.
    void* take() noexcept {
        void* b = free;
        if (b) {
            free = *static_cast<void**>(b);
            // The next block out is likely cold: start fetching it for the writes to come.
            if (free) __builtin_prefetch(free, 1);
        } else if (carved < capacity) {
            b = carve();
        } else {
            return nullptr;
        }
        ++used;
        return b;
    }
    // Owner only: a block freed on the owner's thread. True when none is out any more.
    bool give_back(void* block) noexcept {
        *static_cast<void**>(block) = free;
        free = block;
        return --used == 0;
    }
    // Owner only: takes back the blocks other threads freed. True when none is out.
    bool take_back_remote() noexcept {
        void* list = remote.exchange(nullptr, std::memory_order_acquire);
        while (list) {
            void* next = *static_cast<void**>(list);
            give_back(list);
            list = next;
        }
        return used == 0;
    }
};
static_assert(sizeof(slab) <= slab::header_bytes);

// The process's range of slab addresses, reserved (not committed) on first use.
class slab_region {
public:
    static constexpr std::size_t reserve_bytes = std::size_t{64} << 30;  // 32,768 slabs

    // Never destroyed: a frame freed during or after static destruction (a global
    // object's, another thread's) may still give back a slab.
    static slab_region& instance() noexcept {
        alignas(slab_region) static unsigned char storage[sizeof(slab_region)];
        static slab_region* const region = new (storage) slab_region;
        return *region;
    }

    // Whether `p` lies in a slab. Cheap, and safe on any thread at any time: the range
    // is published once and never changes.
    static bool contains(const void* p) noexcept {
        return reinterpret_cast<std::uintptr_t>(p) - begin_.load(std::memory_order_relaxed) < reserve_bytes;
    }

    // A slab's worth of read-write memory, 2 MiB aligned and asking for huge pages, or
    // null when the region is full or the kernel refuses.
    void* acquire() noexcept {
        std::lock_guard lock(mutex_);
        if (!free_.empty()) {
            void* s = free_.back();
            free_.pop_back();
            return s;
        }
        if (!reserve()) return nullptr;
        if (fresh_ == reserve_bytes / slab_bytes) return nullptr;
        char* s = base_ + fresh_ * slab_bytes;
        if (::mprotect(s, slab_bytes, PROT_READ | PROT_WRITE) != 0) return nullptr;
        ::madvise(s, slab_bytes, MADV_HUGEPAGE);  // a hint: without THP, 4 KiB pages
        ++fresh_;
        return s;
    }

    // Returns a slab's memory to the kernel and keeps its addresses for reuse.
    void release(slab* s) noexcept {
        ::madvise(s, slab_bytes, MADV_DONTNEED);
        std::lock_guard lock(mutex_);
        try {
            free_.push_back(s);
        } catch (...) {
            // Out of memory for the list: the slab's addresses stay unused; its memory is
            // already back with the kernel.
        }
    }

    // Slabs given back and not reused yet, and slabs ever committed (for tests).
    std::size_t free_slabs() {
        std::lock_guard lock(mutex_);
        return free_.size();
    }
    std::size_t committed_slabs() {
        std::lock_guard lock(mutex_);
        return fresh_;
    }

private:
    slab_region() = default;

    bool reserve() noexcept {
        if (base_) return true;
        if (failed_) return false;
        // One mapping with room to round up to 2 MiB; PROT_NONE and MAP_NORESERVE, so it
        // costs address space only until a slab is committed.
        void* m = ::mmap(nullptr, reserve_bytes + slab_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            failed_ = true;
            return false;
        }
        const auto a = reinterpret_cast<std::uintptr_t>(m);
        const std::uintptr_t aligned = (a + slab_bytes - 1) & ~(slab_bytes - 1);
        if (aligned != a) ::munmap(m, aligned - a);
        ::munmap(reinterpret_cast<void*>(aligned + reserve_bytes), a + slab_bytes - aligned);
        base_ = reinterpret_cast<char*>(aligned);
        begin_.store(aligned, std::memory_order_relaxed);
        return true;
    }

    // Until the range is reserved, the top of the address space, where no user pointer
    // lies: `contains` is then one load and one compare.
    static inline std::atomic<std::uintptr_t> begin_{std::uintptr_t{0} - reserve_bytes};
    std::mutex mutex_;
    char* base_ = nullptr;
    bool failed_ = false;
    std::size_t fresh_ = 0;  // slabs committed so far, from the start of the range
    std::vector<slab*> free_;
};

// A block freed on a thread that does not own its slab (or that has no cache any more).
inline void free_remote(slab* s, void* block) noexcept {
    void* head = s->remote.load(std::memory_order_acquire);
    for (;;) {
        if (head == slab::orphaned()) {
            if (s->orphan_used.fetch_sub(1, std::memory_order_acq_rel) == 1) slab_region::instance().release(s);
            return;
        }
        *static_cast<void**>(block) = head;
        if (s->remote.compare_exchange_weak(head, block, std::memory_order_release, std::memory_order_acquire)) return;
    }
}

// The owner is exiting: the last block freed, on any thread, gives the slab back.
// The count holds one more for the owner itself, so that frees on other threads cannot
// reach zero before the owner has subtracted what it took back.
inline void orphan(slab* s) noexcept {
    s->orphan_used.store(s->used + 1, std::memory_order_relaxed);
    void* list = s->remote.exchange(slab::orphaned(), std::memory_order_acq_rel);
    std::uint32_t taken = 1;
    for (; list; list = *static_cast<void**>(list)) ++taken;
    if (s->orphan_used.fetch_sub(taken, std::memory_order_acq_rel) == taken) slab_region::instance().release(s);
}

}  // namespace aio::detail
