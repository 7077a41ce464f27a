#pragma once
// The loop's timers, ordered by (deadline, arming order): a radix queue.
//
// Timers leave in deadline order, and a new timer's deadline (now + delay) is never
// earlier than the last deadline that left (which was due, so at most now). A radix
// queue exploits that monotony: it keeps `last_`, the last deadline taken out, and
// files every timer in a bucket named by the highest byte in which its deadline
// differs from last_ (the level) and by its own value of that byte (the digit). Every deadline
// in a lower bucket is smaller than every deadline in a higher one, so the earliest
// timer is in the lowest non-empty bucket. Taking it out moves last_ up to that
// bucket's smallest deadline and files the bucket's timers again, each into a lower
// level; at level 0 a bucket holds a single deadline. A timer therefore moves at most
// once per level (three times at most for 100,000 timers within 100 µs of each other),
// always in a sequential sweep over a bucket, where a heap would chase a chain of
// cache misses down its levels.
//
// Equal deadlines always share a bucket, and every move keeps a bucket's order, so
// ties leave in arming order without a sequence number.
//
// Cancelled timers never fire and never pile up, in one of two ways, chosen per timer
// by `Traits::tracked(tagged)`:
//   - a tracked timer (a sleep, whose node lives in a frame that may go away) records
//     in its node where it is filed, and cancelling it removes it at once: its entry
//     becomes a hole, skipped when its bucket is taken out or compacted when holes
//     outnumber live entries there;
//   - an untracked timer (a call_later callback, which the queue holds a reference
//     to) is never touched by the queue between push and pop: cancelling it only
//     marks its node, and its entry leaves when it is popped (its owner then skips it)
//     or when cancelled entries come to outnumber the others and are purged, all at
//     once. Moving entries then reads and writes nothing but the entries, which is
//     what makes arming and firing cheap; the purge keeps the queue at most twice the
//     size of its live timers, at an amortised constant cost per cancellation.
//
// When the loop takes out everything that is due, a bucket of level 1 or 2 whose
// timers are all due is not moved down level by level: its deadlines differ only in
// their low one or two bytes, so a counting sort on those bytes (stable, so ties keep
// arming order) puts them in order in one or two sequential passes, and they leave
// together. 100,000 timers due at once are sorted that way.
//
// A timer armed for a deadline before last_ (call_at with a time in the past) is
// already due; such "late" timers wait in a small binary heap of their own and leave
// before every other timer.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>

namespace aio::detail {

// Embedded in every timer (a sleep's node, a call_later callback): where it is filed.
struct timer_node {
    static constexpr std::uint32_t idle = ~std::uint32_t{0};  // not in the queue
    std::uint32_t slot = idle;  // its bucket, or the late heap; states above those mean "not queued"
    std::uint32_t index = 0;    // its position there
};

// What the queue asks of an entry's tagged word:
//   static bool tracked(std::uintptr_t) noexcept;         removed at once when cancelled
//   static timer_node* node_of(std::uintptr_t) noexcept;  a tracked timer's position
//   static bool cancelled(std::uintptr_t) noexcept;       an untracked timer was cancelled
//   static void forget(std::uintptr_t) noexcept;          an untracked timer was purged
template <class Traits>
class basic_timer_queue {
public:
    // `tagged` says which timer this is; pop() returns it as it was pushed.
    struct entry {
        std::int64_t deadline;
        std::uintptr_t tagged;  // 0: a hole left by a removed timer
    };

    static constexpr std::uint32_t late_slot = 2048;  // slots 0..2047 are buckets
    static constexpr std::uint32_t first_free_state = late_slot + 1;

    basic_timer_queue() = default;
    basic_timer_queue(const basic_timer_queue&) = delete;
    basic_timer_queue& operator=(const basic_timer_queue&) = delete;
    ~basic_timer_queue() {
        for (std::uint32_t i = 0; i < buckets; ++i) ::operator delete(buckets_[i].entries);
        ::operator delete(late_);
        ::operator delete(scratch_);
    }

    bool empty() const noexcept { return size_ == 0; }
    // Entries queued, cancelled untracked ones included (see stale()).
    std::size_t size() const noexcept { return size_; }
    // Untracked timers cancelled while queued or in flight (popped, not yet landed()).
    std::size_t stale() const noexcept { return stale_; }

    // A time no later than the earliest deadline (it is that deadline unless a removal
    // left a bucket's bound behind: the loop then wakes early once and finds nothing).
    std::int64_t next_deadline() const noexcept {  // not empty()
        if (late_size_) return late_[0].deadline;
        return buckets_[lowest_bucket()].min;
    }

