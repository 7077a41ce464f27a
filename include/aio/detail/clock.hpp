#pragma once
// The loop's clock: every read of the time in aio goes through the loop that owns the
// timer (event_loop::time(), sleep, call_later, timeouts, wait's deadline).
//
// The default is std::chrono::steady_clock, in nanoseconds since its epoch. A loop
// built on a manual_clock reads that instead; when such a loop has nothing to run but
// armed timers, it moves the clock forward to the next deadline rather than block, so
// tests (and programs that simulate time) run their timers at once and in order,
// whatever the speed of the machine.

#include <chrono>
#include <climits>
#include <cstdint>

namespace aio::detail {

// A duration in nanoseconds, saturated at the int64 range (an hour-long or a
// thousand-year delay must neither overflow nor wrap into the past).
template <class Rep, class Period>
std::int64_t saturating_ns(std::chrono::duration<Rep, Period> d) noexcept {
    const long double ns = std::chrono::duration<long double, std::nano>(d).count();
    if (!(ns < static_cast<long double>(INT64_MAX))) return ns != ns ? 0 : INT64_MAX;
    if (ns <= static_cast<long double>(INT64_MIN)) return INT64_MIN;
    const auto whole = static_cast<std::int64_t>(ns);
    return static_cast<long double>(whole) < ns ? whole + 1 : whole;  // round up: never wake early
}

// now + delay, saturated.
inline std::int64_t deadline_after(std::int64_t now, std::int64_t delay) noexcept {
    if (delay > 0 && now > INT64_MAX - delay) return INT64_MAX;
    return now + delay;
}

inline std::int64_t steady_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Time that moves only when told to: by advance(), or by its loop when the loop would
// otherwise wait for a timer. It starts at steady_clock's current reading, so time
// points from it compare sensibly with steady_clock's.
class manual_clock {
public:
    manual_clock() noexcept : now_(steady_now_ns()) {}

    std::int64_t now_ns() const noexcept { return now_; }
    std::chrono::steady_clock::time_point now() const noexcept {
        return std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(now_)));
    }

    // Moves time forward (a negative duration does nothing: time never goes back).
    template <class Rep, class Period>
    void advance(std::chrono::duration<Rep, Period> d) noexcept {
        const std::int64_t ns = saturating_ns(d);
        if (ns > 0) now_ = deadline_after(now_, ns);
    }
    // Moves time forward to `when_ns`, if that is later than now.
    void advance_to(std::int64_t when_ns) noexcept {
        if (when_ns > now_) now_ = when_ns;
    }

private:
    std::int64_t now_;
};

// The clock a loop reads: steady_clock, unless a manual clock was given.
class loop_clock {
public:
    loop_clock() noexcept = default;
    explicit loop_clock(manual_clock* manual) noexcept : manual_(manual) {}

    std::int64_t now() const noexcept {
        if (manual_) [[unlikely]]
            return manual_->now_ns();
        return steady_now_ns();
    }
    manual_clock* manual() const noexcept { return manual_; }

private:
    manual_clock* manual_ = nullptr;
};

}  // namespace aio::detail
