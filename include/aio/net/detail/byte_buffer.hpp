#pragma once
// A stream's byte buffer: a block with a consumed head and a free tail, so that
// reading into it (recv into the tail) and consuming from it (a line off the head)
// copy nothing and zero nothing. The live bytes move to the front only when the tail
// is too small and the head has room.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace aio::detail {

class byte_buffer {
public:
    std::size_t size() const noexcept { return end_ - begin_; }
    bool empty() const noexcept { return begin_ == end_; }
    std::string_view view() const noexcept { return {data_.get() + begin_, size()}; }

    // Room for at least `n` more bytes at the tail; where to write them.
    char* prepare(std::size_t n) {
        if (capacity_ - end_ >= n) return data_.get() + end_;
        const std::size_t live = size();
        if (begin_ > 0 && capacity_ - live >= n) {
            std::memmove(data_.get(), data_.get() + begin_, live);
        } else {
            const std::size_t capacity = std::max(capacity_ * 2, live + n);
            auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
            if (live) std::memcpy(bigger.get(), data_.get() + begin_, live);
            data_ = std::move(bigger);
            capacity_ = capacity;
        }
        begin_ = 0;
        end_ = live;
        return data_.get() + end_;
    }
    std::size_t room() const noexcept { return capacity_ - end_; }
    std::size_t capacity() const noexcept { return capacity_; }
    // `n` bytes written at prepare()'s pointer are now part of the buffer.
    void commit(std::size_t n) noexcept { end_ += n; }

    void append(std::string_view bytes) {
        std::memcpy(prepare(bytes.size()), bytes.data(), bytes.size());
        commit(bytes.size());
    }
    void consume(std::size_t n) noexcept {
        begin_ += std::min(n, size());
        if (begin_ == end_) begin_ = end_ = 0;
    }
    void clear() noexcept { begin_ = end_ = 0; }
    // Lets the memory go (a closed stream keeps none).
    void release() noexcept {
        data_.reset();
        capacity_ = begin_ = end_ = 0;
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace aio::detail