    void push(std::int64_t deadline, std::uintptr_t tagged) {
        const std::uint64_t key = key_of(deadline);
        if (key < last_) [[unlikely]]
            return push_late(deadline, tagged);
        const std::uint32_t b = bucket_of(key);
        file(buckets_[b], b, {deadline, tagged});
        ++size_;
    }

    // Takes out the earliest timer if its deadline is at most `limit`. Throws only
    // when a bucket cannot grow (std::bad_alloc, or std::length_error past 2^31
    // timers in one bucket), leaving the queue as it was. A
    // tracked timer's node is marked idle; an untracked timer is in flight until its
    // owner reports it landed().
    bool pop(std::int64_t limit, entry& out) {
        if (late_size_) [[unlikely]] {
            if (late_[0].deadline > limit) return false;
            out = pop_late();
            return true;
        }
        for (;;) {
            if (size_ == 0) return false;
            const std::uint32_t b = lowest_bucket();
            bucket& low = buckets_[b];
            if (low.min > limit) return false;
            if (b < digits) {  // level 0: one deadline, in arming order
                last_ = key_of(low.min);
                entry e = low.entries[low.head++];
                while (e.tagged == 0) e = low.entries[low.head++];
                out = taken(e);
                --size_;
                if (--low.live == 0) reset(low, b);
                return true;
            }
            refile(low, b);
        }
    }

    // Takes out every timer due by `limit`, in order, as pop() would one by one:
    // `make_room(n)` is called before n timers are handed to `take(entry)`
    // (noexcept, and must leave the queue alone). Throws what make_room or growing
    // a bucket throws (see pop()); the timers not yet handed out are then still in
    // the queue.
    template <class MakeRoom, class Take>
    void pop_due(std::int64_t limit, MakeRoom&& make_room, Take&& take) {
        while (late_size_) {  // late timers precede every other
            if (late_[0].deadline > limit) return;
            make_room(1);
            take(pop_late());
        }
        while (size_) {
            const std::uint32_t b = lowest_bucket();
            bucket& low = buckets_[b];
            if (low.min > limit) return;
            const std::uint32_t level = b / digits;
            if (level == 0) {  // one deadline: all of it leaves, in arming order
                make_room(low.live);
                last_ = key_of(low.min);
                for (std::uint32_t i = low.head; i < low.size; ++i)
                    if (low.entries[i].tagged) take(taken(low.entries[i]));
                size_ -= low.live;
                reset(low, b);
            } else if (level <= sorted_levels && low.max <= limit) {
                const entry* sorted = sort(low, level);
                const std::uint32_t n = low.live;
                make_room(n);
                last_ = key_of(sorted[n - 1].deadline);
                for (std::uint32_t i = 0; i < n; ++i) take(taken(sorted[i]));
                size_ -= n;
                reset(low, b);
            } else {
                refile(low, b);
            }
        }
    }

    // Removes a tracked timer.
    void remove(timer_node* node) noexcept {
        const std::uint32_t slot = node->slot, i = node->index;
        node->slot = timer_node::idle;
        --size_;
        if (slot == late_slot) return remove_late(i);
        bucket& b = buckets_[slot];
        b.entries[i].tagged = 0;
        if (--b.live == 0) reset(b, slot);
        else if (b.size - b.head - b.live > compact_after && b.size - b.head > 2 * b.live) compact(b, slot);
    }

    // An untracked timer, queued or in flight, was cancelled (its node says so from
    // now on). Purges the cancelled entries when they outnumber the others (and are
    // more than a few, so that arming and cancelling one timer at a time does not
    // sweep every time): those in flight are no longer in the queue, so at least
    // stale() - in flight of them are, and the purge removes more entries than it
    // leaves.
    void cancelled_untracked() noexcept {
        ++stale_;
        if (stale_ > in_flight_ + purge_at_least && 2 * (stale_ - in_flight_) > size_) purge();
    }

    // A popped untracked timer reached its owner, who found it `cancelled` or not.
    void landed(bool cancelled) noexcept {
        --in_flight_;
        if (cancelled) --stale_;
    }

    // Before the loop blocks: no cancelled timer may keep it waiting, or wake it,
    // when cancelled entries are at least half the queue.
    void tidy() noexcept {
        if (stale_ > in_flight_ && 2 * (stale_ - in_flight_) >= size_) purge();
    }

