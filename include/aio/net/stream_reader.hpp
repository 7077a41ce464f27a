#pragma once
// aio::stream_reader: the reading half of a stream (asyncio.StreamReader), from
// aio::open_connection or a server's handler.
//
//   std::string line = co_await reader.readline();     // through '\n'; "" at EOF
//   std::string head = co_await reader.readuntil("\r\n\r\n");
//   std::string body = co_await reader.readexactly(length);
//
// Resumption: a read whose bytes are buffered already returns without suspending;
// otherwise the task waits until the transport's step (queued by the socket's
// readiness, rule 4) has buffered more, and looks again.
//
// Cancel safety: a cancelled read consumes nothing. Bytes leave the buffer only when
// a read returns them, so `wait_for(reader.readexactly(n), 1s)` may time out and be
// retried without losing a byte (asyncio guarantees this; tokio's read_exact does
// not).
//
// The limit (64 KiB unless set) bounds what readline() and readuntil() may return,
// not counting the separator, and pauses reading while more than twice the limit is
// buffered. One task at a time may wait for data: a second gets aio::runtime_error.
// Each read holds the stream open; the reader may be moved or destroyed while one is
// suspended.

#include <algorithm>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../task.hpp"
#include "detail/stream_transport.hpp"
#include "stream_errors.hpp"

