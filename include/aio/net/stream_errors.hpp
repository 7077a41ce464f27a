#pragma once
// The errors of aio's stream reader (asyncio.IncompleteReadError and
// asyncio.LimitOverrunError).

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>

namespace aio {

// The stream ended before the read was satisfied; partial() holds what was read
// (asyncio.IncompleteReadError, an EOFError). expected() is empty for readuntil, and
// the message then says "undefined", as asyncio 3.13 does.
class incomplete_read_error : public std::runtime_error {
public:
    incomplete_read_error(std::string partial, std::optional<std::size_t> expected)
        : std::runtime_error(std::to_string(partial.size()) + " bytes read on a total of " +
                             (expected ? std::to_string(*expected) : std::string("undefined")) + " expected bytes"),
          partial_(std::move(partial)),
          expected_(expected) {}
    const std::string& partial() const noexcept { return partial_; }
    std::optional<std::size_t> expected() const noexcept { return expected_; }

private:
    std::string partial_;
    std::optional<std::size_t> expected_;
};

// A separator was not found within the reader's limit (asyncio.LimitOverrunError);
// consumed() says how many bytes are to be consumed (left in the buffer by readuntil).
// readline() throws it too, where asyncio raises ValueError with the same message.
class limit_overrun_error : public std::runtime_error {
public:
    limit_overrun_error(const std::string& message, std::size_t consumed)
        : std::runtime_error(message), consumed_(consumed) {}
    std::size_t consumed() const noexcept { return consumed_; }

private:
    std::size_t consumed_;
};

}  // namespace aio