    // Empties the queue, then visits every timer it held (in no particular order);
    // timers in flight are the caller's. Tracked timers are all marked idle before
    // the first visit, and each bucket is detached before its timers are visited, so
    // what a visit sets off (a destructor cancelling timers) finds an empty queue.
    template <class F>
    void clear(F&& on_entry) noexcept {
        for (std::uint32_t s = 0; s < buckets; ++s)
            for (std::uint32_t i = buckets_[s].head; i < buckets_[s].size; ++i)
                if (buckets_[s].entries[i].tagged) idle(buckets_[s].entries[i].tagged);
        for (std::uint32_t i = 0; i < late_size_; ++i) idle(late_[i].tagged);
        const std::uint32_t late_size = std::exchange(late_size_, 0);
        late_entry* late = std::exchange(late_, nullptr);
        late_capacity_ = 0;
        size_ = stale_ = in_flight_ = 0;
        for (std::uint32_t s = 0; s < buckets; ++s) {
            const bucket b = buckets_[s];
            if (b.entries == nullptr) continue;
            buckets_[s].entries = nullptr;
            buckets_[s].capacity = 0;
            reset(buckets_[s], s);
            for (std::uint32_t i = b.head; i < b.size; ++i)
                if (b.entries[i].tagged) on_entry(b.entries[i]);
            ::operator delete(b.entries);
        }
        for (std::uint32_t i = 0; i < late_size; ++i) on_entry(entry{late[i].deadline, late[i].tagged});
        ::operator delete(late);
    }

private:
    static constexpr unsigned digit_bits = 8;
    static constexpr std::uint32_t digits = 1u << digit_bits;
    static constexpr std::uint32_t levels = 64 / digit_bits;
    static constexpr std::uint32_t buckets = levels * digits;  // bucket = level * digits + digit
    static constexpr std::uint32_t compact_after = 32;         // holes a bucket may keep
    static constexpr std::uint32_t sorted_levels = 2;          // see pop_due()
    static constexpr std::size_t purge_at_least = 32;          // cancelled entries a sweep takes
    static_assert(buckets == late_slot && buckets / 64 <= 32);

    struct bucket {
        entry* entries = nullptr;
        std::uint32_t size = 0;  // entries in use, holes included
        std::uint32_t head = 0;  // level 0: entries before head have left
        std::uint32_t live = 0;
        std::uint32_t capacity = 0;
        std::int64_t min = INT64_MAX;  // no later than its earliest live deadline
        std::int64_t max = INT64_MIN;  // no earlier than its latest
    };

    struct late_entry {
        std::int64_t deadline;
        std::uint64_t seq;  // arming order
        std::uintptr_t tagged;
    };

    // A tracked entry moved to (slot, index); an untracked one is not touched.
    static void moved(const entry& e, std::uint32_t slot, std::uint32_t index) noexcept {
        if (!Traits::tracked(e.tagged)) return;
        timer_node* node = Traits::node_of(e.tagged);
        node->slot = slot;
        node->index = index;
    }

    // Deadlines as unsigned keys with the same order.
    static std::uint64_t key_of(std::int64_t deadline) noexcept {
        return static_cast<std::uint64_t>(deadline) ^ (std::uint64_t{1} << 63);
    }

    std::uint32_t bucket_of(std::uint64_t key) const noexcept {
        const std::uint64_t differ = key ^ last_;
        const std::uint32_t level = differ ? static_cast<std::uint32_t>(63 - __builtin_clzll(differ)) / digit_bits : 0;
        return level * digits + static_cast<std::uint32_t>(key >> (level * digit_bits)) % digits;
    }

    // Buckets are numbered level by level, digit by digit, so the lowest non-empty
    // bucket is the lowest set bit of the occupancy mask (found through its summary:
    // one bit per non-zero word). Not empty().
    std::uint32_t lowest_bucket() const noexcept {
        const auto w = static_cast<std::uint32_t>(__builtin_ctz(summary_));
        return w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(occupied_[w]));
    }

    void mark_occupied(std::uint32_t slot) noexcept {
        occupied_[slot / 64] |= std::uint64_t{1} << (slot % 64);
        summary_ |= std::uint32_t{1} << (slot / 64);
    }

    void file(bucket& b, std::uint32_t slot, entry e) {
        if (b.size == b.capacity) grow(b);
        moved(e, slot, b.size);
        b.entries[b.size++] = e;
        ++b.live;
        if (e.deadline < b.min) b.min = e.deadline;
        if (e.deadline > b.max) b.max = e.deadline;
        mark_occupied(slot);
    }

    // An entry leaves the queue for its owner.
    entry taken(const entry& e) noexcept {
        if (Traits::tracked(e.tagged)) idle(e.tagged);
        else ++in_flight_;
        return e;
    }