namespace aio {

namespace detail {

// A reference to a transport (the handles and every read hold one).
class transport_ref {
public:
    transport_ref() noexcept = default;
    explicit transport_ref(stream_transport* t) noexcept : t_(t) {}  // adopts a reference
    transport_ref(const transport_ref& other) noexcept : t_(other.t_) {
        if (t_) t_->add_ref();
    }
    transport_ref(transport_ref&& other) noexcept : t_(std::exchange(other.t_, nullptr)) {}
    transport_ref& operator=(transport_ref other) noexcept {
        std::swap(t_, other.t_);
        return *this;
    }
    ~transport_ref() {
        if (t_) t_->release();
    }
    stream_transport* operator->() const noexcept { return t_; }
    stream_transport& operator*() const noexcept { return *t_; }
    stream_transport* get() const noexcept { return t_; }
    explicit operator bool() const noexcept { return t_ != nullptr; }

private:
    stream_transport* t_ = nullptr;
};

// The one task that may wait for data, while it waits.
class reader_turn {
public:
    reader_turn(stream_transport& t, const char* what) : t_(t) {
        if (t.reader_waiting)
            throw aio::runtime_error(std::string(what) + "() called while another coroutine is already waiting for incoming data");
        t.before_wait();
        t.reader_waiting = true;
    }
    reader_turn(const reader_turn&) = delete;
    reader_turn& operator=(const reader_turn&) = delete;
    ~reader_turn() { t_.reader_waiting = false; }

private:
    stream_transport& t_;
};

inline void rethrow_reader_error(const stream_transport& t) {
    if (t.error()) std::rethrow_exception(t.error());
}

inline std::string take(stream_transport& t, std::size_t n) {
    std::string data(t.buffered().substr(0, n));
    t.consume(data.size());
    return data;
}

inline task<std::string> read_some(transport_ref t, std::ptrdiff_t n) {
    rethrow_reader_error(*t);
    if (n == 0) co_return std::string();
    if (n < 0) {  // to EOF, a limit's worth at a time, so that reading never pauses for good
        std::string all;
        for (;;) {
            std::string block = co_await read_some(t, static_cast<std::ptrdiff_t>(t->limit()));
            if (block.empty()) co_return all;
            all += block;
        }
    }
    if (t->buffered().empty() && !t->eof()) {
        reader_turn turn(*t, "read");
        co_await t->data_arrived().wait();
    }
    rethrow_reader_error(*t);
    co_return take(*t, static_cast<std::size_t>(n));
}

inline task<std::string> read_exactly(transport_ref t, std::ptrdiff_t n) {
    if (n < 0) throw std::invalid_argument("readexactly size can not be less than zero");
    rethrow_reader_error(*t);
    const auto want = static_cast<std::size_t>(n);
    while (t->buffered().size() < want) {
        if (t->eof()) {
            std::string partial(t->buffered());
            t->clear_input();
            throw incomplete_read_error(std::move(partial), want);
        }
        reader_turn turn(*t, "readexactly");
        co_await t->data_arrived().wait();
        rethrow_reader_error(*t);
    }
    co_return take(*t, want);
}

// asyncio 3.13's readuntil: the earliest end of any separator wins.
inline task<std::string> read_until(transport_ref t, std::vector<std::string> separators) {
    if (separators.empty()) throw std::invalid_argument("Separator should contain at least one element");
    // Shortest first, as asyncio 3.13 sorts them: of two matches that end at the same
    // byte, the shorter separator is the one that matched (it decides the limit check).
    std::stable_sort(separators.begin(), separators.end(),
                     [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
    std::size_t min_length = separators.front().size(), max_length = 0;
    for (const std::string& s : separators) {
        min_length = std::min(min_length, s.size());
        max_length = std::max(max_length, s.size());
    }
    if (min_length == 0) throw std::invalid_argument("Separator should be at least one-byte string");
    rethrow_reader_error(*t);
    std::size_t offset = 0;  // no separator ends before offset + its length
    std::size_t match_start = 0, match_end = 0;
    for (;;) {
        const std::string_view buffer = t->buffered();
        if (buffer.size() >= offset + min_length) {
            bool found = false;
            for (const std::string& s : separators) {
                const std::size_t at = buffer.find(s, offset);
                if (at == std::string_view::npos) continue;
                if (!found || at + s.size() < match_end) {
                    match_start = at;
                    match_end = at + s.size();
                    found = true;
                }
            }
            if (found) break;
            offset = buffer.size() + 1 > max_length ? buffer.size() + 1 - max_length : 0;
            if (offset > t->limit()) throw limit_overrun_error("Separator is not found, and chunk exceed the limit", offset);
        }
        // A separator may have arrived with the EOF: the buffer is looked at first.
        if (t->eof()) {
            std::string partial(buffer);
            t->clear_input();
            throw incomplete_read_error(std::move(partial), std::nullopt);
        }
        reader_turn turn(*t, "readuntil");
        co_await t->data_arrived().wait();
        rethrow_reader_error(*t);
    }
    if (match_start > t->limit())
        throw limit_overrun_error("Separator is found, but chunk is longer than limit", match_start);
    co_return take(*t, match_end);
}

inline task<std::string> read_line(transport_ref t) {
    std::string partial;
    std::vector<std::string> newline(1, "\n");  // not a braced list in the co_await: g++ 12 rejects one
    try {
        co_return co_await read_until(t, std::move(newline));
    } catch (incomplete_read_error& e) {
        partial = e.partial();  // what was left at EOF is the last line
    } catch (limit_overrun_error& e) {
        // The line is dropped: through its end if it is there, else all that is buffered.
        if (t->buffered().substr(e.consumed(), 1) == "\n") t->consume(e.consumed() + 1);
        else t->clear_input();
        throw;
    }
    co_return partial;
}

}  // namespace detail

class stream_reader {
public:
    stream_reader() noexcept = default;
    explicit stream_reader(detail::transport_ref t) noexcept : t_(std::move(t)) {}

    // Up to n bytes, as soon as any are there ("" at EOF); n < 0: everything to EOF;
    // n == 0: "" at once. Not bounded by the limit.
    task<std::string> read(std::ptrdiff_t n = -1) const { return detail::read_some(checked(), n); }
    // Through the next '\n' (included); at EOF what is left, "" when nothing is. Over
    // the limit: aio::limit_overrun_error, the line dropped (through its '\n' when
    // that arrived, else everything buffered) — asyncio raises ValueError there.
    task<std::string> readline() const { return detail::read_line(checked()); }
    // Exactly n bytes; at EOF first aio::incomplete_read_error with what arrived.
    task<std::string> readexactly(std::ptrdiff_t n) const { return detail::read_exactly(checked(), n); }
    // Through `separator` (included). aio::incomplete_read_error at EOF (the buffer
    // is emptied into it); aio::limit_overrun_error past the limit, the data left in
    // the buffer.
    task<std::string> readuntil(std::string_view separator = "\n") const {
        return detail::read_until(checked(), {std::string(separator)});
    }
    // Through whichever separator ends first (asyncio 3.13).
    task<std::string> readuntil(std::vector<std::string> separators) const {
        return detail::read_until(checked(), std::move(separators));
    }

    // EOF was reached and everything was read.
    bool at_eof() const { return checked()->eof() && checked()->buffered().empty(); }
    // What reads will throw (a reset connection), if anything.
    std::exception_ptr exception() const { return checked()->error(); }
    void set_exception(std::exception_ptr e) const { checked()->set_error(std::move(e)); }
    std::size_t limit() const { return checked()->limit(); }

private:
    const detail::transport_ref& checked() const {
        if (!t_) throw invalid_state_error("aio::stream_reader: empty (moved from, or default-constructed)");
        return t_;
    }
    detail::transport_ref t_;
};

}  // namespace aio
