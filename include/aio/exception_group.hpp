#pragma once
// aio::exception_group: several errors raised together (Python's ExceptionGroup), as
// thrown by aio::task_group when children fail.

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace aio {

// what() reads like Python's str() of an ExceptionGroup: the message, then how many
// errors it holds, e.g. "unhandled errors in a TaskGroup (2 sub-exceptions)".
// exceptions() holds them in the order they happened; rethrow one to inspect it.
class exception_group : public std::runtime_error {
public:
    exception_group(std::string message, std::vector<std::exception_ptr> exceptions)
        : std::runtime_error(describe(message, exceptions.size())),
          message_(std::move(message)),
          exceptions_(std::move(exceptions)) {}

    // The message without the count (Python's ExceptionGroup.message).
    const std::string& message() const noexcept { return message_; }
    const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

private:
    static std::string describe(const std::string& message, std::size_t n) {
        return message + " (" + std::to_string(n) + (n == 1 ? " sub-exception)" : " sub-exceptions)");
    }

    std::string message_;
    std::vector<std::exception_ptr> exceptions_;
};

}  // namespace aio