    // The live entries of a bucket of `level` >= 1, in (deadline, arming) order, in
    // scratch space. Their keys differ only in the `level` bytes below the bucket's
    // digit: one stable counting pass per byte, least significant first (insertion
    // sort for a handful). Throws only std::bad_alloc, leaving the bucket as it was.
    const entry* sort(const bucket& b, std::uint32_t level) {
        const std::uint32_t n = b.live;
        if (2 * std::size_t{n} > scratch_capacity_) grow_scratch(2 * std::size_t{n});
        entry* from = scratch_;
        entry* to = scratch_ + n;
        std::uint32_t k = 0;
        for (std::uint32_t i = b.head; i < b.size; ++i)
            if (b.entries[i].tagged) from[k++] = b.entries[i];
        if (n <= 16) {
            for (std::uint32_t i = 1; i < n; ++i) {
                const entry e = from[i];
                std::uint32_t j = i;
                for (; j > 0 && from[j - 1].deadline > e.deadline; --j) from[j] = from[j - 1];
                from[j] = e;
            }
            return from;
        }
        for (std::uint32_t byte = 0; byte < level; ++byte) {
            const unsigned shift = byte * digit_bits;
            std::uint32_t start[digits] = {};
            for (std::uint32_t i = 0; i < n; ++i) ++start[(key_of(from[i].deadline) >> shift) % digits];
            for (std::uint32_t d = 0, sum = 0; d < digits; ++d) sum += std::exchange(start[d], sum);
            for (std::uint32_t i = 0; i < n; ++i) to[start[(key_of(from[i].deadline) >> shift) % digits]++] = from[i];
            std::swap(from, to);
        }
        return from;
    }

    void grow_scratch(std::size_t capacity) {
        auto* bigger = static_cast<entry*>(::operator new(capacity * sizeof(entry)));
        ::operator delete(scratch_);
        scratch_ = bigger;
        scratch_capacity_ = capacity;
    }

    // Moves the lowest bucket's timers down: last_ becomes its smallest deadline,
    // which no live timer precedes, and each timer is filed again by its first
    // digit that differs from it, in a level below this one. The buckets below were
    // all empty, so if growing one fails, emptying them again undoes the moves.
    void refile(bucket& from, std::uint32_t slot) {
        const std::uint64_t last = last_;
        last_ = key_of(from.min);
        std::uint32_t i = from.head;
        try {
            for (; i < from.size; ++i)
                if (from.entries[i].tagged) {
                    const std::uint32_t to = bucket_of(key_of(from.entries[i].deadline));
                    file(buckets_[to], to, from.entries[i]);
                }
        } catch (...) {
            for (std::uint32_t below = 0; below < slot; ++below) reset(buckets_[below], below);
            last_ = last;
            for (std::uint32_t j = from.head; j < i; ++j)
                if (from.entries[j].tagged) moved(from.entries[j], slot, j);
            throw;
        }
        reset(from, slot);
    }

    void reset(bucket& b, std::uint32_t slot) noexcept {
        b.size = b.head = b.live = 0;
        b.min = INT64_MAX;
        b.max = INT64_MIN;
        occupied_[slot / 64] &= ~(std::uint64_t{1} << (slot % 64));
        if (occupied_[slot / 64] == 0) summary_ &= ~(std::uint32_t{1} << (slot / 64));
    }

    // Closes up a bucket's holes and, with `purging`, drops its cancelled untracked
    // entries; returns how many of those it dropped.
    std::size_t compact(bucket& b, std::uint32_t slot, bool purging = false) noexcept {
        std::uint32_t out = 0;
        std::size_t dropped = 0;
        for (std::uint32_t i = b.head; i < b.size; ++i) {
            const entry e = b.entries[i];
            if (e.tagged == 0) continue;
            if (purging && drop_if_cancelled(e.tagged)) {
                ++dropped;
                continue;
            }
            moved(e, slot, out);
            b.entries[out++] = e;
        }
        b.size = out;
        b.head = 0;
        b.live = out;
        return dropped;
    }

    static bool drop_if_cancelled(std::uintptr_t tagged) noexcept {
        if (Traits::tracked(tagged) || !Traits::cancelled(tagged)) return false;
        Traits::forget(tagged);
        return true;
    }

    // Drops every cancelled untracked entry. Bucket bounds stay valid (they may only
    // become earlier than the earliest deadline left).
    void purge() noexcept {
        std::size_t dropped = 0;
        for (std::uint32_t w = 0; w < buckets / 64; ++w)
            for (std::uint64_t bits = occupied_[w]; bits; bits &= bits - 1) {
                const std::uint32_t slot = w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(bits));
                bucket& b = buckets_[slot];
                dropped += compact(b, slot, true);
                if (b.live == 0) reset(b, slot);
            }
        std::uint32_t kept = 0;
        for (std::uint32_t i = 0; i < late_size_; ++i) {
            if (drop_if_cancelled(late_[i].tagged)) ++dropped;
            else late_[kept++] = late_[i];
        }
        late_size_ = kept;
        for (std::uint32_t i = late_size_; i-- > 0;) late_sift_down(i, late_[i]);
        size_ -= dropped;
        stale_ -= dropped;
    }

    static void grow(bucket& b) {
        if (b.capacity >= (std::uint32_t{1} << 31)) throw std::length_error("aio: too many timers in one event loop");
        const std::uint32_t capacity = b.capacity ? b.capacity * 2 : 16;
        auto* entries = static_cast<entry*>(::operator new(capacity * sizeof(entry)));
        if (b.size) std::memcpy(entries, b.entries, b.size * sizeof(entry));
        ::operator delete(b.entries);
        b.entries = entries;
        b.capacity = capacity;
    }

    static void idle(std::uintptr_t tagged) noexcept {
        if (Traits::tracked(tagged)) Traits::node_of(tagged)->slot = timer_node::idle;
    }

    // --- late timers: a binary heap on (deadline, arming order)

    void push_late(std::int64_t deadline, std::uintptr_t tagged) {
        if (late_size_ == late_capacity_) {
            const std::uint32_t capacity = late_capacity_ ? late_capacity_ * 2 : 8;
            auto* bigger = static_cast<late_entry*>(::operator new(capacity * sizeof(late_entry)));
            if (late_size_) std::memcpy(bigger, late_, late_size_ * sizeof(late_entry));
            ::operator delete(late_);
            late_ = bigger;
            late_capacity_ = capacity;
        }
        if (Traits::tracked(tagged)) Traits::node_of(tagged)->slot = late_slot;
        late_sift_up(late_size_++, {deadline, late_seq_++, tagged});
        ++size_;
    }

    entry pop_late() noexcept {
        const late_entry top = late_[0];
        --size_;
        if (--late_size_ > 0) late_sift_down(0, late_[late_size_]);
        return taken({top.deadline, top.tagged});
    }

    void remove_late(std::uint32_t i) noexcept {
        if (i == --late_size_) return;
        const late_entry last = late_[late_size_];
        if (i > 0 && late_before(last, late_[(i - 1) / 2])) late_sift_up(i, last);
        else late_sift_down(i, last);
    }

    static bool late_before(const late_entry& a, const late_entry& b) noexcept {
        return a.deadline != b.deadline ? a.deadline < b.deadline : a.seq < b.seq;
    }

    void late_place(std::uint32_t i, const late_entry& e) noexcept {
        late_[i] = e;
        if (Traits::tracked(e.tagged)) Traits::node_of(e.tagged)->index = i;
    }

    void late_sift_up(std::uint32_t i, late_entry e) noexcept {
        while (i > 0 && late_before(e, late_[(i - 1) / 2])) {
            late_place(i, late_[(i - 1) / 2]);
            i = (i - 1) / 2;
        }
        late_place(i, e);
    }

    void late_sift_down(std::uint32_t i, late_entry e) noexcept {
        for (;;) {
            std::uint32_t child = 2 * i + 1;
            if (child >= late_size_) break;
            if (child + 1 < late_size_ && late_before(late_[child + 1], late_[child])) ++child;
            if (!late_before(late_[child], e)) break;
            late_place(i, late_[child]);
            i = child;
        }
        late_place(i, e);
    }

    std::unique_ptr<bucket[]> buckets_ = std::make_unique<bucket[]>(buckets);  // 80 KiB
    std::uint64_t occupied_[buckets / 64] = {};
    std::uint32_t summary_ = 0;
    std::uint64_t last_ = 0;  // key of the last deadline taken out (0: none yet)
    std::size_t size_ = 0;    // entries, late ones included
    std::size_t stale_ = 0;      // see stale()
    std::size_t in_flight_ = 0;  // untracked timers popped and not yet landed()
    late_entry* late_ = nullptr;
    std::uint32_t late_size_ = 0;
    std::uint32_t late_capacity_ = 0;
    std::uint64_t late_seq_ = 0;
    entry* scratch_ = nullptr;  // for sort()
    std::size_t scratch_capacity_ = 0;
};

}  // namespace aio::detail
